//! Whether a folder store can be used right now, for the readiness check: the folder exists,
//! is a directory and grants the process the access the store needs (list and read; write too
//! for a writable store, which a read-only file system refuses). One `stat` and one `access`:
//! no file of the store is opened, so the check costs the same for any number of JWTs.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::StoreError;

/// Checks that `root` is a directory the process can list and read, and write when `write`.
pub(crate) fn check_folder(root: &Path, write: bool) -> Result<(), StoreError> {
    let failed = |action, source| StoreError::Io {
        action,
        path: root.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(root).map_err(|e| failed("reading", e))?;
    if !meta.is_dir() {
        return Err(failed("opening", std::io::Error::other("not a directory")));
    }
    let path = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| failed("reading", std::io::Error::other("NUL byte in the path")))?;
    let mut mode = libc::R_OK | libc::X_OK;
    if write {
        mode |= libc::W_OK;
    }
    // SAFETY: `path` is a NUL-terminated string that outlives the call; faccessat only reads it.
    let status = unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) };
    if status != 0 {
        let action = if write { "writing to" } else { "reading" };
        return Err(failed(action, std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_folder_is_usable_and_a_missing_one_or_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_folder(dir.path(), true).is_ok());
        assert!(check_folder(dir.path(), false).is_ok());
        let missing = dir.path().join("gone");
        let e = check_folder(&missing, false).unwrap_err().to_string();
        assert!(e.contains("No such file or directory"), "{e}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = check_folder(&file, true).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}
