//! Activation tokens (Go v0.8 `/jwt/v1/activations`): stored under their hash id and announced
//! on `$SYS.ACCOUNT.<issuer>.CLAIMS.ACTIVATE.<hash>`. Unlike the original, the issuer must be an
//! account whose JWT we hold (or one of its signing keys) and expired tokens are refused.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::accounts::{unix_now, Accounts, LookupError, StoredJwt};
use crate::jwt;
use crate::keys::{AccountKey, ActivationId};
use crate::store::{JwtStore, StoreError};

/// Why an activation was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// Not acceptable (HTTP 400).
    #[error("{0}")]
    Rejected(String),
    /// This server does not take POSTs (HTTP 405).
    #[error("{0}")]
    Refused(String),
    /// The store failed (HTTP 500).
    #[error("error saving activation JWT: {0}")]
    Store(#[from] StoreError),
    /// Reading the issuer account failed (HTTP 500).
    #[error("error saving activation JWT: {0}")]
    Lookup(#[from] LookupError),
    /// A blocking task failed (HTTP 500).
    #[error("error saving activation JWT: {0}")]
    Task(String),
    /// The issuing account has used its quota (HTTP 403).
    #[error("{0}")]
    Quota(String),
}

/// How much one issuing account may store (`activations { maxperissuer, maxbytesperissuer }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `maxperissuer`: most activations stored per issuing account.
    pub max_per_issuer: usize,
    /// `maxbytesperissuer`: most bytes of activations stored per issuing account (`4mb` works).
    pub max_bytes_per_issuer: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_per_issuer: 1000,
            max_bytes_per_issuer: 4 * 1024 * 1024,
        }
    }
}

/// What one issuing account stores: activations and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Usage {
    count: usize,
    bytes: usize,
}

/// The account an activation is issued by: `issuer_account` when a signing key signed it, else
/// the issuer itself.
fn issuing_account(token: &jwt::Token, claims: &jwt::ActivationClaims) -> String {
    if claims.issuer_account.is_empty() {
        token.claims.iss.clone()
    } else {
        claims.issuer_account.clone()
    }
}

fn rejected(why: impl Into<String>) -> ActivationError {
    ActivationError::Rejected(why.into())
}

/// Stores and serves activation tokens.
pub struct Activations {
    store: Arc<dyn JwtStore<ActivationId>>,
    accounts: Arc<Accounts>,
    quota: Quota,
    /// Usage per issuing account, counted from the store at the first submit; the lock also
    /// makes each submit's check-and-store one step.
    usage: tokio::sync::Mutex<Option<HashMap<String, Usage>>>,
}

