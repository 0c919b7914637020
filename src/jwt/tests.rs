//! Decoding against the Go-written fixtures, and round trips with keys made here.

use super::claims::compute_jti;
use super::*;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-jwt")
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
        .unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn every_go_fixture_decodes_or_fails_as_its_manifest_says() {
    let m = manifest();
    let mut n = 0;
    for f in m["files"].as_array().unwrap() {
        let kind = f["kind"].as_str().unwrap();
        if !kind.ends_with("_jwt") {
            continue;
        }
        let file = f["file"].as_str().unwrap();
        let text = read(file);
        let tampered = file.contains("TAMPERED");
        match decode(&text) {
            Ok(token) => {
                assert!(!tampered, "{file} should fail its signature check");
                assert_eq!(token.claims.iss, f["issuer"].as_str().unwrap(), "{file}");
                let expected_kind = match kind {
                    "account_jwt" => ClaimKind::Account,
                    "operator_jwt" => ClaimKind::Operator,
                    "user_jwt" => ClaimKind::User,
                    "activation_jwt" => ClaimKind::Activation,
                    other => panic!("{other}"),
                };
                assert_eq!(token.kind, expected_kind, "{file}");
                let version = if f["claim_format"] == "v1" { 1 } else { 2 };
                assert_eq!(token.version, version, "{file}");
                if kind != "activation_jwt" {
                    assert_eq!(
                        token.claims.sub,
                        f["public_key"].as_str().unwrap(),
                        "{file}"
                    );
                }
                // Our jti computation is Go's (jwt v2; the v1 library hashed differently).
                if version == 2 {
                    let mut std = token.claims.clone();
                    std.jti.clear();
                    assert_eq!(compute_jti(&std), token.claims.jti, "{file} jti");
                }
            }
            Err(e) => {
                assert!(tampered, "{file}: {e}");
                assert!(matches!(e, JwtError::Signature(2)), "{file}: {e}");
            }
        }
        n += 1;
    }
    assert!(n >= 20, "{n}");
}

#[test]
fn fixture_accounts_validate_as_expected() {
    let m = manifest();
    for f in m["files"].as_array().unwrap() {
        if f["kind"] != "account_jwt" || f["file"].as_str().unwrap().contains("TAMPERED") {
            continue;
        }
        let file = f["file"].as_str().unwrap();
        let (token, claims) = decode_account(&read(file)).unwrap();
        let issues = validate_account(&token, &claims, now());
        let blocking: Vec<_> = issues.iter().filter(|i| i.is_blocking(true)).collect();
        if file.contains("EXP") {
            assert_eq!(blocking.len(), 1, "{issues:?}");
            assert_eq!(blocking[0].description, "claim is expired");
            assert_eq!(blocking[0].kind, IssueKind::TimeCheck);
        } else {
            assert!(blocking.is_empty(), "{file}: {issues:?}");
        }
    }
}

#[test]
fn b_import_token_is_checked() {
    let (token, claims) = decode_account(&read("accounts/B.jwt")).unwrap();
    assert_eq!(claims.imports.len(), 2);
    assert!(!claims.imports[0].token.is_empty());
    assert!(validate_account(&token, &claims, now())
        .iter()
        .all(|i| !i.is_blocking(true)));

    // The same import for another importer: the token's sub no longer matches.
    let mut other = token.clone();
    other.claims.sub = KeyPair::new_account().public_key();
    let issues = validate_account(&other, &claims, now());
    assert!(
        issues.iter().any(|i| i.is_blocking(false)
            && i.description
                .contains("doesn't match account it is being included in")),
        "{issues:?}"
    );

    // A token issued by another account than the exporter.
    let mut wrong = claims.clone();
    wrong.imports[0].account = KeyPair::new_account().public_key();
    let issues = validate_account(&token, &wrong, now());
    assert!(
        issues.iter().any(|i| i
            .description
            .contains("activation token doesn't match account for import")),
        "{issues:?}"
    );

    // A token that does not decode.
    let mut broken = claims.clone();
    broken.imports[0].token = "garbage".into();
    assert!(validate_account(&token, &broken, now())
        .iter()
        .any(|i| i.is_blocking(false)));
}

