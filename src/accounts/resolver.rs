//! The account service's part in nats-server's resolver protocol: operator-signed deletes
//! that stay deleted, LIST, PACK (our side and merging others'), updates received over NATS
//! with nats-server's answers, and rollback repair (an older JWT seen on NATS makes us
//! re-publish the stored one).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{unix_now, Accounts, LookupError, StoredJwt, SubmitError};
use crate::keys::AccountKey;
use crate::notify::resolver::{Answer, Inbound, Pack};
use crate::store::{Mode, Refusal, StoreError};
use crate::trust::{Rejection, Trust};

/// Why a delete request was refused; the texts are nats-server's.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// `store.allowdelete` is off.
    #[error("delete must be enabled in server config")]
    Disabled,
    /// The request is not a JWT whose signature verifies.
    #[error("{0}")]
    Decode(String),
    /// `sub` is not `iss`.
    #[error("not self signed")]
    NotSelfSigned,
    /// `iss` is not the operator or one of its signing keys.
    #[error("not trusted")]
    NotTrusted,
    /// `nats.accounts` is not a list of account keys.
    #[error("malformed request")]
    Malformed,
    /// The system account cannot be deleted.
    #[error("not allowed to delete system account")]
    SystemAccount,
    /// This server takes no writes (read-only store, replica).
    #[error("{0}")]
    Refused(String),
    /// The store failed for some accounts.
    #[error("deleted {deleted} accounts, failed for {failed} - {}", .errors.join("; "))]
    Partial {
        /// Accounts deleted.
        deleted: usize,
        /// Accounts that failed.
        failed: usize,
        /// Why, per account.
        errors: Vec<String>,
    },
}

impl DeleteError {
    /// `true` when the request itself is wrong (HTTP 400), rather than the server's setup or
    /// its store.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            DeleteError::Decode(_)
                | DeleteError::NotSelfSigned
                | DeleteError::NotTrusted
                | DeleteError::Malformed
                | DeleteError::SystemAccount
        )
    }
}

/// A refused delete request and who sent it (`sub`, `n/a` when it did not decode).
#[derive(Debug, thiserror::Error)]
#[error("delete accounts request by {by} failed - {error}")]
pub struct DeleteFailure {
    /// The request's `sub`.
    pub by: String,
    /// Why.
    #[source]
    pub error: DeleteError,
}

/// A checked delete request.
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    /// The operator key that signed it.
    pub by: String,
    /// The accounts to delete.
    pub accounts: Vec<AccountKey>,
    /// The request JWT, kept as the tombstone of accounts we never stored.
    pub raw: Bytes,
}

/// Rollback repairs: when each account's stored JWT was last re-published, and whether one
/// more is scheduled.
#[derive(Debug, Default)]
pub(crate) struct Repairs(Mutex<HashMap<AccountKey, (Instant, bool)>>);

/// At most one re-publish per account in this time.
const REPAIR_EVERY: Duration = Duration::from_secs(1);

impl Repairs {
    /// How long to wait before re-publishing `key` (zero: now), or `None` when a re-publish
    /// is already scheduled.
    fn claim(&self, key: &AccountKey) -> Option<Duration> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (at, scheduled)| *scheduled || now.duration_since(*at) < REPAIR_EVERY);
        match map.get_mut(key) {
            None => {
                map.insert(key.clone(), (now, false));
                Some(Duration::ZERO)
            }
            Some((_, true)) => None,
            Some((at, scheduled)) => {
                *scheduled = true;
                let delay = REPAIR_EVERY.saturating_sub(now.duration_since(*at));
                *at += REPAIR_EVERY;
                Some(delay)
            }
        }
    }

    fn done_scheduled(&self, key: &AccountKey) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, scheduled)) = map.get_mut(key) {
            *scheduled = false;
        }
    }
}

impl Accounts {
    /// Checks a delete request in nats-server's order: signature, `allowdelete`, self-signed,
    /// trusted operator key, a list of account keys, not the system account.
    pub fn check_delete(&self, body: &[u8]) -> Result<DeleteRequest, DeleteFailure> {
        let fail = |by: &str, error| DeleteFailure {
            by: by.to_string(),
            error,
        };
        let text = String::from_utf8_lossy(body);
        let token = crate::jwt::decode(text.trim())
            .map_err(|e| fail("n/a", DeleteError::Decode(e.to_string())))?;
        let by = token.claims.sub.clone();
        if !self.policy.allow_delete {
            return Err(fail(&by, DeleteError::Disabled));
        }
        if token.claims.sub != token.claims.iss {
            return Err(fail(&by, DeleteError::NotSelfSigned));
        }
        if !self.trust.is_trusted_issuer(&token.claims.iss) {
            return Err(fail(&by, DeleteError::NotTrusted));
        }
        let listed = token.payload.get("nats").and_then(|n| n.get("accounts"));
        let accounts = listed
            .and_then(|a| a.as_array())
            .and_then(|items| {
                items
                    .iter()
                    .map(|k| k.as_str().and_then(|k| AccountKey::parse(k).ok()))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| fail(&by, DeleteError::Malformed))?;
        let system = self.system_account_keys();
        if accounts.iter().any(|k| system.contains(&k.as_str())) {
            return Err(fail(&by, DeleteError::SystemAccount));
        }
        if let Some(why) = &self.policy.refuse_posts {
            return Err(fail(&by, DeleteError::Refused(why.clone())));
        }
        Ok(DeleteRequest {
            by,
            accounts,
            raw: Bytes::from(text.trim().to_string()),
        })
    }

    /// The system account as configured and as the operator names it.
    fn system_account_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        if let Some(sys) = self.trust.system_account() {
            keys.push(sys.key.as_str());
        }
        if let Some(op) = self.trust.operator() {
            keys.push(op.claims.system_account.as_str());
        }
        keys
    }

