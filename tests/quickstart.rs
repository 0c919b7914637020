//! The quick start works as the README says: `scripts/quickstart.sh` runs the whole loop.

mod support;

use std::process::Command;

use support::*;

#[test]
fn quickstart_script_runs_the_whole_loop() {
    let tmp = tempfile::tempdir().unwrap();
    // The binaries cargo test has built already (examples are built by `cargo test`).
    let nas = AccountServer::binary();
    let quickstart = nas.parent().unwrap().join("examples/quickstart");
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/quickstart.sh"
        ))
        .env("QUICKSTART_DIR", tmp.path().join("demo"))
        .env("QUICKSTART_PROFILE", "dev")
        .env("NAS_BIN", &nas)
        .env("QUICKSTART_BIN", &quickstart)
        .env("NAS_PORT", free_port().to_string())
        .env("NATS_PORT", free_port().to_string())
        .env("NATS_SERVER_BIN", nats_server_binary())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for step in [
        "resolver: URL(http://127.0.0.1:",
        "pushed SYS",
        "pushed DEMO",
        "received hello as the DEMO user",
        "confirmed \"jwt updated\"",
        "the pushed limit took effect",
        "quick start done",
    ] {
        assert!(
            stdout.contains(step),
            "missing {step:?} in:\n{stdout}\n{stderr}"
        );
    }
}
