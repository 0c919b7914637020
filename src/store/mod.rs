//! Where account JWTs live. A store maps an [`AccountKey`] to the exact bytes of its JWT; it
//! knows nothing about trust (the [`crate::accounts`] service decides what may be saved), but
//! it owns the rule of a write ([`rule`]): the account service talks to every backend through
//! the async [`AccountStore`] contract, whose conditional put refuses rollbacks atomically.
//!
//! The directory, memory and nsc stores are [`JwtStore`]s, whose calls block on file I/O;
//! [`Blocking`] turns one into an [`AccountStore`] (a key lock makes its puts atomic). The
//! JetStream KV store ([`jetstream`]) is an [`AccountStore`] itself (revision compare-and-set).

pub mod blocking;
pub mod dir;
pub mod fallback;
#[cfg(feature = "fault-injection")]
mod fault;
pub mod group_sync;
pub mod jetstream;
pub mod memory;
pub mod nsc;
pub mod rule;
pub mod stored;
mod usable;
pub mod watch;
mod writer;

use crate::keys::{AccountKey, ActivationId};

pub use blocking::Blocking;
pub use dir::DirStore;
pub use fallback::WithFallback;
pub use jetstream::KvStore;
pub use memory::MemoryStore;
pub use nsc::NscStore;
pub use rule::{Mode, Put, Refusal, WriteRule};
pub use stored::{etag_of, StoredJwt};

/// A key a store can file JWTs under: its text is safe as a file name.
pub trait StoreKey:
    Clone + Eq + std::hash::Hash + Ord + std::fmt::Debug + Send + Sync + 'static
{
    /// The key text (file name stem).
    fn as_str(&self) -> &str;
    /// The key a file stem names, when it is a valid key.
    fn parse_key(text: &str) -> Option<Self>;
}

impl StoreKey for AccountKey {
    fn as_str(&self) -> &str {
        AccountKey::as_str(self)
    }
    fn parse_key(text: &str) -> Option<Self> {
        AccountKey::parse(text).ok()
    }
}

impl StoreKey for ActivationId {
    fn as_str(&self) -> &str {
        ActivationId::as_str(self)
    }
    fn parse_key(text: &str) -> Option<Self> {
        ActivationId::parse(text).ok()
    }
}

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
    /// The store cannot be reached now (JetStream down, no quorum); nothing was changed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The blocking task running a store call failed (panicked or was cancelled).
    #[error("the store task failed: {0}")]
    Task(String),
    /// A JWT file of the store is a symbolic link, which reads refuse to follow (it could
    /// serve any file the server can read).
    #[error("refusing to read {path}: it is a symbolic link")]
    Symlink {
        /// The link.
        path: String,
    },
}

/// A boxed future of a store call.
pub type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Keys that have a JWT, in batches, in the order the store walks them (see
/// [`AccountStore::key_batches`]).
pub type KeyBatches<'a> = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Vec<AccountKey>, StoreError>> + Send + 'a>,
>;

/// The boxed future of a conditional put.
pub type PutFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Put, PutError>> + Send + 'a>>;

/// Why a conditional put did not store the JWT.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The rule refused it (an older JWT, a deleted account); nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The contract between the account service and every account store backend.
pub trait AccountStore: Send + Sync + 'static {
    /// The stored JWT of `key`, or `None` when there is none (or it was deleted).
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<bytes::Bytes>>;

    /// Stores `jwt` for `key` when `rule` allows it over what is stored, deciding and writing
    /// as one atomic step (no other write to `key`, from this process or another, comes in
    /// between). Durable when it returns `Ok(Put::Written)`.
    fn put<'a>(
        &'a self,
        key: &'a AccountKey,
        jwt: bytes::Bytes,
        rule: &'a WriteRule,
    ) -> PutFuture<'a>;

    /// Deletes `key`, leaving the stored JWT (or `request` when none was stored) as the
    /// tombstone a later put is checked against. Returns whether a JWT was stored.
    fn delete<'a>(&'a self, key: &'a AccountKey, request: bytes::Bytes) -> StoreFuture<'a, bool>;

    /// Every key that has a JWT, sorted.
    fn keys(&self) -> StoreFuture<'_, Vec<AccountKey>>;

    /// How many keys have a JWT.
    fn count(&self) -> StoreFuture<'_, usize>;

    /// Every key that has a JWT, in batches as the store walks them (not sorted), so that a
    /// reader of every JWT (a pack) holds one batch of keys at a time whatever the store's
    /// size. By default, [`AccountStore::keys`] as one batch.
    fn key_batches(&self) -> KeyBatches<'_> {
        Box::pin(futures_util::stream::once(self.keys()))
    }

    /// A short description for logs.
    fn describe(&self) -> String;

    /// `true` when puts always fail with [`StoreError::ReadOnly`].
    fn is_read_only(&self) -> bool {
        false
    }

    /// Whether the store can be used now (for readiness), without reading any JWT.
    fn check(&self) -> StoreFuture<'_, ()>;
}