#[test]
fn activation_fixture_and_hash_ids() {
    let (token, act) = decode_activation(&read("activations/A_to_B.jwt")).unwrap();
    assert_eq!(act.subject, "a.private.>");
    assert_eq!(act.kind, "stream");
    assert_eq!(
        act.hash_id(&token).unwrap(),
        "HDQBMXLIXHA5SWDQAAQSWJC5ITLPCMOYPUDSH74ZDAW65XLYVSFQ===="
    );
    assert_eq!(
        activation_hash_id(
            "AAZ2CUNOW4W2UEP4AMOIY27R3W6HLILAZ62C27OZQF4EK6TWZQ6O5R34",
            "ACQMZRJ5XG3GREWS3IQQKRG43GKEA4PQ7OYLX2PW4MF7CYW7WMV5KMDS",
            "times.*"
        )
        .unwrap(),
        "W4XKXELSDMZR4VAJM5LKG54GI5YC2K7EZGBXVSWVMBQXUBR4E26A===="
    );
    assert!(activation_hash_id("", "b", "c").is_err());
}

#[test]
fn operator_fixture_claims() {
    let (_, op) = decode_operator(&read("operator.jwt")).unwrap();
    let m = manifest();
    assert_eq!(op.subject, m["operator"].as_str().unwrap());
    assert_eq!(
        op.signing_keys,
        vec![m["operator_signing_key"].as_str().unwrap().to_string()]
    );
    assert_eq!(op.system_account, m["system_account"].as_str().unwrap());
    assert_eq!(op.account_server_url, "http://127.0.0.1:9090/jwt/v1");
}

fn account(sub: &str) -> Value {
    json!({"name": "X", "sub": sub, "nats": {"type": "account", "version": 2, "limits": {"subs": -1}}})
}

#[test]
fn round_trips_v2_and_v1() {
    let op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let token = encode(&account(&acc.public_key()), &op).unwrap();
    let (t, _) = decode_account(&token).unwrap();
    assert_eq!(
        (t.version, t.claims.iss.as_str()),
        (2, op.public_key().as_str())
    );
    assert_eq!(t.claims.jti.len(), 52);

    let mut v1 = account(&acc.public_key());
    v1["type"] = json!("account");
    v1["nats"].as_object_mut().unwrap().remove("type");
    v1["nats"].as_object_mut().unwrap().remove("version");
    let token = encode_v1(&v1, &op).unwrap();
    let (t, _) = decode_account(&token).unwrap();
    assert_eq!(t.version, 1);
    assert_eq!(t.header.alg, "ed25519");
}

#[test]
fn kind_issuer_and_version_errors() {
    let op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let user = KeyPair::new_user();
    let operator_jwt = encode(
        &json!({"sub": op.public_key(), "nats": {"type": "operator"}}),
        &op,
    )
    .unwrap();
    assert!(matches!(
        decode_account(&operator_jwt),
        Err(JwtError::WrongKind { .. })
    ));
    let by_user = encode(&account(&acc.public_key()), &user).unwrap();
    assert!(matches!(decode(&by_user), Err(JwtError::IssuerType { .. })));
    let mut newer = account(&acc.public_key());
    newer["nats"]["version"] = json!(3);
    assert!(matches!(
        decode(&encode(&newer, &op).unwrap()),
        Err(JwtError::NewerVersion(3))
    ));
    // No type and no version: version 0.
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let payload = b64(format!(
        r#"{{"sub":"{}","iss":"{}"}}"#,
        acc.public_key(),
        op.public_key()
    )
    .as_bytes());
    let input = format!("{header}.{payload}");
    let sig = b64(&op.sign(input.as_bytes()).unwrap());
    assert_eq!(
        decode(&format!("{input}.{sig}")),
        Err(JwtError::VersionZero)
    );
}

