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
/// newer one back). It is the stored JWT's own `iat` (as [`crate::jwt::peek`] reads it) or
/// `None`, so [`WriteRule::decide`] asks only when that `iat` could refuse the write.
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
        let floor = self.floor.max(stored.and_then(|s| self.stored_counts(s)));
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

    /// What `stored` counts for, asking `stored_floor` only when it could refuse the write:
    /// a stored JWT whose own `iat` (read without verifying it) is below the posted one
    /// cannot, whatever `stored_floor` makes of it, and asking costs the account service a
    /// signature check of the stored JWT (a newer version of an account, the usual push,
    /// would pay two).
    fn stored_counts(&self, stored: &[u8]) -> Option<i64> {
        match crate::jwt::peek::peek(stored) {
            Some(p) if p.iat < self.posted_iat => None,
            _ => (self.stored_floor)(stored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A token with this `iat` (unsigned: the rule reads it without verifying).
    fn token(iat: i64, signature: &str) -> Vec<u8> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{signature}",
            b64("{}"),
            b64(&format!("{{\"iat\":{iat}}}"))
        )
        .into_bytes()
    }

    /// A rule for `posted_iat` whose stored floor is the stored `iat`, counting its calls.
    fn counting(posted_iat: i64, mode: Mode) -> (WriteRule, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let rule = WriteRule {
            posted_iat,
            mode,
            floor: None,
            stored_floor: Arc::new(move |stored| {
                counted.fetch_add(1, Ordering::Relaxed);
                crate::jwt::peek::peek(stored).map(|p| p.iat)
            }),
        };
        (rule, calls)
    }

    #[test]
    fn the_stored_floor_is_asked_only_when_the_stored_iat_could_refuse() {
        let stored = token(100, "stored");
        for (posted, mode, asked, verdict) in [
            (101, Mode::Replace, 0, Ok(Put::Written { created: false })),
            (101, Mode::Merge, 0, Ok(Put::Written { created: false })),
            (100, Mode::Replace, 1, Ok(Put::Written { created: false })),
            (
                100,
                Mode::Merge,
                1,
                Err(Refusal::NotNewer {
                    stored_iat: 100,
                    posted_iat: 100,
                }),
            ),
            (
                99,
                Mode::Replace,
                1,
                Err(Refusal::Older {
                    stored_iat: 100,
                    posted_iat: 99,
                }),
            ),
        ] {
            let (rule, calls) = counting(posted, mode);
            let posted_token = token(posted, "posted");
            assert_eq!(
                rule.decide(&posted_token, Some(&stored), None),
                verdict,
                "posted {posted} {mode:?}"
            );
            assert_eq!(
                calls.load(Ordering::Relaxed),
                asked,
                "posted {posted} {mode:?}"
            );
        }
        // A stored JWT the rule cannot read is left to the stored floor.
        let (rule, calls) = counting(101, Mode::Replace);
        assert_eq!(
            rule.decide(&token(101, "posted"), Some(b"not a jwt"), None),
            Ok(Put::Written { created: false })
        );
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