/// A key → JWT store whose calls block (account keys by default, activation hash ids for
/// activations); see [`Blocking`] for its [`AccountStore`] side.
pub trait JwtStore<K: StoreKey = AccountKey>: Send + Sync + 'static {
    /// The stored JWT of `key`, or `None` when there is none.
    fn load(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `jwt` for `key`, replacing what was there. When this returns `Ok`, the new bytes
    /// are durable (they survive a crash or power loss) and readers see either the old or the
    /// new JWT, never a mix.
    fn save(&self, key: &K, jwt: &[u8]) -> Result<(), StoreError>;

    /// Stores each `(key, jwt)` as [`JwtStore::save`] would (the keys are distinct), with one
    /// result per item, in order. Stores override it to share the cost of durability across
    /// the batch (the directory store syncs once for all of them).
    fn save_all(&self, items: &[(&K, &[u8])]) -> Vec<Result<(), StoreError>> {
        items.iter().map(|(key, jwt)| self.save(key, jwt)).collect()
    }

    /// `true` when [`JwtStore::save_all`] costs less than its saves one by one, so that
    /// concurrent puts are worth batching (see [`Blocking`]).
    fn batches_writes(&self) -> bool {
        false
    }

    /// Every key that has a JWT, sorted.
    fn keys(&self) -> Result<Vec<K>, StoreError>;

    /// How many keys have a JWT (stores override it to count without listing every key).
    fn count(&self) -> Result<usize, StoreError> {
        Ok(self.keys()?.len())
    }

    /// Calls `f` with every key that has a JWT, in the store's own order, until `f` returns
    /// `false` (stores override it to walk their keys without listing them all first).
    fn visit_keys(&self, f: &mut dyn FnMut(K) -> bool) -> Result<(), StoreError> {
        for key in self.keys()? {
            if !f(key) {
                break;
            }
        }
        Ok(())
    }

    /// A short description for logs, e.g. `directory /var/lib/nas (sharded)`.
    fn describe(&self) -> String;

    /// Marks `key` deleted, as nats-server's full resolver does: readers then see no JWT, and
    /// [`JwtStore::tombstone`] returns the JWT that was stored, or `tombstone` when none was.
    /// Durable when it returns `Ok`. A later [`JwtStore::save`] brings the key back.
    fn delete(&self, key: &K, tombstone: &[u8]) -> Result<(), StoreError> {
        let _ = (key, tombstone);
        Err(StoreError::ReadOnly)
    }

    /// What a deleted `key` left behind (see [`JwtStore::delete`]), whether or not it was
    /// saved again since; `None` when it was never deleted.
    fn tombstone(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        Ok(None)
    }

    /// `true` when [`JwtStore::save`] always fails with [`StoreError::ReadOnly`].
    fn is_read_only(&self) -> bool {
        false
    }

    /// Whether the store can be used now (for readiness): a cheap check of its folder that
    /// opens no JWT. Stores without a folder are always usable.
    fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod contract {
    //! The rules every account store keeps the same way.
    use super::*;

    fn key() -> AccountKey {
        AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap()
    }

    fn deletes_leave_tombstones_and_saves_bring_keys_back(store: &dyn JwtStore) {
        let (k, never) = (key(), key());
        store.save(&k, b"v1").unwrap();
        store.delete(&k, b"request").unwrap();
        assert_eq!(store.load(&k).unwrap(), None);
        assert!(store.keys().unwrap().is_empty());
        assert_eq!(store.tombstone(&k).unwrap().as_deref(), Some(&b"v1"[..]));
        // A key that was never stored keeps the request as its tombstone.
        store.delete(&never, b"request").unwrap();
        assert_eq!(
            store.tombstone(&never).unwrap().as_deref(),
            Some(&b"request"[..])
        );
        assert_eq!(store.load(&never).unwrap(), None);
        // Deleting again keeps the first tombstone.
        store.delete(&k, b"again").unwrap();
        assert_eq!(store.tombstone(&k).unwrap().as_deref(), Some(&b"v1"[..]));
        store.save(&k, b"v2").unwrap();
        assert_eq!(store.load(&k).unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(store.keys().unwrap(), std::slice::from_ref(&k));
        assert_eq!(store.tombstone(&key()).unwrap(), None);
    }

    #[test]
    fn every_writable_store_deletes_the_same_way() {
        for shard in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let dir: DirStore = DirStore::open(tmp.path(), shard).unwrap();
            deletes_leave_tombstones_and_saves_bring_keys_back(&dir);
        }
        deletes_leave_tombstones_and_saves_bring_keys_back(&MemoryStore::default());
    }
}
