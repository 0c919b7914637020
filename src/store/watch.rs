//! Watching a store's folder with inotify. For read-only stores (directory or nsc folder) a
//! changed account file leads to exactly one update notification per change: events are
//! debounced per file (editors and atomic renames produce bursts), and content that did not
//! change is not announced again. For every store the JWT cache forgets a file as soon as it
//! changes.
//!
//! The watch asks only for changes (create, close-after-write, rename, delete). The `notify`
//! crate always subscribes to `IN_OPEN` as well, which turns every GET (an `open` of a watched
//! file) into a wake-up of the watcher: measured at half the GET throughput, so inotify is used
//! directly.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::accounts::Accounts;
use crate::keys::AccountKey;

/// Quiet time after the last event on a file before it is read.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// How deep below the root folders are watched (sharded store: 1; nsc: `accounts/<name>`: 2).
const MAX_DEPTH: usize = 2;

/// What a watch does with a changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read-only stores: drop it from the cache and announce valid changes to nats-servers.
    Announce,
    /// Writable stores (changes come through POSTs): only keep the cache in step with hand
    /// edits.
    Invalidate,
}

/// A running watch; dropping it stops watching.
pub struct Watch {
    task: Option<JoinHandle<()>>,
    /// A watch being set up in the background (large stores).
    _deferred: Option<Arc<std::sync::Mutex<Option<Watch>>>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// A watch that another task puts into `slot` when it is ready; dropping this drops it.
    pub fn deferred(slot: Arc<std::sync::Mutex<Option<Watch>>>) -> Self {
        Watch {
            task: None,
            _deferred: Some(slot),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// `true` for files that may hold an account JWT (not temp files, not nsc user JWTs).
fn interesting(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".jwt")
        && !name.starts_with('.')
        && !path.components().any(|c| c.as_os_str() == "users")
}

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::ONLYDIR
}

/// Adds watches for `dir` and its sub-folders down to [`MAX_DEPTH`].
fn add_tree(
    watches: &mut Watches,
    dirs: &mut HashMap<WatchDescriptor, PathBuf>,
    dir: &Path,
    depth: usize,
) -> std::io::Result<()> {
    let wd = watches.add(dir, mask())?;
    dirs.insert(wd, dir.to_path_buf());
    if depth >= MAX_DEPTH || dir.file_name().is_some_and(|n| n == "users") {
        return Ok(());
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = add_tree(watches, dirs, &entry.path(), depth + 1);
            }
        }
    }
    Ok(())
}

/// Watches `root` and hands changed account files to `accounts`.
pub fn watch(root: &Path, accounts: Arc<Accounts>, mode: Mode) -> std::io::Result<Watch> {
    let inotify = Inotify::init()?;
    let mut watches = inotify.watches();
    let mut dirs = HashMap::new();
    add_tree(&mut watches, &mut dirs, root, 0)?;
    let depth_of = {
        let root = root.to_path_buf();
        move |p: &Path| {
            p.strip_prefix(&root)
                .map(|r| r.components().count())
                .unwrap_or(MAX_DEPTH)
        }
    };
    let mut events = inotify.into_event_stream(vec![0u8; 64 * 1024])?;
    if mode == Mode::Announce {
        tracing::info!("watching {} for changed account files", root.display());
    } else {
        tracing::debug!("watching {} to keep the JWT cache in step", root.display());
    }
    let task = tokio::spawn(async move {
        let mut due: HashMap<PathBuf, Instant> = HashMap::new();
        let mut last_seen: HashMap<PathBuf, [u8; 32]> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                event = events.next() => {
                    let event: inotify::Event<OsString> = match event {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => { tracing::warn!("file watch error: {e}"); continue; }
                        None => return,
                    };
                    let Some(dir) = dirs.get(&event.wd).cloned() else { continue };
                    let Some(name) = event.name else { continue };
                    let path = dir.join(name);
                    if event.mask.contains(EventMask::ISDIR) {
                        if event.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                            let depth = depth_of(&path);
                            let mut w = events.watches();
                            let _ = add_tree(&mut w, &mut dirs, &path, depth);
                        }
                        continue;
                    }
                    if !interesting(&path) {
                        continue;
                    }
                    // The cache must never serve what the file no longer holds.
                    if let Some(key) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| AccountKey::parse(s).ok()) {
                        accounts.forget(&key);
                    }
                    let gone = event.mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM);
                    if mode == Mode::Announce && !gone {
                        due.insert(path, Instant::now() + DEBOUNCE);
                    }
                }
                _ = tick.tick(), if !due.is_empty() => {
                    let now = Instant::now();
                    let ready: Vec<PathBuf> = due.iter().filter(|(_, t)| **t <= now).map(|(p, _)| p.clone()).collect();
                    for path in ready {
                        due.remove(&path);
                        let Ok(bytes) = tokio::fs::read(&path).await else { continue };
                        // Only content that differs from what this file last held counts as a
                        // change (a rewrite with the same bytes is not announced again).
                        let digest: [u8; 32] = Sha256::digest(&bytes).into();
                        if last_seen.insert(path.clone(), digest) == Some(digest) {
                            continue;
                        }
                        accounts.file_changed(&path, &bytes);
                    }
                }
            }
        }
    });
    Ok(Watch {
        task: Some(task),
        _deferred: None,
    })
}
