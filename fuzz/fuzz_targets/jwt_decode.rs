//! Fuzzes the JWT decoder and account validation: any input must give a token or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_account_server::jwt;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok((token, claims)) = jwt::decode_account(text) {
            let _ = jwt::validate_account(&token, &claims, 0);
        }
        let _ = jwt::decode_operator(text);
        let _ = jwt::decode_activation(text);
        let _ = jwt::creds::parse_decorated_jwt(text);
    }
});
