//! A bounded in-memory cache of hot account JWTs for the GET path: a hit costs no file system
//! call and no parsing. Entries are replaced on our own writes and dropped when the file
//! watcher sees the file change, so hand edits are picked up too. When the byte budget is
//! exceeded, the oldest entries of the shard are evicted (first in, first out).
//!
//! Once a shard is full, a key is admitted only on its second miss within a short while (a
//! "doorkeeper" remembers the hashes of recently refused keys). With a store much larger than
//! the cache and no hot set, nearly every read would otherwise copy one JWT in and evict
//! another for next to no hits. Hot keys still get in on their second read.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use crate::keys::AccountKey;
use crate::store::StoredJwt;

const SHARDS: usize = 16;
/// Bookkeeping bytes counted per entry besides the JWT itself.
const ENTRY_OVERHEAD: usize = 160;
/// Refused keys remembered per shard (8 bytes each).
const DOORKEEPER_SLOTS: usize = 1024;

struct Shard {
    items: HashMap<AccountKey, StoredJwt>,
    /// Keys in insertion order (may hold keys already removed; they are skipped).
    order: VecDeque<AccountKey>,
    bytes: usize,
    /// Bumped by every invalidation, so that a read that started before a change cannot put
    /// the old content back.
    epoch: u64,
    /// Hashes of keys refused while the shard was full, by slot (0 = empty).
    doorkeeper: Box<[u64]>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            items: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            epoch: 0,
            doorkeeper: vec![0; DOORKEEPER_SLOTS].into_boxed_slice(),
        }
    }
}

impl Shard {
    /// Whether a new key with this hash may take a place in the full shard: yes when it was
    /// refused recently (its second miss), otherwise it is remembered and refused.
    fn admit(&mut self, hash: u64) -> bool {
        let hash = hash.max(1);
        let slot = &mut self.doorkeeper[(hash / SHARDS as u64) as usize % DOORKEEPER_SLOTS];
        if *slot == hash {
            *slot = 0;
            true
        } else {
            *slot = hash;
            false
        }
    }
}

/// The cache.
pub struct JwtCache {
    shards: Vec<Mutex<Shard>>,
    budget_per_shard: usize,
    hasher: RandomState,
}