    /// Deletes the accounts a checked request names: each stored JWT becomes a tombstone
    /// (`<pk>.jwt.deleted`), so the account is no longer served, listed or packed, and only a
    /// JWT issued after the deleted one brings it back. Returns how many were deleted.
    pub async fn delete(&self, request: &DeleteRequest) -> Result<usize, DeleteFailure> {
        let mut errors = Vec::new();
        for key in &request.accounts {
            match self.delete_one(key, request.raw.clone()).await {
                Ok(()) => tracing::info!(
                    "deleted account {} (request by {})",
                    key.short(),
                    crate::keys::short_key(&request.by)
                ),
                Err(e) => errors.push(format!("{}: {e}", key.short())),
            }
        }
        let deleted = request.accounts.len() - errors.len();
        if errors.is_empty() {
            return Ok(deleted);
        }
        Err(DeleteFailure {
            by: request.by.clone(),
            error: DeleteError::Partial {
                deleted,
                failed: errors.len(),
                errors,
            },
        })
    }

    async fn delete_one(&self, key: &AccountKey, tombstone: Bytes) -> Result<(), StoreError> {
        let existed = self.store.delete(key, tombstone).await?;
        if existed {
            metrics::gauge!(crate::metrics::STORE_JWTS).decrement(1.0);
        }
        self.forget(key);
        self.notifier.account_deleted(key);
        Ok(())
    }

    /// Up to `max` stored JWTs that decode and have not expired, sorted by key.
    pub async fn stored_unexpired(
        &self,
        max: usize,
    ) -> Result<Vec<(AccountKey, StoredJwt)>, LookupError> {
        self.fold_unexpired(max, Vec::new(), |out, key, jwt| out.push((key, jwt)))
            .await
    }

    /// Folds up to `max` stored JWTs that decode and have not expired, in key order, one at a
    /// time into `acc`: nothing but `acc` is kept. Directory loads complete at once (page
    /// cache), so the loop spends the task's cooperative budget to let other tasks (GETs) run
    /// on this worker between them, as the blocking pool it used to run on did.
    pub async fn fold_unexpired<T, F>(
        &self,
        max: usize,
        mut acc: T,
        mut f: F,
    ) -> Result<T, LookupError>
    where
        T: Send,
        F: FnMut(&mut T, AccountKey, StoredJwt) + Send,
    {
        let now = unix_now();
        let mut taken = 0;
        for key in self.store.keys().await? {
            if taken >= max {
                break;
            }
            tokio::task::consume_budget().await;
            let stored = self.store.load(&key).await?;
            if let Some(jwt) = stored.and_then(|b| super::pack::packable(b, now)) {
                taken += 1;
                f(&mut acc, key, jwt);
            }
        }
        Ok(acc)
    }

    /// The store as a PACK reply carries it, with nats-server's store hash (XOR of the
    /// SHA-256 of every JWT).
    pub async fn pack_state(&self) -> Result<Pack, LookupError> {
        use sha2::{Digest, Sha256};
        let mut pack = Pack::default();
        for (key, jwt) in self.stored_unexpired(usize::MAX).await? {
            // What a pack line carries, and so what a nats-server stores and hashes.
            let bytes = jwt.bytes.slice_ref(jwt.bytes.trim_ascii());
            let digest = Sha256::digest(&bytes);
            for (h, d) in pack.hash.iter_mut().zip(digest.iter()) {
                *h ^= d;
            }
            pack.entries.push((key, bytes));
        }
        Ok(pack)
    }

