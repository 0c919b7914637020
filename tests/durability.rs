//! Durability, shown on the real system calls: the server runs under `strace -f`, JWTs are
//! POSTed to a flat and a sharded store (new accounts and an overwrite), and the trace must
//! show, for every stored JWT and in this order: the temp file opened and the whole JWT written
//! to it, a sync of it (an fsync of that fd while it is still open, or a `syncfs` of the file
//! system: group commit), the rename of the temp file onto `<pubkey>.jwt`, a sync of the rename
//! (an fd opened on the folder and fsynced, or a `syncfs`) — all before the HTTP 200 is
//! written. A new folder's entry is made durable too (its parent synced after the mkdir).
//! Both sync modes are checked (group commit on, the default, and off): a lone write is
//! fsynced in both, and with group commit concurrent POSTs show the same order per batch with
//! fewer syncs than writes.
//!
//! (`tests/crash.rs` SIGKILLs the server, which keeps the page cache: only this test sees a
//! missing fsync.)

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// The system calls traced.
const TRACED: &str = "trace=openat,write,writev,sendto,sendmsg,close,fsync,fdatasync,\
                      syncfs,rename,renameat,renameat2,mkdir,mkdirat";

/// One system call from the trace: its name, argument text and result, and the trace lines it
/// started and ended on (they differ when another thread's call came in between).
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: String,
    ret: i64,
    start: usize,
    end: usize,
}

impl Call {
    /// The first argument as an integer (an fd).
    fn fd_arg(&self) -> Option<i64> {
        self.args.split([',', ')']).next()?.trim().parse().ok()
    }

    /// The quoted strings among the arguments (paths), unescaped only for `\"` and `\\`.
    fn strings(&self) -> Vec<String> {
        let (mut out, mut chars) = (Vec::new(), self.args.chars());
        while chars.any(|c| c == '"') {
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => s.extend(chars.next()),
                    c => s.push(c),
                }
            }
            out.push(s);
        }
        out
    }
}

/// Parses `strace -f -o` output: `<pid> name(args) = ret`, with calls split by other threads
/// into `name(args <unfinished ...>` and `<... name resumed>rest) = ret`.
fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut pending: HashMap<&str, (String, String, usize)> = HashMap::new();
    for (line_no, line) in text.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let (name, args, start) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let Some((name, head, start)) = pending.remove(pid) else {
                continue;
            };
            (name, head + tail, start)
        } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            let Some((name, args)) = head.split_once('(') else {
                continue;
            };
            pending.insert(pid, (name.to_string(), args.to_string(), line_no));
            continue;
        } else {
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            (name.to_string(), args.to_string(), line_no)
        };
        let Some((args, ret)) = args.rsplit_once(" = ") else {
            continue;
        };
        let Some(ret) = ret.split_whitespace().next().and_then(|r| r.parse().ok()) else {
            continue;
        };
        let args = args.trim_end().trim_end_matches(')').to_string();
        calls.push(Call {
            name,
            args,
            ret,
            start,
            end: line_no,
        });
    }
    calls
}

/// The server under `strace -f`, stopped (by PID) on drop.
struct Traced {
    strace: AccountServer,
    server_pid: i32,
    trace: PathBuf,
}

impl Traced {
    fn start(w: &World, config: &str, name: &str) -> Traced {
        let config = AccountServer::write_config(w.dir.path(), config);
        let trace = w.path(&format!("{name}.trace"));
        let mut command = Command::new("strace");
        command
            .args(["-f", "-e", TRACED, "-o"])
            .arg(&trace)
            .arg("--")
            .arg(AccountServer::binary())
            .arg("-c")
            .arg(config);
        let strace = AccountServer::start_command(command);
        let children = format!("/proc/{0}/task/{0}/children", strace.pid());
        let children = std::fs::read_to_string(&children).unwrap();
        let server_pid = children.split_whitespace().next().unwrap().parse().unwrap();
        Traced {
            strace,
            server_pid,
            trace,
        }
    }

