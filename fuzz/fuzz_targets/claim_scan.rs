//! Fuzzes the claim scanner of the GET path (`jwt::peek`): never a panic, and for every input
//! that is valid JSON it reads what a full serde_json parse reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_account_server::jwt::peek::{peek, scan_claims};

#[path = "../../tests/reference/claims_by_full_parse.rs"]
mod reference;
use reference::claims_by_full_parse;

fuzz_target!(|data: &[u8]| {
    let _ = peek(data);
    let scanned = scan_claims(data);
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        assert_eq!(scanned, claims_by_full_parse(data));
    }
});
