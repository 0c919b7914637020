//! A directory of `<pubkey>.jwt` files, flat or sharded into `<last two chars>/<pubkey>.jwt` —
//! the layout of nats-server's `DirJWTStore` and of the Go account server, so an existing
//! directory can be served as is.
//!
//! Writes are atomic and durable: the JWT goes to a temp file in the target folder, which is
//! made durable, renamed over the target, and the rename is made durable before the write
//! returns. Concurrent writes share those syncs ([`GroupSync`]: one `syncfs` for all the temp
//! files written meanwhile, one for all their renames); with group commit off, or where
//! `syncfs` cannot be trusted, each temp file and then its folder is fsynced. Temp files are named
//! `.<pubkey>.jwt.tmp-<pid>-<n>`, so they never look like a JWT to this store or nats-server.
//!
//! Files are created with mode 0640 and folders with 0750 (nats-server's modes; configurable,
//! see [`Modes`]) whatever the umask grants. Reads never follow a symbolic link in the store: a
//! symlinked `<pubkey>.jwt` is an error, not a way to serve a file from elsewhere.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use super::group_sync::GroupSync;
use super::{JwtStore, StoreError, StoreKey};
use crate::keys::AccountKey;

mod write;

/// File name suffix of a stored JWT.
pub const JWT_EXTENSION: &str = ".jwt";

/// Marker inside the name of a temp file (`.<key>.jwt.tmp-...`).
pub const TEMP_MARKER: &str = ".jwt.tmp-";

/// Mode of the files the store creates unless configured (nats-server's).
pub const DEFAULT_FILE_MODE: u32 = 0o640;

/// Mode of the folders the store creates unless configured (nats-server's).
pub const DEFAULT_DIR_MODE: u32 = 0o750;

/// How old a temp file must be (by mtime) before the startup sweep takes it for a crash's
/// leftover: a write in flight, of this or another instance, is far younger.
pub const TEMP_FILE_MAX_AGE: Duration = Duration::from_secs(60);

/// Permission bits of what the store creates (the umask may still remove bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// Mode of new JWT files (`store.filemode`).
    pub file: u32,
    /// Mode of new folders (`store.dirmode`).
    pub dir: u32,
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            file: DEFAULT_FILE_MODE,
            dir: DEFAULT_DIR_MODE,
        }
    }
}

/// A directory store of JWTs keyed by `K` (account keys by default).
#[derive(Debug)]
pub struct DirStore<K = AccountKey> {
    root: PathBuf,
    shard: bool,
    read_only: bool,
    modes: Modes,
    temp_counter: AtomicU64,
    /// This process's id, in temp file names.
    pid: u32,
    /// Whether writes share syncs ([`GroupSync`]); on unless turned off.
    group_commit: bool,
    /// The shared syncs, opened at the first write (the root may not exist before).
    group: OnceLock<Option<GroupSync>>,
    /// Test builds only: write in place, without temp file or fsync (see [`super::fault`]).
    #[cfg(feature = "fault-injection")]
    in_place: bool,
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
    fn new(root: &Path, shard: bool, read_only: bool, modes: Modes) -> Self {
        DirStore {
            root: root.to_path_buf(),
            shard,
            read_only,
            modes,
            temp_counter: AtomicU64::new(0),
            pid: std::process::id(),
            group_commit: true,
            group: OnceLock::new(),
            #[cfg(feature = "fault-injection")]
            in_place: !read_only && super::fault::in_place_writes(),
            _keys: std::marker::PhantomData,
        }
    }

    /// Opens (and creates when missing) the directory `root`, with the default [`Modes`].
    pub fn open(root: &Path, shard: bool) -> Result<Self, StoreError> {
        Self::open_with_modes(root, shard, Modes::default())
    }

    /// Opens (and creates when missing, with `modes.dir`) the directory `root`; what the store
    /// creates gets `modes`.
    pub fn open_with_modes(root: &Path, shard: bool, modes: Modes) -> Result<Self, StoreError> {
        create_dirs_durably(root, modes.dir)?;
        check_is_dir(root)?;
        Ok(Self::new(root, shard, false, modes))
    }

    /// A store in `root` that creates the folder only when the first JWT is saved (for
    /// activations, which most deployments never use).
    pub fn open_deferred(root: &Path, shard: bool, modes: Modes) -> Self {
        Self::new(root, shard, false, modes)
    }

