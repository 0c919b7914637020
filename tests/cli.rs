//! The binary's command line and config file handling, as an operator meets them.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

/// Runs the binary with `args` until it exits, at most 20 s (then it is killed and its exit
/// code is `None`): a command expected to fail must not hang the test when it starts instead.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, err) = (tmp.path().join("stdout"), tmp.path().join("stderr"));
    let mut child = Command::new(AccountServer::binary())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&out), read(&err))
}

/// Asserts that `nas` logs trace lines: the resolver check GET is traced.
fn assert_traces(nas: &AccountServer) {
    assert_eq!(nas.get("/jwt/v1/accounts/").status, 200);
    let line = nas
        .logs
        .wait_for("server sent resolver check", Duration::from_secs(5))
        .expect("trace line");
    assert!(line.contains("TRC"), "{line}");
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-help", "-h"] {
        let (code, out, _) = run(&[flag]);
        assert_eq!(code, Some(0));
        for f in [
            "-hp string",
            "-dir string",
            "-operator string",
            "-creds string",
            "-nats string",
            "-DV\n",
            "-nsc string",
            "-ro\n",
            "-primary string",
            "-lenient\n",
        ] {
            assert!(
                out.contains(&format!("  {f}")),
                "{flag}: {f} missing in {out}"
            );
        }
        assert!(!out.contains("--hp"), "{out}");
    }
    for flag in ["--version", "-version", "-v"] {
        let (code, out, _) = run(&[flag]);
        assert_eq!(code, Some(0), "{flag}");
        assert!(out.contains(env!("CARGO_PKG_VERSION")), "{flag}: {out}");
    }
}

#[test]
fn usage_errors_exit_2_in_the_go_spelling() {
    let (code, _, err) = run(&["-nope"]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("flag provided but not defined: -nope\n"),
        "{err}"
    );
    let (code, _, err) = run(&["--x"]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("flag provided but not defined: -x\n"),
        "{err}"
    );
    assert!(!err.contains("'--x'"), "{err}");
    let (code, _, err) = run(&["-hp", "localhost"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing port"), "{err}");
}

#[test]
fn repeated_flags_take_the_last_value_and_empty_values_unset() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // Go: the last -dir wins, -DV twice is fine, `-hp=` unsets (then the file's port is used).
    let conf = AccountServer::write_config(tmp.path(), "http { host: 127.0.0.1, port: 0 }\n");
    let nas = AccountServer::start_args(&[
        "-c",
        conf.to_str().unwrap(),
        "-hp=",
        "-dir",
        a.to_str().unwrap(),
        "-dir",
        b.to_str().unwrap(),
        "-DV",
        "-DV",
        "-nats=",
    ]);
    assert_eq!(nas.get("/healthz").status, 200);
    assert!(b.is_dir() && !a.exists());
    // -DV (given twice) turned on trace lines.
    assert_traces(&nas);
    // `-nats=` left nats.servers unset.
    assert!(
        nas.logs.text().contains("NATS is not configured"),
        "{}",
        nas.logs.text()
    );
}

#[test]
fn go_style_flags_start_the_server_and_override_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    // The file says port 80 on nats.io; -hp wins, -dir wins, the file's read timeout stays.
    let conf = tmp.path().join("nas.conf");
    std::fs::write(
        &conf,
        "{\n  \"Store\": { \"Dir\": \"/nonexistent/never\" },\n  \"HTTP\": { \"ReadTimeout\": 2000, \"Port\": 80, \"Host\": \"nats.io\" }\n}\n",
    )
    .unwrap();
    let dir = tmp.path().join("flagdir");
    let nas = AccountServer::start_args(&[
        "-c",
        conf.to_str().unwrap(),
        "-hp",
        "127.0.0.1:0",
        "-dir",
        dir.to_str().unwrap(),
        "-DV",
    ]);
    assert!(nas.addr.starts_with("127.0.0.1:"));
    assert_eq!(nas.get("/jwt/v1/help").status, 200);
    assert!(dir.is_dir());
    // -DV turned on trace lines.
    assert_traces(&nas);
    // Double-dash form too.
    let nas2 =
        AccountServer::start_args(&["--hp=127.0.0.1:0", "--dir", dir.to_str().unwrap(), "--D"]);
    assert_eq!(nas2.get("/healthz").status, 200);
}

