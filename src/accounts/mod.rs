//! The account service: the one place that reads account JWTs for serving and decides, stores
//! and (later) announces new ones. HTTP POSTs, NATS updates, replica syncs and watched files
//! all go through [`Accounts::submit`], so the rules live here once. The operations of the
//! NATS resolver protocol (delete, list, pack, merge, rollback repair) are in [`resolver`].

mod pack;
pub use pack::{PackChunks, PACK_CHUNK};
pub mod resolver;
mod throttle;

pub use crate::store::stored::{etag_of, StoredJwt};

use std::sync::Arc;

use bytes::Bytes;

use crate::jwt::Token;
use crate::keys::AccountKey;
use crate::notify::Notifier;
use crate::store::{AccountStore, Mode, Put, PutError, Refusal, StoreError, WriteRule};
use crate::trust::{Rejection, Trust};

/// GET `?notify=true` announces one account at most this often.
pub const NOTIFY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a submitted JWT was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The JWT is not acceptable (HTTP 400).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// An older JWT than the stored one, one for a deleted account, or (merges) one that is
    /// not newer (HTTP 409); nothing was changed.
    #[error(transparent)]
    Conflict(#[from] Refusal),
    /// This server does not take POSTs (HTTP 405): read-only store or replica.
    #[error("{0}")]
    Refused(String),
    /// The signing service answered with something else than a JWT (HTTP 202 with its text).
    #[error("accepted by the signing service: {0}")]
    Accepted(String),
    /// The signing service could not be asked (HTTP 503/504/502).
    #[error("Failure during signature request: {0}")]
    Signing(crate::notify::RequestError),
    /// The store failed (HTTP 500); nothing was changed.
    #[error("error saving JWT: {0}")]
    Store(#[from] StoreError),
}

/// Why a JWT could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The store failed.
    #[error("error loading JWT: {0}")]
    Store(#[from] StoreError),
}

/// Where a served JWT came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The store.
    Store,
    /// `systemaccountjwtpath` (the store has no JWT for the system account).
    SystemAccountFile,
    /// Fetched from the primary (replica mode) and cached.
    Primary,
}

/// The outcome of a successful submit.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The stored token.
    pub token: Token,
    /// `false` when the very same bytes were already stored (nothing was written).
    pub changed: bool,
}

/// Reads, checks and stores account JWTs.
pub struct Accounts {
    trust: Arc<Trust>,
    store: Arc<dyn AccountStore>,
    notifier: Notifier,
    policy: Policy,
    cache: Option<crate::cache::JwtCache>,
    repairs: Arc<resolver::Repairs>,
    notifies: throttle::Throttle,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where a replica fetches the accounts it does not have (the primary, see `replica`).
pub trait Upstream: Send + Sync + std::fmt::Debug {
    /// The upstream's JWT for `key`, if it has one.
    fn fetch<'a>(
        &'a self,
        key: &'a AccountKey,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<u8>>> + Send + 'a>>;
}

/// How this server treats writes and reads, decided by the store mode and the config.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    /// Check every JWT read from the store before serving it (read-only and NSC stores, whose
    /// files are edited by hand): files that do not hold a valid, trusted JWT are not served.
    pub verify_reads: bool,
    /// POSTs are refused with this reason (read-only store, replica).
    pub refuse_posts: Option<String>,
    /// Operator-signed deletes are accepted (`store.allowdelete`).
    pub allow_delete: bool,
    /// The signing service: NATS subject and timeout (`signrequestsubject`).
    pub signing: Option<(String, std::time::Duration)>,
    /// The primary to fetch unknown accounts from (replica mode).
    pub primary: Option<Arc<dyn Upstream>>,
    /// Most JWTs in one pack (`maxreplicationpack`).
    pub pack_limit: usize,
    /// Bytes of hot JWTs kept in memory (0 = no cache). Only for stores whose files are
    /// watched, so that every change reaches the cache.
    pub cache_bytes: usize,
}

impl Accounts {
    /// A service over `store`, trusting what `trust` trusts, announcing changes through
    /// `notifier`.
    pub fn new(trust: Arc<Trust>, store: Arc<dyn AccountStore>, notifier: Notifier) -> Self {
        let policy = Policy {
            pack_limit: 10_000,
            cache_bytes: 0,
            ..Policy::default()
        };
        Self::with_policy(trust, store, notifier, policy)
    }

    /// A service with a non-default [`Policy`].
    pub fn with_policy(
        trust: Arc<Trust>,
        store: Arc<dyn AccountStore>,
        notifier: Notifier,
        policy: Policy,
    ) -> Self {
        Accounts {
            trust,
            store,
            notifier,
            cache: (policy.cache_bytes > 0)
                .then(|| crate::cache::JwtCache::new(policy.cache_bytes)),
            policy,
            repairs: Arc::default(),
            notifies: throttle::Throttle::new(NOTIFY_EVERY),
        }
    }

