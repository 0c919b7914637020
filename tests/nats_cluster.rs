//! The NATS connection against real clusters: every URL of `nats.servers` is used, the
//! connection moves to another node when its node dies and keeps notifying, and a server that
//! wants TLS before INFO (`handshake_first`) is reached.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use support::*;

/// Waits up to 15 s for the connection named `name` to show on one of `nodes`; its index.
fn node_with(nodes: &[&NatsServer], name: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(i) = nodes.iter().position(|n| has_connection(n, name)) {
            return i;
        }
        assert!(Instant::now() < deadline, "{name} is connected to no node");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn failover_with(version: &str, binary: &std::path::Path) {
    let w = World::new();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    let nas = start_nas_with_sys(&w, &nats_block(&w, &urls, "  name: nas-cluster"));
    let mut cluster = start_cluster(binary, w.dir.path(), "c", 3, |i| {
        let mut o = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
        o.port = Some(ports[i]);
        o
    });
    wait_for_routes(&cluster);
    let first = node_with(&cluster.iter().collect::<Vec<_>>(), "nas-cluster");
    assert!(
        nas.logs
            .wait_for("connected to NATS", Duration::from_secs(5))
            .is_some(),
        "{version}: {}",
        nas.logs.text()
    );

    // A system-account listener on a node that survives.
    let watcher = (first + 1) % 3;
    let listener = connect(
        &cluster[watcher].client_url(),
        &w.user_creds(&w.sys, "listener"),
    )
    .await
    .unwrap();
    let (account, jwt) = w.new_account("A");
    let subject = format!("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", account.public_key());
    let mut updates = listener.subscribe(subject).await.unwrap();
    listener.flush().await.unwrap();
    assert_eq!(nas.post_account(&account.public_key(), &jwt).status, 200);
    let got = tokio::time::timeout(Duration::from_secs(5), updates.next()).await;
    assert_eq!(
        got.expect("update before the failover")
            .unwrap()
            .payload
            .as_ref(),
        jwt.as_bytes(),
        "{version}"
    );

    cluster[first].stop();
    let survivors: Vec<&NatsServer> = (0..3)
        .filter(|i| *i != first)
        .map(|i| &cluster[i])
        .collect();
    node_with(&survivors, "nas-cluster");
    let mut claims = account_claims("A2", &account.public_key());
    claims["iat"] = json!(now() + 1);
    let newer = sign(&claims, &w.signing_key);
    assert_eq!(nas.post_account(&account.public_key(), &newer).status, 200);
    let got = tokio::time::timeout(Duration::from_secs(10), updates.next()).await;
    assert_eq!(
        got.expect("update after the failover")
            .unwrap()
            .payload
            .as_ref(),
        newer.as_bytes(),
        "{version}: {}",
        nas.logs.text()
    );
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_url_is_used_and_a_dead_node_is_left_for_another() {
    for (version, binary) in nats_binaries() {
        failover_with(version, &binary).await;
    }
}

/// `handshake_first` exists since nats-server 2.10, so this runs against 2.15.1 only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_wants_tls_first_is_reached() {
    let w = World::new();
    let tls = make_tls_files(w.dir.path());
    let port = free_port();
    let tls_lines = format!(
        "  name: nas-tls-first\n  tls {{ root: \"{}\", handshakefirst: true }}",
        tls.ca.display()
    );
    let urls = [format!("nats://127.0.0.1:{port}")];
    let nas = start_nas_with_sys(&w, &nats_block(&w, &urls, &tls_lines));
    let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
    opts.port = Some(port);
    opts.monitor = true;
    opts.extra = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  handshake_first: true\n}}\n",
        tls.server_cert.display(),
        tls.server_key.display()
    );
    let nats = NatsServer::start_binary(&nats_server_215_binary(), w.dir.path(), "tlsfirst", &opts);
    node_with(&[&nats], "nas-tls-first");

    // Negative control: a client that waits for INFO first does not get in.
    let plain = async_nats::ConnectOptions::new()
        .add_root_certificates(tls.ca.clone())
        .require_tls(true)
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.client_url())
        .await;
    assert!(plain.is_err(), "a client without TLS first connected");
}
