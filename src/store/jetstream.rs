//! The JetStream key-value store (`store { jetstream { ... } }`): account JWTs in a KV bucket
//! that any number of account servers share. Keys are account public keys, values the exact
//! JWT bytes. A put reads the key's last entry, applies the [`WriteRule`] and writes with that
//! entry's revision as the expected one (compare-and-set), retrying when another writer came
//! first; so the newest `iat` wins across instances and nothing rolls back. A delete writes the
//! deleted JWT under `deleted.<key>` (the tombstone later puts are checked against), then the
//! KV delete marker.
//!
//! Reads go to the stream leader (not to the direct-get of any replica, which may lag behind),
//! so a read after an acknowledged write sees it. [`KvStore::watch`] reports every change, made
//! here or by another instance, so the account service can keep its cache exact.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{AccountStore, Put, PutError, PutFuture, StoreError, StoreFuture, WriteRule};
use crate::config::JetStreamConfig;
use crate::keys::AccountKey;

/// How long one JetStream request may take before the store reports itself unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Most compare-and-set attempts of one put before giving up (each loses only to another
/// writer of the same key that succeeded).
const MAX_ATTEMPTS: usize = 64;
/// The key prefix of tombstones.
const TOMBSTONE_PREFIX: &str = "deleted.";

/// The KV store.
pub struct KvStore {
    bucket: String,
    servers: String,
    client: async_nats::Client,
    kv: tokio::sync::OnceCell<kv::Store>,
    /// Why the bucket is not open yet (for errors and readiness).
    opening: Mutex<String>,
    /// [`WATCH_NONE`], [`WATCH_STARTING`] or [`WATCH_LIVE`].
    watch: AtomicU8,
}

/// No watch was asked for.
const WATCH_NONE: u8 = 0;
/// A watch was asked for and is not running (yet, or again).
const WATCH_STARTING: u8 = 1;
/// The watch runs: every change reaches the cache.
const WATCH_LIVE: u8 = 2;

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The last entry of a key: its value (`None` when deleted) and revision.
struct Entry {
    value: Option<Bytes>,
    revision: u64,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

impl KvStore {
    /// Connects to `config.servers` (in the background: the call returns at once) and opens
    /// the bucket, creating it when missing; until it is open, calls fail with
    /// [`StoreError::Unavailable`].
    pub async fn open(config: &JetStreamConfig) -> Result<Arc<KvStore>, StoreError> {
        let addrs = config
            .servers
            .iter()
            .map(|url| url.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unavailable("store.jetstream.servers", e))?;
        let client = async_nats::connect_with_options(addrs, options(config).await?)
            .await
            .map_err(|e| unavailable("connecting to JetStream", e))?;
        let store = Arc::new(KvStore {
            bucket: config.bucket.clone(),
            servers: config.servers.join(", "),
            client,
            kv: tokio::sync::OnceCell::new(),
            opening: Mutex::new("connecting".into()),
            watch: AtomicU8::new(WATCH_NONE),
        });
        tokio::spawn(open_bucket(Arc::downgrade(&store), config.clone()));
        Ok(store)
    }

    /// The open bucket, or why there is none.
    fn kv(&self) -> Result<&kv::Store, StoreError> {
        self.kv.get().ok_or_else(|| {
            let why = self.opening.lock().unwrap_or_else(|e| e.into_inner());
            StoreError::Unavailable(format!(
                "JetStream bucket {} is not open: {why}",
                self.bucket
            ))
        })
    }

