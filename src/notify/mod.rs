//! Telling running nats-servers about changed accounts. A [`Notifier`] never fails and never
//! blocks a caller: an update is recorded as pending (the latest JWT per account) and a
//! background task publishes `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE` as soon as the NATS connection
//! is up, so an update made during an outage is sent when the connection comes back.

pub mod nats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::keys::AccountKey;

/// The subject nats-servers (URL and memory resolvers) listen on for account updates.
pub fn update_subject(key: &AccountKey) -> String {
    format!("$SYS.ACCOUNT.{key}.CLAIMS.UPDATE")
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
    /// Updates not yet confirmed as sent: the latest JWT per account.
    pending: Mutex<HashMap<AccountKey, Bytes>>,
    /// Wakes the sender (new pending update, or connection back).
    wake: tokio::sync::Notify,
    /// `true` while the NATS connection is up.
    connected: AtomicBool,
    /// Signalled when the client gave up reconnecting (`maxreconnects`).
    closed: tokio::sync::Notify,
}

impl Shared {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<AccountKey, Bytes>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the pending updates.
    pub(crate) fn pending_snapshot(&self) -> Vec<(AccountKey, Bytes)> {
        let mut items: Vec<_> = self
            .lock_pending()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items
    }

    /// Forgets `key`'s pending update if it is still `sent` (a newer one stays pending).
    pub(crate) fn mark_sent(&self, key: &AccountKey, sent: &Bytes) {
        let mut pending = self.lock_pending();
        if pending.get(key) == Some(sent) {
            pending.remove(key);
        }
    }

    /// Records the connection state.
    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
        if up {
            self.wake.notify_one();
        }
    }

    pub(crate) async fn wait_for_work(&self) {
        self.wake.notified().await;
    }

    pub(crate) fn set_closed(&self) {
        self.connected.store(false, Ordering::SeqCst);
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
        let Some(shared) = &self.shared else {
            tracing::info!(
                "skipping notification for {}, no NATS configured",
                key.short()
            );
            return Delivery::Skipped;
        };
        shared.lock_pending().insert(key.clone(), jwt);
        if !shared.connected.load(Ordering::SeqCst) {
            tracing::info!(
                "NATS is not connected: the notification for {} is pending and will be sent when it is",
                key.short()
            );
        }
        shared.wake.notify_one();
        Delivery::Queued
    }

    /// Number of updates waiting to be sent.
    pub fn pending(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.lock_pending().len())
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
        shared.mark_sent(&k, &Bytes::from_static(b"1"));
        assert_eq!(n.pending(), 2);
        shared.mark_sent(&k, &Bytes::from_static(b"2"));
        assert_eq!(n.pending(), 1);
        assert_eq!(n.connected(), Some(false));
        assert_eq!(Notifier::disabled().connected(), None);
    }
}
