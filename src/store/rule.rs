//! The rule of an account write, applied by every store atomically with the write itself
//! (under a key lock for the directory and memory stores, by revision compare-and-set for the
//! JetStream KV store): the newest `iat` wins, a deleted account stays deleted unless a JWT
//! issued after the deleted one comes, and storing the very same bytes changes nothing.

use std::sync::Arc;

/// Which JWT wins when one is stored already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A push (POST, NATS update): an equal `iat` replaces the stored JWT, an older one is
    /// refused.
    Replace,
    /// A pack merge: only a newer `iat` replaces the stored JWT, so two sources with different
    /// JWTs of the same `iat` cannot flip it back and forth.
    Merge,
    /// No rule (activations, tests): the JWT replaces whatever is stored.
    Always,
}

/// The `iat` a stored JWT counts for when refusing rollbacks, `None` when it does not count
/// (the account service decides: a JWT that would not be accepted today does not hold a
/// newer one back).
pub type StoredFloor = Arc<dyn Fn(&[u8]) -> Option<i64> + Send + Sync>;

/// Everything a store needs to decide a write, away from the JWT itself.
#[derive(Clone)]
pub struct WriteRule {
    /// `iat` of the JWT to store.
    pub posted_iat: i64,
    /// How ties and older JWTs are treated.
    pub mode: Mode,
    /// A floor that holds whatever is stored (the system account's configured JWT).
    pub floor: Option<i64>,
    /// The `iat` the stored JWT counts for.
    pub stored_floor: StoredFloor,
}

impl std::fmt::Debug for WriteRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteRule")
            .field("posted_iat", &self.posted_iat)
            .field("mode", &self.mode)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

/// Why a write was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An account JWT with a newer `iat` is already stored.
    #[error("a newer JWT is already stored for this account (stored iat {stored_iat} > posted iat {posted_iat}); refusing to roll back")]
    Older {
        /// `iat` of the stored JWT.
        stored_iat: i64,
        /// `iat` of the refused JWT.
        posted_iat: i64,
    },
    /// The account was deleted and the JWT is not newer than the deleted one.
    #[error("the account was deleted (deleted JWT iat {deleted_iat}, posted iat {posted_iat}); only a JWT issued after it brings the account back")]
    Deleted {
        /// `iat` of the deleted JWT (or of the delete request when nothing was stored).
        deleted_iat: i64,
        /// `iat` of the refused JWT.
        posted_iat: i64,
    },
    /// A merge found a JWT that is not newer than the stored one.
    #[error("not newer than the stored JWT (iat {posted_iat} <= {stored_iat})")]
    NotNewer {
        /// `iat` of the stored JWT.
        stored_iat: i64,
        /// `iat` of the offered JWT.
        posted_iat: i64,
    },
}

/// What a successful write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The very same bytes were stored already: nothing was written.
    Unchanged,
    /// The JWT was written; `created` when the key had no JWT before.
    Written {
        /// The key had no JWT before.
        created: bool,
    },
}

impl WriteRule {
    /// A rule that lets any JWT replace any other.
    pub fn always() -> Self {
        WriteRule {
            posted_iat: 0,
            mode: Mode::Always,
            floor: None,
            stored_floor: Arc::new(|_| None),
        }
    }

    /// A rule comparing `iat`s only (tests, migrations into a store without trust in play).
    pub fn by_iat(posted_iat: i64, mode: Mode) -> Self {
        WriteRule {
            posted_iat,
            mode,
            floor: None,
            stored_floor: Arc::new(|stored| crate::jwt::peek::peek(stored).map(|p| p.iat)),
        }
    }

    /// Decides the write of `jwt` over what the store holds: `stored` (the current JWT) and,
    /// when there is none, `tombstone` (what a delete left behind).
    pub fn decide(
        &self,
        jwt: &[u8],
        stored: Option<&[u8]>,
        tombstone: Option<&[u8]>,
    ) -> Result<Put, Refusal> {
        let posted_iat = self.posted_iat;
        if stored == Some(jwt) {
            return Ok(Put::Unchanged);
        }
        let created = stored.is_none();
        if self.mode == Mode::Always {
            return Ok(Put::Written { created });
        }
        if let Some(deleted_iat) = tombstone
            .filter(|_| created)
            .and_then(crate::jwt::peek::peek)
            .map(|p| p.iat)
            .filter(|iat| *iat >= posted_iat)
        {
            return Err(Refusal::Deleted {
                deleted_iat,
                posted_iat,
            });
        }
        let floor = self.floor.max(stored.and_then(|s| (self.stored_floor)(s)));
        if let Some(stored_iat) = floor.filter(|iat| *iat > posted_iat) {
            return Err(Refusal::Older {
                stored_iat,
                posted_iat,
            });
        }
        if let Some(stored_iat) = floor.filter(|iat| self.mode == Mode::Merge && *iat >= posted_iat)
        {
            return Err(Refusal::NotNewer {
                stored_iat,
                posted_iat,
            });
        }
        Ok(Put::Written { created })
    }
}
