//! Fuzzes the claim scanner of the GET path (`jwt::peek`): never a panic, and for every input
//! that is valid JSON it reads what a full serde_json parse reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_account_server::jwt::peek::{peek, scan_claims, Peeked};

#[derive(serde::Deserialize)]
struct Claims {
    jti: Option<String>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
}

/// serde would also fill the struct from an array, by position: a payload must be an object.
fn by_full_parse(json: &[u8]) -> Option<Peeked> {
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()?
        .is_object()
        .then_some(())?;
    let claims: Claims = serde_json::from_slice(json).ok()?;
    let int = |n: Option<serde_json::Number>| n.and_then(|n| n.as_i64()).unwrap_or(0);
    Some(Peeked {
        jti: claims.jti?,
        exp: int(claims.exp),
        iat: int(claims.iat),
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = peek(data);
    let scanned = scan_claims(data);
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        assert_eq!(scanned, by_full_parse(data));
    }
});