impl std::fmt::Debug for JwtCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtCache")
            .field("budget", &(self.budget_per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

fn cost(jwt: &StoredJwt) -> usize {
    jwt.bytes.len() + jwt.etag.as_ref().map_or(0, String::len) + ENTRY_OVERHEAD
}

impl JwtCache {
    /// A cache holding at most about `budget_bytes` of JWTs.
    pub fn new(budget_bytes: usize) -> Self {
        JwtCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget_per_shard: budget_bytes / SHARDS,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &AccountKey) -> std::sync::MutexGuard<'_, Shard> {
        self.shard_and_hash(key).0
    }

    fn shard_and_hash(&self, key: &AccountKey) -> (std::sync::MutexGuard<'_, Shard>, u64) {
        let hash = self.hasher.hash_one(key);
        let shard = self.shards[hash as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (shard, hash)
    }

    /// The cached JWT of `key`.
    pub fn get(&self, key: &AccountKey) -> Option<StoredJwt> {
        self.shard(key).items.get(key).cloned()
    }

    /// The invalidation epoch of `key`'s shard; read it before loading from the store and
    /// hand it to [`JwtCache::put`].
    pub fn epoch(&self, key: &AccountKey) -> u64 {
        self.shard(key).epoch
    }

    /// Caches `jwt` for `key` (replacing what was there), unless the shard saw an invalidation
    /// since `epoch` was read, or the shard is full and `key` is not admitted yet (see the
    /// module doc).
    pub fn put(&self, key: &AccountKey, jwt: &StoredJwt, epoch: u64) {
        let size = cost(jwt);
        if size > self.budget_per_shard {
            return;
        }
        let (mut shard, hash) = self.shard_and_hash(key);
        if shard.epoch != epoch {
            return;
        }
        if shard.bytes + size > self.budget_per_shard
            && !shard.items.contains_key(key)
            && !shard.admit(hash)
        {
            return;
        }
        match shard.items.insert(key.clone(), jwt.clone()) {
            Some(old) => shard.bytes -= cost(&old),
            None => shard.order.push_back(key.clone()),
        }
        shard.bytes += size;
        while shard.bytes > self.budget_per_shard {
            let Some(victim) = shard.order.pop_front() else {
                break;
            };
            if victim == *key {
                shard.order.push_back(victim);
                if shard.order.len() == 1 {
                    break;
                }
                continue;
            }
            if let Some(old) = shard.items.remove(&victim) {
                shard.bytes -= cost(&old);
            }
        }
        // Invalidations leave stale keys in the order queue; drop them now and then.
        if shard.order.len() > 2 * shard.items.len() + 64 {
            let Shard { items, order, .. } = &mut *shard;
            order.retain(|k| items.contains_key(k));
        }
    }

    /// Forgets every key.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.epoch = shard.epoch.wrapping_add(1);
            shard.items.clear();
            shard.order.clear();
            shard.bytes = 0;
        }
    }

    /// Forgets `key`.
    pub fn invalidate(&self, key: &AccountKey) {
        let mut shard = self.shard(key);
        shard.epoch = shard.epoch.wrapping_add(1);
        if let Some(old) = shard.items.remove(key) {
            shard.bytes -= cost(&old);
        }
    }

    /// Bytes accounted for, over all shards.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key() -> AccountKey {
        AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap()
    }

    fn jwt(size: usize) -> StoredJwt {
        StoredJwt {
            bytes: Bytes::from(vec![b'x'; size]),
            etag: Some("J".into()),
            exp: 0,
            iat: 0,
        }
    }

    #[test]
    fn put_get_replace_invalidate() {
        let cache = JwtCache::new(1 << 20);
        let k = key();
        assert!(cache.get(&k).is_none());
        cache.put(&k, &jwt(10), cache.epoch(&k));
        assert_eq!(cache.get(&k).unwrap().bytes.len(), 10);
        cache.put(&k, &jwt(20), cache.epoch(&k));
        assert_eq!(cache.get(&k).unwrap().bytes.len(), 20);
        assert_eq!(cache.bytes(), 20 + 1 + ENTRY_OVERHEAD);
        cache.invalidate(&k);
        assert!(cache.get(&k).is_none());
        assert_eq!(cache.bytes(), 0);
        // A read that began before the invalidation does not put stale content back.
        let before = cache.epoch(&k);
        cache.invalidate(&k);
        cache.put(&k, &jwt(30), before);
        assert!(cache.get(&k).is_none());
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = JwtCache::new(64 * 1024);
        let keys: Vec<AccountKey> = (0..1000).map(|_| key()).collect();
        for k in &keys {
            // Put twice: once full, a key gets in on its second miss.
            cache.put(k, &jwt(700), cache.epoch(k));
            cache.put(k, &jwt(700), cache.epoch(k));
            assert!(cache.get(k).is_some(), "the newest entry is kept");
        }
        assert!(cache.bytes() <= 64 * 1024, "{}", cache.bytes());
        let held = keys.iter().filter(|k| cache.get(k).is_some()).count();
        assert!(held > 40 && held < 1000, "{held}");
    }

    #[test]
    fn a_full_cache_admits_a_key_on_its_second_miss_only() {
        let cache = JwtCache::new(64 * 1024);
        let keys: Vec<AccountKey> = (0..1000).map(|_| key()).collect();
        for k in &keys {
            cache.put(k, &jwt(700), cache.epoch(k));
        }
        let held_after_one_pass = cache.bytes();
        assert!(held_after_one_pass <= 64 * 1024);
        // A cold key that misses once does not get in and evicts nothing ...
        let cold = key();
        let held: Vec<bool> = keys.iter().map(|k| cache.get(k).is_some()).collect();
        cache.put(&cold, &jwt(700), cache.epoch(&cold));
        assert!(cache.get(&cold).is_none());
        assert_eq!(
            held,
            keys.iter()
                .map(|k| cache.get(k).is_some())
                .collect::<Vec<_>>()
        );
        // ... but the second miss admits it.
        cache.put(&cold, &jwt(700), cache.epoch(&cold));
        assert!(cache.get(&cold).is_some());
        // Replacing an entry that is already cached needs no admission.
        cache.put(&cold, &jwt(600), cache.epoch(&cold));
        assert_eq!(cache.get(&cold).unwrap().bytes.len(), 600);
    }
}
