//! Process limits that decide how many connections can be open: the open-files limit is raised
//! to its hard limit at start, and the HTTP connection cap is kept below it, so that accepting
//! never fails with "Too many open files" (systemd's default soft limit is 1,024).

/// The open-files limit before and after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// Soft limit found at start.
    pub before: u64,
    /// Soft limit now (the hard limit when raising worked).
    pub now: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the limits, or the OS error.
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (before, hard): (u64, u64) = (limit.rlim_cur, limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct.
    let now = if before < hard && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        hard
    } else {
        before
    };
    Ok(OpenFiles { before, now, hard })
}

/// Files kept for everything but HTTP connections (store files, NATS, logs, the listener):
/// an eighth of the limit, at least 64 and at most 1,024.
fn reserved(files: u64) -> u64 {
    (files / 8).clamp(64, 1024)
}

/// The connection cap that fits `files` open files: `configured`, or fewer when the limit is
/// too low (at least 1).
pub fn connection_cap(configured: usize, files: u64) -> usize {
    let fits = files.saturating_sub(reserved(files)).max(1);
    configured.min(usize::try_from(fits).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_other_files() {
        assert_eq!(connection_cap(10_000, 1024), 896);
        assert_eq!(connection_cap(10_000, 20_000), 10_000);
        assert_eq!(connection_cap(10_000, 10_000), 8_976);
        assert_eq!(connection_cap(10, 20), 1);
        assert_eq!(connection_cap(100, u64::MAX), 100);
    }

    #[test]
    fn raising_reports_the_hard_limit() {
        let files = raise_open_files().unwrap();
        assert!(files.now >= files.before);
        assert!(files.now <= files.hard || files.hard < files.before);
    }
}