impl std::fmt::Debug for Activations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activations")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl Activations {
    /// Activations kept in `store`; issuers are checked against `accounts` and held to `quota`.
    pub fn new(
        store: Arc<dyn JwtStore<ActivationId>>,
        accounts: Arc<Accounts>,
        quota: Quota,
    ) -> Self {
        Activations {
            store,
            accounts,
            quota,
            usage: tokio::sync::Mutex::new(None),
        }
    }

    /// Checks and stores an activation token; returns its hash id.
    pub async fn submit(&self, body: &[u8]) -> Result<ActivationId, ActivationError> {
        if let Some(why) = &self.accounts.policy().refuse_posts {
            return Err(ActivationError::Refused(why.clone()));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| rejected("bad activation JWT in request: the body is not UTF-8 text"))?
            .trim();
        let (token, claims) = jwt::decode_activation(text)
            .map_err(|e| rejected(format!("bad activation JWT in request: {e}")))?;
        let std = &token.claims;
        if !jwt::is_account_key(&std.sub) {
            return Err(rejected(format!(
                "bad activation JWT Subject in request: {} is not an account public key",
                std.sub
            )));
        }
        let now = unix_now();
        if std.exp > 0 && now > std.exp {
            return Err(rejected(
                "activation JWT failed validation: claim is expired",
            ));
        }
        if std.nbf > 0 && std.nbf > now {
            return Err(rejected(
                "activation JWT failed validation: claim is not yet valid",
            ));
        }
        // The issuer: an account we hold, or a signing key of the account named in issuer_account.
        let issuer_account = issuing_account(&token, &claims);
        let issuer_key = AccountKey::parse(&issuer_account).map_err(|_| {
            rejected(format!(
                "bad activation JWT Issuer in request: {} is not an account key",
                std.iss
            ))
        })?;
        let Some((issuer_jwt, _)) = self.accounts.lookup(&issuer_key).await? else {
            return Err(rejected(format!(
                "untrusted activation issuer: no JWT is stored for the issuing account {issuer_key}"
            )));
        };
        if issuer_jwt.exp > 0 && issuer_jwt.exp < now {
            return Err(rejected(format!(
                "untrusted activation issuer: the JWT of the issuing account {issuer_key} has expired"
            )));
        }
        if std.iss != issuer_account {
            let text = String::from_utf8_lossy(&issuer_jwt.bytes);
            let signing_keys = jwt::decode_account(text.trim())
                .map(|(_, c)| c.signing_keys)
                .unwrap_or_default();
            if !signing_keys.iter().any(|k| k.key() == std.iss) {
                return Err(rejected(format!(
                    "untrusted activation issuer: {} is not a signing key of {issuer_key}",
                    std.iss
                )));
            }
        }
        let hash = claims
            .hash_id(&token)
            .map_err(|e| rejected(format!("bad activation hash in request: {e}")))
            .and_then(|h| {
                ActivationId::parse(&h).map_err(|e| rejected(format!("bad activation hash: {e}")))
            })?;
        self.store_within_quota(issuer_key.as_str(), &hash, text.as_bytes())
            .await?;
        tracing::info!(
            "updated activation JWT - {}-{} - {:?}",
            crate::keys::short_key(&std.iss),
            crate::keys::short_key(&std.sub),
            claims.subject
        );
        self.accounts
            .notifier()
            .activation_updated(&std.iss, &hash, Bytes::from(text.to_string()));
        Ok(hash)
    }

    /// Stores `bytes` under `id` when `issuer`'s usage stays within the quota (a replaced
    /// activation's bytes are given back first).
    async fn store_within_quota(
        &self,
        issuer: &str,
        id: &ActivationId,
        bytes: &[u8],
    ) -> Result<(), ActivationError> {
        let mut usage = self.usage.lock().await;
        let all = match &mut *usage {
            Some(all) => all,
            counted @ None => counted.insert(self.count_usage().await?),
        };
        let replaced = {
            let id = id.clone();
            self.blocking(move |store| store.load(&id)).await?
        };
        let replaced = replaced.map_or(0, |old| old.len());
        let mut next = all.get(issuer).copied().unwrap_or_default();
        if replaced == 0 {
            next.count += 1;
        }
        next.bytes = (next.bytes + bytes.len()).saturating_sub(replaced);
        if next.count > self.quota.max_per_issuer {
            return Err(ActivationError::Quota(format!(
                "activation quota exceeded: account {issuer} stores {} activations, the most allowed (activations.maxperissuer)",
                next.count - 1
            )));
        }
        if next.bytes > self.quota.max_bytes_per_issuer {
            return Err(ActivationError::Quota(format!(
                "activation quota exceeded: account {issuer} would store {} bytes of activations, more than {} (activations.maxbytesperissuer)",
                next.bytes, self.quota.max_bytes_per_issuer
            )));
        }
        let (id, owned) = (id.clone(), bytes.to_vec());
        self.blocking(move |store| store.save(&id, &owned)).await?;
        all.insert(issuer.to_string(), next);
        Ok(())
    }

    /// Usage per issuing account of what the store holds (undecodable files count for nobody).
    async fn count_usage(&self) -> Result<HashMap<String, Usage>, ActivationError> {
        self.blocking(|store| {
            let mut usage: HashMap<String, Usage> = HashMap::new();
            for id in store.keys()? {
                let Some(bytes) = store.load(&id)? else {
                    continue;
                };
                let text = String::from_utf8_lossy(&bytes);
                if let Ok((token, claims)) = jwt::decode_activation(text.trim()) {
                    let u = usage.entry(issuing_account(&token, &claims)).or_default();
                    u.count += 1;
                    u.bytes += bytes.len();
                }
            }
            Ok(usage)
        })
        .await
    }

    /// Runs a store call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn JwtStore<ActivationId>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ActivationError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ActivationError::Task(e.to_string()))??)
    }

    /// The stored activation with this hash id.
    pub async fn lookup(&self, id: &ActivationId) -> Result<Option<StoredJwt>, LookupError> {
        let store = self.store.clone();
        let id = id.clone();
        let bytes = tokio::task::spawn_blocking(move || store.load(&id))
            .await
            .map_err(|e| crate::store::StoreError::Task(e.to_string()))??;
        Ok(bytes.map(|b| StoredJwt::inspect(Bytes::from(b))))
    }

    /// Announces a stored activation again (GET `?notify=true`), at most once per
    /// [`crate::accounts::NOTIFY_EVERY`] per activation.
    pub fn notify_again(&self, id: &ActivationId, jwt: &StoredJwt) {
        if !self.accounts.may_notify_again(id.as_str()) {
            return;
        }
        let text = String::from_utf8_lossy(&jwt.bytes);
        if let Ok((token, _)) = jwt::decode_activation(text.trim()) {
            self.accounts
                .notifier()
                .activation_updated(&token.claims.iss, id, jwt.bytes.clone());
        }
    }
}