    /// Opens an existing directory that is never written to (`store { readonly: true }`).
    pub fn open_read_only(root: &Path, shard: bool) -> Result<Self, StoreError> {
        check_is_dir(root)?;
        Ok(Self::new(root, shard, true, Modes::default()))
    }

    /// Turns group commit ([`GroupSync`]) on or off (`store.groupcommit`; on by default): off,
    /// every write fsyncs its own temp file and folder, which never waits for other programs'
    /// writes to the same file system.
    pub fn with_group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// The modes of what the store creates.
    pub fn modes(&self) -> Modes {
        self.modes
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

    /// Calls `f` with the key of every JWT file, folder by folder in directory order, without
    /// collecting them (a store may hold millions), until `f` returns `false`.
    fn for_each_key(&self, mut f: impl FnMut(K) -> bool) -> Result<(), StoreError> {
        for folder in self.folders()? {
            let entries = fs::read_dir(&folder).map_err(|e| io_error("listing", &folder, e))?;
            for entry in entries.flatten() {
                if let Some(key) = self.key_of(&entry.path()) {
                    if !f(key) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes temp files a crash left behind (in the root and, when sharded, in the shard
    /// folders): regular files named as this store names them (`.<key>.jwt.tmp-<pid>-<n>`)
    /// whose mtime is more than [`TEMP_FILE_MAX_AGE`] ago. Younger ones may belong to a write
    /// in flight (of this or another instance) and are left alone. Returns how many were
    /// removed. Runs off the critical path at startup.
    pub fn sweep_temp_files(&self) -> Result<usize, StoreError> {
        if self.read_only {
            return Ok(0);
        }
        let mut removed = 0;
        for folder in self.folders()? {
            let entries = fs::read_dir(&folder).map_err(|e| io_error("listing", &folder, e))?;
            for entry in entries.flatten() {
                if self.is_stale_temp_file(&entry) {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        // Renamed or removed meanwhile: nothing left to sweep.
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error("removing", &entry.path(), e)),
                    }
                }
            }
        }
        Ok(removed)
    }

    /// `true` for a regular file with a temp file name of this store, last modified more than
    /// [`TEMP_FILE_MAX_AGE`] ago (a modification time in the future counts as young).
    fn is_stale_temp_file(&self, entry: &fs::DirEntry) -> bool {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp_name::<K>) {
            return false;
        }
        let Ok(meta) = entry.metadata() else {
            return false;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|mtime| SystemTime::now().duration_since(mtime).ok());
        meta.is_file() && age.is_some_and(|age| age > TEMP_FILE_MAX_AGE)
    }
}

/// Reads a whole file: open, read, close. A JWT fits the stack buffer, so the result is
/// allocated once at its exact size (it may be kept in the JWT cache); larger files take more
/// reads. A read of a regular file that returns less than asked for has reached the end, so
/// no extra read is spent to see 0. (`fs::read` adds a `statx` to size its buffer and that
/// extra read.) This is the GET hot path. A symbolic link is not followed: opening one fails
/// with `ELOOP` (see [`read_error`]).
fn read_small_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_no_follow(path)?;
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

/// Opens `path` for reading without following a symbolic link (one fails with `ELOOP`).
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// What a read of `path` that failed with `e` means: no file (`None`), or an error — a
/// symbolic link in the store's place of a file (refused, `O_NOFOLLOW` gives `ELOOP`) or an I/O
/// error.
fn read_error(path: &Path, e: std::io::Error) -> Result<Option<Vec<u8>>, StoreError> {
    match e.kind() {
        ErrorKind::NotFound => Ok(None),
        _ if e.raw_os_error() == Some(libc::ELOOP) => Err(StoreError::Symlink {
            path: path.display().to_string(),
        }),
        _ => Err(io_error("reading", path, e)),
    }
}

/// Reads `path` without following a symbolic link; `None` when there is no such file.
fn read_stored(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    read_small_file(path).map_or_else(|e| read_error(path, e), |bytes| Ok(Some(bytes)))
}

/// `<pubkey>.jwt.deleted` next to `<pubkey>.jwt`: where a deleted account's JWT goes
/// (nats-server's full-resolver layout; nats-server does not index these files).
fn deleted_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".deleted");
    PathBuf::from(name)
}

/// `true` when `name` is a temp file name of a store keyed by `K`:
/// `.<key>.jwt.tmp-<pid>-<n>` with a valid key and decimal `pid` and `n`.
fn is_temp_name<K: StoreKey>(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some((key, tail)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.split_once(TEMP_MARKER))
    else {
        return false;
    };
    let counters = tail.split_once('-');
    counters.is_some_and(|(pid, n)| digits(pid) && digits(n)) && K::parse_key(key).is_some()
}

/// Creates `dir` and its missing parents with `mode` (less the umask), and fsyncs the parent
/// of each folder it made, so that the new entries are durable before a JWT is put in them.
fn create_dirs_durably(dir: &Path, mode: u32) -> Result<(), StoreError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.is_dir())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| io_error("creating", dir, e))?;
    for made in missing {
        match made.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Fails unless `root` is a directory (or a symlink to one: the configured root may be).
fn check_is_dir(root: &Path) -> Result<(), StoreError> {
    let meta = fs::metadata(root).map_err(|e| io_error("reading", root, e))?;
    if meta.is_dir() {
        return Ok(());
    }
    Err(io_error(
        "opening",
        root,
        std::io::Error::other("not a directory"),
    ))
}

/// fsyncs a directory so that a rename or a new entry in it is durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing", dir, e))
}

