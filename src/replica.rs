//! Replica mode (`primary: http://...`): load the primary's pack at start, fetch accounts the
//! replica does not have on demand, and re-sync periodically to catch notifications it missed.
//! Everything taken from the primary goes through the same checks as a POST (trusted by our
//! operator, not expired, not older than what we have).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::accounts::{Accounts, Upstream};
use crate::keys::AccountKey;
use crate::store::stored::parse_pack_line;

/// Talks to the primary account server.
#[derive(Debug)]
pub struct Primary {
    base: String,
    client: reqwest::Client,
    max_pack: i64,
    /// Keys the primary did not have, and when it said so: not asked again for [`MISS_TTL`].
    misses: Mutex<HashMap<AccountKey, Instant>>,
    /// Bounds the lookups in flight at the primary.
    in_flight: tokio::sync::Semaphore,
}

/// How long a key the primary did not have is answered as unknown without asking again.
pub const MISS_TTL: Duration = Duration::from_secs(2);
/// Misses remembered at most (older ones are dropped first, then all).
const MAX_MISSES: usize = 10_000;
/// Lookups at the primary in flight at once.
const MAX_IN_FLIGHT: usize = 8;

impl Primary {
    /// A client for the primary at `url` (`http(s)://host:port[/]`), with the replication
    /// timeout and pack size of the config.
    pub fn new(url: &str, timeout: Duration, max_pack: i64) -> Result<Self, String> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for the primary: {e}"))?;
        Ok(Primary {
            base: url.trim_end_matches('/').to_string(),
            client,
            max_pack,
            misses: Mutex::new(HashMap::new()),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// The primary's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The primary's JWT for `key`, if it has one. A key the primary did not have is not
    /// asked for again within [`MISS_TTL`], and at most [`MAX_IN_FLIGHT`] lookups run at once,
    /// so GETs of unknown keys cannot turn into a flood of requests to the primary.
    pub async fn fetch(&self, key: &AccountKey) -> Option<Vec<u8>> {
        if self.recently_missed(key) {
            return None;
        }
        let _permit = self.in_flight.acquire().await.ok()?;
        if self.recently_missed(key) {
            return None;
        }
        let url = format!("{}/jwt/v1/accounts/{key}", self.base);
        match self.client.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => resp.bytes().await.ok().map(|b| b.to_vec()),
            Ok(resp) => {
                tracing::debug!("primary answered {} for {}", resp.status(), key.short());
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    self.remember_miss(key);
                }
                None
            }
            Err(e) => {
                tracing::warn!("cannot reach the primary {}: {e}", self.base);
                None
            }
        }
    }

    fn lock_misses(&self) -> std::sync::MutexGuard<'_, HashMap<AccountKey, Instant>> {
        self.misses.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recently_missed(&self, key: &AccountKey) -> bool {
        self.lock_misses()
            .get(key)
            .is_some_and(|at| at.elapsed() < MISS_TTL)
    }

    fn remember_miss(&self, key: &AccountKey) {
        let mut misses = self.lock_misses();
        if misses.len() >= MAX_MISSES {
            misses.retain(|_, at| at.elapsed() < MISS_TTL);
            if misses.len() >= MAX_MISSES {
                misses.clear();
            }
        }
        misses.insert(key.clone(), Instant::now());
    }

    /// The primary's pack (`key|jwt` lines), at most `maxreplicationpack` JWTs.
    async fn pack(&self) -> Result<String, String> {
        let url = format!("{}/jwt/v1/pack?max={}", self.base, self.max_pack.max(0));
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("the primary answered {}", resp.status()));
        }
        resp.text().await.map_err(|e| e.to_string())
    }
}

impl Upstream for Primary {
    fn fetch<'a>(
        &'a self,
        key: &'a AccountKey,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<u8>>> + Send + 'a>> {
        Box::pin(Primary::fetch(self, key))
    }
}

/// What one synchronisation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// JWTs stored (new or newer).
    pub stored: usize,
    /// JWTs already present.
    pub unchanged: usize,
    /// Lines refused (untrusted, expired, older, malformed).
    pub refused: usize,
}

/// Loads the primary's pack into `accounts`.
pub async fn sync_once(primary: &Primary, accounts: &Accounts) -> Result<SyncReport, String> {
    if primary.max_pack == 0 {
        tracing::info!("skipping JWT pack from primary, maxreplicationpack is 0");
        return Ok(SyncReport::default());
    }
    let pack = primary.pack().await?;
    let mut report = SyncReport::default();
    for line in pack.lines().filter(|l| !l.trim().is_empty()) {
        let Some((key, jwt)) = parse_pack_line(line.as_bytes()) else {
            report.refused += 1;
            continue;
        };
        match accounts.submit_from_nats(&key, &jwt).await {
            Ok(done) if done.changed => report.stored += 1,
            Ok(_) => report.unchanged += 1,
            Err(e) => {
                tracing::debug!("not taking {} from the primary: {e}", key.short());
                report.refused += 1;
            }
        }
    }
    Ok(report)
}

/// Synchronises now and then every `interval`, logging each result.
pub fn spawn_sync(
    primary: Arc<Primary>,
    accounts: Arc<Accounts>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match sync_once(&primary, &accounts).await {
                Ok(r) => tracing::info!(
                    "synchronised with primary {}: {} stored, {} unchanged, {} refused",
                    primary.url(),
                    r.stored,
                    r.unchanged,
                    r.refused
                ),
                Err(e) => tracing::warn!("cannot synchronise with primary {}: {e}", primary.url()),
            }
            tokio::time::sleep(interval).await;
        }
    })
}
