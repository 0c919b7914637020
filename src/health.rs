//! Readiness: whether this server can do its work now. The store must be usable (its folder
//! present with the access it needs: [`crate::store::JwtStore::check`]) and, when NATS is
//! configured, the NATS connection must be up. Liveness (`/healthz`) needs nothing of this.

use serde::Serialize;

use crate::accounts::Accounts;

/// The readiness report served on `/readyz` and `/healthz?ready=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// `true` when every part below is fine.
    pub ready: bool,
    /// The account store.
    pub store: StoreState,
    /// The NATS connection.
    pub nats: NatsState,
}

/// Whether the account store can be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreState {
    /// `true` when usable.
    pub ok: bool,
    /// Why not, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state of the NATS connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatsState {
    /// `false` when no `nats.servers` are configured (readiness then ignores NATS).
    pub configured: bool,
    /// Whether the connection is up (absent when NATS is not configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// Why the connection is down: the latest failed attempt's server and cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks the store (for a directory a `stat` and an `access` of its folder, for JetStream the
/// connection and the bucket) and the NATS connection of `accounts`.
pub async fn readiness(accounts: &Accounts) -> Readiness {
    let check = accounts.store().check().await;
    let store = StoreState {
        ok: check.is_ok(),
        error: check.err().map(|e| e.to_string()),
    };
    let notifier = accounts.notifier();
    let connected = notifier.connected();
    let nats = NatsState {
        configured: connected.is_some(),
        connected,
        error: (connected == Some(false)).then(|| {
            notifier
                .nats_error()
                .unwrap_or_else(|| "not connected yet".into())
        }),
    };
    Readiness {
        ready: store.ok && nats.connected != Some(false),
        store,
        nats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Notifier;
    use crate::store::{DirStore, MemoryStore};
    use crate::trust::Trust;
    use std::sync::Arc;

    fn accounts(store: Arc<dyn crate::store::JwtStore>, notifier: Notifier) -> Accounts {
        let store = Arc::new(crate::store::Blocking::new(store));
        Accounts::new(Arc::new(Trust::load(None, None).unwrap()), store, notifier)
    }

    #[tokio::test]
    async fn ready_needs_a_usable_store_and_a_connection_when_nats_is_configured() {
        let memory = Arc::new(MemoryStore::default());
        let r = readiness(&accounts(memory.clone(), Notifier::disabled())).await;
        assert!(r.ready);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ready":true,"store":{"ok":true},"nats":{"configured":false}}"#
        );
        let r = readiness(&accounts(memory, Notifier::enabled())).await;
        assert!(!r.ready);
        assert_eq!(
            serde_json::to_string(&r.nats).unwrap(),
            r#"{"configured":true,"connected":false,"error":"not connected yet"}"#
        );

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("jwt");
        let store = Arc::new(DirStore::open(&root, false).unwrap());
        assert!(
            readiness(&accounts(store.clone(), Notifier::disabled()))
                .await
                .ready
        );
        std::fs::remove_dir(&root).unwrap();
        let r = readiness(&accounts(store, Notifier::disabled())).await;
        assert!(!r.ready && !r.store.ok, "{r:?}");
        assert!(r.store.error.unwrap().contains("No such file"));
    }
}
