//! The stores a configuration asks for: the account store (JetStream KV bucket, directory,
//! nsc folder or memory) behind the account-store contract, and the activation store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::StartError;
use crate::config::{Config, JetStreamConfig, StoreConfig};
use crate::keys::{AccountKey, ActivationId};
use crate::store::dir::{Modes, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE};
use crate::store::{
    AccountStore, Blocking, DirStore, JwtStore, KvStore, MemoryStore, NscStore, WithFallback,
};

/// The stores chosen by the config: account JWTs and activation tokens.
pub(crate) struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub activations: Arc<dyn JwtStore<ActivationId>>,
    /// A folder to watch for hand edits (read-only and nsc modes: announced).
    pub watch: Option<PathBuf>,
    /// A directory whose files are named by key: its hot JWTs may be cached in memory, with
    /// a watch keeping the cache in step.
    pub cacheable: Option<PathBuf>,
    /// The JetStream KV store, whose watch keeps the cache in step.
    pub kv: Option<Arc<KvStore>>,
}

/// The activation store `main`, also reading the tokens the Go v0.8 server wrote into the
/// account store `dir` (`<dir>/==/<hash>.jwt` when sharded: the last two characters of a hash
/// id are `==`; `<dir>/<hash>.jwt` when flat). New tokens go to `main` only.
fn with_v08_activations(
    main: Arc<dyn JwtStore<ActivationId>>,
    dir: &Path,
    shard: bool,
) -> Arc<dyn JwtStore<ActivationId>> {
    let old = if shard {
        dir.join("==")
    } else {
        dir.to_path_buf()
    };
    match DirStore::<ActivationId>::open_read_only(&old, false) {
        Ok(old) => Arc::new(WithFallback::new(main, Arc::new(old))),
        Err(_) => main,
    }
}

/// Opens the configured stores: JetStream bucket, nsc folder, read-only or writable
/// directory, or memory. Background work reports only while `live` is set.
pub(crate) async fn open(config: &Config, live: &Arc<AtomicBool>) -> Result<Stores, StartError> {
    let s = &config.store;
    if let Some(js) = &s.jetstream {
        return jetstream(config, js).await;
    }
    if s.dir.is_some() && s.nsc.is_some() {
        tracing::warn!("both store.dir and store.nsc are set: using store.dir (as the Go server)");
    }
    let stores = match (&s.dir, &s.nsc) {
        (Some(dir), _) if s.readonly => Stores {
            accounts: blocking(DirStore::<AccountKey>::open_read_only(dir, s.shard)?),
            activations: with_v08_activations(
                match DirStore::<ActivationId>::open_read_only(&dir.join("activations"), false) {
                    Ok(store) => Arc::new(store),
                    Err(_) => Arc::new(MemoryStore::<ActivationId>::default()),
                },
                dir,
                s.shard,
            ),
            watch: Some(dir.clone()),
            cacheable: Some(dir.clone()),
            kv: None,
        },
        (Some(dir), _) => {
            let modes = modes(s);
            let store = DirStore::open_with_modes(dir, s.shard, modes)?;
            let store = Arc::new(store.with_group_commit(s.group_commit));
            let (sweeper, live) = (store.clone(), live.clone());
            tokio::task::spawn_blocking(move || {
                let swept = sweeper.sweep_temp_files();
                match swept {
                    _ if !live.load(Ordering::SeqCst) => {}
                    Ok(n) => tracing::info!("store check done: removed {n} leftover temp file(s)"),
                    Err(e) => tracing::warn!("could not sweep leftover temp files: {e}"),
                }
            });
            Stores {
                accounts: Arc::new(Blocking::new(store)),
                activations: with_v08_activations(
                    Arc::new(DirStore::<ActivationId>::open_deferred(
                        &dir.join("activations"),
                        false,
                        modes,
                    )),
                    dir,
                    s.shard,
                ),
                watch: None,
                cacheable: Some(dir.clone()),
                kv: None,
            }
        }
        (None, Some(nsc)) => Stores {
            accounts: blocking(NscStore::open(nsc)?),
            activations: Arc::new(MemoryStore::<ActivationId>::default()),
            watch: Some(nsc.clone()),
            cacheable: None,
            kv: None,
        },
        (None, None) => Stores {
            accounts: blocking(MemoryStore::<AccountKey>::default()),
            activations: Arc::new(MemoryStore::<ActivationId>::default()),
            watch: None,
            cacheable: None,
            kv: None,
        },
    };

    if stores.accounts.is_read_only() {
        tracing::info!("the store is read-only: POSTs are refused, changed files are announced");
    }
    Ok(announced(config, stores))
}

/// Logs the store and counts its JWTs for the metrics (off the start path: it lists them).
fn announced(config: &Config, stores: Stores) -> Stores {
    tracing::info!("creating a store: {}", stores.accounts.describe());
    if config.http.metrics {
        let counted = stores.accounts.clone();
        tokio::spawn(async move {
            if let Ok(count) = counted.count().await {
                metrics::gauge!(crate::metrics::STORE_JWTS).set(count as f64);
            }
        });
    }
    stores
}

/// The file and folder modes of `store.filemode` and `store.dirmode`.
fn modes(s: &StoreConfig) -> Modes {
    Modes {
        file: s.file_mode.unwrap_or(DEFAULT_FILE_MODE),
        dir: s.dir_mode.unwrap_or(DEFAULT_DIR_MODE),
    }
}

/// A blocking store behind the account-store contract.
fn blocking(store: impl JwtStore) -> Arc<dyn AccountStore> {
    Arc::new(Blocking::new(Arc::new(store)))
}

/// The JetStream KV store for accounts; activations go to `store.dir` when set, else memory.
async fn jetstream(config: &Config, js: &JetStreamConfig) -> Result<Stores, StartError> {
    let s = &config.store;
    if s.nsc.is_some() || s.readonly {
        return Err(StartError::Conflict(
            "store.jetstream cannot be combined with store.nsc or store.readonly".into(),
        ));
    }
    let kv = KvStore::open(js).await?;
    let activations: Arc<dyn JwtStore<ActivationId>> = match &s.dir {
        Some(dir) => {
            let modes = modes(s);
            Arc::new(DirStore::<ActivationId>::open_deferred(
                &dir.join("activations"),
                false,
                modes,
            ))
        }
        None => {
            tracing::warn!(
                "store.jetstream without store.dir: activation tokens are kept in memory only"
            );
            Arc::new(MemoryStore::<ActivationId>::default())
        }
    };
    Ok(announced(
        config,
        Stores {
            accounts: kv.clone(),
            activations,
            watch: None,
            cacheable: None,
            kv: Some(kv),
        },
    ))
}
