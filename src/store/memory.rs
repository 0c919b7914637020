//! An in-memory store (the Go v0.8 default when no directory is configured): thread-safe, lost
//! on restart.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{JwtStore, StoreError, StoreKey};
use crate::keys::AccountKey;

/// JWTs kept in memory only.
#[derive(Debug)]
pub struct MemoryStore<K = AccountKey> {
    items: RwLock<BTreeMap<K, Vec<u8>>>,
    tombstones: RwLock<BTreeMap<K, Vec<u8>>>,
}

impl<K: StoreKey> Default for MemoryStore<K> {
    fn default() -> Self {
        MemoryStore {
            items: RwLock::new(BTreeMap::new()),
            tombstones: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<K: StoreKey> JwtStore<K> for MemoryStore<K> {
    fn load(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        let items = self.items.read().unwrap_or_else(|e| e.into_inner());
        Ok(items.get(key).cloned())
    }

    fn save(&self, key: &K, jwt: &[u8]) -> Result<(), StoreError> {
        let mut items = self.items.write().unwrap_or_else(|e| e.into_inner());
        items.insert(key.clone(), jwt.to_vec());
        Ok(())
    }

    fn keys(&self) -> Result<Vec<K>, StoreError> {
        let items = self.items.read().unwrap_or_else(|e| e.into_inner());
        Ok(items.keys().cloned().collect())
    }

    fn delete(&self, key: &K, tombstone: &[u8]) -> Result<(), StoreError> {
        let mut items = self.items.write().unwrap_or_else(|e| e.into_inner());
        let mut tombstones = self.tombstones.write().unwrap_or_else(|e| e.into_inner());
        match items.remove(key) {
            Some(jwt) => {
                tombstones.insert(key.clone(), jwt);
            }
            None => {
                // Deleted already: the first tombstone stays.
                tombstones
                    .entry(key.clone())
                    .or_insert_with(|| tombstone.to_vec());
            }
        }
        Ok(())
    }

    fn tombstone(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        let tombstones = self.tombstones.read().unwrap_or_else(|e| e.into_inner());
        Ok(tombstones.get(key).cloned())
    }

    fn describe(&self) -> String {
        "in-memory store".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_saves_and_loads() {
        let store = std::sync::Arc::new(MemoryStore::<AccountKey>::default());
        let keys: Vec<AccountKey> = (0..8)
            .map(|_| AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap())
            .collect();
        let handles: Vec<_> = keys
            .iter()
            .cloned()
            .map(|k| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..100u8 {
                        store.save(&k, &[i]).unwrap();
                        assert!(store.load(&k).unwrap().is_some());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for k in &keys {
            assert_eq!(store.load(k).unwrap(), Some(vec![99]));
        }
        assert_eq!(store.keys().unwrap().len(), 8);
    }
}
