//! A directory of `<pubkey>.jwt` files, flat or sharded into `<last two chars>/<pubkey>.jwt` —
//! the layout of nats-server's `DirJWTStore` and of the Go account server, so an existing
//! directory can be served as is.
//!
//! Writes are atomic and durable: the JWT goes to a temp file in the target folder, which is
//! fsynced, renamed over the target, and the folder is fsynced. Temp files are named
//! `.<pubkey>.jwt.tmp-<pid>-<n>`, so they never look like a JWT to this store or nats-server.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{JwtStore, StoreError, StoreKey};
use crate::keys::AccountKey;

/// File name suffix of a stored JWT.
pub const JWT_EXTENSION: &str = ".jwt";

/// Marker inside the name of a temp file (`.<key>.jwt.tmp-...`).
pub const TEMP_MARKER: &str = ".jwt.tmp-";

/// A directory store of JWTs keyed by `K` (account keys by default).
#[derive(Debug)]
pub struct DirStore<K = AccountKey> {
    root: PathBuf,
    shard: bool,
    read_only: bool,
    temp_counter: AtomicU64,
    _keys: std::marker::PhantomData<fn(K)>,
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

impl<K: StoreKey> DirStore<K> {
    /// Opens (and creates when missing) the directory `root`.
    pub fn open(root: &Path, shard: bool) -> Result<Self, StoreError> {
        fs::create_dir_all(root).map_err(|e| io_error("creating", root, e))?;
        Self::open_existing(root, shard, false)
    }

    /// A store in `root` that creates the folder only when the first JWT is saved (for
    /// activations, which most deployments never use).
    pub fn open_deferred(root: &Path, shard: bool) -> Self {
        DirStore {
            root: root.to_path_buf(),
            shard,
            read_only: false,
            temp_counter: AtomicU64::new(0),
            _keys: std::marker::PhantomData,
        }
    }

    /// Opens an existing directory that is never written to (`store { readonly: true }`).
    pub fn open_read_only(root: &Path, shard: bool) -> Result<Self, StoreError> {
        Self::open_existing(root, shard, true)
    }

    fn open_existing(root: &Path, shard: bool, read_only: bool) -> Result<Self, StoreError> {
        let meta = fs::metadata(root).map_err(|e| io_error("reading", root, e))?;
        if !meta.is_dir() {
            return Err(io_error(
                "opening",
                root,
                std::io::Error::other("not a directory"),
            ));
        }
        Ok(DirStore {
            root: root.to_path_buf(),
            shard,
            read_only,
            temp_counter: AtomicU64::new(0),
            _keys: std::marker::PhantomData,
        })
    }

    /// The folder the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `true` when the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The folder holding `key`'s file.
    fn folder(&self, key: &K) -> PathBuf {
        if self.shard {
            let text = key.as_str();
            self.root.join(&text[text.len().saturating_sub(2)..])
        } else {
            self.root.clone()
        }
    }

    /// The folders that may hold JWT files: the root and, when sharded, its two-character
    /// sub-folders.
    fn folders(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut folders = vec![self.root.clone()];
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        if self.shard {
            let entries =
                fs::read_dir(&self.root).map_err(|e| io_error("listing", &self.root, e))?;
            for entry in entries.flatten() {
                if entry.file_name().len() == 2 && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    folders.push(entry.path());
                }
            }
        }
        Ok(folders)
    }

    /// The key a file in this store is named after, if it is a JWT file.
    pub fn key_of(&self, path: &Path) -> Option<K> {
        let name = path.file_name()?.to_str()?;
        let stem = name.strip_suffix(JWT_EXTENSION)?;
        if stem.starts_with('.') {
            return None;
        }
        K::parse_key(stem)
    }

    /// The file holding `key`'s JWT (one allocation: this is on the GET path).
    pub fn path_of(&self, key: &K) -> PathBuf {
        let text = key.as_str();
        let mut path = PathBuf::with_capacity(
            self.root.as_os_str().len() + 4 + text.len() + JWT_EXTENSION.len(),
        );
        path.push(&self.root);
        if self.shard {
            path.push(&text[text.len().saturating_sub(2)..]);
        }
        path.push(text);
        path.as_mut_os_string().push(JWT_EXTENSION);
        path
    }