#[test]
fn config_errors_name_file_line_and_key_and_stop_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("bad.conf");
    std::fs::write(
        &conf,
        "store { dir: /tmp/x }\nhttp {\n  port: \"high\"\n}\n",
    )
    .unwrap();
    let (code, _, err) = run(&["-c", conf.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("{}:3", conf.display())), "{err}");
    assert!(err.contains("\"http.port\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    std::fs::write(&conf, "http {\n  port: 1\n").unwrap();
    let (code, _, err) = run(&["-c", conf.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad.conf"), "{err}");

    let (code, _, err) = run(&["-c", tmp.path().join("missing.conf").to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("missing.conf"), "{err}");

    // An operator file that is not an operator JWT names the file.
    let not_op = tmp.path().join("op.jwt");
    std::fs::write(&not_op, fixture("accounts/A.jwt")).unwrap();
    std::fs::write(
        &conf,
        format!("operatorjwtpath: \"{}\"\nstore {{ dir: \"{}\" }}\nhttp {{ host: 127.0.0.1, port: 0 }}\n",
            not_op.display(), tmp.path().join("jwt").display()),
    )
    .unwrap();
    let (code, _, err) = run(&["-c", conf.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("op.jwt") && err.contains("operator"), "{err}");
}

#[test]
fn a_misspelled_key_stops_the_start_and_lenient_starts_the_same_file() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = AccountServer::write_config(
        tmp.path(),
        &format!(
            "http {{ host: 127.0.0.1, port: 0 }}\nstor {{ dir: \"{}\" }}\nlogging {{ colors: false }}\n",
            tmp.path().join("jwt").display()
        ),
    );
    let conf = conf.to_str().unwrap();
    let (code, _, err) = run(&["-c", conf]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        format!(
            "nats-account-server: config error: {conf}:2: unknown key \"stor\" (did you mean \"store\"?); \
             start with -lenient or set \"strict: false\" to ignore unknown keys"
        )
    );
    // The same file with the lenient switch: the key is ignored with a warning, as before.
    let nas = AccountServer::start_args(&["-c", conf, "-lenient"]);
    let logs = nas.logs.text();
    assert!(logs.contains("[WRN]"), "{logs}");
    assert!(
        logs.contains(&format!(
            "{conf}:2: unknown key \"stor\" (did you mean \"store\"?) is ignored"
        )),
        "{logs}"
    );
    assert!(logs.contains("in-memory store"), "{logs}");
    drop(nas);

    // `store { dri: ... }`, and `strict: false` in the file doing what -lenient does.
    std::fs::write(
        conf,
        "http { host: 127.0.0.1, port: 0 }\nstore {\n  dri: /tmp/x\n  cleanupinterval: 1000\n}\n",
    )
    .unwrap();
    let (code, _, err) = run(&["-c", conf]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "{conf}:3: unknown key \"store.dri\" (did you mean \"dir\"?)"
        )),
        "{err}"
    );
    let mut text = std::fs::read_to_string(conf).unwrap();
    text.push_str("strict: false\n");
    std::fs::write(conf, text).unwrap();
    let nas = AccountServer::start_args(&["-c", conf]);
    let logs = nas.logs.text();
    assert!(logs.contains("unknown key \"store.dri\""), "{logs}");
    assert!(
        logs.contains("store.cleanupinterval is ignored: this server never deletes expired JWTs"),
        "{logs}"
    );
}

#[test]
fn includes_variables_snake_case_and_toml_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("conf.d");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("http.conf"),
        "http { host: 127.0.0.1, port: $NAS_TEST_PORT }\n",
    )
    .unwrap();
    std::fs::write(
        sub.join("main.conf"),
        format!(
            "# comment\nSTORE_DIR = \"{}\"\ninclude http.conf\nstore {{ dir: $STORE_DIR, shard: yes }}\noperator_jwt_path: \"{}\"\nlogging {{ colors: off, pid: on }}\n",
            tmp.path().join("jwt").display(),
            fixtures().join("operator.jwt").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(AccountServer::binary())
        .args(["-c", sub.join("main.conf").to_str().unwrap()])
        .env("NAS_TEST_PORT", "0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read until the resolver line, bounded.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let done = line.contains("resolver: URL(");
            seen.push(line);
            if done {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(text.contains("resolver: URL(http://127.0.0.1:"), "{text}");
    assert!(
        text.contains(&format!("[{}]", child.id())),
        "pid prefix missing: {text}"
    );
    assert!(text.contains("(sharded)"), "{text}");
    assert!(text.contains("Operator: TESTOP"), "{text}");
    assert!(!text.contains("\x1b["), "colors should be off: {text:?}");

    // The same settings as TOML.
    let toml = tmp.path().join("nas.toml");
    std::fs::write(
        &toml,
        format!(
            "operator_jwt_path = \"{}\"\n[http]\nhost = \"127.0.0.1\"\nport = 0\n[store]\ndir = \"{}\"\n",
            fixtures().join("operator.jwt").display(),
            tmp.path().join("jwt2").display()
        ),
    )
    .unwrap();
    let nas = AccountServer::start_args(&["-c", toml.to_str().unwrap()]);
    assert_eq!(nas.get("/jwt/v1/operator").text(), fixture("operator.jwt"));
    std::fs::write(&toml, "[http]\nport = \"x\"\n").unwrap();
    let (code, _, err) = run(&["-c", toml.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("nas.toml:2") && err.contains("http.port"),
        "{err}"
    );
}

#[test]
fn sigterm_and_sigint_stop_gracefully() {
    for sig in ["TERM", "INT"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut nas =
            AccountServer::start(tmp.path(), &nas_config(&tmp.path().join("jwt"), None, ""));
        nas.signal(sig);
        assert_eq!(nas.wait_exit(Duration::from_secs(10)), Some(0), "{sig}");
        assert!(nas
            .logs
            .wait_for("http server stopped", Duration::from_secs(2))
            .is_some());
    }
}

#[test]
fn shipped_sample_configs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("nats-server")
        {
            continue; // nats-server's own config, not ours
        }
        let loaded = nats_account_server::config::load_file(&path, Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.warnings
        );
        n += 1;
    }
    assert!(n >= 3);
    let seed = nats_account_server::config::load_file(&dir.join("nas.conf"), Default::default())
        .unwrap()
        .config;
    assert!(seed.store.shard);
    assert_eq!(seed.nats.servers.len(), 2);
}

/// Starts the server with `args` and stdout to a file, waits (bounded) until the dump on stdout
/// is complete, stops the server by its handle and returns the dump.
fn dump_of(args: &[&str], out: &std::path::Path) -> String {
    let mut child = Command::new(AccountServer::binary())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(out).unwrap_or_default();
        if text.contains("nats {") && text.ends_with("}\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn dump_prints_a_config_file_that_loads_back_to_the_effective_configuration() {
    use nats_account_server::config::{load_file, UnknownKeys};
    let tmp = tempfile::tempdir().unwrap();
    let conf = AccountServer::write_config(
        tmp.path(),
        &format!(
            "operator_jwt_path: \"{}\"\nhttp {{ host: 127.0.0.1, port: 0, maxbodysize: 64kb }}\n\
             store {{ dir: \"{}\", shard: true, filemode: \"0600\" }}\nlogging {{ colors: false }}\n\
             nats {{ servers: [\"nats://127.0.0.1:1\"], name: \"nas \\\"one\\\"\" }}\nmaxclockskew: \"2m\"\n",
            fixtures().join("operator.jwt").display(),
            tmp.path().join("jwt").display()
        ),
    );
    let args = [
        "-c",
        conf.to_str().unwrap(),
        "-hp",
        "127.0.0.1:0",
        "-D",
        "-dump",
    ];
    let text = dump_of(&args, &tmp.path().join("dump.conf"));
    assert!(
        text.contains("store {") && !text.contains("Config {"),
        "{text}"
    );

    // What the server runs with: the file with the flags applied.
    let mut effective = load_file(&conf, UnknownKeys::Refuse).unwrap().config;
    effective.apply_flags(
        &nats_account_server::cli::parse(["nas"].iter().chain(&args))
            .unwrap()
            .overrides,
    );
    let loaded = load_file(&tmp.path().join("dump.conf"), UnknownKeys::Refuse).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config, effective, "{text}");
    assert!(loaded.config.logging.debug && loaded.config.store.shard);
    assert_eq!(loaded.config.nats.name, "nas \"one\"");

    // The dump is a fixed point: started from it, the server dumps the same text.
    let again = dump_of(
        &[
            "-c",
            tmp.path().join("dump.conf").to_str().unwrap(),
            "-dump",
        ],
        &tmp.path().join("dump2.conf"),
    );
    assert_eq!(again, text);
}
