//! [`GroupSync`]: one `syncfs(2)` makes a whole batch of directory-store writes durable. The
//! store's writer takes the puts queued meanwhile as a batch ([`super::writer`]): it writes
//! every temp file, syncs the file system once, renames them all, and syncs once more before
//! any of them is acknowledged. So N concurrent writes cost two syncs instead of 2N fsyncs.
//!
//! `syncfs` writes back the whole file system (other programs' dirty data too) and reports
//! write-back errors only since Linux 5.8, so [`GroupSync::open`] gives `None` on older
//! kernels and other systems, and `store { groupcommit: false }` keeps one fsync per file.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;

/// The file system of a store folder, synced as a whole.
#[derive(Debug)]
pub struct GroupSync {
    /// An fd on the store folder: what `syncfs` is called on.
    fs: File,
    /// The device of that file system: files elsewhere are not covered by its sync.
    dev: u64,
    /// Where replaced files go to be closed ([`GroupSync::release`]).
    closer: Option<mpsc::Sender<Vec<File>>>,
}

impl GroupSync {
    /// A group sync for the file system of `folder`, or `None` where `syncfs` cannot be
    /// trusted to report errors (not Linux, or Linux before 5.8).
    pub fn open(folder: &Path) -> io::Result<Option<Self>> {
        if !syncfs_reports_errors() {
            return Ok(None);
        }
        let fs = File::open(folder)?;
        let dev = fs.metadata()?.dev();
        let (closer, files) = mpsc::channel::<Vec<File>>();
        let spawned = std::thread::Builder::new()
            .name("store-closer".into())
            .spawn(move || files.into_iter().for_each(drop));
        let closer = spawned.is_ok().then_some(closer);
        Ok(Some(GroupSync { fs, dev, closer }))
    }

    /// Closes `files` on another thread. They are the files a batch renamed over, opened
    /// before the renames: closing the last fd of a replaced file frees it (truncates it and
    /// frees its blocks, with a discard where the file system is mounted with `discard`),
    /// which the writer need not wait for before it answers. Closes them here when that
    /// thread could not be started.
    pub fn release(&self, files: Vec<File>) {
        if let Some(Err(mpsc::SendError(files))) = self.closer.as_ref().map(|c| c.send(files)) {
            drop(files);
        }
    }

    /// `true` when `file` is on the file system this group syncs.
    pub fn covers(&self, file: &File) -> io::Result<bool> {
        Ok(file.metadata()?.dev() == self.dev)
    }

    /// Makes everything written (and renamed) on the file system so far durable.
    pub fn sync(&self) -> io::Result<()> {
        syncfs(&self.fs)
    }
}

#[cfg(target_os = "linux")]
fn syncfs(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the fd, which `file` keeps open for the call.
    match unsafe { libc::syncfs(file.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn syncfs(_file: &File) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "syncfs"))
}

/// `true` on Linux 5.8 and later, whose `syncfs` reports write-back errors.
fn syncfs_reports_errors() -> bool {
    cfg!(target_os = "linux") && kernel_release().is_some_and(|r| at_least(&r, (5, 8)))
}

/// The running kernel's release (`uname -r`).
fn kernel_release() -> Option<String> {
    // SAFETY: uname fills the zeroed struct it is given; its fields are NUL-terminated.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return None;
    }
    let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) };
    Some(release.to_string_lossy().into_owned())
}

/// `true` when a release like `6.1.0-18-amd64` is `min` (major, minor) or later.
fn at_least(release: &str, min: (u64, u64)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this process has an fd open on a file whose path was `path` (deleted since).
    fn open_deleted(path: &Path) -> bool {
        let deleted = format!("{} (deleted)", path.display());
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == deleted))
    }

    #[test]
    fn released_files_are_closed_by_the_closer() {
        let tmp = tempfile::tempdir().unwrap();
        let Some(group) = GroupSync::open(tmp.path()).unwrap() else {
            return; // not Linux 5.8+: the store uses one fsync per file
        };
        let path = tmp.path().join("replaced.jwt");
        std::fs::write(&path, b"old").unwrap();
        let old = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(open_deleted(&path));
        group.release(vec![old]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while open_deleted(&path) {
            assert!(std::time::Instant::now() < deadline, "still open");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn kernel_releases_are_compared_by_major_and_minor() {
        assert!(at_least("5.8.0", (5, 8)));
        assert!(at_least("6.1.0-18-amd64", (5, 8)));
        assert!(at_least("5.10.102.1-microsoft-standard-WSL2", (5, 8)));
        assert!(!at_least("5.4.0-150-generic", (5, 8)));
        assert!(!at_least("4.19.0", (5, 8)));
        assert!(!at_least("weird", (5, 8)));
    }
}
