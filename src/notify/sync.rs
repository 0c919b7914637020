//! Pulling packs from the nats-servers: a `$SYS.REQ.CLAIMS.PACK` request with our store hash,
//! at connect and every `nats.syncinterval`, whose `<pk>|<jwt>` replies are merged with our
//! rules (trusted, unexpired, newer, not deleted), so that JWTs that reached the servers while
//! we were away reach our store too.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use futures_util::StreamExt;

use super::resolver::{Inbound, CLAIMS_PACK};
use crate::store::stored::parse_pack_line;

/// How long to wait for the next message of a pack reply before giving up on it.
const IDLE: Duration = Duration::from_secs(3);

/// What one pack request brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// JWTs stored (new or newer).
    pub stored: usize,
    /// JWTs we had already, or older than ours.
    pub unchanged: usize,
    /// JWTs refused (untrusted, invalid, deleted, malformed line).
    pub refused: usize,
    /// `true` when the reply ended with its empty message (else it timed out or none came).
    pub complete: bool,
}

/// Requests one pack and merges what comes back.
pub async fn request_once<H: Inbound>(client: &Client, handler: &H) -> Result<Merged, String> {
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    let hash = handler.pack().await.hash;
    client
        .publish_with_reply(CLAIMS_PACK, inbox, Bytes::copy_from_slice(&hash))
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let mut merged = Merged::default();
    while let Ok(Some(msg)) = tokio::time::timeout(IDLE, sub.next()).await {
        if msg.payload.is_empty() {
            merged.complete = true;
            break;
        }
        let Some((key, jwt)) = parse_pack_line(&msg.payload) else {
            merged.refused += 1;
            continue;
        };
        match handler.merge(key.clone(), jwt).await {
            Ok(true) => merged.stored += 1,
            Ok(false) => merged.unchanged += 1,
            Err(why) => {
                merged.refused += 1;
                tracing::debug!("pack merge of {}: {why}", key.short());
            }
        }
    }
    let _ = sub.unsubscribe().await;
    Ok(merged)
}

/// Requests a pack now, then every `interval` and after each reconnect, logging what each
/// brought.
pub(crate) async fn run<H: Inbound>(
    client: Client,
    handler: Arc<H>,
    shared: Arc<super::Shared>,
    interval: Duration,
) {
    loop {
        match request_once(&client, handler.as_ref()).await {
            Ok(m) if m.stored > 0 || m.refused > 0 => tracing::info!(
                "pack sync with the nats-servers: {} stored, {} unchanged, {} refused",
                m.stored,
                m.unchanged,
                m.refused
            ),
            Ok(m) => tracing::debug!(
                "pack sync with the nats-servers: nothing new ({} unchanged, complete: {})",
                m.unchanged,
                m.complete
            ),
            Err(e) => tracing::warn!("cannot request a pack from the nats-servers: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.wait_reconnected() => {}
        }
    }
}
