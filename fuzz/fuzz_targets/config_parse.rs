//! Fuzzes the config parsers (nats-server syntax and TOML) and the mapping onto `Config`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nats_account_server::config::{load, natsconf};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(map) = natsconf::parse_str(text, Path::new("/fuzz/nas.conf"), &|_| None) {
            let _ = load::from_map(&map);
        }
        if let Ok(map) = natsconf::parse_toml_str(text, Path::new("/fuzz/nas.toml")) {
            let _ = load::from_map(&map);
        }
    }
});
