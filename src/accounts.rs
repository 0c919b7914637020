//! The account service: the one place that reads account JWTs for serving and decides, stores
//! and (later) announces new ones. HTTP POSTs, NATS updates, replica syncs and watched files
//! all go through [`Accounts::submit`], so the rules live here once.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;

use crate::jwt::Token;
use crate::keys::AccountKey;
use crate::notify::Notifier;
use crate::store::{JwtStore, StoreError};
use crate::trust::{Rejection, Trust};

/// Number of write locks; keys are spread over them by hash, so writes to one account are
/// serialised while writes to different accounts rarely wait for each other.
const LOCK_SHARDS: usize = 256;

/// Why a submitted JWT was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The JWT is not acceptable (HTTP 400).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// An account JWT with a newer `iat` is already stored (HTTP 409); nothing was changed.
    #[error("a newer JWT is already stored for this account (stored iat {stored_iat} > posted iat {posted_iat}); refusing to roll back")]
    Older {
        /// `iat` of the stored JWT.
        stored_iat: i64,
        /// `iat` of the refused JWT.
        posted_iat: i64,
    },
    /// The store failed (HTTP 500); nothing was changed.
    #[error("error saving JWT: {0}")]
    Store(#[from] StoreError),
    /// The blocking task running the store call failed.
    #[error("error saving JWT: {0}")]
    Task(String),
}

/// Why a JWT could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The store failed.
    #[error("error loading JWT: {0}")]
    Store(#[from] StoreError),
    /// The blocking task running the store call failed.
    #[error("error loading JWT: {0}")]
    Task(String),
}

/// A stored JWT with the few claims the GET path needs, read without verifying the signature
/// (it was verified when it was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJwt {
    /// The exact stored bytes.
    pub bytes: Bytes,
    /// `jti`, used as the ETag (`None` when the stored bytes do not decode).
    pub jti: Option<String>,
    /// `exp` (0 = never).
    pub exp: i64,
    /// `iat` (0 when unknown).
    pub iat: i64,
}

impl StoredJwt {
    /// Reads `jti` and `exp` from the payload segment of `bytes`.
    pub fn inspect(bytes: Bytes) -> Self {
        match peek_claims(&bytes) {
            Some(p) => StoredJwt {
                jti: Some(p.jti),
                exp: p.exp,
                iat: p.iat,
                bytes,
            },
            None => StoredJwt {
                jti: None,
                exp: 0,
                iat: 0,
                bytes,
            },
        }
    }
}

/// The claims the serving path needs.
struct Peeked {
    jti: String,
    exp: i64,
    iat: i64,
}

/// `jti`, `exp` and `iat` from a token's payload, without any signature check.
fn peek_claims(token: &[u8]) -> Option<Peeked> {
    let text = std::str::from_utf8(token).ok()?;
    let mut parts = text.trim().split('.');
    let _header = parts.next()?;
    let payload: String = parts
        .next()?
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    Some(Peeked {
        jti: value.get("jti")?.as_str()?.to_string(),
        exp: value.get("exp").and_then(|e| e.as_i64()).unwrap_or(0),
        iat: value.get("iat").and_then(|e| e.as_i64()).unwrap_or(0),
    })
}

/// Where a served JWT came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The store.
    Store,
    /// `systemaccountjwtpath` (the store has no JWT for the system account).
    SystemAccountFile,
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
    store: Arc<dyn JwtStore>,
    notifier: Notifier,
    locks: Vec<tokio::sync::Mutex<()>>,
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