impl<K: StoreKey> JwtStore<K> for DirStore<K> {
    fn load(&self, key: &K) -> Result<Option<Vec<u8>>, StoreError> {
        read_stored(&self.path_of(key))
    }

    fn save(&self, key: &K, jwt: &[u8]) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        self.write_durably(key, &self.path_of(key), jwt)
    }

    fn save_all(&self, items: &[(&K, &[u8])]) -> Vec<Result<(), StoreError>> {
        if self.read_only {
            return items.iter().map(|_| Err(StoreError::ReadOnly)).collect();
        }
        let writes: Vec<write::Item<'_, K>> = items
            .iter()
            .map(|(key, jwt)| (*key, self.path_of(key), *jwt))
            .collect();
        self.write_all_durably(&writes)
    }

    fn batches_writes(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        if self.in_place {
            return false;
        }
        !self.read_only && self.group().is_some()
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
        read_stored(&deleted_path(&self.path_of(key)))
    }

    fn keys(&self) -> Result<Vec<K>, StoreError> {
        let mut keys = Vec::new();
        self.for_each_key(|key| {
            keys.push(key);
            true
        })?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn count(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        self.for_each_key(|_| {
            count += 1;
            true
        })?;
        Ok(count)
    }

    fn visit_keys(&self, f: &mut dyn FnMut(K) -> bool) -> Result<(), StoreError> {
        self.for_each_key(f)
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

    fn check(&self) -> Result<(), StoreError> {
        super::usable::check_folder(&self.root, !self.read_only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

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

    /// Writes `path` with an mtime `age` ago.
    fn write_aged(path: &Path, bytes: &[u8], age: Duration) {
        fs::write(path, bytes).unwrap();
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn only_stale_temp_files_of_our_pattern_are_swept_and_jwts_kept() {
        let old = Duration::from_secs(120);
        for shard in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let store: DirStore = DirStore::open(tmp.path(), shard).unwrap();
            let k = key();
            store.save(&k, b"kept").unwrap();
            let folder = store.path_of(&k).parent().unwrap().to_path_buf();
            let stale = [
                folder.join(format!(".{k}{TEMP_MARKER}1-0")),
                tmp.path().join(format!(".{k}{TEMP_MARKER}2-17")),
            ];
            for path in &stale {
                write_aged(path, b"half", old);
            }
            let kept = [
                // A write in flight: fresh.
                folder.join(format!(".{k}{TEMP_MARKER}3-0")),
                // Old, but not our pattern: not a key, no counters, not hidden.
                folder.join(format!(".NOTAKEY{TEMP_MARKER}1-0")),
                folder.join(format!(".{k}{TEMP_MARKER}1")),
                folder.join(format!(".{k}{TEMP_MARKER}x-1")),
                folder.join(format!("{k}{TEMP_MARKER}1-0")),
            ];
            write_aged(&kept[0], b"in flight", Duration::ZERO);
            for path in &kept[1..] {
                write_aged(path, b"other", old);
            }
            assert_eq!(store.sweep_temp_files().unwrap(), 2);
            assert!(stale.iter().all(|p| !p.exists()));
            assert!(kept.iter().all(|p| p.exists()), "{:?}", names(&folder));
            assert_eq!(store.load(&k).unwrap().as_deref(), Some(&b"kept"[..]));
            assert_eq!(store.sweep_temp_files().unwrap(), 0);
        }
    }

    #[test]
    fn a_sweep_does_not_disturb_writes_in_flight() {
        let tmp = tempfile::tempdir().unwrap();
        let store: DirStore = DirStore::open(tmp.path(), false).unwrap();
        let k = key();
        let done = std::sync::atomic::AtomicBool::new(false);
        let sweeps = std::thread::scope(|s| {
            let sweeper = s.spawn(|| {
                let mut sweeps = 0u32;
                while !done.load(Ordering::SeqCst) && sweeps < 1_000_000 {
                    store.sweep_temp_files().unwrap();
                    sweeps += 1;
                }
                sweeps
            });
            let failed = (0..300)
                .filter_map(|i| store.save(&k, format!("v{i}").as_bytes()).err())
                .map(|e| e.to_string())
                .collect::<Vec<_>>();
            done.store(true, Ordering::SeqCst);
            assert!(
                failed.is_empty(),
                "{} failed, first: {}",
                failed.len(),
                failed[0]
            );
            sweeper.join().unwrap()
        });
        assert!(sweeps > 0);
        assert_eq!(store.load(&k).unwrap().as_deref(), Some(&b"v299"[..]));
    }

    #[test]
    fn reads_refuse_symlinks() {
        for shard in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let store: DirStore = DirStore::open(&tmp.path().join("store"), shard).unwrap();
            let secret = tmp.path().join("secret");
            fs::write(&secret, b"not for GETs").unwrap();
            let (linked, dangling) = (key(), key());
            store.save(&linked, b"real").unwrap();
            store.delete(&linked, b"").unwrap();
            std::os::unix::fs::symlink(&secret, store.path_of(&linked)).unwrap();
            fs::remove_file(deleted_path(&store.path_of(&linked))).unwrap();
            std::os::unix::fs::symlink(&secret, deleted_path(&store.path_of(&linked))).unwrap();
            store.save(&dangling, b"real").unwrap();
            fs::remove_file(store.path_of(&dangling)).unwrap();
            std::os::unix::fs::symlink(tmp.path().join("none"), store.path_of(&dangling)).unwrap();
            for result in [
                store.load(&linked),
                store.tombstone(&linked),
                store.load(&dangling),
            ] {
                match result {
                    Err(e @ StoreError::Symlink { .. }) => {
                        assert!(e.to_string().contains("symbolic link"), "{e}")
                    }
                    other => panic!("shard {shard}: {other:?}"),
                }
            }
            // A plain file still reads, and a save replaces the link (never writes through it).
            store.save(&linked, b"new").unwrap();
            assert_eq!(store.load(&linked).unwrap().as_deref(), Some(&b"new"[..]));
            assert_eq!(fs::read(&secret).unwrap(), b"not for GETs");
        }
    }

    /// The process umask, from `/proc/self/status` (reading it with `umask(2)` would change it).
    fn umask() -> u32 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_files_and_folders_get_the_modes() {
        let mask = umask();
        for modes in [
            Modes::default(),
            Modes {
                file: 0o604,
                dir: 0o705,
            },
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("a/b");
            let store: DirStore = DirStore::open_with_modes(&root, true, modes).unwrap();
            let k = key();
            store.save(&k, b"jwt").unwrap();
            store.delete(&key(), b"request").unwrap();
            let (file, dir) = (modes.file & !mask, modes.dir & !mask);
            let shard = store.path_of(&k).parent().unwrap().to_path_buf();
            for folder in [tmp.path().join("a"), root.clone(), shard] {
                assert_eq!(mode_of(&folder), dir, "{}", folder.display());
            }
            let files: Vec<PathBuf> = store.folders().unwrap()[1..]
                .iter()
                .flat_map(|f| fs::read_dir(f).unwrap().map(|e| e.unwrap().path()))
                .collect();
            assert_eq!(files.len(), 2);
            for path in files {
                assert_eq!(mode_of(&path), file, "{}", path.display());
            }
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