    /// The last entry of `key` (read from the stream leader).
    async fn entry(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        use jetstream::stream::LastRawMessageErrorKind as Kind;
        let kv = self.kv()?;
        let subject = format!("{}{key}", kv.prefix);
        match kv.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                let op = message.headers.get("KV-Operation").map(|v| v.as_str());
                let deleted = matches!(op, Some("DEL" | "PURGE"));
                Ok(Some(Entry {
                    value: (!deleted).then_some(message.payload),
                    revision: message.sequence,
                }))
            }
            Err(e) if e.kind() == Kind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable(&format!("reading {key}"), e)),
        }
    }

    /// Writes `value` under `key` when its last revision is still `revision` (0: no entry);
    /// `Ok(false)` when another writer came first.
    async fn write(&self, key: &str, value: Bytes, revision: u64) -> Result<bool, StoreError> {
        match self.kv()?.update(key, value, revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(unavailable(&format!("writing {key}"), e)),
        }
    }

    async fn put_once(
        &self,
        key: &AccountKey,
        jwt: &Bytes,
        rule: &WriteRule,
    ) -> Result<Option<Put>, PutError> {
        let entry = self.entry(key.as_str()).await?;
        let stored = entry.as_ref().and_then(|e| e.value.clone());
        let tombstone = match &stored {
            None => self.tombstone(key).await?,
            Some(_) => None,
        };
        let put = rule.decide(jwt, stored.as_deref(), tombstone.as_deref())?;
        if put == Put::Unchanged {
            return Ok(Some(put));
        }
        let revision = entry.map_or(0, |e| e.revision);
        let written = self.write(key.as_str(), jwt.clone(), revision).await?;
        Ok(written.then_some(put))
    }

    async fn tombstone(&self, key: &AccountKey) -> Result<Option<Bytes>, StoreError> {
        let entry = self.entry(&format!("{TOMBSTONE_PREFIX}{key}")).await?;
        Ok(entry.and_then(|e| e.value))
    }

    async fn delete_once(
        &self,
        key: &AccountKey,
        request: &Bytes,
    ) -> Result<Option<bool>, StoreError> {
        let kv = self.kv()?;
        let tombstone_key = format!("{TOMBSTONE_PREFIX}{key}");
        let entry = self.entry(key.as_str()).await?;
        match entry {
            Some(Entry {
                value: Some(value),
                revision,
            }) => {
                // The tombstone first: a put that sees the delete marker then finds it.
                kv.put(&tombstone_key, value)
                    .await
                    .map_err(|e| unavailable(&format!("writing {tombstone_key}"), e))?;
                match kv
                    .delete_expect_revision(key.as_str(), Some(revision))
                    .await
                {
                    Ok(()) => Ok(Some(true)),
                    Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(None),
                    Err(e) => Err(unavailable(&format!("deleting {key}"), e)),
                }
            }
            _ => {
                // Nothing stored: the first tombstone stays, else the request becomes it.
                if self.tombstone(key).await?.is_none()
                    && !self.write(&tombstone_key, request.clone(), 0).await?
                {
                    return Ok(None);
                }
                Ok(Some(false))
            }
        }
    }

    /// Calls `changed` with the key of every account entry written or deleted from now on
    /// (by any instance) and the JWT now stored (`None` once deleted), and `reset` each time
    /// the watch starts (the first time and after it
    /// broke, when changes may have been missed): what was cached before must be dropped.
    /// Until the watch runs, [`AccountStore::check`] reports the store unusable. Runs until
    /// the store is dropped.
    pub fn watch(
        self: &Arc<Self>,
        changed: impl Fn(AccountKey, Option<Bytes>) + Send + Sync + 'static,
        reset: impl Fn() + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        self.watch.store(WATCH_STARTING, Ordering::SeqCst);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut next: Option<u64> = None;
            let mut delay = Duration::from_millis(10);
            while let Some(store) = weak.upgrade() {
                match store.start_watch(next).await {
                    Ok(mut watch) => {
                        store.watch.store(WATCH_LIVE, Ordering::SeqCst);
                        drop(store);
                        reset();
                        delay = Duration::from_millis(10);
                        while let Some(Ok(entry)) = watch.next().await {
                            next = Some(entry.revision + 1);
                            if let Ok(key) = AccountKey::parse(&entry.key) {
                                let stored =
                                    (entry.operation == kv::Operation::Put).then_some(entry.value);
                                changed(key, stored);
                            }
                        }
                        tracing::warn!(
                            "the watch of the JetStream bucket broke: starting it again"
                        );
                        if let Some(store) = weak.upgrade() {
                            store.watch.store(WATCH_STARTING, Ordering::SeqCst);
                        }
                    }
                    Err(e) => {
                        drop(store);
                        tracing::debug!("cannot watch the JetStream bucket yet: {e}");
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        })
    }

    /// A watch of every key from revision `next` (from now on when `None`).
    async fn start_watch(&self, next: Option<u64>) -> Result<kv::Watch, StoreError> {
        let kv = self.kv()?;
        match next {
            Some(revision) => kv.watch_all_from_revision(revision).await,
            None => kv.watch_all().await,
        }
        .map_err(|e| unavailable("watching the bucket", e))
    }
}

