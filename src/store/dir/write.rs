//! The write path of [`DirStore`]: temp file, sync, rename, sync — for one JWT or for a batch
//! whose writes share their syncs ([`GroupSync`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{create_dirs_durably, io_error, open_no_follow, sync_dir, DirStore, TEMP_MARKER};
use crate::store::group_sync::GroupSync;
use crate::store::{StoreError, StoreKey};

/// One write of a batch: the key, the file it goes to (in the key's folder), the bytes.
pub(super) type Item<'a, K> = (&'a K, PathBuf, &'a [u8]);

/// A temp file written and either covered by the group sync or fsynced alone.
struct Temp {
    path: PathBuf,
    grouped: bool,
}

impl<K: StoreKey> DirStore<K> {
    /// The sync shared by a batch's writes, when group commit is on and possible. Opened at
    /// the first write that finds the root (a deferred store makes it at its first write).
    pub(super) fn group(&self) -> Option<&GroupSync> {
        if !self.group_commit {
            return None;
        }
        if let Some(group) = self.group.get() {
            return group.as_ref();
        }
        let opened = match GroupSync::open(&self.root) {
            Ok(group) => group,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => {
                let root = self.root.display();
                tracing::warn!("{root}: no group commit, each write syncs alone: {e}");
                None
            }
        };
        self.group.get_or_init(|| opened).as_ref()
    }

    /// Writes `bytes` to `target` (a file in `key`'s folder) durably: see
    /// [`DirStore::write_all_durably`].
    pub(super) fn write_durably(
        &self,
        key: &K,
        target: &Path,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut results = self.write_all_durably(&[(key, target.to_path_buf(), bytes)]);
        results.pop().unwrap_or(Ok(()))
    }

    /// Writes each item through a temp file in its folder that is made durable and renamed
    /// over the target, then makes the renames durable (and a new folder's entry); one result
    /// per item. With group commit and more than one item, one `syncfs` covers every temp file
    /// and one every rename; otherwise each temp file and then its folder is fsynced (a lone
    /// write costs the same as without group commit, and waits for no one else's data).
    pub(super) fn write_all_durably(&self, items: &[Item<'_, K>]) -> Vec<Result<(), StoreError>> {
        #[cfg(feature = "fault-injection")]
        if self.in_place {
            return items
                .iter()
                .map(|(key, target, bytes)| self.write_in_place(*key, target, bytes))
                .collect();
        }
        let group = self.group().filter(|_| items.len() > 1);
        let mut temps: Vec<Result<Temp, StoreError>> = items
            .iter()
            .map(|(key, _, bytes)| self.write_temp(&self.folder(key), key, bytes, group))
            .collect();
        if let Some(Err(e)) = group.map(|g| sync_grouped(g, &temps)) {
            for temp in temps.iter_mut().filter(|t| is_grouped(t)) {
                if let Ok(t) = temp {
                    let _ = fs::remove_file(&t.path);
                }
                *temp = Err(io_error("syncing", &self.root, copy(&e)));
            }
        }
        // The files about to be replaced, held open so that the renames do not free them.
        let replaced: Vec<File> = match group {
            Some(_) => items
                .iter()
                .filter_map(|(_, target, _)| open_no_follow(target).ok())
                .collect(),
            None => Vec::new(),
        };
        let renamed: Vec<Result<Temp, StoreError>> = items
            .iter()
            .zip(temps)
            .map(|((_, target, _), temp)| rename(temp?, target))
            .collect();
        let synced = group.map(|g| sync_grouped(g, &renamed));
        if let Some(group) = group {
            group.release(replaced);
        }
        items
            .iter()
            .zip(renamed)
            .map(|((key, _, _), done)| match (done?.grouped, &synced) {
                (true, Some(Err(e))) => Err(io_error("syncing", &self.root, copy(e))),
                (true, _) => Ok(()),
                (false, _) => sync_dir(&self.folder(key)),
            })
            .collect()
    }

    /// Test builds only: the unsafe in-place write of [`crate::store::fault`].
    #[cfg(feature = "fault-injection")]
    fn write_in_place(&self, key: &K, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        create_dirs_durably(&self.folder(key), self.modes.dir)?;
        crate::store::fault::write_in_place(target, bytes, self.modes.file)
            .map_err(|e| io_error("writing", target, e))
    }

    /// Writes a temp file in `folder`, making the folder (durably) when missing: the folder is
    /// looked for only when the temp file cannot be made in it. A file that `group` covers is
    /// left for its sync; any other is fsynced now.
    fn write_temp(
        &self,
        folder: &Path,
        key: &K,
        jwt: &[u8],
        group: Option<&GroupSync>,
    ) -> Result<Temp, StoreError> {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let path = folder.join(format!(".{}{TEMP_MARKER}{}-{n}", key.as_str(), self.pid));
        let create = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.modes.file)
                .open(&path)
        };
        let result = match create() {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                create_dirs_durably(folder, self.modes.dir)?;
                create()
            }
            other => other,
        }
        .and_then(|mut file| {
            file.write_all(jwt)?;
            match group {
                Some(group) if group.covers(&file)? => Ok(true),
                _ => file.sync_all().map(|()| false),
            }
        });
        match result {
            Ok(grouped) => Ok(Temp { path, grouped }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(io_error("writing", &path, e))
            }
        }
    }
}

/// `true` for a temp file left to the group sync.
fn is_grouped(temp: &Result<Temp, StoreError>) -> bool {
    matches!(temp, Ok(Temp { grouped: true, .. }))
}

/// Runs the group sync when any of `temps` waits for it.
fn sync_grouped(group: &GroupSync, temps: &[Result<Temp, StoreError>]) -> io::Result<()> {
    match temps.iter().any(is_grouped) {
        true => group.sync(),
        false => Ok(()),
    }
}

/// Renames a durable temp file onto `target` (removing it if that fails).
fn rename(temp: Temp, target: &Path) -> Result<Temp, StoreError> {
    match fs::rename(&temp.path, target) {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = fs::remove_file(&temp.path);
            Err(io_error("renaming into", target, e))
        }
    }
}

/// The same error again, for each write a failed sync fails.
fn copy(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