    /// The trust anchor.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AccountStore> {
        &self.store
    }

    /// The notifier.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Most JWTs one pack may hold.
    pub fn pack_limit(&self) -> usize {
        self.policy.pack_limit
    }

    /// The JWT to serve for `key`: the stored one (checked first when the policy says so), else
    /// the configured system account JWT when `key` is the system account (also when the file's
    /// JWT is newer than the stored one), else (replica) the primary's, else `None`.
    pub async fn lookup(
        &self,
        key: &AccountKey,
    ) -> Result<Option<(StoredJwt, Source)>, LookupError> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(key)) {
            return Ok(Some((hit, Source::Store)));
        }
        let epoch = self.cache.as_ref().map(|c| c.epoch(key));
        let sys = self.trust.system_account().filter(|sys| &sys.key == key);
        if let Some(bytes) = self.store.load(key).await? {
            if !self.policy.verify_reads || self.readable(key, &bytes) {
                let jwt = StoredJwt::inspect(bytes);
                if sys.is_none_or(|sys| jwt.iat >= sys.iat) {
                    if let (Some(cache), Some(epoch)) = (&self.cache, epoch) {
                        cache.put(key, &jwt, epoch);
                    }
                    return Ok(Some((jwt, Source::Store)));
                }
            }
        }
        if let Some(sys) = sys {
            return Ok(Some((
                StoredJwt::inspect(Bytes::from(sys.jwt.clone())),
                Source::SystemAccountFile,
            )));
        }
        if let Some(primary) = &self.policy.primary {
            if let Some(jwt) = primary.fetch(key).await {
                match self.store_checked(key, &jwt, Mode::Replace).await {
                    Ok(done) => {
                        tracing::info!("cached {} from the primary", key.short());
                        return Ok(Some((
                            StoredJwt::inspect(Bytes::from(done.token.raw)),
                            Source::Primary,
                        )));
                    }
                    Err(e) => {
                        tracing::warn!("not serving the primary's JWT for {}: {e}", key.short())
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether a JWT read from a hand-edited store may be served.
    fn readable(&self, key: &AccountKey, bytes: &[u8]) -> bool {
        let text = String::from_utf8_lossy(bytes);
        match self.trust.check_account(key, text.trim(), unix_now()) {
            Ok(_) => true,
            Err(why) => {
                tracing::warn!("not serving the stored JWT of {}: {why}", key.short());
                false
            }
        }
    }

    /// Checks `body` as a JWT for `key`, stores it durably and notifies nats-servers.
    /// Surrounding whitespace is trimmed; the token itself is stored byte for byte. A
    /// self-signed JWT goes to the signing service when one is configured.
    pub async fn submit(&self, key: &AccountKey, body: &[u8]) -> Result<Submitted, SubmitError> {
        if let Some(why) = &self.policy.refuse_posts {
            return Err(SubmitError::Refused(why.clone()));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| Rejection::NotText)?
            .trim();
        let done = match (
            self.trust.check_account(key, text, unix_now()),
            &self.policy.signing,
        ) {
            (Err(Rejection::SelfSigned(_)), Some((subject, timeout))) => {
                self.sign_and_store(key, text, subject, *timeout).await?
            }
            (checked, _) => {
                let (token, _) = checked?;
                self.store_token(key, token, Mode::Replace).await?
            }
        };
        self.notifier
            .account_updated(key, Bytes::from(done.token.raw.clone()));
        Ok(done)
    }

    /// Sends a self-signed JWT to the signing service; a signed JWT in the reply is stored
    /// like any POST, any other reply is handed back (HTTP 202).
    async fn sign_and_store(
        &self,
        key: &AccountKey,
        text: &str,
        subject: &str,
        timeout: std::time::Duration,
    ) -> Result<Submitted, SubmitError> {
        let reply = self
            .notifier
            .request(subject, Bytes::from(text.to_string()), timeout)
            .await
            .map_err(SubmitError::Signing)?;
        let reply_text = String::from_utf8_lossy(&reply).into_owned();
        let signed = reply_text.trim();
        if crate::jwt::decode_account(signed).is_err() {
            tracing::info!("{} initiated the JWT signing process", key.short());
            return Err(SubmitError::Accepted(reply_text));
        }
        tracing::info!("{} JWT signed by the signing service", key.short());
        self.store_checked(key, signed.as_bytes(), Mode::Replace)
            .await
    }

    /// Like [`Accounts::submit`] for an update that arrived over NATS (or from the primary):
    /// the nats-servers got it already, so nothing is re-published.
    pub async fn submit_from_nats(
        &self,
        key: &AccountKey,
        body: &[u8],
    ) -> Result<Submitted, SubmitError> {
        self.store_checked(key, body, Mode::Replace).await
    }

    /// Sends the stored JWT of `key` to nats-servers again (GET `?notify=true`), at most once
    /// per [`NOTIFY_EVERY`] per account: unauthenticated GETs cannot flood NATS. Returns
    /// whether it was sent.
    pub fn notify_again(&self, key: &AccountKey, jwt: Bytes) -> bool {
        let send = self.may_notify_again(key.as_str());
        if send {
            self.notifier.account_updated(key, jwt);
        }
        send
    }

    /// The account or activation `key` may be announced again now (at most once per
    /// [`NOTIFY_EVERY`] per key).
    pub fn may_notify_again(&self, key: &str) -> bool {
        self.notifies.allow(key)
    }

    /// Drops `key` from the in-memory cache (its file changed).
    pub fn forget(&self, key: &AccountKey) {
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
    }

    /// The store now holds `stored` for `key` (`None`: nothing), as a watch of a shared store
    /// reports it: a cached JWT that differs is dropped. The echo of a write of this instance
    /// keeps the entry the write or a GET cached since.
    pub fn stored_now(&self, key: &AccountKey, stored: Option<&[u8]>) {
        let Some(cache) = &self.cache else {
            return;
        };
        let same = cache
            .get(key)
            .is_some_and(|cached| Some(cached.bytes.as_ref()) == stored);
        if !same {
            cache.invalidate(key);
        }
    }

    /// Drops every cached JWT (changes may have been missed).
    pub fn forget_all(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// Handles an account file that changed in a watched read-only store: when it holds a
    /// valid, trusted JWT for the account its name says, nats-servers are told. Returns `true`
    /// when a notification was queued.
    pub fn file_changed(&self, path: &std::path::Path, bytes: &[u8]) -> bool {
        if let Some(key) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| AccountKey::parse(s).ok())
        {
            self.forget(&key);
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        let sub = match crate::jwt::decode_account(text) {
            Ok((token, _)) => token.claims.sub,
            Err(e) => {
                tracing::warn!("changed file {} is not an account JWT: {e}", path.display());
                return false;
            }
        };
        let Ok(key) = AccountKey::parse(&sub) else {
            return false;
        };
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if AccountKey::parse(stem).is_ok() && stem != key.as_str() {
            tracing::warn!(
                "changed file {} holds the JWT of another account ({})",
                path.display(),
                key.short()
            );
            return false;
        }
        if let Err(why) = self.trust.check_account(&key, text, unix_now()) {
            tracing::warn!("changed file {} is not served: {why}", path.display());
            return false;
        }
        tracing::info!("file change for {}: notifying nats-servers", key.short());
        self.notifier
            .account_updated(&key, Bytes::from(text.to_string()));
        true
    }

    /// The common path: check trust and validity, then store with the replace rule `mode`.
    async fn store_checked(
        &self,
        key: &AccountKey,
        body: &[u8],
        mode: Mode,
    ) -> Result<Submitted, SubmitError> {
        let text = std::str::from_utf8(body).map_err(|_| Rejection::NotText)?;
        let (token, _claims) = self.trust.check_account(key, text.trim(), unix_now())?;
        self.store_token(key, token, mode).await
    }

    /// Stores a checked token with the store's conditional put, which refuses rollbacks
    /// atomically. The JWT to compare with is the stored one, when it would still be accepted
    /// today (see [`Trust::rollback_floor`]), and for the system account also
    /// `systemaccountjwtpath`. A deleted account comes back only with a JWT issued after the
    /// deleted one.
    async fn store_token(
        &self,
        key: &AccountKey,
        token: Token,
        mode: Mode,
    ) -> Result<Submitted, SubmitError> {
        let (trust, owned) = (self.trust.clone(), key.clone());
        let rule = WriteRule {
            posted_iat: token.claims.iat,
            mode,
            floor: self
                .trust
                .system_account()
                .filter(|sys| &sys.key == key)
                .map(|sys| sys.iat),
            stored_floor: Arc::new(move |stored| trust.rollback_floor(&owned, stored, unix_now())),
        };
        let jwt = Bytes::from(token.raw.clone());
        let put = self.store.put(key, jwt, &rule).await.map_err(|e| match e {
            PutError::Refused(why) => SubmitError::Conflict(why),
            PutError::Store(e) => SubmitError::Store(e),
        })?;
        if put == (Put::Written { created: true }) {
            metrics::gauge!(crate::metrics::STORE_JWTS).increment(1.0);
        }
        let changed = put != Put::Unchanged;
        if changed {
            self.forget(key);
        }
        Ok(Submitted { token, changed })
    }
}

#[cfg(test)]
mod tests;