/// Opens (or creates) the bucket of `store`, retrying until it works or the store is dropped.
async fn open_bucket(store: std::sync::Weak<KvStore>, config: JetStreamConfig) {
    let mut delay = Duration::from_millis(100);
    while let Some(store) = store.upgrade() {
        let mut js = jetstream::new(store.client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        match bucket(&js, &config).await {
            Ok(kv) => {
                let _ = store.kv.set(kv);
                tracing::info!("JetStream bucket {} is open", store.bucket);
                return;
            }
            Err(why) => {
                tracing::warn!("cannot open JetStream bucket {}: {why}", store.bucket);
                *store.opening.lock().unwrap_or_else(|e| e.into_inner()) = why;
            }
        }
        drop(store);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Opens the configured bucket, creating it when missing; warns when its settings differ.
async fn bucket(js: &jetstream::Context, config: &JetStreamConfig) -> Result<kv::Store, String> {
    match js.get_key_value(&config.bucket).await {
        Ok(store) => {
            let have = &store.stream.cached_info().config;
            if have.num_replicas != config.replicas
                || have.max_messages_per_subject != config.history
            {
                tracing::warn!(
                    "JetStream bucket {} has replicas {} and history {} (configured: {} and {}): using it as it is",
                    config.bucket,
                    have.num_replicas,
                    have.max_messages_per_subject,
                    config.replicas,
                    config.history
                );
            }
            Ok(store)
        }
        Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => {
            tracing::info!(
                "creating JetStream bucket {} (replicas {}, history {})",
                config.bucket,
                config.replicas,
                config.history
            );
            create_bucket(js, config).await?;
            js.get_key_value(&config.bucket)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Creates the bucket's stream the way the KV API does (async-nats' own bucket creation asks
/// for account information first, whose reply from nats-server 2.9 it cannot read).
async fn create_bucket(js: &jetstream::Context, config: &JetStreamConfig) -> Result<(), String> {
    use jetstream::stream::{Config, DiscardPolicy, StorageType};
    js.create_stream(Config {
        name: format!("KV_{}", config.bucket),
        description: Some("account JWTs of nats-account-server".into()),
        subjects: vec![format!("$KV.{}.>", config.bucket)],
        max_messages_per_subject: config.history,
        max_message_size: -1,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: config.replicas,
        discard: DiscardPolicy::New,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Connection options: credentials, user and password, TLS; connecting in the background.
async fn options(config: &JetStreamConfig) -> Result<async_nats::ConnectOptions, StoreError> {
    let mut opts = match &config.user_credentials {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|e| StoreError::Io {
                action: "reading",
                path: path.display().to_string(),
                source: e,
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        opts = opts.user_and_password(user.clone(), password.clone());
    }
    Ok(crate::tls::nats_client(opts, &config.tls)
        .name("nats-account-server-store")
        .retry_on_initial_connect()
        .max_reconnects(None)
        // Another node is usually up: try it soon (async-nats' default backoff grows to 4 s).
        .reconnect_delay_callback(|attempt| Duration::from_millis(50 * attempt.min(10) as u64))
        .request_timeout(Some(REQUEST_TIMEOUT)))
}

impl AccountStore for KvStore {
    fn load<'a>(&'a self, key: &'a AccountKey) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { Ok(self.entry(key.as_str()).await?.and_then(|e| e.value)) })
    }

    fn put<'a>(&'a self, key: &'a AccountKey, jwt: Bytes, rule: &'a WriteRule) -> PutFuture<'a> {
        Box::pin(async move {
            for _ in 0..MAX_ATTEMPTS {
                if let Some(put) = self.put_once(key, &jwt, rule).await? {
                    return Ok(put);
                }
            }
            Err(StoreError::Unavailable(format!(
                "{key}: {MAX_ATTEMPTS} concurrent writes came first; try again"
            ))
            .into())
        })
    }

    fn delete<'a>(&'a self, key: &'a AccountKey, request: Bytes) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            for _ in 0..MAX_ATTEMPTS {
                if let Some(existed) = self.delete_once(key, &request).await? {
                    return Ok(existed);
                }
            }
            Err(StoreError::Unavailable(format!(
                "{key}: {MAX_ATTEMPTS} concurrent writes came first; try again"
            )))
        })
    }

    fn keys(&self) -> StoreFuture<'_, Vec<AccountKey>> {
        Box::pin(async move {
            let kv = self.kv()?;
            let mut names = kv
                .keys()
                .await
                .map_err(|e| unavailable("listing keys", e))?;
            let mut keys = Vec::new();
            while let Some(name) = names.next().await {
                let name = name.map_err(|e| unavailable("listing keys", e))?;
                keys.extend(AccountKey::parse(&name).ok());
            }
            keys.sort();
            Ok(keys)
        })
    }

    fn count(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move { Ok(self.keys().await?.len()) })
    }

    fn describe(&self) -> String {
        format!("JetStream KV bucket {} at {}", self.bucket, self.servers)
    }

    fn check(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let kv = self.kv()?;
            if self.client.connection_state() != async_nats::connection::State::Connected {
                return Err(StoreError::Unavailable(format!(
                    "not connected to JetStream at {}",
                    self.servers
                )));
            }
            if self.watch.load(Ordering::SeqCst) == WATCH_STARTING {
                return Err(StoreError::Unavailable(format!(
                    "the changes of JetStream bucket {} are not watched yet",
                    self.bucket
                )));
            }
            let mut stream = kv.stream.clone();
            stream
                .info()
                .await
                .map_err(|e| unavailable(&format!("JetStream bucket {}", self.bucket), e))?;
            Ok(())
        })
    }
}
