//! Where account JWTs live. A store maps an [`AccountKey`] to the exact bytes of its JWT; it
//! knows nothing about trust or validation (the [`crate::accounts`] service decides what may be
//! saved). Calls block on file I/O, so async callers run them on the blocking pool.

pub mod dir;

use crate::keys::AccountKey;

pub use dir::DirStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error, with the path it happened on.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        action: &'static str,
        /// The file or folder.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store refuses writes.
    #[error("the store is read-only")]
    ReadOnly,
}

/// A key → JWT store.
pub trait JwtStore: Send + Sync + 'static {
    /// The stored JWT of `key`, or `None` when there is none.
    fn load(&self, key: &AccountKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `jwt` for `key`, replacing what was there. When this returns `Ok`, the new bytes
    /// are durable (they survive a crash or power loss) and readers see either the old or the
    /// new JWT, never a mix.
    fn save(&self, key: &AccountKey, jwt: &[u8]) -> Result<(), StoreError>;

    /// A short description for logs, e.g. `directory /var/lib/nas (sharded)`.
    fn describe(&self) -> String;
}
