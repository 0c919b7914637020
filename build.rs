//! Records what `--version` prints besides the crate version: the git commit (short hash,
//! `+dirty` when tracked files differ from it, `unknown` outside a git checkout, e.g. when
//! built from a crate tarball) and the build date (UTC, `SOURCE_DATE_EPOCH` when set, for
//! reproducible builds). They reach the crate as `NAS_BUILD_COMMIT` and `NAS_BUILD_DATE`.
//!
//! The script reruns only when the commit or the tree's state can have changed: `HEAD`, the
//! branch ref it points to (loose or packed), and the files compiled into the binary (their
//! edits rebuild the crate anyway, and make the tree dirty); and when `SOURCE_DATE_EPOCH`
//! changes. So the date is that of the build that last ran the script, and `+dirty` says
//! whether tracked files differed from the commit then.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Not Cargo.toml: its packaging metadata would rebuild the crate for nothing (a version
    // bump rebuilds it anyway).
    for path in ["build.rs", "Cargo.lock", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = match git_dirs(&manifest_dir) {
        Some(dirs) => {
            watch_git(&dirs);
            commit(&manifest_dir).unwrap_or_else(|| "unknown".into())
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=NAS_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=NAS_BUILD_DATE={}", build_date());
}

/// Runs git in `dir` and returns its trimmed output when it succeeds. `--no-optional-locks`:
/// `git status` must not refresh the index behind the developer's back.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// The git directories of this checkout: the one holding `HEAD` and `index` (a worktree's
/// own) and the common one holding refs. `None` unless the crate is the top of a git work
/// tree: a crate unpacked inside some other repository must not report that one's commit.
struct GitDirs {
    git_dir: PathBuf,
    common_dir: PathBuf,
}

fn git_dirs(manifest_dir: &Path) -> Option<GitDirs> {
    let top = git(manifest_dir, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&top), manifest_dir) {
        return None;
    }
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            manifest_dir.join(p)
        }
    };
    Some(GitDirs {
        git_dir: absolute(git(manifest_dir, &["rev-parse", "--git-dir"])?),
        common_dir: absolute(git(manifest_dir, &["rev-parse", "--git-common-dir"])?),
    })
}

/// Emits `rerun-if-changed` for `HEAD` and the ref it names. Only existing files are
/// named (a missing one would rerun the script on every build); a branch whose ref lives only
/// in `packed-refs` is watched there and through its folder, where the next commit writes it.
fn watch_git(dirs: &GitDirs) {
    let head = dirs.git_dir.join("HEAD");
    watch(&head);
    let Ok(text) = std::fs::read_to_string(&head) else {
        return;
    };
    let Some(reference) = text.trim().strip_prefix("ref:").map(str::trim) else {
        return; // a detached HEAD holds the commit itself
    };
    let loose = dirs.common_dir.join(reference);
    if loose.is_file() {
        watch(&loose);
    } else if let Some(folder) = loose.parent().filter(|f| f.is_dir()) {
        watch(folder);
    }
    watch(&dirs.common_dir.join("packed-refs"));
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The short hash of `HEAD`, with `+dirty` when tracked files differ from it.
fn commit(dir: &Path) -> Option<String> {
    let hash = git(dir, &["rev-parse", "--short", "HEAD"])?;
    let status = git(dir, &["status", "--porcelain", "--untracked-files=no"])?;
    Some(if status.is_empty() {
        hash
    } else {
        format!("{hash}+dirty")
    })
}

/// `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH` when it is set, else of now.
fn build_date() -> String {
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(secs) => secs,
            Err(_) => panic!("SOURCE_DATE_EPOCH must be a number of seconds, found {text:?}"),
        },
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