#[test]
fn malformed_tokens_are_errors() {
    let op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let good = encode(&account(&acc.public_key()), &op).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    assert_eq!(decode("a.b"), Err(JwtError::Chunks));
    assert_eq!(decode(&format!("{good}.x")), Err(JwtError::Chunks));
    // bad typ / alg
    for (h, want) in [
        (r#"{"typ":"XYZ","alg":"ed25519-nkey"}"#, "typ"),
        (r#"{"typ":"JWT","alg":"HS256"}"#, "alg"),
    ] {
        let e = decode(&format!("{}.{}.{}", b64(h.as_bytes()), parts[1], parts[2])).unwrap_err();
        assert!(
            e.to_string().contains(want) || matches!(e, JwtError::Alg(_)),
            "{e}"
        );
    }
    // Non-canonical base64: the last char of a 64-byte signature carries 4 unused bits.
    let sig = parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(idx ^ 1).unwrap();
    let bad = format!(
        "{}.{}.{}{tweaked}",
        parts[0],
        parts[1],
        &sig[..sig.len() - 1]
    );
    assert_eq!(decode(&bad), Err(JwtError::Base64 { part: "signature" }));
    // CR/LF inside a segment is tolerated for base64; the signature covers the text as sent,
    // which no longer matches, so only the v1 form would survive. The decoder must not panic.
    let mid = parts[1].len() / 2;
    let with_newline = format!(
        "{}.{}\r\n{}.{}",
        parts[0],
        &parts[1][..mid],
        &parts[1][mid..],
        parts[2]
    );
    assert!(decode(&with_newline).is_err());
    // invalid UTF-8 payload, deep nesting, huge numbers, oversize
    let bad_utf8 = format!("{}.{}.{}", parts[0], b64(b"\xff\xfe{}"), parts[2]);
    assert!(matches!(decode(&bad_utf8), Err(JwtError::Json { .. })));
    let deep = format!(
        "{}.{}.{}",
        parts[0],
        b64(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes()),
        parts[2]
    );
    assert!(matches!(decode(&deep), Err(JwtError::Json { .. })));
    let huge = format!(
        "{}.{}.{}",
        parts[0],
        b64(br#"{"exp":1e400,"nats":{"version":2}}"#),
        parts[2]
    );
    assert!(decode(&huge).is_err());
    let big = "a".repeat(MAX_TOKEN_SIZE + 1);
    assert_eq!(decode(&big), Err(JwtError::TooLarge));
}

#[test]
fn v1_token_with_newline_inside_payload_decodes() {
    // For v1 tokens the signature covers the payload text as written, so a signer that wrapped
    // lines would still verify; Go's decoder skips CR/LF in base64.
    let op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let header = b64(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let raw_payload = b64(format!(
        r#"{{"sub":"{}","iss":"{}","type":"account","jti":"x"}}"#,
        acc.public_key(),
        op.public_key()
    )
    .as_bytes());
    let mid = raw_payload.len() / 2;
    let wrapped = format!("{}\n{}", &raw_payload[..mid], &raw_payload[mid..]);
    let sig = b64(&op.sign(wrapped.as_bytes()).unwrap());
    let token = decode(&format!("{header}.{wrapped}.{sig}")).unwrap();
    assert_eq!(token.claims.sub, acc.public_key());
}

#[test]
fn mutated_tokens_never_panic() {
    let op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let good = encode(&account(&acc.public_key()), &op).unwrap();
    let bytes = good.as_bytes();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for i in 0..5000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut mutated = bytes.to_vec();
        let pos = (seed as usize) % mutated.len();
        match i % 3 {
            0 => mutated[pos] = (seed >> 8) as u8 % 128,
            1 => mutated.truncate(pos),
            _ => mutated.insert(pos, b'.'),
        }
        if let Ok(text) = String::from_utf8(mutated) {
            let _ = decode_account(&text);
        }
    }
}

/// Key validity is the Go nkeys library's (prefix and checksum): an issuer whose 32 bytes are
/// not a point of the curve is a well-formed operator key, and its JWTs fail the signature
/// check, as in Go.
#[test]
fn an_issuer_off_the_curve_is_a_key_whose_signatures_fail() {
    let off_curve = (0u8..=255)
        .map(|i| {
            let mut raw = vec![14u8 << 3, i];
            raw.extend_from_slice(&[0xff; 31]);
            let crc = crate::keys::crc16(&raw);
            raw.extend_from_slice(&crc.to_le_bytes());
            data_encoding::BASE32_NOPAD.encode(&raw)
        })
        .find(|k| KeyPair::from_public_key(k).is_err())
        .expect("a key off the curve");
    assert_eq!(key_type(&off_curve), Some(nkeys::KeyPairType::Operator));
    let op = KeyPair::new_operator();
    let token = encode(&account(&KeyPair::new_account().public_key()), &op).unwrap();
    let (_, payload, signature) = {
        let mut parts = token.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["iss"] = json!(off_curve);
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let forged = format!(
        "{header}.{}.{signature}",
        b64(claims.to_string().as_bytes())
    );
    assert!(
        matches!(decode_account(&forged), Err(JwtError::Signature(2))),
        "{:?}",
        decode_account(&forged)
    );
}
