//! A store that also reads from an older location: writes, deletes and tombstones go to the
//! main store, reads fall back to the old one. Serves activation tokens that the Go v0.8 server
//! wrote next to the account JWTs (`<dir>/==/<hash>.jwt` sharded, `<dir>/<hash>.jwt` flat) while
//! new ones go to `<dir>/activations/`.

use std::sync::Arc;

use super::{JwtStore, StoreError, StoreKey};

/// The main store, with `old` read when the main one lacks a key.
pub struct WithFallback<K: StoreKey> {
    main: Arc<dyn JwtStore<K>>,
    old: Arc<dyn JwtStore<K>>,
}

impl<K: StoreKey> WithFallback<K> {
    /// Writes to `main`; reads `main`, then `old`.
    pub fn new(main: Arc<dyn JwtStore<K>>, old: Arc<dyn JwtStore<K>>) -> Self {
        WithFallback { main, old }
    }
}

impl<K: StoreKey> JwtStore<K> for WithFallback<K> {
    fn load(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        match self.main.load(key)? {
            Some(jwt) => Ok(Some(jwt)),
            None if self.main.tombstone(key)?.is_some() => Ok(None),
            None => self.old.load(key),
        }
    }

    fn save(&self, key: &K, jwt: &[u8]) -> Result<(), StoreError> {
        self.main.save(key, jwt)
    }

    fn keys(&self) -> Result<Vec<K>, StoreError> {
        let mut keys = self.main.keys()?;
        for key in self.old.keys()? {
            if self.main.tombstone(&key)?.is_none() {
                keys.push(key);
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn describe(&self) -> String {
        format!("{}, then {}", self.main.describe(), self.old.describe())
    }

    fn delete(&self, key: &K, tombstone: &[u8]) -> Result<(), StoreError> {
        self.main.delete(key, tombstone)
    }

    fn tombstone(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        self.main.tombstone(key)
    }

    fn is_read_only(&self) -> bool {
        self.main.is_read_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ActivationId;
    use crate::store::{DirStore, MemoryStore};

    fn id(c: char) -> ActivationId {
        ActivationId::parse(&format!("{}====", c.to_string().repeat(52))).unwrap()
    }

    #[test]
    fn reads_fall_back_and_writes_stay_in_the_main_store() {
        let tmp = tempfile::tempdir().unwrap();
        let old_dir: DirStore<ActivationId> =
            DirStore::open(&tmp.path().join("old"), false).unwrap();
        old_dir.save(&id('A'), b"old-a").unwrap();
        old_dir.save(&id('B'), b"old-b").unwrap();
        let main: Arc<dyn JwtStore<ActivationId>> = Arc::new(MemoryStore::default());
        let store = WithFallback::new(main.clone(), Arc::new(old_dir));
        store.save(&id('B'), b"new-b").unwrap();
        store.save(&id('C'), b"new-c").unwrap();
        assert_eq!(
            store.load(&id('A')).unwrap().as_deref(),
            Some(&b"old-a"[..])
        );
        assert_eq!(
            store.load(&id('B')).unwrap().as_deref(),
            Some(&b"new-b"[..])
        );
        assert_eq!(store.load(&id('D')).unwrap(), None);
        assert_eq!(store.keys().unwrap(), [id('A'), id('B'), id('C')]);
        assert_eq!(main.keys().unwrap(), [id('B'), id('C')]);
        // A delete hides the old copy too.
        store.delete(&id('A'), b"gone").unwrap();
        assert_eq!(store.load(&id('A')).unwrap(), None);
        assert_eq!(store.keys().unwrap(), [id('B'), id('C')]);
    }
}
