//! Log output that fits NATS (issue 14): colours only on a terminal unless `logging.colors`
//! forces them, the listen line with host and port, a fatal start error as the last line, a
//! missing config file without a `:0` line, no NATS line at shutdown without NATS, and one
//! warning per changed setting that a reload cannot apply.

mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Our binary with its stderr going to `stderr`; killed by its handle on drop.
struct Started(Child);

impl Started {
    fn spawn(args: &[&str], stderr: Stdio) -> Started {
        Started(
            Command::new(AccountServer::binary())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("spawn nats-account-server"),
        )
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    fn stop(&mut self) -> Option<i32> {
        let ok = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        self.wait_exit(Duration::from_secs(10))
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until the file at `path` contains `needle`; returns its text.
fn wait_in_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config with a directory store on a free port and `extra` lines (no `logging.colors`).
fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("nas.conf");
    std::fs::write(
        &path,
        format!(
            "http {{ host: 127.0.0.1, port: 0 }}\nstore {{ dir: \"{}\" }}\n{extra}",
            dir.join("jwt").display()
        ),
    )
    .unwrap();
    path
}

/// Runs the server with `extra` config and stderr into a file until it serves, then stops it;
/// returns the whole log.
fn log_to_file(extra: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(tmp.path(), extra);
    let log = tmp.path().join("nas.log");
    let mut nas = Started::spawn(
        &["-c", conf.to_str().unwrap()],
        Stdio::from(File::create(&log).unwrap()),
    );
    let text = wait_in_file(&log, "resolver: URL(");
    assert!(text.contains("resolver: URL("), "{text}");
    assert_eq!(nas.stop(), Some(0));
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn a_log_file_gets_no_colours_unless_the_config_forces_them() {
    let plain = log_to_file("");
    assert!(plain.contains("[INF] http listening on"), "{plain}");
    assert!(
        !plain.contains('\x1b'),
        "escape codes in a log file: {plain:?}"
    );

    let forced = log_to_file("logging { colors: true }\n");
    assert!(forced.contains("[\x1b[32mINF\x1b[0m] "), "{forced:?}");
}

#[test]
fn a_terminal_gets_colours_by_default_and_none_when_the_config_says_so() {
    for (extra, coloured) in [("", true), ("logging { colors: false }\n", false)] {
        let (rx, slave) = pty_output();
        let tmp = tempfile::tempdir().unwrap();
        let conf = config(tmp.path(), extra);
        let _nas = Started::spawn(&["-c", conf.to_str().unwrap()], Stdio::from(slave));
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&seen).contains("resolver: URL(") {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                String::from_utf8_lossy(&seen)
            );
            if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.extend(bytes);
            }
        }
        let text = String::from_utf8_lossy(&seen);
        assert_eq!(text.contains("[\x1b[32mINF\x1b[0m] "), coloured, "{text:?}");
        assert_eq!(text.contains('\x1b'), coloured, "{text:?}");
    }
}

#[test]
fn the_listen_line_names_host_and_port() {
    let tmp = tempfile::tempdir().unwrap();
    let nas = AccountServer::start(tmp.path(), &nas_config(&tmp.path().join("jwt"), None, ""));
    let line = format!("[INF] http listening on {}", nas.addr);
    assert!(nas.logs.text().contains(&line), "{}", nas.logs.text());

    // IPv6 in brackets, when the machine has an IPv6 loopback.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = tempfile::tempdir().unwrap();
        let conf = nas_config(&v6.path().join("jwt"), None, "")
            .replace("host: 127.0.0.1", "host: \"::1\"");
        let nas = AccountServer::start(v6.path(), &conf);
        let port = nas.addr.rsplit(':').next().unwrap();
        let line = format!("[INF] http listening on [::1]:{port}");
        assert!(nas.logs.text().contains(&line), "{}", nas.logs.text());
    }
}

