//! The README's "Quick start by hand", run as written: its `sh` blocks in order, each `text`
//! block after one being output that block must print. The only changes are the ports (free
//! ones instead of 9090, 4222, 8222, 7422 and 4223, in the commands and in copies of the config
//! files), `cargo run --release --` (the binary under test) and `nats-server` (each version).
//! It runs in a temporary copy of the files the steps use, against nats-server 2.9.10 and
//! 2.15.1.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// One block of the section: a command script and the output lines it must print.
#[derive(Debug)]
struct Step {
    script: String,
    expect: Vec<String>,
}

/// The `sh` blocks of the README section headed `heading`, each with the lines of the `text`
/// block right after it.
fn steps(readme: &str, heading: &str) -> Vec<Step> {
    let start = readme.find(heading).expect("section heading");
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let kind = match line.trim_end() {
            "```sh" => "sh",
            "```text" => "text",
            _ => continue,
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| l.trim_end() != "```")
            .collect();
        match kind {
            "sh" => steps.push(Step {
                script: body.join("\n"),
                expect: Vec::new(),
            }),
            _ => {
                let step = steps.last_mut().expect("a text block follows an sh block");
                step.expect = body.iter().map(|l| l.trim().to_string()).collect();
            }
        }
    }
    steps
}

/// Copies the files the quick start reads into `root`, in the repository's layout, with the
/// ports replaced.
fn copy_tree(from: &Path, to: &Path, ports: &[(u16, u16)]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, ports);
        } else if entry.path().extension().is_some_and(|e| e == "conf") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, with_ports(&text, ports)).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `text` with each `:<old>` and `port: <old>` turned into the new port.
fn with_ports(text: &str, ports: &[(u16, u16)]) -> String {
    let mut out = text.to_string();
    for (old, new) in ports {
        out = out
            .replace(&format!(":{old}"), &format!(":{new}"))
            .replace(&format!("port: {old}"), &format!("port: {new}"));
    }
    out
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes the steps left running, stopped by their handles.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run_quick_start(nats_server: &Path, label: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let steps = steps(&readme, "## Quick start by hand");
    let ports: Vec<(u16, u16)> = [9090, 4222, 8222, 7422, 4223]
        .into_iter()
        .map(|p| (p, free_port()))
        .collect();
    let port = |old: u16| ports.iter().find(|(o, _)| *o == old).unwrap().1;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy_tree(&repo.join("config"), &root.join("config"), &ports);
    copy_tree(
        &repo.join("tests/fixtures/go-jwt"),
        &root.join("tests/fixtures/go-jwt"),
        &ports,
    );

    let nas = AccountServer::binary();
    let mut running = Running(Vec::new());
    // The long-running steps in order, and the port each one listens on.
    let mut listens = [
        (port(9090), "account server"),
        (port(4222), "nats-server"),
        (port(4223), "leaf nats-server"),
    ]
    .into_iter();
    for (i, step) in steps.iter().enumerate() {
        let script = with_ports(&step.script, &ports);
        let script = script.trim();
        let long_running = if let Some(args) = script.strip_prefix("cargo run --release -- ") {
            Some(format!("exec {} {args}", nas.display()))
        } else {
            script
                .strip_prefix("nats-server ")
                .map(|args| format!("exec {} {args}", nats_server.display()))
        };
        if let Some(command) = long_running {
            let log = std::fs::File::create(root.join(format!("step{i}.log"))).unwrap();
            let child = Command::new("bash")
                .args(["-c", &command])
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            running.0.push(child);
            let (listen, what) = listens.next().expect("three long-running steps");
            wait_port(listen, what);
            continue;
        }
        // A command step: run it; when output is expected, run it again (bounded) until the
        // change has reached nats-server, as a reader would look again.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = Command::new("bash")
                .args(["-c", script])
                .current_dir(root)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let missing: Vec<&String> = step
                .expect
                .iter()
                .filter(|line| !line.is_empty() && !stdout.contains(line.as_str()))
                .collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..steps.len())
                    .filter_map(|n| std::fs::read_to_string(root.join(format!("step{n}.log"))).ok())
                    .collect();
                panic!(
                    "{label}: step {i} `{script}` printed {stdout:?} (stderr {:?}), missing {missing:?}\nlogs:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    logs.join("\n---\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        listens.next().is_none(),
        "{label}: a long-running step is missing"
    );
    // The account server saw nats-server confirm the change it pushed (it sums up the
    // replies a moment after sending).
    let confirmed = "notification for AAHH4HW7XP76: 1 nats-server(s) confirmed \"jwt updated\"";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    while Instant::now() < deadline && !log.contains(confirmed) {
        std::thread::sleep(Duration::from_millis(100));
        log = std::fs::read_to_string(root.join("step0.log")).unwrap();
    }
    assert!(log.contains(confirmed), "{label}: {log}");
}

#[test]
fn the_quick_start_by_hand_shows_a_pushed_change_reaching_nats_server() {
    for (label, binary) in nats_binaries() {
        run_quick_start(&binary, label);
    }
}

#[test]
fn the_section_has_the_steps_the_test_relies_on() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let steps = steps(&readme, "## Quick start by hand");
    assert_eq!(steps.len(), 6, "{steps:#?}");
    assert!(steps
        .iter()
        .any(|s| s.expect.contains(&"\"subs\": 100,".to_string())));
    assert!(steps
        .iter()
        .any(|s| s.expect.contains(&"\"subs\": -1,".to_string())));
}
