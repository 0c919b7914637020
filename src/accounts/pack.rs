//! The `/jwt/v1/pack` reply, built by one request at a time and kept until the store changes
//! (or a JWT in it expires): concurrent packs share one buffer, so their memory stays bounded
//! by one pack (plus one being built) whatever the number of clients.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{unix_now, Accounts, LookupError};

/// The last pack built, and what it was built from.
#[derive(Debug, Default)]
pub(crate) struct PackCache {
    /// Bumped on every change to the store ([`Accounts::forget`]).
    generation: AtomicU64,
    built: tokio::sync::Mutex<Option<Built>>,
}

#[derive(Debug)]
struct Built {
    generation: u64,
    max: usize,
    /// Earliest `exp` of a JWT in the pack (0 = none expires): it must be left out after it.
    expires: i64,
    body: Bytes,
}

impl PackCache {
    /// The store changed: the next pack is built anew.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

impl Accounts {
    /// `key|jwt` lines of up to `max` stored, unexpired JWTs (the pack format). Packs are
    /// built one at a time; waiting requests get the same bytes when nothing changed.
    pub async fn pack(&self, max: usize) -> Result<Bytes, LookupError> {
        let cache = &self.pack_cache;
        let mut built = cache.built.lock().await;
        let generation = cache.generation.load(Ordering::Relaxed);
        if let Some(b) = built.as_ref() {
            let expired = b.expires > 0 && b.expires < unix_now();
            if b.generation == generation && b.max == max && !expired {
                return Ok(b.body.clone());
            }
        }
        *built = None;
        // (body, earliest exp) built line by line straight from the store.
        let (body, expires) = self
            .fold_unexpired(max, (Vec::new(), 0i64), |(body, expires), key, jwt| {
                if !body.is_empty() {
                    body.push(b'\n');
                }
                body.extend_from_slice(&crate::store::stored::pack_line(&key, &jwt.bytes));
                if jwt.exp > 0 && (*expires == 0 || jwt.exp < *expires) {
                    *expires = jwt.exp;
                }
            })
            .await?;
        let body = Bytes::from(body);
        *built = Some(Built {
            generation,
            max,
            expires,
            body: body.clone(),
        });
        Ok(body)
    }
}
