//! [`Blocking`]: a [`JwtStore`] (directory, memory, nsc) behind the async [`AccountStore`]
//! contract. Puts and deletes run on the blocking pool under a per-key lock, so deciding a
//! write and making it are one step; when the store saves a batch for less than its saves one
//! by one (the directory store with group commit), puts are queued for the store's writer
//! instead ([`super::writer`]), whose task on the blocking pool decides and saves the puts
//! queued meanwhile as one batch, each under its key lock. Loads of small files run on the
//! calling task (they are served from the page cache, the GET hot path).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::writer::{Queued, Writer};
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
    /// The batching writer, used when the store batches writes.
    writer: Arc<Writer>,
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
        let locks: Arc<[Mutex<()>]> = (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect();
        let writer = Arc::new(Writer::new(inner.clone(), locks.clone()));
        Blocking {
            inner,
            locks,
            writer,
        }
    }

    /// Runs `f` on the blocking pool with the store and the lock of `key` held.
    async fn locked<T: Send + 'static>(
        &self,
        key: &AccountKey,
        f: impl FnOnce(&dyn JwtStore, &AccountKey) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (inner, locks, key) = (self.inner.clone(), self.locks.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            let _guard = locks[lock_index(&key, locks.len())]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            f(inner.as_ref(), &key)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))
    }
}

/// Which of `shards` key locks guards `key`.
pub(super) fn lock_index(key: &AccountKey, shards: usize) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key.as_str());
    hash as usize % shards
}

/// What `rule` makes of putting `jwt` over what `store` holds for `key` (called with the key
/// lock held, and followed by the save when it is a write).
pub(super) fn decide(
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
    Ok(rule.decide(jwt, stored.as_deref(), tombstone.as_deref())?)
}

impl AccountStore for Blocking {
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { Ok(self.inner.load(key)?.map(Bytes::from)) })
    }

    fn put<'a>(&'a self, key: &'a AccountKey, jwt: Bytes, rule: &'a WriteRule) -> PutFuture<'a> {
        Box::pin(async move {
            if !self.inner.batches_writes() {
                let rule = rule.clone();
                return self
                    .locked(key, move |store, key| {
                        let put = decide(store, key, &jwt, &rule)?;
                        if put != Put::Unchanged {
                            store.save(key, &jwt)?;
                        }
                        Ok(put)
                    })
                    .await?;
            }
            let (reply, answer) = tokio::sync::oneshot::channel();
            let (key, rule) = (key.clone(), rule.clone());
            self.writer.put(Queued {
                key,
                jwt,
                rule,
                reply,
            });
            answer.await.map_err(|_| {
                StoreError::Task("the store writer failed this put (see the log)".into())
            })?
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
