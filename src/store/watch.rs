//! Watching a read-only store's folder (directory or nsc folder): a changed account file leads
//! to exactly one update notification per change. Events are debounced per file (editors and
//! atomic renames produce bursts), and a file whose content did not change is not announced
//! again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::accounts::Accounts;

/// Quiet time after the last event on a file before it is read.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// A running watch; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
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

/// Watches `root` recursively and hands changed account files to `accounts`.
pub fn watch(root: &Path, accounts: Arc<Accounts>) -> Result<Watch, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !event.kind.is_access() && !event.kind.is_remove() => {
                for path in event.paths {
                    if interesting(&path) {
                        let _ = tx.send(path);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("file watcher error: {e}"),
        })?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    tracing::info!("watching {} for changed account files", root.display());
    let task = tokio::spawn(async move {
        let mut due: HashMap<PathBuf, Instant> = HashMap::new();
        let mut last_seen: HashMap<String, [u8; 32]> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                path = rx.recv() => match path {
                    Some(path) => { due.insert(path, Instant::now() + DEBOUNCE); }
                    None => return,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let ready: Vec<PathBuf> = due.iter().filter(|(_, t)| **t <= now).map(|(p, _)| p.clone()).collect();
                    for path in ready {
                        due.remove(&path);
                        let Ok(bytes) = tokio::fs::read(&path).await else { continue };
                        // Only content that differs from what this file last held counts as a
                        // change (a rewrite with the same bytes is not announced again).
                        let digest: [u8; 32] = Sha256::digest(&bytes).into();
                        let name = path.to_string_lossy().into_owned();
                        if last_seen.insert(name, digest) == Some(digest) {
                            continue;
                        }
                        accounts.file_changed(&path, &bytes);
                    }
                }
            }
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}
