//! Telling running nats-servers about changed accounts. A [`Notifier`] never fails and never
//! blocks a caller: an update is recorded as pending (the latest JWT per account) and a
//! background task publishes `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE` as soon as the NATS connection
//! is up, so an update made during an outage is sent when the connection comes back.

mod attempts;
pub mod nats;
pub mod resolver;
pub mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::keys::{AccountKey, ActivationId};

/// The subject nats-servers (URL and memory resolvers) listen on for account updates.
pub fn update_subject(key: &AccountKey) -> String {
    format!("$SYS.ACCOUNT.{key}.CLAIMS.UPDATE")
}

/// The subject the Go v0.8 server announced activation tokens on.
pub fn activation_subject(issuer: &str, hash: &ActivationId) -> String {
    format!("$SYS.ACCOUNT.{issuer}.CLAIMS.ACTIVATE.{hash}")
}

/// A short name for a notification subject in log lines: the key it is about.
pub(crate) fn subject_label(subject: &str) -> String {
    let tokens: Vec<&str> = subject.split('.').collect();
    match tokens.as_slice() {
        ["$SYS", "REQ", "CLAIMS", what] => format!("{} request", what.to_lowercase()),
        [_, _, key, _, "ACTIVATE", hash] => format!(
            "activation {} of {}",
            crate::keys::short_key(hash),
            crate::keys::short_key(key)
        ),
        [_, _, key, ..] => crate::keys::short_key(key).to_string(),
        _ => subject.to_string(),
    }
}

/// Why a request over NATS (signing service) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No NATS is configured or the connection is down.
    #[error("nats-server unavailable")]
    Unavailable,
    /// Nobody listens on the subject.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// No reply in time.
    #[error("no reply within {0:?}")]
    TimedOut(std::time::Duration),
    /// Any other client error.
    #[error("{0}")]
    Other(String),
}

/// What happened to an update handed to the notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No NATS is configured: nothing will be sent.
    Skipped,
    /// Queued; it is sent now if connected, or when the connection comes back.
    Queued,
}

/// State shared between the notifier handles and the NATS connection task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Messages not yet confirmed as sent, by slot: the latest (subject, payload) per slot
    /// (one slot per account or activation, one per delete request).
    pending: Mutex<HashMap<String, (String, Bytes)>>,
    /// The connected client, for requests (signing service).
    client: Mutex<Option<async_nats::Client>>,
    /// Wakes the sender (new pending update, or connection back).
    wake: tokio::sync::Notify,
    /// Signalled when the connection comes back after a loss (a pack sync is due).
    reconnected: tokio::sync::Notify,
    /// `true` while the NATS connection is up.
    connected: AtomicBool,
    /// Signalled when the client gave up reconnecting (`maxreconnects`).
    closed: tokio::sync::Notify,
    /// Why the connection is down (the latest failed attempt), while it is.
    error: Mutex<Option<String>>,
}

