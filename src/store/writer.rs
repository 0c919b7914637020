//! The put writer of [`super::Blocking`]: puts are queued, and one task on the blocking pool
//! at a time drains the queue in batches: it takes every put queued since its last batch,
//! decides each under its key lock, saves the batch with one [`JwtStore::save_all`] (the
//! directory store syncs once for all of them) and answers each put. Concurrent puts so share
//! the cost of durability (group commit) while each is still acknowledged only once its JWT is
//! durable; a lone put is a batch of one, on the blocking pool as before.
//!
//! A batch holds one put per key: a second put of the same key waits for the next batch, so
//! it is decided against the first one's result, as it would be one after the other.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{JwtStore, Put, PutError, StoreError, WriteRule};
use crate::keys::AccountKey;

/// Most puts in one batch.
const MAX_BATCH: usize = 256;

/// A put waiting for the writer, with where its answer goes.
pub(super) struct Queued {
    /// The account.
    pub key: AccountKey,
    /// The JWT to store.
    pub jwt: Bytes,
    /// The rule that decides whether it may replace what is stored.
    pub rule: WriteRule,
    /// The put's result.
    pub reply: oneshot::Sender<Result<Put, PutError>>,
}

/// The queue of puts of one store and whether a task is draining it.
pub(super) struct Writer {
    store: Arc<dyn JwtStore>,
    locks: Arc<[Mutex<()>]>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Queued>,
    draining: bool,
}

impl Writer {
    /// A writer of `store` that locks keys in `locks` (the locks of [`super::Blocking`]).
    pub fn new(store: Arc<dyn JwtStore>, locks: Arc<[Mutex<()>]>) -> Self {
        let queue = Mutex::new(Queue::default());
        Writer {
            store,
            locks,
            queue,
        }
    }

    /// Queues `put`; starts a task on the blocking pool to drain the queue unless one runs.
    /// Must be called within a tokio runtime.
    pub fn put(self: &Arc<Self>, put: Queued) {
        let mut queue = self.lock();
        queue.waiting.push_back(put);
        if std::mem::replace(&mut queue.draining, true) {
            return;
        }
        drop(queue);
        let writer = self.clone();
        tokio::task::spawn_blocking(move || writer.drain());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes batches until the queue is empty.
    fn drain(&self) {
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.draining = false;
                    return;
                }
                take_batch(&mut queue.waiting)
            };
            // A panic fails this batch's puts (their answers are dropped), not later ones.
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                write_batch(self.store.as_ref(), &self.locks, batch)
            }));
            if written.is_err() {
                tracing::error!("the store writer panicked: the puts of its batch failed");
            }
        }
    }
}

/// Takes the first put of each key from `waiting`, in order, up to [`MAX_BATCH`]; later puts
/// of a key stay.
fn take_batch(waiting: &mut VecDeque<Queued>) -> Vec<Queued> {
    let mut keys = HashSet::new();
    let mut batch = Vec::new();
    let mut rest = VecDeque::new();
    for put in waiting.drain(..) {
        match batch.len() < MAX_BATCH && keys.insert(put.key.clone()) {
            true => batch.push(put),
            false => rest.push_back(put),
        }
    }
    *waiting = rest;
    batch
}

/// Decides and saves `batch` with the locks of its keys held, then answers each put.
fn write_batch(store: &dyn JwtStore, locks: &[Mutex<()>], batch: Vec<Queued>) {
    let mut shards: Vec<usize> = batch
        .iter()
        .map(|put| super::blocking::lock_index(&put.key, locks.len()))
        .collect();
    shards.sort_unstable();
    shards.dedup();
    let guards: Vec<_> = shards
        .iter()
        .map(|&i| locks[i].lock().unwrap_or_else(|e| e.into_inner()))
        .collect();
    let decided: Vec<Result<Put, PutError>> = batch
        .iter()
        .map(|put| super::blocking::decide(store, &put.key, &put.jwt, &put.rule))
        .collect();
    let saves: Vec<(&AccountKey, &[u8])> = batch
        .iter()
        .zip(&decided)
        .filter(|(_, put)| is_write(put))
        .map(|(put, _)| (&put.key, put.jwt.as_ref()))
        .collect();
    let mut saved = store.save_all(&saves).into_iter();
    let results: Vec<Result<Put, PutError>> = decided
        .into_iter()
        .map(|put| {
            if is_write(&put) {
                let missing = || Err(StoreError::Task("the store skipped a save".into()));
                saved.next().unwrap_or_else(missing)?;
            }
            put
        })
        .collect();
    drop(guards);
    for (put, result) in batch.into_iter().zip(results) {
        let _ = put.reply.send(result);
    }
}

/// `true` when a decided put changes the store.
fn is_write(put: &Result<Put, PutError>) -> bool {
    matches!(put, Ok(put) if *put != Put::Unchanged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(key: &AccountKey, jwt: &str) -> Queued {
        let (reply, _) = oneshot::channel();
        let (key, jwt) = (key.clone(), Bytes::from(jwt.to_string()));
        Queued {
            key,
            jwt,
            rule: WriteRule::always(),
            reply,
        }
    }

    fn jwts(puts: &[Queued]) -> Vec<&[u8]> {
        puts.iter().map(|p| p.jwt.as_ref()).collect()
    }

    #[test]
    fn a_batch_takes_one_put_per_key_in_order_and_leaves_the_rest_for_the_next() {
        let key = || AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap();
        let (a, b) = (key(), key());
        let mut waiting: VecDeque<Queued> =
            [(&a, "a1"), (&b, "b1"), (&a, "a2"), (&a, "a3"), (&b, "b2")]
                .into_iter()
                .map(|(k, j)| queued(k, j))
                .collect();
        let first = take_batch(&mut waiting);
        assert_eq!(jwts(&first), [b"a1".as_ref(), b"b1"]);
        let second = take_batch(&mut waiting);
        assert_eq!(jwts(&second), [b"a2".as_ref(), b"b2"]);
        let third = take_batch(&mut waiting);
        assert_eq!(jwts(&third), [b"a3".as_ref()]);
        assert!(waiting.is_empty());
    }
}