    /// Stops the server with SIGTERM (by PID), waits for strace to finish the trace, and
    /// returns the trace.
    fn finish(mut self) -> String {
        // SAFETY: kill(2) on the PID of our traced child; no memory is involved.
        unsafe { libc::kill(self.server_pid, libc::SIGTERM) };
        let code = self.strace.wait_exit(Duration::from_secs(15));
        assert!(
            code.is_some(),
            "strace did not finish: {}",
            self.strace.logs.text()
        );
        self.server_pid = 0;
        std::fs::read_to_string(&self.trace).unwrap()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if self.server_pid > 0 {
            // SAFETY: as in `finish`; SIGKILL so that the server never outlives the test.
            unsafe { libc::kill(self.server_pid, libc::SIGKILL) };
        }
    }
}

/// The calls of the trace, with lookups for the checks.
struct Trace(Vec<Call>);

impl Trace {
    fn after(&self, line: usize) -> impl Iterator<Item = &Call> {
        self.0.iter().filter(move |c| c.start > line)
    }

    /// The last successful openat of `path` that ended before `line`.
    fn last_open_before(&self, path: &str, line: usize) -> Option<&Call> {
        self.0
            .iter()
            .filter(|c| c.name == "openat" && c.ret >= 0 && c.end < line)
            .rfind(|c| c.strings().first().map(String::as_str) == Some(path))
    }

    /// The first close of `fd` after `line` (the end of the fd's life), or the end of the trace.
    fn close_of(&self, fd: i64, line: usize) -> usize {
        self.after(line)
            .find(|c| c.name == "close" && c.fd_arg() == Some(fd))
            .map_or(usize::MAX, |c| c.start)
    }

    /// The first successful fsync or fdatasync of `fd` that starts after `from` and before
    /// `until`.
    fn sync_of(&self, fd: i64, from: usize, until: usize) -> Option<&Call> {
        self.after(from).take_while(|c| c.start < until).find(|c| {
            (c.name == "fsync" || c.name == "fdatasync") && c.fd_arg() == Some(fd) && c.ret == 0
        })
    }

    /// The end line of the first successful `syncfs` (of any fd: the store has one file
    /// system) that starts after `from` and ends before `until`.
    fn syncfs_between(&self, from: usize, until: usize) -> Option<usize> {
        self.after(from)
            .find(|c| c.name == "syncfs" && c.ret == 0)
            .map(|c| c.end)
            .filter(|end| *end < until)
    }

    /// How many successful calls named `name` the trace has.
    fn count(&self, name: &str) -> usize {
        self.0
            .iter()
            .filter(|c| c.name == name && c.ret == 0)
            .count()
    }

    /// The first write of an HTTP 200 status line after `line`.
    fn http_200_after(&self, line: usize) -> Option<&Call> {
        self.after(line).find(|c| {
            matches!(c.name.as_str(), "write" | "writev" | "sendto" | "sendmsg")
                && c.args.contains("HTTP/1.1 200")
        })
    }

    /// The successful renames onto `target`, in order.
    fn renames_onto(&self, target: &str) -> Vec<&Call> {
        self.0
            .iter()
            .filter(|c| c.name.starts_with("rename") && c.ret == 0)
            .filter(|c| c.strings().get(1).map(String::as_str) == Some(target))
            .collect()
    }
}