impl Shared {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Bytes)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_client(&self, client: Option<async_nats::Client>) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = client;
    }

    fn client(&self) -> Option<async_nats::Client> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A copy of the pending messages, as (slot, subject, payload), sorted by slot.
    pub(crate) fn pending_snapshot(&self) -> Vec<(String, String, Bytes)> {
        let mut items: Vec<_> = self
            .lock_pending()
            .iter()
            .map(|(slot, (subject, payload))| (slot.clone(), subject.clone(), payload.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items
    }

    /// Forgets the pending message of `slot` if it is still `sent` (a newer one stays).
    pub(crate) fn mark_sent(&self, slot: &str, sent: &Bytes) {
        let mut pending = self.lock_pending();
        if pending.get(slot).map(|(_, payload)| payload) == Some(sent) {
            pending.remove(slot);
        }
        metrics::gauge!(crate::metrics::NOTIFICATIONS_PENDING).set(pending.len() as f64);
    }

    /// Tells the pack sync that the connection came back.
    pub(crate) fn set_reconnected(&self) {
        self.reconnected.notify_one();
    }

    pub(crate) async fn wait_reconnected(&self) {
        self.reconnected.notified().await;
    }

    /// Records why the connection is down (cleared when it comes up).
    pub(crate) fn set_error(&self, error: String) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// Why the connection is down, when it is known.
    pub(crate) fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the connection state.
    pub(crate) fn set_connected(&self, up: bool) {
        if up {
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.connected.store(up, Ordering::SeqCst);
        metrics::gauge!(crate::metrics::NATS_CONNECTED).set(if up { 1.0 } else { 0.0 });
        if up {
            self.wake.notify_one();
        }
    }

    pub(crate) async fn wait_for_work(&self) {
        self.wake.notified().await;
    }

    pub(crate) fn set_closed(&self) {
        self.connected.store(false, Ordering::SeqCst);
        metrics::gauge!(crate::metrics::NATS_CONNECTED).set(0.0);
        self.closed.notify_one();
    }

    pub(crate) async fn wait_closed(&self) {
        self.closed.notified().await;
    }
}

/// A cheap, cloneable handle that queues update notifications.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    shared: Option<Arc<Shared>>,
}

impl Notifier {
    /// A notifier for a server without NATS: every update is skipped with a log line.
    pub fn disabled() -> Self {
        Notifier { shared: None }
    }

    /// A notifier whose updates are sent by a NATS connection task (see [`nats::spawn`]).
    pub fn enabled() -> Self {
        Notifier {
            shared: Some(Arc::new(Shared::default())),
        }
    }

    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }

    /// Queues an update notification for `key` carrying `jwt`.
    pub fn account_updated(&self, key: &AccountKey, jwt: Bytes) -> Delivery {
        let subject = update_subject(key);
        self.queue(subject.clone(), subject, jwt)
    }

    /// Queues the announcement of an activation token.
    pub fn activation_updated(&self, issuer: &str, hash: &ActivationId, jwt: Bytes) -> Delivery {
        let subject = activation_subject(issuer, hash);
        self.queue(subject.clone(), subject, jwt)
    }

    /// Drops a pending update of `key` (it was deleted: the old JWT must not go out).
    pub fn account_deleted(&self, key: &AccountKey) {
        if let Some(shared) = &self.shared {
            shared.lock_pending().remove(&update_subject(key));
        }
    }

    /// Queues a delete request (`$SYS.REQ.CLAIMS.DELETE`) for full-resolver servers.
    pub fn delete_requested(&self, jwt: Bytes) -> Delivery {
        use sha2::{Digest, Sha256};
        let digest = data_encoding::HEXLOWER.encode(&Sha256::digest(&jwt));
        let slot = format!("{} {digest}", resolver::CLAIMS_DELETE);
        self.queue(slot, resolver::CLAIMS_DELETE.to_string(), jwt)
    }

    fn queue(&self, slot: String, subject: String, payload: Bytes) -> Delivery {
        let label = subject_label(&subject);
        let Some(shared) = &self.shared else {
            tracing::info!("skipping notification for {label}, no NATS configured");
            return Delivery::Skipped;
        };
        let waiting = {
            let mut pending = shared.lock_pending();
            pending.insert(slot, (subject, payload));
            pending.len()
        };
        metrics::gauge!(crate::metrics::NOTIFICATIONS_PENDING).set(waiting as f64);
        if !shared.connected.load(Ordering::SeqCst) {
            tracing::info!(
                "NATS is not connected: the notification for {label} is pending and will be sent when it is"
            );
        }
        shared.wake.notify_one();
        Delivery::Queued
    }

    /// Moves the pending notifications of `old` (a notifier being replaced on reload) here.
    pub fn adopt_pending(&self, old: &Notifier) {
        if let (Some(new), Some(old)) = (&self.shared, &old.shared) {
            let taken: Vec<(String, (String, Bytes))> = old.lock_pending().drain().collect();
            if !taken.is_empty() {
                new.lock_pending().extend(taken);
                new.wake.notify_one();
            }
        }
    }

    /// Sends a request over the NATS connection and waits up to `timeout` for the reply.
    pub async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: std::time::Duration,
    ) -> Result<Bytes, RequestError> {
        let client = self
            .shared
            .as_ref()
            .filter(|s| s.connected.load(Ordering::SeqCst))
            .and_then(|s| s.client())
            .ok_or(RequestError::Unavailable)?;
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        match client.send_request(subject.to_string(), request).await {
            Ok(msg) => Ok(msg.payload),
            Err(e) => Err(match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    RequestError::NoResponders(subject.to_string())
                }
                async_nats::RequestErrorKind::TimedOut => RequestError::TimedOut(timeout),
                _ => RequestError::Other(e.to_string()),
            }),
        }
    }

    /// Number of updates waiting to be sent.
    pub fn pending(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.lock_pending().len())
    }

    /// Why the NATS connection is down (the latest failed attempt: server and cause), when
    /// NATS is configured, not connected and an attempt failed.
    pub fn nats_error(&self) -> Option<String> {
        self.shared
            .as_ref()
            .filter(|s| !s.connected.load(Ordering::SeqCst))
            .and_then(|s| s.error())
    }

    /// `Some(true)` when connected to NATS, `Some(false)` when not, `None` without NATS.
    pub fn connected(&self) -> Option<bool> {
        self.shared
            .as_ref()
            .map(|s| s.connected.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccountKey {
        AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap()
    }

    #[test]
    fn disabled_skips_and_enabled_keeps_the_latest_per_account() {
        let k = key();
        assert_eq!(
            Notifier::disabled().account_updated(&k, Bytes::from_static(b"a")),
            Delivery::Skipped
        );
        let n = Notifier::enabled();
        assert_eq!(
            n.account_updated(&k, Bytes::from_static(b"1")),
            Delivery::Queued
        );
        assert_eq!(
            n.account_updated(&k, Bytes::from_static(b"2")),
            Delivery::Queued
        );
        assert_eq!(
            n.account_updated(&key(), Bytes::from_static(b"x")),
            Delivery::Queued
        );
        assert_eq!(n.pending(), 2);
        let shared = n.shared().unwrap();
        // Confirming an older send does not drop the newer pending update.
        shared.mark_sent(&update_subject(&k), &Bytes::from_static(b"1"));
        assert_eq!(n.pending(), 2);
        shared.mark_sent(&update_subject(&k), &Bytes::from_static(b"2"));
        assert_eq!(n.pending(), 1);
        // Pending updates survive a reload.
        let next = Notifier::enabled();
        next.adopt_pending(&n);
        assert_eq!((n.pending(), next.pending()), (0, 1));
        assert_eq!(n.connected(), Some(false));
        assert_eq!(Notifier::disabled().connected(), None);
    }

    #[test]
    fn labels() {
        let k = key();
        assert_eq!(subject_label(&update_subject(&k)), k.short());
        let id = ActivationId::parse("HDQBMXLIXHA5SWDQAAQSWJC5ITLPCMOYPUDSH74ZDAW65XLYVSFQ====")
            .unwrap();
        assert!(subject_label(&activation_subject(k.as_str(), &id))
            .starts_with("activation HDQBMXLIXHA5"));
    }
}
