//! Deliberate faults, compiled only with the `fault-injection` feature, to show that the crash
//! tests catch an unsafe store. Never part of a release build.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

/// The environment variable that switches a fault on.
pub const ENV: &str = "NAS_FAULT_INJECTION";

/// The [`ENV`] value that makes directory stores write in place ([`write_in_place`]).
pub const IN_PLACE_WRITES: &str = "in-place-writes";

/// `true` when [`ENV`] asks for in-place writes (logged, so that no one misses it).
pub fn in_place_writes() -> bool {
    let on = std::env::var(ENV).is_ok_and(|v| v == IN_PLACE_WRITES);
    if on {
        tracing::warn!("fault injection: the directory store writes in place, without fsync");
    }
    on
}

/// The unsafe write the real store avoids: truncates `target`, writes half of `bytes`, waits a
/// millisecond, writes the rest. No temp file, no fsync: a crash in between leaves a torn or
/// empty file.
pub fn write_in_place(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(target)?;
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    file.write_all(first)?;
    std::thread::sleep(Duration::from_millis(1));
    file.write_all(rest)
}