#[test]
fn a_fatal_start_error_is_the_last_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    // A store with many files: its background sweep and watch are still at work when the
    // listener fails, and used to log after the error.
    let store = tmp.path().join("jwt");
    std::fs::create_dir_all(&store).unwrap();
    for i in 0..20_000 {
        File::create(store.join(format!("f{i}"))).unwrap();
    }
    let conf = tmp.path().join("nas.conf");
    std::fs::write(
        &conf,
        format!(
            "http {{ host: 127.0.0.1, port: {port}, metrics: true }}\nstore {{ dir: \"{}\" }}\nnats {{ servers: [\"nats://127.0.0.1:{}\"] }}\n",
            store.display(),
            free_port()
        ),
    )
    .unwrap();
    for _ in 0..5 {
        let (code, logs) = AccountServer::try_start_args(&["-c", conf.to_str().unwrap()])
            .err()
            .expect("must not start");
        assert_eq!(code, Some(1), "{logs}");
        let last = logs.lines().last().unwrap_or_default();
        assert!(
            last.contains(&format!(
                "[ERR] cannot listen on 127.0.0.1:{port}: Address already in use"
            )),
            "the error is not the last line:\n{logs}"
        );
    }
    drop(taken);
}

#[test]
fn a_missing_config_file_is_named_without_a_line_number() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nas.conf");
    let (code, logs) = AccountServer::try_start_args(&["-c", missing.to_str().unwrap()])
        .err()
        .expect("must not start");
    assert_eq!(code, Some(1));
    assert_eq!(
        logs.trim(),
        format!(
            "nats-account-server: config error: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    // A missing include is reported at the include line of the including file.
    std::fs::write(&missing, "include other.conf\n").unwrap();
    let (code, logs) = AccountServer::try_start_args(&["-c", missing.to_str().unwrap()])
        .err()
        .expect("must not start");
    assert_eq!(code, Some(1));
    assert_eq!(
        logs.trim(),
        format!(
            "nats-account-server: config error: {}:1: cannot read include file {}: No such file or directory (os error 2)",
            missing.display(),
            tmp.path().join("other.conf").display()
        )
    );
}

#[test]
fn without_nats_the_shutdown_says_nothing_about_nats() {
    let log = log_to_file("");
    assert!(log.contains("[INF] http server stopped"), "{log}");
    let nats_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("NATS") && !l.contains("starting NATS Account server"))
        .collect();
    assert_eq!(nats_lines.len(), 1, "{log}");
    assert!(
        nats_lines[0].ends_with(
            "[INF] NATS is not configured, server will not fire notifications on update"
        ),
        "{log}"
    );
    assert!(!log.contains("disconnected from NATS"), "{log}");
}

#[test]
fn a_reload_names_each_changed_setting_that_needs_a_restart() {
    let w = World::new();
    let conf = w.path("nas.conf");
    let write = |extra: &str| {
        std::fs::write(
            &conf,
            nas_config(&w.path("jwt"), Some(&w.operator_path), extra),
        )
        .unwrap()
    };
    write("");
    let nas = AccountServer::start_args(&["-c", conf.to_str().unwrap()]);
    // Restart-only settings change (metrics on, a body limit) next to one a reload applies.
    std::fs::write(
        &conf,
        nas_config(&w.path("jwt2"), Some(&w.operator_path), "")
            .replace("port: 0 }", "port: 0, metrics: true, maxbodysize: 2mb }"),
    )
    .unwrap();
    nas.signal("HUP");
    assert!(
        nas.logs
            .wait_for("configuration reloaded", Duration::from_secs(10))
            .is_some(),
        "{}",
        nas.logs.text()
    );
    let warnings: Vec<String> = nas
        .logs
        .text()
        .lines()
        .filter(|l| l.contains("[WRN] reload:"))
        .map(|l| l.split("[WRN] ").nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            "reload: http.maxbodysize changed; it takes effect at the next restart",
            "reload: http.metrics changed; it takes effect at the next restart",
        ],
        "{}",
        nas.logs.text()
    );
    // The store change was applied; metrics stay off until a restart.
    assert_eq!(nas.get("/metrics").status, 404);
    let (a, a_jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&a.public_key(), &a_jwt).status, 200);
    assert!(w
        .path("jwt2")
        .join(format!("{}.jwt", a.public_key()))
        .is_file());
}
