//! Encoding and signing NATS JWTs the way the Go library does (used by tests, examples and the
//! signing service).

use base64::Engine;
use nkeys::KeyPair;
use serde_json::{Map, Value};

use super::claims::compute_jti;
use super::{JwtError, StandardClaims};

const V2_HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;
const V1_HEADER: &str = r#"{"typ":"jwt","alg":"ed25519"}"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Fills `iss`, `iat` and `jti` into a claims object.
fn prepare(claims: &Value, signer: &KeyPair) -> Result<Map<String, Value>, JwtError> {
    let Value::Object(map) = claims else {
        return Err(JwtError::Encode("claims must be a JSON object".into()));
    };
    let mut map = map.clone();
    map.insert("iss".into(), Value::String(signer.public_key()));
    if map.get("iat").and_then(Value::as_i64).unwrap_or(0) == 0 {
        map.insert("iat".into(), Value::from(now()));
    }
    let text = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let int = |k: &str| map.get(k).and_then(Value::as_i64).unwrap_or(0);
    let standard = StandardClaims {
        aud: text("aud"),
        exp: int("exp"),
        jti: String::new(),
        iat: int("iat"),
        iss: text("iss"),
        name: text("name"),
        nbf: int("nbf"),
        sub: text("sub"),
    };
    map.insert("jti".into(), Value::String(compute_jti(&standard)));
    Ok(map)
}

fn sign(signer: &KeyPair, data: &[u8]) -> Result<String, JwtError> {
    let sig = signer
        .sign(data)
        .map_err(|e| JwtError::Encode(format!("signing failed: {e}")))?;
    Ok(b64(&sig))
}

/// Signs `claims` (a JSON object holding at least `sub` and a `nats` object with `type`) as a v2
/// JWT: header `{"typ":"JWT","alg":"ed25519-nkey"}`; sets `iss` to the signer's public key, `iat`
/// to now when absent, `nats.version` to 2 when absent, and `jti` computed as Go does
/// (base32-nopad SHA-512/256 of the standard claims JSON with an empty jti); signature over
/// `header.payload`.
pub fn encode(claims: &Value, signer: &KeyPair) -> Result<String, JwtError> {
    let mut map = prepare(claims, signer)?;
    if let Some(Value::Object(nats)) = map.get_mut("nats") {
        nats.entry("version").or_insert(Value::from(2));
    }
    let payload =
        serde_json::to_vec(&Value::Object(map)).map_err(|e| JwtError::Encode(e.to_string()))?;
    let signing_input = format!("{}.{}", b64(V2_HEADER.as_bytes()), b64(&payload));
    let sig = sign(signer, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{sig}"))
}

/// Signs `claims` in the legacy v1 format: header `{"typ":"jwt","alg":"ed25519"}`, claim type at
/// the top level (`type`), no `nats.version`, signature over the payload segment only.
pub fn encode_v1(claims: &Value, signer: &KeyPair) -> Result<String, JwtError> {
    let map = prepare(claims, signer)?;
    if !map.contains_key("type") {
        return Err(JwtError::Encode("v1 claims need a top-level type".into()));
    }
    let payload =
        b64(&serde_json::to_vec(&Value::Object(map))
            .map_err(|e| JwtError::Encode(e.to_string()))?);
    let sig = sign(signer, payload.as_bytes())?;
    Ok(format!("{}.{payload}.{sig}", b64(V1_HEADER.as_bytes())))
}
