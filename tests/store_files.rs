//! What the directory store does with the files themselves: it never serves a symbolic link
//! placed in the store, and it creates files 0640 and folders 0750 (nats-server's modes, or
//! `store.filemode` / `store.dirmode`) even under a permissive umask.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// A config for a store in `store` (sharded or not) with `extra` lines in its store block.
fn store_config(w: &World, store: &Path, shard: bool, extra: &str) -> String {
    nas_config(store, Some(&w.operator_path), "").replace(
        &format!("store {{ dir: \"{}\" }}", store.display()),
        &format!(
            "store {{ dir: \"{}\", shard: {shard}\n{extra} }}",
            store.display()
        ),
    )
}

/// Starts our binary with the umask cleared (0000), as `sh -c 'umask 000; exec ...'`: exec
/// keeps the PID, so the handle stops the server itself.
fn start_with_umask_0(w: &World, config: &str) -> AccountServer {
    let path = AccountServer::write_config(w.dir.path(), config);
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(AccountServer::binary())
        .arg("-c")
        .arg(path);
    AccountServer::start_command(command)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The umask of a running process, from `/proc/<pid>/status`.
fn umask_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    line["Umask:".len()..].trim().to_string()
}

/// 500, not 404: the account's file is there but the store refuses it, a fault of the store
/// that its operator must fix (the log says which file and why). A 404 would tell nats-server
/// that the account has no JWT at all.
#[test]
fn a_symlinked_jwt_is_refused_not_served() {
    let w = World::new();
    let outside = w.path("outside.txt");
    let (_, decoy) = w.new_account("DECOY");
    std::fs::write(&outside, &decoy).unwrap();
    for (shard, target) in [(false, Path::new("/etc/passwd")), (true, outside.as_path())] {
        let store = w.path(&format!("jwt-{shard}"));
        let nas = AccountServer::start(w.dir.path(), &store_config(&w, &store, shard, ""));
        let (real, real_jwt) = w.new_account("REAL");
        assert_eq!(nas.post_account(&real.public_key(), &real_jwt).status, 200);
        let linked = nkeys::KeyPair::new_account().public_key();
        let folder = if shard {
            store.join(&linked[54..])
        } else {
            store.clone()
        };
        std::fs::create_dir_all(&folder).unwrap();
        let link = folder.join(format!("{linked}.jwt"));
        std::os::unix::fs::symlink(target, &link).unwrap();
        let secret = std::fs::read_to_string(target).unwrap();
        for query in ["?text=true", "", "?decode=true", "?check=true"] {
            let r = nas.get(&format!("/jwt/v1/accounts/{linked}{query}"));
            let body = r.text();
            assert_eq!(r.status, 500, "{query}: {body}");
            assert_eq!(body, "error loading JWT\n", "{query}");
            assert!(!body.contains(secret.lines().next().unwrap()));
        }
        let logged = nas.logs.wait_for("symbolic link", Duration::from_secs(5));
        let logged = logged.unwrap_or_else(|| panic!("no log line:\n{}", nas.logs.text()));
        assert!(logged.contains(&format!("{linked}.jwt")), "{logged}");
        // The other account is served as before.
        assert_eq!(nas.get_account(&real.public_key()).text(), real_jwt);
    }
}

#[test]
fn created_files_get_0640_and_folders_0750_under_umask_0() {
    let w = World::new();
    let store = w.path("new/jwt");
    let nas = start_with_umask_0(&w, &store_config(&w, &store, true, ""));
    assert_eq!(
        umask_of(nas.pid()),
        "0000",
        "the server must run under umask 0"
    );
    let (a, jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&a.public_key(), &jwt).status, 200);
    let key = a.public_key();
    let shard = store.join(&key[54..]);
    assert_eq!(mode_of(&shard.join(format!("{key}.jwt"))), 0o640);
    for folder in [w.path("new"), store.clone(), shard] {
        assert_eq!(mode_of(&folder), 0o750, "{}", folder.display());
    }
}

#[test]
fn configured_modes_are_used() {
    let w = World::new();
    let store = w.path("jwt");
    let modes = "filemode: \"0600\", dirmode: 0700";
    let nas = start_with_umask_0(&w, &store_config(&w, &store, true, modes));
    assert_eq!(umask_of(nas.pid()), "0000");
    let (a, jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&a.public_key(), &jwt).status, 200);
    let key = a.public_key();
    let shard = store.join(&key[54..]);
    assert_eq!(mode_of(&shard.join(format!("{key}.jwt"))), 0o600);
    assert_eq!((mode_of(&store), mode_of(&shard)), (0o700, 0o700));
}

#[test]
fn a_bad_mode_stops_the_start_with_the_key() {
    let w = World::new();
    let store = w.path("jwt");
    for (extra, key) in [
        ("filemode: 0648", "store.filemode"),
        ("dirmode: \"0600\"", "store.dirmode"),
    ] {
        let path =
            AccountServer::write_config(w.dir.path(), &store_config(&w, &store, false, extra));
        let Err((code, logs)) = AccountServer::try_start_args(&["-c", path.to_str().unwrap()])
        else {
            panic!("{extra}: the server started");
        };
        assert_ne!(code, Some(0), "{logs}");
        assert!(logs.contains(&format!("{key:?}")), "{extra}: {logs}");
    }
    assert!(
        !store.exists(),
        "nothing is created before the config is accepted"
    );
}
