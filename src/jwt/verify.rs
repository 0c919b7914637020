//! Decoding and signature verification, following the Go library's `jwt.Decode`.

use base64::Engine;
use nkeys::KeyPairType;
use serde_json::{Map, Value};

use super::account::parse_account;
use super::claims::{parse_activation, parse_operator};
use super::json::{check_object, parse_object};
use super::schema;
use super::{
    key_type, AccountClaims, ActivationClaims, ClaimKind, Header, JwtError, OperatorClaims,
    StandardClaims, Token, MAX_TOKEN_SIZE,
};

/// Decodes one base64url segment; CR and LF are skipped (Go leniency), anything else must be
/// canonical unpadded base64url.
pub(crate) fn b64_segment(segment: &str, part: &'static str) -> Result<Vec<u8>, JwtError> {
    let engine = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let result = if segment.contains(['\r', '\n']) {
        let cleaned: String = segment
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        engine.decode(cleaned)
    } else {
        engine.decode(segment)
    };
    result.map_err(|_| JwtError::Base64 { part })
}

fn string_field(
    map: &Map<String, Value>,
    name: &str,
    part: &'static str,
) -> Result<String, JwtError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(JwtError::Json {
            part,
            reason: format!("{name} is not a string"),
        }),
    }
}

fn int_field(map: &Map<String, Value>, name: &str) -> Result<i64, JwtError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_i64().ok_or_else(|| JwtError::Json {
            part: "payload",
            reason: format!("{name} is not an integer that fits 64 bits"),
        }),
    }
}

fn kind_of(text: &str) -> ClaimKind {
    match text {
        "operator" => ClaimKind::Operator,
        "account" => ClaimKind::Account,
        "user" => ClaimKind::User,
        "activation" => ClaimKind::Activation,
        "generic" | "" => ClaimKind::Generic,
        other => ClaimKind::Other(other.to_string()),
    }
}

/// Decodes any NATS JWT and verifies its signature (see the doc of `jwt::decode` in mod.rs).
pub fn decode(token: &str) -> Result<Token, JwtError> {
    if token.len() > MAX_TOKEN_SIZE {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Chunks);
    };
    let header_map = parse_object(&b64_segment(h, "header")?, "header")?;
    check_object(&header_map, schema::HEADER, "header")?;
    let header = Header {
        typ: string_field(&header_map, "typ", "header")?,
        alg: string_field(&header_map, "alg", "header")?,
    };
    if header.typ.to_uppercase() != "JWT" {
        return Err(JwtError::Typ(header.typ));
    }
    let alg = header.alg.to_lowercase();
    if alg != "ed25519" && alg != "ed25519-nkey" {
        return Err(JwtError::Alg(header.alg));
    }
    let payload = parse_object(&b64_segment(p, "payload")?, "payload")?;
    let signature = b64_segment(s, "signature")?;
    // Keys Go would read as the version or the type only by ignoring case are refused first.
    check_object(&payload, schema::payload(&ClaimKind::Generic), "")?;

    let nats = match payload.get("nats") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Err(JwtError::Json {
                part: "payload",
                reason: "nats is not an object".into(),
            })
        }
    };
    let (version, kind) = if payload.contains_key("type") {
        (1u8, kind_of(&string_field(&payload, "type", "payload")?))
    } else {
        let version = match nats.and_then(|n| n.get("version")) {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().ok_or_else(|| JwtError::Json {
                part: "payload",
                reason: "nats.version is not an integer".into(),
            })?,
        };
        if version > 2 {
            return Err(JwtError::NewerVersion(version));
        }
        if version < 1 {
            return Err(JwtError::VersionZero);
        }
        let kind = match nats {
            Some(n) => kind_of(&string_field(n, "type", "payload")?),
            None => ClaimKind::Generic,
        };
        (version as u8, kind)
    };

    check_object(&payload, schema::payload(&kind), "")?;
    let claims = StandardClaims {
        aud: string_field(&payload, "aud", "payload")?,
        exp: int_field(&payload, "exp")?,
        jti: string_field(&payload, "jti", "payload")?,
        iat: int_field(&payload, "iat")?,
        iss: string_field(&payload, "iss", "payload")?,
        name: string_field(&payload, "name", "payload")?,
        nbf: int_field(&payload, "nbf")?,
        sub: string_field(&payload, "sub", "payload")?,
    };

    let issuer_type =
        key_type(&claims.iss).ok_or_else(|| JwtError::BadIssuer(claims.iss.clone()))?;
    let allowed = match kind {
        ClaimKind::Operator => matches!(issuer_type, KeyPairType::Operator),
        ClaimKind::Account | ClaimKind::Activation => {
            matches!(issuer_type, KeyPairType::Operator | KeyPairType::Account)
        }
        ClaimKind::User => matches!(issuer_type, KeyPairType::Account),
        ClaimKind::Generic | ClaimKind::Other(_) => true,
    };
    if !allowed {
        return Err(JwtError::IssuerType {
            iss: claims.iss.clone(),
            kind,
        });
    }

    let signed: &[u8] = if version == 1 {
        p.as_bytes()
    } else {
        // header "." payload, exactly as written in the token
        &token.as_bytes()[..h.len() + 1 + p.len()]
    };
    // The issuer is a well-formed key (above); bytes off the curve cannot verify (Go: false).
    let verifier =
        nkeys::KeyPair::from_public_key(&claims.iss).map_err(|_| JwtError::Signature(version))?;
    if signature.len() != 64 || verifier.verify(signed, &signature).is_err() {
        return Err(JwtError::Signature(version));
    }

    Ok(Token {
        raw: token.to_string(),
        header,
        claims,
        kind,
        version,
        payload,
        signature: s.to_string(),
    })
}

fn expect_kind(token: &Token, expected: ClaimKind) -> Result<(), JwtError> {
    if token.kind == expected {
        Ok(())
    } else {
        Err(JwtError::WrongKind {
            expected,
            found: token.kind.clone(),
        })
    }
}

/// Decodes a token that must be an account JWT, and its typed account claims.
pub fn decode_account(token: &str) -> Result<(Token, AccountClaims), JwtError> {
    let t = decode(token)?;
    expect_kind(&t, ClaimKind::Account)?;
    let claims = parse_account(&t)?;
    Ok((t, claims))
}

/// Decodes a token that must be an operator JWT, and its typed operator claims.
pub fn decode_operator(token: &str) -> Result<(Token, OperatorClaims), JwtError> {
    let t = decode(token)?;
    expect_kind(&t, ClaimKind::Operator)?;
    let claims = parse_operator(&t)?;
    Ok((t, claims))
}

/// Decodes a token that must be an activation JWT, and its typed activation claims.
pub fn decode_activation(token: &str) -> Result<(Token, ActivationClaims), JwtError> {
    let t = decode(token)?;
    expect_kind(&t, ClaimKind::Activation)?;
    let claims = parse_activation(&t)?;
    Ok((t, claims))
}
