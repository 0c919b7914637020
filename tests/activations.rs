//! Activation tokens: POST, GET by hash id (the spec's test vector and the Go fixture), ETag,
//! text/decode/notify, and the checks the original lacked (known issuer account, not expired).

mod support;

use serde_json::json;
use support::*;

fn activation(
    issuer: &nkeys::KeyPair,
    importer: &str,
    subject: &str,
    extra: serde_json::Value,
) -> String {
    let mut claims = json!({"name": "act", "sub": importer,
        "nats": {"subject": subject, "kind": "stream", "type": "activation", "version": 2}});
    if let serde_json::Value::Object(more) = extra {
        for (k, v) in more {
            if k == "issuer_account" {
                claims["nats"]["issuer_account"] = v;
            } else {
                claims[k] = v;
            }
        }
    }
    sign(&claims, issuer)
}

/// The hash id the manifest gives for the fixture activation `activations/A_to_B.jwt`.
fn fixture_activation_hash(m: &serde_json::Value) -> String {
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "activations/A_to_B.jwt")
        .unwrap()["activation_hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn go_fixture_activation_round_trip_with_the_manifest_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest();
    let nas = AccountServer::start(
        tmp.path(),
        &nas_config(
            &tmp.path().join("jwt"),
            Some(&fixtures().join("operator.jwt")),
            "",
        ),
    );
    let a = m["accounts"]["A"].as_str().unwrap();
    let token = fixture("activations/A_to_B.jwt");
    // Unknown issuer account first: refused.
    let r = post(&nas.addr, "/jwt/v1/activations", token.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("no JWT is stored for the issuing account"),
        "{}",
        r.text()
    );
    assert_eq!(nas.post_account(a, &fixture("accounts/A.jwt")).status, 200);
    let r = post(&nas.addr, "/jwt/v1/activations", token.as_bytes());
    assert_eq!((r.status, r.body.len()), (200, 0), "{}", r.text());

    let hash = fixture_activation_hash(&m);
    let got = nas.get(&format!("/jwt/v1/activations/{hash}"));
    assert_eq!((got.status, got.text()), (200, token.clone()));
    assert_eq!(got.header("content-type"), Some("application/jwt"));
    // The `=` padding may be percent-encoded.
    let encoded = hash.replace('=', "%3D");
    assert_eq!(
        nas.get(&format!("/jwt/v1/activations/{encoded}")).text(),
        token
    );
    let etag = got.header("etag").unwrap().to_string();
    assert_eq!(
        get_with(
            &nas.addr,
            &format!("/jwt/v1/activations/{hash}"),
            &[("If-None-Match", &etag)]
        )
        .status,
        304
    );
    assert!(got
        .header("cache-control")
        .unwrap()
        .contains("stale-while-revalidate=3600"));
    assert_eq!(
        nas.get(&format!("/jwt/v1/activations/{hash}?text=true"))
            .text(),
        token
    );
    let decoded: serde_json::Value = serde_json::from_str(
        &nas.get(&format!("/jwt/v1/activations/{hash}?decode=true"))
            .text(),
    )
    .expect("JSON");
    assert_eq!(decoded["claims"]["nats"]["subject"], "a.private.>");
    assert_eq!(
        nas.get(&format!("/jwt/v1/activations/{hash}?notify=true"))
            .status,
        200
    );
    assert!(nas
        .logs
        .wait_for(
            "skipping notification for activation HDQBMXLIXHA5",
            std::time::Duration::from_secs(2)
        )
        .is_some());
    // Stored next to the accounts, in their own folder.
    assert!(tmp
        .path()
        .join("jwt/activations")
        .join(format!("{hash}.jwt"))
        .is_file());
}