    /// Merges a JWT from another server's pack: stored only when trusted, valid, newer than
    /// ours and not older than a deletion. `Ok(false)` when ours is as new.
    /// Like updates over NATS, merges are taken by replicas too (a read-only store refuses).
    pub async fn merge(&self, key: &AccountKey, jwt: &[u8]) -> Result<bool, SubmitError> {
        match self.store_checked(key, jwt, Mode::Merge).await {
            Ok(done) => Ok(done.changed),
            Err(SubmitError::Conflict(Refusal::NotNewer { .. } | Refusal::Older { .. })) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Re-publishes the stored JWT of `key` after an older one was seen on NATS, at most once
    /// a second per account; one more is sent at the end of the second when more come.
    fn repair(&self, key: &AccountKey, seen_iat: i64, stored_iat: i64) {
        let Some(delay) = self.repairs.claim(key) else {
            return;
        };
        tracing::warn!(
            "an older JWT of {} was published on NATS (iat {seen_iat} < {stored_iat}): re-publishing the stored one",
            key.short()
        );
        let (store, notifier, owned) = (self.store.clone(), self.notifier.clone(), key.clone());
        let repairs = (!delay.is_zero()).then(|| self.repairs.clone());
        tokio::spawn(async move {
            if let Some(repairs) = repairs {
                tokio::time::sleep(delay).await;
                repairs.done_scheduled(&owned);
            }
            match store.load(&owned).await {
                Ok(Some(bytes)) => {
                    notifier.account_updated(&owned, bytes);
                }
                Ok(None) => {}
                Err(e) => tracing::error!("cannot re-publish {}: {e}", owned.short()),
            }
        });
    }

    /// Handles an update received over NATS: the rules of a POST, nats-server's answer texts,
    /// and rollback repair when the JWT is older than ours.
    async fn update_from_nats(&self, key: Option<AccountKey>, jwt: &[u8]) -> Answer {
        let failed = |account: &str, code, description: String| Answer::Failed {
            account: Some(account.to_string()),
            code,
            description,
        };
        // Decoded once; on `$SYS.REQ.CLAIMS.UPDATE` the account is the JWT's `sub`.
        let decoded = std::str::from_utf8(jwt)
            .map_err(|_| Rejection::NotText)
            .and_then(|text| Trust::decode_account(text.trim()));
        let key = match (key, &decoded) {
            (Some(key), _) => key,
            (None, Ok((token, _))) => match AccountKey::parse(&token.claims.sub) {
                Ok(key) => key,
                Err(e) => return failed("n/a", 400, format!("jwt update resulted in error - {e}")),
            },
            (None, Err(e)) => {
                return failed("n/a", 400, format!("jwt update resulted in error - {e}"))
            }
        };
        let stored = match decoded {
            Ok((token, claims)) => {
                match self.trust.check_decoded(&key, token, claims, unix_now()) {
                    Ok((token, _)) => self.store_token(&key, token, Mode::Replace).await,
                    Err(why) => Err(why.into()),
                }
            }
            Err(why) => Err(why.into()),
        };
        match stored {
            Ok(done) => {
                if done.changed {
                    tracing::info!("update for {} received over NATS: stored", key.short());
                }
                Answer::Done {
                    account: Some(key.to_string()),
                    message: "jwt updated".into(),
                }
            }
            Err(e) => {
                tracing::warn!(
                    "refused an update for {} received over NATS: {e}",
                    key.short()
                );
                if let SubmitError::Conflict(Refusal::Older {
                    stored_iat,
                    posted_iat,
                }) = &e
                {
                    self.repair(&key, *posted_iat, *stored_iat);
                }
                let (code, prefix) = match &e {
                    SubmitError::Rejected(_) => (400, "jwt validation failed"),
                    SubmitError::Conflict(_) => (409, "jwt update resulted in error"),
                    SubmitError::Refused(_) => (405, "jwt update resulted in error"),
                    _ => (500, "jwt update resulted in error"),
                };
                failed(key.as_str(), code, format!("{prefix} - {e}"))
            }
        }
    }
}

impl Inbound for Accounts {
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

    async fn update(&self, key: Option<AccountKey>, jwt: Bytes) -> Answer {
        self.update_from_nats(key, &jwt).await
    }

    async fn list(&self) -> Vec<String> {
        match self.stored_unexpired(usize::MAX).await {
            Ok(items) => items.into_iter().map(|(k, _)| k.to_string()).collect(),
            Err(e) => {
                tracing::error!("cannot list the store: {e}");
                Vec::new()
            }
        }
    }

    async fn delete(&self, jwt: Bytes) -> Answer {
        let result = match self.check_delete(&jwt) {
            Ok(request) => Accounts::delete(self, &request).await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(n) => Answer::Done {
                account: None,
                message: format!("deleted {n} accounts"),
            },
            Err(failure) => {
                tracing::warn!("refused a delete request received over NATS: {failure}");
                Answer::Failed {
                    account: None,
                    code: 500,
                    description: failure.to_string(),
                }
            }
        }
    }

    async fn pack(&self) -> Pack {
        self.pack_state().await.unwrap_or_else(|e| {
            tracing::error!("cannot read the store for a pack: {e}");
            Pack::default()
        })
    }

    async fn merge(&self, key: AccountKey, jwt: Bytes) -> Result<bool, String> {
        Accounts::merge(self, &key, &jwt)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_are_limited_to_one_a_second_plus_one_scheduled() {
        let r = Repairs::default();
        let k = AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap();
        assert_eq!(r.claim(&k), Some(Duration::ZERO));
        let delay = r.claim(&k).unwrap();
        assert!(delay > Duration::ZERO && delay <= REPAIR_EVERY);
        assert_eq!(r.claim(&k), None);
        r.done_scheduled(&k);
        assert!(r.claim(&k).is_some_and(|d| d > Duration::ZERO));
    }
}
