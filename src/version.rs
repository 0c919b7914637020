//! The version line (placeholder until the build records the commit and date).

/// `nats-account-server <version>`.
pub fn long_version() -> String {
    format!("nats-account-server {}", env!("CARGO_PKG_VERSION"))
}