#[test]
fn rust_made_activations_and_the_spec_vector() {
    let w = World::new();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
    );
    // Exporter A with a signing key.
    let a = nkeys::KeyPair::new_account();
    let a_signing = nkeys::KeyPair::new_account();
    let mut ac = account_claims("A", &a.public_key());
    ac["nats"]["signing_keys"] = json!([a_signing.public_key()]);
    assert_eq!(
        nas.post_account(&a.public_key(), &sign(&ac, &w.signing_key))
            .status,
        200
    );
    let b = nkeys::KeyPair::new_account().public_key();

    // Signed by A itself: the hash id is Go's HashID.
    let token = activation(&a, &b, "times.*", json!({}));
    assert_eq!(
        post(&nas.addr, "/jwt/v1/activations", token.as_bytes()).status,
        200
    );
    let hash =
        nats_account_server::jwt::activation_hash_id(&a.public_key(), &b, "times.*").unwrap();
    assert_eq!(
        nas.get(&format!("/jwt/v1/activations/{hash}")).text(),
        token
    );
    // The spec's vector, computed by the same function.
    assert_eq!(
        nats_account_server::jwt::activation_hash_id(
            "AAZ2CUNOW4W2UEP4AMOIY27R3W6HLILAZ62C27OZQF4EK6TWZQ6O5R34",
            "ACQMZRJ5XG3GREWS3IQQKRG43GKEA4PQ7OYLX2PW4MF7CYW7WMV5KMDS",
            "times.*"
        )
        .unwrap(),
        "W4XKXELSDMZR4VAJM5LKG54GI5YC2K7EZGBXVSWVMBQXUBR4E26A===="
    );

    // Signed by A's signing key on behalf of A: accepted.
    let by_sk = activation(
        &a_signing,
        &b,
        "other.>",
        json!({"issuer_account": a.public_key()}),
    );
    assert_eq!(
        post(&nas.addr, "/jwt/v1/activations", by_sk.as_bytes()).status,
        200
    );
    let before = snapshot(&w.path("jwt"));
    // Refused: a key that is not A's signing key claiming to act for A; expired; not yet valid;
    // an account JWT; garbage; a subject that is not an account.
    let stranger = nkeys::KeyPair::new_account();
    let cases = vec![
        (
            "not a signing key",
            activation(
                &stranger,
                &b,
                "x",
                json!({"issuer_account": a.public_key()}),
            ),
        ),
        (
            "expired",
            activation(&a, &b, "y", json!({"exp": now() - 10})),
        ),
        (
            "not yet valid",
            activation(&a, &b, "z", json!({"nbf": now() + 3600})),
        ),
        (
            "not activation claim",
            sign(&account_claims("A", &a.public_key()), &w.signing_key),
        ),
        ("bad activation JWT", "garbage".to_string()),
        (
            "Subject",
            activation(&a, &w.operator.public_key(), "w", json!({})),
        ),
    ];
    for (reason, body) in cases {
        let r = post(&nas.addr, "/jwt/v1/activations", body.as_bytes());
        assert_eq!(r.status, 400, "{reason}: {}", r.text());
        assert!(r.text().contains(reason), "{reason}: {}", r.text());
        assert_eq!(snapshot(&w.path("jwt")), before, "{reason}");
    }
    assert_eq!(nas.get("/jwt/v1/activations/NOPE").status, 400);
    let missing =
        nats_account_server::jwt::activation_hash_id(&a.public_key(), &b, "missing").unwrap();
    let r = nas.get(&format!("/jwt/v1/activations/{missing}"));
    assert_eq!((r.status, r.text()), (404, "No Matching JWT\n".to_string()));
}