/// Checks the durable write of one JWT of `len` bytes, ending with `rename`; returns the line
/// after which its HTTP 200 may be written.
fn check_durable_write(t: &Trace, rename: &Call, len: i64) -> Result<usize, String> {
    let (temp, target) = match rename.strings().as_slice() {
        [temp, target] => (temp.clone(), target.clone()),
        other => return Err(format!("rename with paths {other:?}")),
    };
    let open = t
        .last_open_before(&temp, rename.start)
        .ok_or(format!("{temp} is renamed but was never opened"))?;
    let fd = open.ret;
    let closed = t.close_of(fd, open.end);
    let writes: Vec<&Call> = t
        .after(open.end)
        .take_while(|c| c.start < closed)
        .filter(|c| c.name == "write" && c.fd_arg() == Some(fd))
        .collect();
    let written: i64 = writes.iter().map(|c| c.ret).sum();
    if written != len {
        return Err(format!(
            "{written} of the JWT's {len} bytes written to {temp}"
        ));
    }
    let last_write = writes.last().map_or(open.end, |c| c.end);
    let fsync = t.sync_of(fd, last_write, closed.min(rename.start));
    match fsync {
        Some(sync) if sync.end > rename.start => {
            return Err(format!("the fsync of {temp} ends after the rename starts"));
        }
        Some(_) => {}
        None if t.syncfs_between(last_write, rename.start).is_some() => {}
        None => {
            return Err(format!(
                "no fsync of {temp} (fd {fd}) after its writes, before its close and the \
                 rename, and no syncfs between its writes and the rename"
            ))
        }
    }
    let folder = Path::new(&target).parent().unwrap().display().to_string();
    check_folder_sync(t, &folder, rename.end).ok_or(format!(
        "no fsync of an fd opened on {folder} and no syncfs after the rename onto {target}"
    ))
}

/// The end line of the first sync of `folder` after `line`: an fsync of an fd opened on it,
/// or a `syncfs`, whichever ends first.
fn check_folder_sync(t: &Trace, folder: &str, line: usize) -> Option<usize> {
    let fsync = t
        .after(line)
        .filter(|c| c.name == "openat" && c.ret >= 0)
        .filter(|c| c.strings().first().map(String::as_str) == Some(folder))
        .find_map(|open| {
            let closed = t.close_of(open.ret, open.end);
            t.sync_of(open.ret, open.end, closed).map(|s| s.end)
        });
    let syncfs = t.syncfs_between(line, usize::MAX);
    fsync.into_iter().chain(syncfs).min()
}

/// Every folder made by mkdir has its parent synced after it; with `sequential` POSTs, before
/// the next rename (the first JWT that may land in it). Returns how many folders were made.
/// (With concurrent POSTs and group commit off, a writer may use a folder another one just
/// made before that one has synced its parent: a known gap, see docs/performance.md.)
fn check_new_folders(t: &Trace, sequential: bool) -> Result<usize, String> {
    let mkdirs: Vec<&Call> =
        t.0.iter()
            .filter(|c| c.name.starts_with("mkdir") && c.ret == 0)
            .collect();
    for mkdir in &mkdirs {
        let folder = mkdir.strings().first().cloned().unwrap_or_default();
        let parent = Path::new(&folder).parent().unwrap().display().to_string();
        let synced = check_folder_sync(t, &parent, mkdir.end);
        let next_rename = t.after(mkdir.end).find(|c| c.name.starts_with("rename"));
        let late = match (sequential, next_rename) {
            (true, Some(rename)) => synced.is_none_or(|s| s > rename.start),
            _ => synced.is_none() && next_rename.is_some(),
        };
        if late {
            return Err(format!("{parent} is not synced after mkdir {folder}"));
        }
    }
    Ok(mkdirs.len())
}

/// Checks the writes of `jwts` (in the order they were POSTed) onto `target`: one rename each,
/// each a durable write whose rename is synced before the next HTTP 200 (`sequential`: with
/// concurrent POSTs the 200 after a rename may be another POST's).
fn check_target(t: &Trace, target: &str, jwts: &[&str], sequential: bool) -> Vec<String> {
    let renames = t.renames_onto(target);
    let mut problems = Vec::new();
    if renames.len() != jwts.len() {
        let n = renames.len();
        problems.push(format!(
            "{n} renames onto {target}, expected {}",
            jwts.len()
        ));
    }
    for (rename, jwt) in renames.iter().zip(jwts) {
        let problem = match check_durable_write(t, rename, jwt.len() as i64) {
            Ok(_) if !sequential => continue,
            Ok(synced) => match t.http_200_after(rename.end) {
                Some(ok) if ok.start > synced => continue,
                Some(_) => "the 200 was written before the rename was synced".to_string(),
                None => "no HTTP 200 in the trace".to_string(),
            },
            Err(e) => e,
        };
        problems.push(format!("{target}: {problem}"));
    }
    problems
}

