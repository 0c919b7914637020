//! [`Blocking`]: a [`JwtStore`] (directory, memory, nsc) behind the async [`AccountStore`]
//! contract. Puts and deletes run on the blocking pool under a per-key lock, so deciding a
//! write and making it are one step; loads of small files run on the calling task (they are
//! served from the page cache, the GET hot path).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{
    AccountStore, JwtStore, KeyBatches, Put, PutError, PutFuture, StoreError, StoreFuture,
    WriteRule,
};
use crate::keys::AccountKey;

/// Number of key locks; keys are spread over them by hash.
const LOCK_SHARDS: usize = 256;

/// Keys per batch of [`AccountStore::key_batches`].
const KEY_BATCH: usize = 256;

/// A blocking store with the account-store contract.
pub struct Blocking {
    inner: Arc<dyn JwtStore>,
    locks: Arc<[Mutex<()>]>,
}

impl std::fmt::Debug for Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Blocking")
            .field(&self.inner.describe())
            .finish()
    }
}

impl Blocking {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn JwtStore>) -> Self {
        Blocking {
            inner,
            locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Runs `f` on the blocking pool with the store and the lock of `key` held.
    async fn locked<T: Send + 'static>(
        &self,
        key: &AccountKey,
        f: impl FnOnce(&dyn JwtStore, &AccountKey) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key.as_str());
        let (inner, locks, key) = (self.inner.clone(), self.locks.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            let _guard = locks[hash as usize % locks.len()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            f(inner.as_ref(), &key)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))
    }
}

/// Applies `rule` and writes under the key lock (see [`Blocking::locked`]).
fn put_locked(
    store: &dyn JwtStore,
    key: &AccountKey,
    jwt: &[u8],
    rule: &WriteRule,
) -> Result<Put, PutError> {
    let stored = store.load(key)?;
    let tombstone = match stored {
        None => store.tombstone(key)?,
        Some(_) => None,
    };
    let put = rule.decide(jwt, stored.as_deref(), tombstone.as_deref())?;
    if put != Put::Unchanged {
        store.save(key, jwt)?;
    }
    Ok(put)
}

impl AccountStore for Blocking {
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { Ok(self.inner.load(key)?.map(Bytes::from)) })
    }

    fn put<'a>(&'a self, key: &'a AccountKey, jwt: Bytes, rule: &'a WriteRule) -> PutFuture<'a> {
        let rule = rule.clone();
        Box::pin(async move {
            self.locked(key, move |store, key| put_locked(store, key, &jwt, &rule))
                .await?
        })
    }

    fn delete<'a>(&'a self, key: &'a AccountKey, request: Bytes) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.locked(key, move |store, key| {
                let existed = store.load(key)?.is_some();
                store.delete(key, &request).map(|()| existed)
            })
            .await?
        })
    }

    fn keys(&self) -> StoreFuture<'_, Vec<AccountKey>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.keys())
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }

    fn count(&self) -> StoreFuture<'_, usize> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.count())
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }

    /// The store's walk runs on the blocking pool and hands over batches through a channel of
    /// two: it stays at most that far ahead of the reader, and stops when the reader goes.
    fn key_batches(&self) -> KeyBatches<'_> {
        let inner = self.inner.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(KEY_BATCH);
            let walked = inner.visit_keys(&mut |key| {
                batch.push(key);
                batch.len() < KEY_BATCH
                    || tx
                        .blocking_send(Ok(std::mem::replace(
                            &mut batch,
                            Vec::with_capacity(KEY_BATCH),
                        )))
                        .is_ok()
            });
            match walked {
                Ok(()) if batch.is_empty() => {}
                last => {
                    let _ = tx.blocking_send(last.map(|()| batch));
                }
            }
        });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        }))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    /// A stat and an access of the store's folder, on the blocking pool: a hung mount does
    /// not hold up a worker.
    fn check(&self) -> StoreFuture<'_, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.check())
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }
}
