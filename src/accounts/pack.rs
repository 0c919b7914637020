//! The `/jwt/v1/pack` reply, streamed: `key|jwt` lines are made as the store walks its keys
//! and handed over in chunks, so a pack's memory is one batch of keys and one chunk whatever
//! the store's size, and a slow client holds back its own stream only.

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{unix_now, Accounts, LookupError};
use crate::store::stored::push_pack_line;
use crate::store::StoredJwt;

/// Bytes of pack lines gathered before a chunk is handed to the client.
pub const PACK_CHUNK: usize = 32 * 1024;

/// The chunks of a pack; the last item is an error when the store failed midway.
pub type PackChunks = mpsc::Receiver<Result<Bytes, LookupError>>;

impl Accounts {
    /// Streams up to `max` stored, unexpired JWTs as pack lines (`key|jwt`, separated by
    /// `\n`), in the order the store walks its keys. The first chunk always comes (empty for
    /// an empty pack). A task makes the chunks, one ahead of the reader; it stops when the
    /// reader is dropped.
    pub fn pack_chunks(self: &std::sync::Arc<Self>, max: usize) -> PackChunks {
        let (tx, rx) = mpsc::channel(1);
        let accounts = self.clone();
        tokio::spawn(async move {
            if let Err(e) = accounts.send_pack(max, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    async fn send_pack(
        &self,
        max: usize,
        tx: &mpsc::Sender<Result<Bytes, LookupError>>,
    ) -> Result<(), LookupError> {
        let now = unix_now();
        let (mut chunk, mut taken, mut sent) = (Vec::with_capacity(PACK_CHUNK * 2), 0, false);
        let mut batches = self.store.key_batches();
        'walk: while let Some(keys) = batches.next().await {
            for key in keys? {
                if taken >= max {
                    break 'walk;
                }
                tokio::task::consume_budget().await;
                let Some(jwt) = self.store.load(&key).await?.and_then(|b| packable(b, now)) else {
                    continue;
                };
                if taken > 0 {
                    chunk.push(b'\n');
                }
                taken += 1;
                push_pack_line(&mut chunk, &key, &jwt.bytes);
                if chunk.len() >= PACK_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(PACK_CHUNK * 2));
                    if tx.send(Ok(full.into())).await.is_err() {
                        return Ok(());
                    }
                    sent = true;
                }
            }
        }
        if !chunk.is_empty() || !sent {
            let _ = tx.send(Ok(chunk.into())).await;
        }
        Ok(())
    }
}

/// The stored JWT when it goes into packs and lists: it decodes and has not expired at `now`.
pub(crate) fn packable(bytes: Bytes, now: i64) -> Option<StoredJwt> {
    let jwt = StoredJwt::inspect(bytes);
    (jwt.etag.is_some() && !(jwt.exp > 0 && jwt.exp < now)).then_some(jwt)
}