impl Accounts {
    /// A service over `store`, trusting what `trust` trusts, announcing changes through
    /// `notifier`.
    pub fn new(trust: Arc<Trust>, store: Arc<dyn JwtStore>, notifier: Notifier) -> Self {
        Accounts {
            trust,
            store,
            notifier,
            locks: (0..LOCK_SHARDS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The trust anchor.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn JwtStore> {
        &self.store
    }

    /// The notifier.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    fn lock_for(&self, key: &AccountKey) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key.as_str());
        &self.locks[(hash as usize) % self.locks.len()]
    }

    async fn load_raw(&self, key: &AccountKey) -> Result<Option<Vec<u8>>, LookupError> {
        let store = self.store.clone();
        let key = key.clone();
        tokio::task::spawn_blocking(move || store.load(&key))
            .await
            .map_err(|e| LookupError::Task(e.to_string()))?
            .map_err(LookupError::from)
    }

    /// The JWT to serve for `key`: the stored one, else the configured system account JWT when
    /// `key` is the system account, else `None`.
    pub async fn lookup(
        &self,
        key: &AccountKey,
    ) -> Result<Option<(StoredJwt, Source)>, LookupError> {
        if let Some(bytes) = self.load_raw(key).await? {
            return Ok(Some((
                StoredJwt::inspect(Bytes::from(bytes)),
                Source::Store,
            )));
        }
        match self.trust.system_account() {
            Some(sys) if &sys.key == key => Ok(Some((
                StoredJwt::inspect(Bytes::from(sys.jwt.clone())),
                Source::SystemAccountFile,
            ))),
            _ => Ok(None),
        }
    }

    /// Checks `body` as a JWT for `key`, stores it durably and notifies nats-servers.
    /// Surrounding whitespace is trimmed; the token itself is stored byte for byte.
    pub async fn submit(&self, key: &AccountKey, body: &[u8]) -> Result<Submitted, SubmitError> {
        let done = self.store_checked(key, body).await?;
        self.notifier
            .account_updated(key, Bytes::from(done.token.raw.clone()));
        Ok(done)
    }

    /// Like [`Accounts::submit`] for an update that arrived over NATS: the nats-servers got it
    /// already, so nothing is re-published.
    pub async fn submit_from_nats(
        &self,
        key: &AccountKey,
        body: &[u8],
    ) -> Result<Submitted, SubmitError> {
        self.store_checked(key, body).await
    }

    /// Sends the stored JWT of `key` to nats-servers again (GET `?notify=true`).
    pub fn notify_again(&self, key: &AccountKey, jwt: Bytes) {
        self.notifier.account_updated(key, jwt);
    }

    /// The common path: check trust and validity, refuse rollbacks, write under the key's lock.
    async fn store_checked(&self, key: &AccountKey, body: &[u8]) -> Result<Submitted, SubmitError> {
        let text = std::str::from_utf8(body).map_err(|_| Rejection::NotText)?;
        let text = text.trim();
        let (token, _claims) = self.trust.check_account(key, text, unix_now())?;
        let posted_iat = token.claims.iat;
        let _guard = self.lock_for(key).lock().await;
        let store = self.store.clone();
        let owned_key = key.clone();
        let bytes = text.as_bytes().to_vec();
        let changed = tokio::task::spawn_blocking(move || -> Result<bool, SubmitError> {
            if let Some(existing) = store.load(&owned_key)? {
                if existing == bytes {
                    return Ok(false);
                }
                let stored = StoredJwt::inspect(Bytes::from(existing));
                if stored.jti.is_some() && stored.iat > posted_iat {
                    return Err(SubmitError::Older {
                        stored_iat: stored.iat,
                        posted_iat,
                    });
                }
            }
            store.save(&owned_key, &bytes)?;
            Ok(true)
        })
        .await
        .map_err(|e| SubmitError::Task(e.to_string()))??;
        Ok(Submitted { token, changed })
    }
}

impl crate::notify::nats::Inbound for Accounts {
    async fn lookup(&self, key: AccountKey) -> Option<Bytes> {
        match Accounts::lookup(self, &key).await {
            Ok(Some((jwt, _))) => Some(jwt.bytes),
            Ok(None) => None,
            Err(e) => {
                tracing::error!("lookup of {} failed: {e}", key.short());
                None
            }
        }
    }

    async fn update(&self, key: AccountKey, jwt: Bytes) -> Result<String, String> {
        match self.submit_from_nats(&key, &jwt).await {
            Ok(done) if done.changed => Ok(format!("stored (jti {})", done.token.claims.jti)),
            Ok(_) => Ok("already stored".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_jti_and_exp_without_verification() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!("{}.{}.sig", b64("{}"), b64(r#"{"jti":"J1","exp":42}"#));
        let s = StoredJwt::inspect(Bytes::from(token));
        assert_eq!(s.jti.as_deref(), Some("J1"));
        assert_eq!(s.exp, 42);
        let s = StoredJwt::inspect(Bytes::from_static(b"garbage"));
        assert_eq!(s.jti, None);
        assert_eq!(s.exp, 0);
    }
}