/// Each issuing account may store only so many activations (count and bytes; a replaced one
/// does not count twice), the quota survives a restart, other issuers and account pushes are
/// unaffected, and an account whose JWT has expired issues none.
#[test]
fn activations_are_held_to_a_quota_per_issuer_and_expired_issuers_are_refused() {
    let w = World::new();
    let config = nas_config(
        &w.path("jwt"),
        Some(&w.operator_path),
        "activations { maxperissuer: 3, maxbytesperissuer: 20kb }\n",
    );
    let mut nas = AccountServer::start(w.dir.path(), &config);
    let (a, a_jwt) = w.new_account("A");
    let (b, b_jwt) = w.new_account("B");
    for (kp, jwt) in [(&a, &a_jwt), (&b, &b_jwt)] {
        assert_eq!(nas.post_account(&kp.public_key(), jwt).status, 200);
    }
    let importer = || nkeys::KeyPair::new_account().public_key();
    let post_act =
        |nas: &AccountServer, token: &str| post(&nas.addr, "/jwt/v1/activations", token.as_bytes());
    let first_importer = importer();
    let first = activation(&a, &first_importer, "a.>", json!({}));
    assert_eq!(post_act(&nas, &first).status, 200);
    for _ in 0..2 {
        assert_eq!(
            post_act(&nas, &activation(&a, &importer(), "a.>", json!({}))).status,
            200
        );
    }
    let before = snapshot(&w.path("jwt"));
    let r = post_act(&nas, &activation(&a, &importer(), "a.>", json!({})));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("stores 3 activations") && r.text().contains("activations.maxperissuer"),
        "{}",
        r.text()
    );
    assert_eq!(snapshot(&w.path("jwt")), before);
    // Replacing a stored one (same hash id) is not a new one.
    let again = activation(&a, &first_importer, "a.>", json!({"name": "renewed"}));
    assert_eq!(post_act(&nas, &again).status, 200);
    // Other issuers and the operator's pushes are not held by A's quota.
    assert_eq!(
        post_act(&nas, &activation(&b, &importer(), "b.>", json!({}))).status,
        200
    );
    let (c, c_jwt) = w.new_account("C");
    assert_eq!(nas.post_account(&c.public_key(), &c_jwt).status, 200);

    // Counted from the store after a restart; bytes are held too.
    nas.kill();
    let nas = AccountServer::start(w.dir.path(), &config);
    assert_eq!(
        post_act(&nas, &activation(&a, &importer(), "a.>", json!({}))).status,
        403
    );
    let big = activation(
        &b,
        &importer(),
        "b.>",
        json!({"tags": ["t".repeat(25_000)]}),
    );
    let r = post_act(&nas, &big);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("activations.maxbytesperissuer"),
        "{}",
        r.text()
    );

    // An issuer whose account JWT has expired (placed in the store by hand).
    let d = nkeys::KeyPair::new_account();
    let mut dc = account_claims("D", &d.public_key());
    dc["exp"] = json!(now() - 10);
    std::fs::write(
        w.path("jwt").join(format!("{}.jwt", d.public_key())),
        sign(&dc, &w.signing_key),
    )
    .unwrap();
    let r = post_act(&nas, &activation(&d, &importer(), "d.>", json!({})));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("has expired"), "{}", r.text());
}

#[test]
fn activations_written_by_v08_are_served_from_where_v08_put_them() {
    let m = manifest();
    let a = m["accounts"]["A"].as_str().unwrap();
    let token = fixture("activations/A_to_B.jwt");
    let hash = fixture_activation_hash(&m);
    for (shard, readonly) in [(false, false), (true, false), (true, true)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("jwt");
        // The v0.8 layout: the activation in the account store under its hash id, sharded by
        // the id's last two characters (`==`).
        let folder = |key: &str| {
            if shard {
                dir.join(&key[key.len() - 2..])
            } else {
                dir.clone()
            }
        };
        for (key, text) in [
            (a, fixture("accounts/A.jwt")),
            (hash.as_str(), token.clone()),
        ] {
            std::fs::create_dir_all(folder(key)).unwrap();
            std::fs::write(folder(key).join(format!("{key}.jwt")), text).unwrap();
        }
        let label = format!("shard {shard}, readonly {readonly}");
        let nas = AccountServer::start(
            tmp.path(),
            &format!(
                "http {{ host: 127.0.0.1, port: 0 }}\noperatorjwtpath: \"{}\"\n\
                 store {{ dir: \"{}\", shard: {shard}, readonly: {readonly} }}\n",
                fixtures().join("operator.jwt").display(),
                dir.display()
            ),
        );
        let got = nas.get(&format!("/jwt/v1/activations/{hash}"));
        assert_eq!((got.status, got.text()), (200, token.clone()), "{label}");
        // The account store around it is unaffected: the account is served, and the hash file
        // is neither an account nor a pack line.
        assert_eq!(nas.get_account(a).status, 200, "{label}");
        let pack = nas.get("/jwt/v1/pack").text();
        assert_eq!(pack.lines().count(), 1, "{label}: {pack}");
        assert!(pack.starts_with(a), "{label}: {pack}");
        if !readonly {
            // Re-posting it stores it where new activations go.
            let r = post(&nas.addr, "/jwt/v1/activations", token.as_bytes());
            assert_eq!(r.status, 200, "{label}: {}", r.text());
            assert!(
                dir.join("activations")
                    .join(format!("{hash}.jwt"))
                    .is_file(),
                "{label}"
            );
        }
    }
}
