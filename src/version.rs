//! What this build is: the crate version, the git commit and the build date that `build.rs`
//! recorded, and the line `--version` prints.

/// The crate version from `Cargo.toml`, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from: the short hash, with `+dirty` when tracked files
/// differed from it, or `unknown` when it was not built from a git checkout (a crate tarball).
pub const COMMIT: &str = env!("NAS_BUILD_COMMIT");

/// The build date, `YYYY-MM-DD` in UTC (from `SOURCE_DATE_EPOCH` when that was set).
pub const BUILD_DATE: &str = env!("NAS_BUILD_DATE");

/// The program name and everything above in one line, e.g.
/// `nats-account-server 0.1.0 (commit abc1234, built 2026-12-01)`: what `-v`/`--version` prints.
pub fn long_version() -> String {
    format!("nats-account-server {VERSION} (commit {COMMIT}, built {BUILD_DATE})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_names_version_commit_and_date() {
        let text = long_version();
        assert!(
            text.starts_with(&format!("nats-account-server {VERSION} (commit ")),
            "{text}"
        );
        assert!(!COMMIT.is_empty());
        let hash = COMMIT.strip_suffix("+dirty").unwrap_or(COMMIT);
        assert!(
            hash == "unknown" || (hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit())),
            "{COMMIT}"
        );
        let date: Vec<&str> = BUILD_DATE.split('-').collect();
        assert_eq!(date.len(), 3, "{BUILD_DATE}");
        assert!(date[0].len() == 4 && date[1].len() == 2 && date[2].len() == 2);
        assert!(text.ends_with(&format!(", built {BUILD_DATE})")), "{text}");
    }
}
