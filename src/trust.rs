//! Who may sign the account JWTs we store: the operator (from `operatorjwtpath`) and its signing
//! keys, and the system account JWT served from `systemaccountjwtpath`. [`Trust::check_account`]
//! is the single place that decides whether a JWT may be stored (spec §4.2 order of checks).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::jwt::{self, AccountClaims, OperatorClaims, Token};
use crate::keys::AccountKey;

/// A startup problem with the operator or system account file; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// `operator JWT` or `system account JWT`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not hold a JWT of the right kind.
    #[error("{} is not a valid {what}: {reason}", path.display())]
    Invalid {
        /// `operator JWT` or `system account JWT`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The configured system account is not the operator's.
    #[error("the system account in {} is {configured}, but the operator names {operator} as its system account", path.display())]
    SystemAccountMismatch {
        /// The system account file.
        path: PathBuf,
        /// Its subject.
        configured: String,
        /// The operator's `system_account`.
        operator: String,
    },
}

/// Why a JWT may not be stored. Each variant reads as one line for the HTTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The body is empty.
    #[error("bad JWT in request: the body is empty")]
    Empty,
    /// The body is not text.
    #[error("bad JWT in request: the body is not UTF-8 text")]
    NotText,
    /// The token does not decode or its signature does not verify.
    #[error("bad JWT in request: {0}")]
    Decode(String),
    /// The JWT is for another account than the URL names.
    #[error("pub keys don't match: the JWT is for {jwt_subject} but the URL names {path_key}")]
    KeyMismatch {
        /// `sub` of the JWT.
        jwt_subject: String,
        /// The key in the URL.
        path_key: String,
    },
    /// Self-signed by the account itself and no signing service is configured.
    #[error("Signing service not enabled: the JWT is self-signed by the account {0}; it must be signed by the operator or one of its signing keys")]
    SelfSigned(String),
    /// Signed by another account.
    #[error("Bad JWT Issuer in request: {0} is an account key; account JWTs must be signed by the operator or one of its signing keys")]
    AccountIssuer(String),
    /// Signed by an operator key that is not trusted.
    #[error(
        "untrusted issuer in request: {0} is neither the operator nor one of its signing keys"
    )]
    Untrusted(String),
    /// No operator configured: nothing can be trusted.
    #[error("untrusted issuer in request: no operator is configured (set operatorjwtpath), so no JWT can be accepted")]
    NoOperator,
    /// `iat` lies further in the future than the allowed clock skew.
    #[error("JWT failed validation: iat {iat} is {ahead} s in the future, more than the allowed clock skew of {skew} s (maxclockskew)")]
    FutureIat {
        /// The token's `iat`.
        iat: i64,
        /// Seconds ahead of our clock.
        ahead: i64,
        /// The allowed skew in seconds.
        skew: i64,
    },
    /// Blocking validation issues (expired, not yet valid, bad imports...).
    #[error("JWT failed validation: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The loaded operator.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The operator file's bytes, served verbatim on `/jwt/v1/operator`.
    pub raw: Vec<u8>,
    /// The decoded token.
    pub token: Token,
    /// Its claims.
    pub claims: OperatorClaims,
}

/// The system account JWT from `systemaccountjwtpath`.
#[derive(Debug, Clone)]
pub struct SystemAccount {
    /// Its key.
    pub key: AccountKey,
    /// The file's bytes (trimmed of surrounding whitespace).
    pub jwt: Vec<u8>,
    /// Its `name`.
    pub name: String,
    /// Its `iat`: a stored JWT of the system account must not be older.
    pub iat: i64,
}

/// How far in the future an `iat` may lie by default (seconds): `maxclockskew`.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The trust anchor of the server.
#[derive(Debug, Clone)]
pub struct Trust {
    operator: Option<Operator>,
    trusted_keys: HashSet<String>,
    system_account: Option<SystemAccount>,
    max_clock_skew: i64,
}