    /// Calls `f` with the key of every JWT file, folder by folder, without collecting them
    /// (a store may hold millions).
    fn for_each_key(&self, mut f: impl FnMut(K)) -> Result<(), StoreError> {
        for folder in self.folders()? {
            let entries = fs::read_dir(&folder).map_err(|e| io_error("listing", &folder, e))?;
            for entry in entries.flatten() {
                if let Some(key) = self.key_of(&entry.path()) {
                    f(key);
                }
            }
        }
        Ok(())
    }

    /// Removes temp files a crash left behind (in the root and, when sharded, in the shard
    /// folders). Returns how many were removed. Runs off the critical path at startup.
    pub fn sweep_temp_files(&self) -> Result<usize, StoreError> {
        if self.read_only {
            return Ok(0);
        }
        let folders = self.folders()?;
        let mut removed = 0;
        for folder in folders {
            let entries = fs::read_dir(&folder).map_err(|e| io_error("listing", &folder, e))?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.contains(TEMP_MARKER) {
                    fs::remove_file(entry.path())
                        .map_err(|e| io_error("removing", &entry.path(), e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Writes `bytes` to `target` (a file in `key`'s folder) through a temp file that is
    /// fsynced and renamed over it, then fsyncs the folder (and the new folder's parent).
    fn write_durably(&self, key: &K, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let folder = self.folder(key);
        if !folder.is_dir() {
            fs::create_dir_all(&folder).map_err(|e| io_error("creating", &folder, e))?;
            if let Some(parent) = folder.parent() {
                sync_dir(parent)?;
            }
        }
        let temp = self.write_temp(&folder, key, bytes)?;
        if let Err(e) = fs::rename(&temp, target) {
            let _ = fs::remove_file(&temp);
            return Err(io_error("renaming into", target, e));
        }
        sync_dir(&folder)
    }

    fn write_temp(&self, folder: &Path, key: &K, jwt: &[u8]) -> Result<PathBuf, StoreError> {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = folder.join(format!(
            ".{}{TEMP_MARKER}{}-{n}",
            key.as_str(),
            std::process::id()
        ));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(jwt)?;
            file.sync_all()
        })();
        match result {
            Ok(()) => Ok(temp),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(io_error("writing", &temp, e))
            }
        }
    }
}

/// Reads a whole file: open, read, close. A JWT fits the stack buffer, so the result is
/// allocated once at its exact size (it may be kept in the JWT cache); larger files take more
/// reads. A read of a regular file that returns less than asked for has reached the end, so
/// no extra read is spent to see 0. (`fs::read` adds a `statx` to size its buffer and that
/// extra read.) This is the GET hot path.
fn read_small_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut chunk = [0u8; 4096];
    let mut whole: Vec<u8> = Vec::new();
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                whole.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(whole)
}

/// fsyncs a directory so that a rename or a new entry in it is durable.
/// `<pubkey>.jwt.deleted` next to `<pubkey>.jwt`: where a deleted account's JWT goes
/// (nats-server's full-resolver layout; nats-server does not index these files).
fn deleted_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".deleted");
    PathBuf::from(name)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing", dir, e))
}

