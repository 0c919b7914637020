//! The Debian package: `cargo deb` builds it (a release build, so this is the slow test of the
//! suite), then the package is checked as dpkg would see it (control fields, conffiles,
//! maintainer scripts), unpacked into a temporary root, its systemd unit verified with
//! `systemd-analyze` and its sysusers.d file applied with `systemd-sysusers` (each when the
//! tool is present), and the packaged binary run with the packaged config, paths moved into the
//! temporary root: it must answer nats-server's resolver check, reload, take an operator, accept
//! a push and stop on SIGTERM.
//!
//! cargo-deb is looked for in `CARGO_DEB`, then `target/tools/bin/cargo-deb` (where
//! `scripts/test.sh` installs it), then on `PATH`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const NAME: &str = "nats-account-server";
const UNIT: &str = "usr/lib/systemd/system/nats-account-server.service";
const CONF: &str = "etc/nats-account-server/nas.conf";
const SYSUSERS: &str = "usr/lib/sysusers.d/nats-account-server.conf";
const STATE_DIR: &str = "/var/lib/nats-account-server";

/// The cargo-deb binary, or a panic saying how to get it.
fn cargo_deb() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_DEB") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/cargo-deb");
    if local.is_file() {
        return local;
    }
    which("cargo-deb").unwrap_or_else(|| {
        panic!(
            "cargo-deb is missing: run ./scripts/test.sh (installs it into target/tools) or \
             `cargo install --locked --root target/tools cargo-deb`, or set CARGO_DEB"
        )
    })
}

/// A program on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs a command to its end (bounded by `limit`) and returns its status and output.
fn run(mut command: Command, limit: Duration, out_dir: &Path) -> (bool, String, String) {
    let (out, err) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish in {limit:?}:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (status.success(), read(&out), read(&err))
}