impl Default for Trust {
    fn default() -> Self {
        Trust {
            operator: None,
            trusted_keys: HashSet::new(),
            system_account: None,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW_SECS,
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|source| TrustError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, reason: impl ToString) -> TrustError {
    TrustError::Invalid {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The token text inside a file: decorated (`-----BEGIN ...`) or raw, without surrounding
/// whitespace.
fn token_text(what: &'static str, path: &Path, bytes: &[u8]) -> Result<String, TrustError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| invalid(what, path, "the file is not UTF-8 text"))?;
    Ok(jwt::creds::parse_decorated_jwt(text))
}

impl Trust {
    /// Loads the operator and the system account files (either may be absent).
    pub fn load(
        operator: Option<&Path>,
        system_account: Option<&Path>,
    ) -> Result<Self, TrustError> {
        let mut trust = Trust::default();
        if let Some(path) = operator {
            const WHAT: &str = "operator JWT";
            let raw = read(WHAT, path)?;
            let text = token_text(WHAT, path, &raw)?;
            let (token, claims) =
                jwt::decode_operator(&text).map_err(|e| invalid(WHAT, path, e))?;
            if !claims.strict_signing_key_usage {
                trust.trusted_keys.insert(token.claims.sub.clone());
            }
            trust
                .trusted_keys
                .extend(claims.signing_keys.iter().cloned());
            trust.operator = Some(Operator { raw, token, claims });
        }
        if let Some(path) = system_account {
            const WHAT: &str = "system account JWT";
            let raw = read(WHAT, path)?;
            let text = token_text(WHAT, path, &raw)?;
            let (token, _) = jwt::decode_account(&text).map_err(|e| invalid(WHAT, path, e))?;
            let key = AccountKey::parse(&token.claims.sub).map_err(|e| invalid(WHAT, path, e))?;
            if let Some(op) = &trust.operator {
                let named = &op.claims.system_account;
                if !named.is_empty() && named != key.as_str() {
                    return Err(TrustError::SystemAccountMismatch {
                        path: path.to_path_buf(),
                        configured: key.to_string(),
                        operator: named.clone(),
                    });
                }
            }
            trust.system_account = Some(SystemAccount {
                key,
                jwt: text.into_bytes(),
                name: token.claims.name.clone(),
                iat: token.claims.iat,
            });
        }
        Ok(trust)
    }

    /// The same trust with another allowed clock skew for `iat` (seconds, `maxclockskew`).
    pub fn with_max_clock_skew(mut self, secs: i64) -> Self {
        self.max_clock_skew = secs.max(0);
        self
    }

    /// The `iat` below which no JWT may replace `stored` for `key`: its `iat` when it still
    /// decodes, is for `key`, is signed by a key trusted now and its `iat` is not beyond the
    /// clock skew at `now`; `None` when it would not be accepted today (so it cannot lock the
    /// account out: a removed signing key or a far-future `iat` does not block the fix).
    pub fn rollback_floor(&self, key: &AccountKey, stored: &[u8], now: i64) -> Option<i64> {
        let text = std::str::from_utf8(stored).ok()?.trim();
        let (token, _) = jwt::decode_account(text).ok()?;
        let c = &token.claims;
        let acceptable = c.sub == key.as_str()
            && self.is_trusted_issuer(&c.iss)
            && self.beyond_skew(c.iat, now).is_none();
        acceptable.then_some(c.iat)
    }

    /// How many seconds `iat` lies ahead of `now` when that is more than the allowed skew.
    fn beyond_skew(&self, iat: i64, now: i64) -> Option<i64> {
        let ahead = iat.saturating_sub(now);
        (ahead > self.max_clock_skew).then_some(ahead)
    }

    /// The operator, when one is configured.
    pub fn operator(&self) -> Option<&Operator> {
        self.operator.as_ref()
    }

    /// The configured system account JWT, if any.
    pub fn system_account(&self) -> Option<&SystemAccount> {
        self.system_account.as_ref()
    }

    /// `true` when `key` is the operator (unless strict) or one of its signing keys.
    pub fn is_trusted_issuer(&self, key: &str) -> bool {
        self.trusted_keys.contains(key)
    }

    /// Decides whether `body`, POSTed for `path_key`, may be stored, at time `now` (Unix
    /// seconds). Returns the decoded token on success.
    pub fn check_account(
        &self,
        path_key: &AccountKey,
        body: &str,
        now: i64,
    ) -> Result<(Token, AccountClaims), Rejection> {
        let (token, claims) = Self::decode_account(body)?;
        self.check_decoded(path_key, token, claims, now)
    }

    /// Decodes `body` as an account JWT whose signature verifies (the first step of
    /// [`Trust::check_account`], for callers that learn the account key from the JWT).
    pub fn decode_account(body: &str) -> Result<(Token, AccountClaims), Rejection> {
        if body.is_empty() {
            return Err(Rejection::Empty);
        }
        jwt::decode_account(body).map_err(|e| Rejection::Decode(e.to_string()))
    }

    /// The rest of [`Trust::check_account`] on a decoded JWT: it is for `path_key`, signed by
    /// a trusted operator key, valid at `now` and its `iat` within the clock skew.
    pub fn check_decoded(
        &self,
        path_key: &AccountKey,
        token: Token,
        claims: AccountClaims,
        now: i64,
    ) -> Result<(Token, AccountClaims), Rejection> {
        let sub = &token.claims.sub;
        let iss = &token.claims.iss;
        if sub != path_key.as_str() {
            return Err(Rejection::KeyMismatch {
                jwt_subject: sub.chars().take(64).collect(),
                path_key: path_key.to_string(),
            });
        }
        if jwt::is_account_key(iss) {
            return Err(if iss == sub {
                Rejection::SelfSigned(sub.clone())
            } else {
                Rejection::AccountIssuer(iss.clone())
            });
        }
        if self.operator.is_none() {
            return Err(Rejection::NoOperator);
        }
        if !self.is_trusted_issuer(iss) {
            return Err(Rejection::Untrusted(iss.clone()));
        }
        let blocking: Vec<String> = jwt::validate_account(&token, &claims, now)
            .into_iter()
            .filter(|issue| issue.is_blocking(true))
            .map(|issue| issue.description)
            .collect();
        if !blocking.is_empty() {
            return Err(Rejection::Invalid(blocking));
        }
        if let Some(ahead) = self.beyond_skew(token.claims.iat, now) {
            return Err(Rejection::FutureIat {
                iat: token.claims.iat,
                ahead,
                skew: self.max_clock_skew,
            });
        }
        Ok((token, claims))
    }
}