impl<K: StoreKey> JwtStore<K> for DirStore<K> {
    fn load(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(key);
        match read_small_file(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &path, e)),
        }
    }

    fn save(&self, key: &K, jwt: &[u8]) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        self.write_durably(key, &self.path_of(key), jwt)
    }

    fn delete(&self, key: &K, tombstone: &[u8]) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let path = self.path_of(key);
        let target = deleted_path(&path);
        match fs::rename(&path, &target) {
            Ok(()) => sync_dir(&self.folder(key)),
            // Deleted already: the first tombstone (the newer deleted JWT) stays.
            Err(e) if e.kind() == ErrorKind::NotFound && target.exists() => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.write_durably(key, &target, tombstone)
            }
            Err(e) => Err(io_error("renaming", &path, e)),
        }
    }

    fn tombstone(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        let path = deleted_path(&self.path_of(key));
        match read_small_file(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &path, e)),
        }
    }

    fn keys(&self) -> Result<Vec<K>, StoreError> {
        let mut keys = Vec::new();
        self.for_each_key(|key| keys.push(key))?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn count(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        self.for_each_key(|_| count += 1)?;
        Ok(count)
    }

    fn describe(&self) -> String {
        format!(
            "{}directory {}{}",
            if self.read_only { "read-only " } else { "" },
            self.root.display(),
            if self.shard { " (sharded)" } else { "" }
        )
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccountKey {
        AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap()
    }

    #[test]
    fn keys_lists_jwt_files_only_and_read_only_refuses_writes() {
        for shard in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let store: DirStore = DirStore::open(tmp.path(), shard).unwrap();
            let (a, b) = (key(), key());
            store.save(&a, b"a").unwrap();
            store.save(&b, b"b").unwrap();
            fs::write(tmp.path().join("notes.txt"), b"x").unwrap();
            fs::write(tmp.path().join("NOTAKEY.jwt"), b"x").unwrap();
            let mut expected = vec![a.clone(), b.clone()];
            expected.sort();
            assert_eq!(store.keys().unwrap(), expected);
            assert_eq!(store.count().unwrap(), 2);
            let ro: DirStore = DirStore::open_read_only(tmp.path(), shard).unwrap();
            assert!(matches!(ro.save(&a, b"new"), Err(StoreError::ReadOnly)));
            assert_eq!(ro.load(&a).unwrap().as_deref(), Some(&b"a"[..]));
        }
        assert!(
            DirStore::<AccountKey>::open_read_only(Path::new("/nonexistent/x"), false).is_err()
        );
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn flat_layout_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let store: DirStore = DirStore::open(tmp.path(), false).unwrap();
        let k = key();
        assert_eq!(store.load(&k).unwrap(), None);
        store.save(&k, b"first").unwrap();
        store.save(&k, b"second").unwrap();
        assert_eq!(store.load(&k).unwrap().as_deref(), Some(&b"second"[..]));
        assert_eq!(names(tmp.path()), [format!("{k}.jwt")]);
    }

    #[test]
    fn sharded_layout_uses_last_two_characters() {
        let tmp = tempfile::tempdir().unwrap();
        let store: DirStore = DirStore::open(&tmp.path().join("new/sub"), true).unwrap();
        let k = key();
        store.save(&k, b"jwt").unwrap();
        let expected = tmp
            .path()
            .join("new/sub")
            .join(k.shard())
            .join(format!("{k}.jwt"));
        assert_eq!(fs::read(expected).unwrap(), b"jwt");
        assert_eq!(names(&tmp.path().join("new/sub")), [k.shard().to_string()]);
    }

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let store: DirStore = DirStore::open(tmp.path(), false).unwrap();
        let k = key();
        store.save(&k, b"old").unwrap();
        // Make the target a directory: the rename fails, the old content must stay unchanged.
        let other = key();
        fs::create_dir(store.path_of(&other)).unwrap();
        fs::write(store.path_of(&other).join("x"), b"x").unwrap();
        assert!(store.save(&other, b"new").is_err());
        assert_eq!(store.load(&k).unwrap().as_deref(), Some(&b"old"[..]));
        assert!(names(tmp.path()).iter().all(|n| !n.contains(TEMP_MARKER)));
    }

    #[test]
    fn leftover_temp_files_are_swept_and_jwts_kept() {
        for shard in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let store: DirStore = DirStore::open(tmp.path(), shard).unwrap();
            let k = key();
            store.save(&k, b"kept").unwrap();
            let folder = store.path_of(&k).parent().unwrap().to_path_buf();
            fs::write(folder.join(format!(".{k}{TEMP_MARKER}1-0")), b"half").unwrap();
            fs::write(tmp.path().join(format!(".{k}{TEMP_MARKER}2-0")), b"").unwrap();
            assert_eq!(store.sweep_temp_files().unwrap(), 2);
            assert_eq!(store.load(&k).unwrap().as_deref(), Some(&b"kept"[..]));
            assert_eq!(store.sweep_temp_files().unwrap(), 0);
        }
    }

    #[test]
    fn delete_renames_to_dot_deleted() {
        for shard in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let store: DirStore = DirStore::open(tmp.path(), shard).unwrap();
            let k = key();
            store.save(&k, b"v1").unwrap();
            store.delete(&k, b"request").unwrap();
            let deleted = store.path_of(&k).with_extension("jwt.deleted");
            assert_eq!(fs::read(deleted).unwrap(), b"v1");
            assert!(!store.path_of(&k).exists());
            let ro: DirStore = DirStore::open_read_only(tmp.path(), shard).unwrap();
            assert!(matches!(ro.delete(&k, b""), Err(StoreError::ReadOnly)));
        }
    }

    #[test]
    fn root_that_is_a_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(DirStore::<AccountKey>::open(&file, false).is_err());
    }
}