/// Runs a short command and returns its stdout; panics with its stderr when it fails.
fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo deb` as an operator runs it; returns the paths of the .deb and the -dbgsym .ddeb.
fn build_package(scratch: &Path) -> (PathBuf, PathBuf) {
    let started = Instant::now();
    let mut command = Command::new(cargo_deb());
    command
        .arg("--locked")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // The variables cargo sets for this test process describe this package; build scripts
    // that track them (ring tracks CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR) would see a
    // change and rebuild against a `cargo deb` run from a shell.
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text == "OUT_DIR"
            || text == "CARGO_PRIMARY_PACKAGE"
            || text == "CARGO_TARGET_TMPDIR"
            || text == "CARGO_RUSTC_CURRENT_DIR"
            || [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| text.starts_with(prefix))
        {
            command.env_remove(&name);
        }
    }
    let (ok, stdout, stderr) = run(command, Duration::from_secs(1200), scratch);
    assert!(ok, "cargo deb failed:\n{stdout}\n{stderr}");
    eprintln!("cargo deb took {:.1?}", started.elapsed());
    let built = |suffix: &str| {
        stdout
            .lines()
            .map(str::trim)
            .find(|l| l.ends_with(suffix))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no {suffix} in cargo deb's output:\n{stdout}\n{stderr}"))
    };
    (built(".deb"), built(".ddeb"))
}

#[test]
fn the_debian_package_installs_a_server_that_runs() {
    // Under the target folder: the unpacked binary runs from here (/tmp may be noexec).
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let (deb, ddeb) = build_package(&scratch);
    let deb_text = deb.to_str().unwrap();

    // Control fields and conffiles, as dpkg reads them.
    let field = |name: &str| {
        output("dpkg-deb", &["-f", deb_text, name])
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), NAME);
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        field("Architecture"),
        output("dpkg", &["--print-architecture"]).trim()
    );
    assert_eq!(field("Section"), "net");
    assert!(field("Maintainer").contains('<'), "{}", field("Maintainer"));
    let depends = field("Depends");
    assert!(
        depends.contains("libc6") && depends.contains("systemd"),
        "{depends}"
    );
    assert!(field("Description").contains("account JWTs"));
    let conffiles = output("dpkg-deb", &["-I", deb_text, "conffiles"]);
    assert_eq!(conffiles.trim(), format!("/{CONF}"), "conffiles");
    let postinst = output("dpkg-deb", &["-I", deb_text, "postinst"]);
    assert!(
        postinst.contains("systemd-sysusers") && postinst.contains("nats-account-server.conf"),
        "the postinst must create the service user:\n{postinst}"
    );
    assert!(
        !postinst.contains("deb-systemd-invoke start") && !postinst.contains("_dh_action=start"),
        "the service is not started on install (the admin sets the operator first):\n{postinst}"
    );
    let debug_files = output("dpkg-deb", &["-c", ddeb.to_str().unwrap()]);
    assert!(
        debug_files.contains("/usr/lib/debug/.build-id/"),
        "{debug_files}"
    );

    // The files, unpacked into a temporary root.
    let root = tmp.path().join("root");
    output("dpkg-deb", &["-x", deb_text, root.to_str().unwrap()]);
    let binary = root.join("usr/bin").join(NAME);
    for rel in [
        "usr/bin/nats-account-server",
        CONF,
        UNIT,
        SYSUSERS,
        "usr/share/doc/nats-account-server/README.md",
        "usr/share/doc/nats-account-server/config.md",
        "usr/share/doc/nats-account-server/copyright",
    ] {
        assert!(
            root.join(rel).is_file(),
            "{rel} is missing from the package"
        );
    }
    let copyright =
        std::fs::read_to_string(root.join("usr/share/doc/nats-account-server/copyright")).unwrap();
    assert!(copyright.contains("Apache License"), "{copyright}");
    if which("readelf").is_some() {
        let sections = output("readelf", &["-SW", binary.to_str().unwrap()]);
        assert!(
            !sections.contains(".debug_info"),
            "the packaged binary is not stripped"
        );
    }
    let version = output(binary.to_str().unwrap(), &["-v"]);
    assert!(
        version.starts_with(&format!("{NAME} {} (commit ", env!("CARGO_PKG_VERSION")))
            && version.contains(", built "),
        "{version}"
    );

    // The unit: what the issue asks of it, and the paths it names exist in the package.
    let unit = std::fs::read_to_string(root.join(UNIT)).unwrap();
    for line in [
        "ExecStart=/usr/bin/nats-account-server -c /etc/nats-account-server/nas.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=nats-account-server",
        "StateDirectory=nats-account-server",
        "LimitNOFILE=65536",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == line),
            "the unit lacks {line:?}:\n{unit}"
        );
    }
    verify_unit(tmp.path(), &root, &unit);
    check_sysusers(tmp.path(), &root);

    // The packaged config, moved into the temporary root, on a free port.
    let conf = std::fs::read_to_string(root.join(CONF)).unwrap();
    for needle in [STATE_DIR, "port: 9090", "host: 127.0.0.1", "# nats {"] {
        assert!(conf.contains(needle), "nas.conf lacks {needle:?}:\n{conf}");
    }
    let state = root.join(STATE_DIR.trim_start_matches('/'));
    let port = free_port();
    let conf = conf
        .replace(STATE_DIR, state.to_str().unwrap())
        .replace("port: 9090", &format!("port: {port}"));
    let conf_path = tmp.path().join("nas.conf");
    std::fs::write(&conf_path, &conf).unwrap();

    let mut command = Command::new(&binary);
    command.args(["-c", conf_path.to_str().unwrap()]);
    let mut server = AccountServer::start_command(command);
    assert_eq!(server.addr, format!("127.0.0.1:{port}"));
    let check = server.get("/jwt/v1/accounts/");
    assert_eq!(check.status, 200, "{}", server.logs.text());
    assert_eq!(server.get("/healthz").status, 200);
    assert!(state.join("jwt").is_dir(), "the store folder was not made");
    let logs = server.logs.text();
    assert!(logs.contains("No Operator is configured"), "{logs}");
    assert!(
        !logs.contains("unknown key"),
        "the packaged config has a key the server does not know:\n{logs}"
    );

    // What the comments tell the admin to do: set the operator, reload, push.
    let world = World::new();
    let marker = "# operatorjwtpath: \"/etc/nats-account-server/operator.jwt\"";
    assert!(conf.contains(marker), "{conf}");
    let with_operator = conf.replace(
        marker,
        &format!(
            "operatorjwtpath: {:?}",
            world.operator_path.to_str().unwrap()
        ),
    );
    std::fs::write(&conf_path, with_operator).unwrap();
    server.signal("HUP");
    assert!(
        server
            .logs
            .wait_for("configuration reloaded", Duration::from_secs(10))
            .is_some(),
        "{}",
        server.logs.text()
    );
    let (account, jwt) = world.new_account("PKG");
    let key = account.public_key();
    assert_eq!(server.post_account(&key, &jwt).status, 200);
    assert_eq!(server.get_account(&key).text(), jwt);
    assert!(state.join("jwt").join(format!("{key}.jwt")).is_file());

    server.signal("TERM");
    assert_eq!(
        server.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        server.logs.text()
    );
}

/// `systemd-analyze verify` on the unit with its paths moved into the unpacked root (it checks
/// that `ExecStart` names an executable). systemd-analyze reports bad lines as warnings and
/// still exits 0, so any line naming the unit fails the test; a broken copy shows that the tool
/// does report in this environment.
fn verify_unit(tmp: &Path, root: &Path, unit: &str) {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("note: systemd-analyze is not installed: the unit is not verified");
        return;
    };
    let verify = |name: &str, text: &str| {
        let dir = tmp.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nats-account-server.service");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(&analyze)
            .args(["verify", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("nats-account-server"))
            .collect();
        (out.status.success() && ours.is_empty(), stderr)
    };
    let moved = unit
        .replace(
            "/usr/bin/nats-account-server",
            root.join("usr/bin/nats-account-server").to_str().unwrap(),
        )
        .replace(
            "/etc/nats-account-server/nas.conf",
            root.join(CONF).to_str().unwrap(),
        );
    let (ok, stderr) = verify("unit", &moved);
    assert!(ok, "systemd-analyze verify:\n{stderr}\n{moved}");
    let (ok, _) = verify(
        "broken-unit",
        &moved.replace("ProtectSystem=strict", "ProtectSystem=everything"),
    );
    assert!(
        !ok,
        "systemd-analyze verify does not report a bad value here"
    );
}

/// `systemd-sysusers --root` with the packaged file: the service user and group are created
/// with the state directory as home and no login shell.
fn check_sysusers(tmp: &Path, root: &Path) {
    let Some(sysusers) = which("systemd-sysusers") else {
        eprintln!("note: systemd-sysusers is not installed: the sysusers.d file is not applied");
        return;
    };
    let target = tmp.join("sysusers-root");
    std::fs::create_dir_all(target.join("etc")).unwrap();
    let out = Command::new(sysusers)
        .arg(format!("--root={}", target.display()))
        .arg(root.join(SYSUSERS))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-sysusers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(target.join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("nats-account-server:"))
        .unwrap_or_else(|| panic!("no service user in {passwd}"));
    assert!(
        user.contains(&format!(":{STATE_DIR}:")) && user.ends_with("nologin"),
        "{user}"
    );
    let group = std::fs::read_to_string(target.join("etc/group")).unwrap();
    assert!(group.contains("nats-account-server:"), "{group}");
}
