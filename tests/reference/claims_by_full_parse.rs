//! The reference for `jwt::peek::scan_claims`: `jti`, `exp` and `iat` by a full serde_json parse.
//! Shared by `tests/properties.rs` and the `claim_scan` fuzz target.

use nats_account_server::jwt::peek::Peeked;

#[derive(serde::Deserialize)]
struct Claims {
    jti: Option<String>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
}

/// What a full parse of `json` reads, `None` where the scanner must refuse too.
pub fn claims_by_full_parse(json: &[u8]) -> Option<Peeked> {
    // serde would also fill the struct from an array, by position: a payload must be an object.
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()?
        .is_object()
        .then_some(())?;
    let claims: Claims = serde_json::from_slice(json).ok()?;
    let int = |n: Option<serde_json::Number>| n.and_then(|n| n.as_i64()).unwrap_or(0);
    Some(Peeked {
        jti: claims.jti,
        exp: int(claims.exp),
        iat: int(claims.iat),
    })
}
