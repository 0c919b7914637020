//! Liveness and readiness (issue 14): `/healthz` is 200 whenever the process serves;
//! `/readyz` and `/healthz?ready=true` are 200 only when the store is usable and, with NATS
//! configured, the NATS connection is up — against nats-server 2.9.10 and 2.15.1.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// Both readiness routes: (status, body) of each, checked to agree, plus liveness.
fn readiness(nas: &AccountServer) -> (u16, Value) {
    let live = nas.get("/healthz");
    assert_eq!((live.status, live.text()), (200, String::new()));
    let ready = nas.get("/readyz");
    assert_eq!(ready.header("content-type"), Some("application/json"));
    let body: Value =
        serde_json::from_slice(&ready.body).unwrap_or_else(|e| panic!("{e}: {}", ready.text()));
    let query = nas.get("/healthz?ready=true");
    assert_eq!(query.status, ready.status);
    assert_eq!(query.header("content-type"), Some("application/json"));
    (ready.status, body)
}

/// Polls (bounded) until readiness has `status`; returns its body.
fn wait_ready_status(nas: &AccountServer, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (now, body) = readiness(nas);
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "readiness stayed {now}: {body}\n{}",
            nas.logs.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readiness_follows_the_nats_connection_with_both_nats_server_versions() {
    for (version, binary) in nats_binaries() {
        let w = World::new();
        let port = free_port();
        let url = format!("nats://127.0.0.1:{port}");
        let nas = start_nas_with_sys(&w, &nats_block(&w, std::slice::from_ref(&url), ""));

        // NATS is down: not ready, and the body says why.
        let down = wait_ready_status(&nas, 503);
        assert_eq!(down["ready"], json!(false), "{version}: {down}");
        assert_eq!(down["store"], json!({"ok": true}), "{version}: {down}");
        assert_eq!(down["nats"]["configured"], json!(true), "{version}: {down}");
        assert_eq!(down["nats"]["connected"], json!(false), "{version}: {down}");

        // A nats-server comes up on that port: ready.
        let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
        opts.port = Some(port);
        let mut nats = NatsServer::start_binary(&binary, w.dir.path(), "n1", &opts);
        let up = wait_ready_status(&nas, 200);
        assert_eq!(
            up,
            json!({"ready": true, "store": {"ok": true}, "nats": {"configured": true, "connected": true}}),
            "{version}"
        );

        // It goes away: not ready again, with the cause.
        nats.stop();
        let lost = wait_ready_status(&nas, 503);
        assert_eq!(lost["nats"]["connected"], json!(false), "{version}: {lost}");
        let error = lost["nats"]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(&url), "{version}: {lost}");
    }
}

#[test]
fn the_down_cause_names_the_server_and_the_os_error() {
    let w = World::new();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let nas = start_nas_with_sys(&w, &nats_block(&w, std::slice::from_ref(&url), ""));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readiness(&nas);
        assert_eq!(status, 503, "{body}");
        if body["nats"]["error"] == json!(format!("{url}: Connection refused (os error 111)")) {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readiness_needs_the_store_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("jwt");
    let nas = AccountServer::start(tmp.path(), &nas_config(&store, None, ""));
    assert_eq!(
        readiness(&nas),
        (
            200,
            json!({"ready": true, "store": {"ok": true}, "nats": {"configured": false}})
        )
    );
    let moved = tmp.path().join("moved");
    std::fs::rename(&store, &moved).unwrap();
    let (status, body) = readiness(&nas);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"]["ok"], json!(false), "{body}");
    let error = body["store"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("No such file or directory"), "{body}");
    std::fs::rename(&moved, &store).unwrap();
    assert_eq!(readiness(&nas).0, 200);
}