/// POSTs `posts` (key, JWT) to a traced server with a flat or sharded store in
/// `<world>/<name>` (group commit on or off), in order or `concurrent`ly (16 at a time), stops
/// it, and checks every write in the trace. Returns the problems found and the trace.
fn post_traced(
    w: &World,
    name: &str,
    (shard, group_commit): (bool, bool),
    posts: &[(String, String)],
    concurrent: bool,
) -> (Vec<String>, Trace) {
    let store = w.path(name);
    let config = nas_config(&store, Some(&w.operator_path), "").replace(
        &format!("store {{ dir: \"{}\" }}", store.display()),
        &format!(
            "store {{ dir: \"{}\", shard: {shard}, groupcommit: {group_commit} }}",
            store.display()
        ),
    );
    let traced = Traced::start(w, &config, name);
    let post = |(key, jwt): &(String, String)| {
        let r = traced.strace.post_account(key, jwt);
        assert_eq!(r.status, 200, "POST {key}: {}", r.text());
    };
    match concurrent {
        false => posts.iter().for_each(post),
        true => std::thread::scope(|s| {
            for chunk in posts.chunks(posts.len().div_ceil(16)) {
                s.spawn(|| chunk.iter().for_each(post));
            }
        }),
    }
    let trace = Trace(parse_trace(&traced.finish()));
    let mut problems = Vec::new();
    let keys: std::collections::BTreeSet<&String> = posts.iter().map(|(k, _)| k).collect();
    for key in keys {
        let folder = if shard {
            store.join(&key[54..])
        } else {
            store.clone()
        };
        let target = folder.join(format!("{key}.jwt")).display().to_string();
        let jwts: Vec<&str> = posts
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, j)| j.as_str())
            .collect();
        problems.extend(check_target(&trace, &target, &jwts, !concurrent));
        assert_eq!(
            std::fs::read_to_string(&target).ok().as_deref(),
            jwts.last().copied()
        );
    }
    match check_new_folders(&trace, !concurrent) {
        Ok(n) => assert!(
            n > usize::from(shard),
            "the store (and its shard folders) are made"
        ),
        Err(e) => problems.push(e),
    }
    (problems, trace)
}

#[test]
fn every_acknowledged_write_is_synced_renamed_and_its_rename_synced() {
    let w = World::new();
    for group_commit in [true, false] {
        for (name, shard) in [("flat", false), ("sharded", true)] {
            let ((a, a1), (b, b1)) = (w.new_account("A"), w.new_account("B"));
            let mut claims = account_claims("A2", &a.public_key());
            claims["iat"] = serde_json::json!(now() + 1);
            let a2 = sign(&claims, &w.signing_key);
            // Two new accounts and an overwrite.
            let posts = [
                (a.public_key(), a1),
                (b.public_key(), b1),
                (a.public_key(), a2),
            ];
            let name = format!("{name}-groupcommit-{group_commit}");
            let (problems, trace) = post_traced(&w, &name, (shard, group_commit), &posts, false);
            assert!(problems.is_empty(), "{name}: {problems:#?}");
            // One POST at a time: each write is a batch of one, fsynced alone in both modes.
            assert_eq!(trace.count("syncfs"), 0, "{name}");
        }
    }
}

#[test]
fn concurrent_writes_share_their_syncs_in_the_same_order() {
    let w = World::new();
    let posts: Vec<(String, String)> = (0..48)
        .map(|i| {
            let (key, jwt) = w.new_account(&format!("C{i}"));
            (key.public_key(), jwt)
        })
        .collect();
    let (problems, trace) = post_traced(&w, "concurrent", (true, true), &posts, true);
    assert!(problems.is_empty(), "{problems:#?}");
    let syncfs = trace.count("syncfs");
    assert!(
        syncfs > 0 && syncfs < 2 * posts.len(),
        "{syncfs} syncfs for {} writes: no batch shared its syncs",
        posts.len()
    );
    // Without group commit, concurrent writes are fsynced one by one.
    let (problems, trace) = post_traced(&w, "concurrent-alone", (true, false), &posts, true);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(trace.count("syncfs"), 0);
}
