//! `nats-account-server migrate`: copies every account JWT of a folder (a store directory,
//! flat or sharded, or an nsc operator folder) into the store of a config file, through the
//! rules of a push: each JWT is checked against the operator, and a newer stored JWT or a
//! deletion is never undone. Reports progress while it runs and a summary at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::accounts::{Accounts, SubmitError};
use crate::config::Config;
use crate::keys::AccountKey;
use crate::notify::Notifier;
use crate::server::{load_trust, StartError};
use crate::store::{AccountStore, Blocking, DirStore, JwtStore, NscStore, Refusal, StoreError};

/// JWTs copied at once (the KV store's round trips overlap).
const PARALLEL: usize = 16;
/// How long the destination may take to become usable.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a migration could not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The source folder cannot be read.
    #[error("cannot read {path}: {source}")]
    Source {
        /// The folder.
        path: String,
        /// Why.
        source: StoreError,
    },
    /// The destination store or the trust could not be set up.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The destination store did not become usable.
    #[error("the destination store is not usable: {0}")]
    Destination(StoreError),
}

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// JWTs found in the source.
    pub total: usize,
    /// Stored (new, or newer than the stored one).
    pub copied: usize,
    /// The very same JWT was stored already.
    pub unchanged: usize,
    /// Refused by the rules, by reason: the accounts.
    pub refused: BTreeMap<String, Vec<AccountKey>>,
    /// The store failed, by reason: the accounts (they can be migrated again).
    pub failed: BTreeMap<String, Vec<AccountKey>>,
}

impl Summary {
    /// Accounts refused.
    pub fn refused_count(&self) -> usize {
        self.refused.values().map(Vec::len).sum()
    }

    /// Accounts whose copy failed.
    pub fn failed_count(&self) -> usize {
        self.failed.values().map(Vec::len).sum()
    }

    fn done(&self) -> usize {
        self.copied + self.unchanged + self.refused_count() + self.failed_count()
    }

    /// The summary as printed: one line of counts, then one line per reason.
    pub fn report(&self, from: &Path, into: &str) -> String {
        let mut out = format!(
            "migrated {} account JWT(s) from {} into {into}: {} copied, {} unchanged, {} refused, {} failed\n",
            self.total,
            from.display(),
            self.copied,
            self.unchanged,
            self.refused_count(),
            self.failed_count()
        );
        for (what, list) in [("refused", &self.refused), ("failed", &self.failed)] {
            for (why, keys) in list {
                let shown: Vec<&str> = keys.iter().take(5).map(AccountKey::as_str).collect();
                let more = keys.len().saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "{what} {}: {why}: {}{more}\n",
                    keys.len(),
                    shown.join(", ")
                ));
            }
        }
        out
    }
}

/// The source folder as a store: nsc when it holds nsc's `.nsc` file, else a directory, flat
/// when JWT files sit in it, sharded otherwise.
pub fn open_source(from: &Path) -> Result<Arc<dyn JwtStore>, MigrateError> {
    let error = |source| MigrateError::Source {
        path: from.display().to_string(),
        source,
    };
    if from.join(".nsc").is_file() {
        return Ok(Arc::new(NscStore::open(from).map_err(error)?));
    }
    let entries = std::fs::read_dir(from).map_err(|e| {
        error(StoreError::Io {
            action: "listing",
            path: from.display().to_string(),
            source: e,
        })
    })?;
    let flat = entries
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".jwt"));
    Ok(Arc::new(
        DirStore::<AccountKey>::open_read_only(from, !flat).map_err(error)?,
    ))
}

/// Copies every JWT of `from` into the store of `config`; `progress` is called with the
/// running summary after each JWT.
pub async fn run(
    from: &Path,
    config: &Config,
    progress: impl Fn(&Summary) + Send + Sync,
) -> Result<(Summary, String), MigrateError> {
    let source = Blocking::new(open_source(from)?);
    let live = Arc::new(AtomicBool::new(true));
    let stores = crate::server::stores::open(config, &live).await?;
    let into = stores.accounts.describe();
    wait_usable(stores.accounts.as_ref()).await?;
    let trust = Arc::new(load_trust(config)?);
    let accounts = Accounts::new(trust, stores.accounts.clone(), Notifier::disabled());
    let keys = source.keys().await.map_err(|e| MigrateError::Source {
        path: from.display().to_string(),
        source: e,
    })?;
    let summary = Mutex::new(Summary {
        total: keys.len(),
        ..Summary::default()
    });
    let copies = futures_util::stream::iter(keys).map(|key| {
        let (source, accounts, summary, progress) = (&source, &accounts, &summary, &progress);
        async move {
            let outcome = match source.load(&key).await {
                Ok(Some(jwt)) => accounts.submit_from_nats(&key, &jwt).await,
                Ok(None) => Err(SubmitError::Store(StoreError::Io {
                    action: "reading",
                    path: key.to_string(),
                    source: std::io::ErrorKind::NotFound.into(),
                })),
                Err(e) => Err(SubmitError::Store(e)),
            };
            let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
            tally(&mut s, key, outcome);
            progress(&s);
        }
    });
    copies.buffer_unordered(PARALLEL).collect::<Vec<()>>().await;
    live.store(false, Ordering::SeqCst);
    let summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok((summary, into))
}

/// Waits until `store` says it is usable (a JetStream bucket opens in the background).
async fn wait_usable(store: &dyn AccountStore) -> Result<(), MigrateError> {
    let deadline = Instant::now() + OPEN_TIMEOUT;
    loop {
        match store.check().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(MigrateError::Destination(e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Counts one outcome.
fn tally(
    s: &mut Summary,
    key: AccountKey,
    outcome: Result<crate::accounts::Submitted, SubmitError>,
) {
    let reason = match outcome {
        Ok(done) if done.changed => return s.copied += 1,
        Ok(_) => return s.unchanged += 1,
        Err(SubmitError::Conflict(r)) => match r {
            Refusal::Older { .. } | Refusal::NotNewer { .. } => {
                "a newer JWT is stored already".to_string()
            }
            Refusal::Deleted { .. } => "the account was deleted after this JWT was issued".into(),
        },
        Err(SubmitError::Rejected(why)) => why.to_string(),
        Err(e) => {
            s.failed.entry(e.to_string()).or_default().push(key);
            return;
        }
    };
    s.refused.entry(reason).or_default().push(key);
}

/// A progress line for a terminal: `\r` and the counts so far (every 1 % or so).
pub fn progress_line(s: &Summary) -> Option<String> {
    let done = s.done();
    let step = (s.total / 100).max(1);
    if !done.is_multiple_of(step) && done != s.total {
        return None;
    }
    let width = 30;
    let filled = (done * width).checked_div(s.total).unwrap_or(width);
    Some(format!(
        "\r[{}{}] {done}/{} copied {} unchanged {} refused {} failed {}",
        "#".repeat(filled),
        " ".repeat(width - filled),
        s.total,
        s.copied,
        s.unchanged,
        s.refused_count(),
        s.failed_count()
    ))
}
