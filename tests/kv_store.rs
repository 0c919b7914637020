//! Account servers on a JetStream KV bucket (one JetStream nats-server, 2.9.10 and 2.15.1):
//! a change posted to one instance is served by the other at once (its KV watch keeps the
//! cache exact) and announced once, by the instance that wrote it; a nats-server whose URL
//! resolver points at the other instance applies it; with JetStream down, GETs answer from the
//! cache, readiness says why, and POSTs get 503 until it is back.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::kv::*;
use support::*;

/// Polls `nas` for `key` until it serves `jwt` (at most `limit`); how long it took.
fn wait_served(nas: &AccountServer, key: &str, jwt: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if nas.get_account(key).text() == jwt {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            let out = std::process::Command::new("gdb")
                .args([
                    "-p",
                    &nas.pid().to_string(),
                    "-batch",
                    "-ex",
                    "thread apply all bt 40",
                ])
                .output()
                .unwrap();
            std::fs::write("/tmp/gdb.txt", out.stdout).unwrap();
            panic!("not served within {limit:?}: {}", nas.logs.text());
        }
    }
}

async fn two_instances(version: &str, binary: &std::path::Path) {
    let w = World::new();
    let js = JsServer::start(binary, w.dir.path());
    let nats_port = free_port();
    let sys_creds = w.user_creds(&w.sys, "nas-sys");
    let nats_block = format!(
        "nats {{\n  servers: [\"nats://127.0.0.1:{nats_port}\"]\n  usercredentials: \"{}\"\n  reconnectwait: 200\n}}\n",
        sys_creds.display()
    );
    let config = kv_nas_config(&w, &[js.url()], "accounts", 1, &nats_block);
    let one = start_kv_nas(&w, "one", &config);
    let two = start_kv_nas(&w, "two", &config);
    assert_eq!(
        one.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );

    // A change posted to instance 1 reaches instance 2's cache through the KV watch.
    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let now = now();
    let mut latencies = Vec::new();
    for i in 0..20 {
        let jwt = account_with_subs(&w, &a, 100 + i, now - 100 + i);
        if i > 0 {
            // Instance 2 serves (and caches) the previous version first.
            assert_eq!(two.get_account(&key).status, 200);
        }
        assert_eq!(one.post_account(&key, &jwt).status, 200);
        latencies.push(wait_served(&two, &key, &jwt, Duration::from_secs(5)));
    }
    latencies.sort();
    eprintln!(
        "{version}: POST to instance 1 served by instance 2 after: median {:?}, max {:?} (20 changes)",
        latencies[10], latencies[19]
    );
    assert!(latencies[19] <= Duration::from_millis(100), "{latencies:?}");

    // A nats-server resolving through instance 2 applies a change posted to instance 1, which
    // only instance 1 announced.
    let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &two);
    opts.port = Some(nats_port);
    opts.monitor = true;
    let nats = NatsServer::start_binary(binary, w.dir.path(), "n", &opts);
    one.wait_nats_connected(Duration::from_secs(10));
    two.wait_nats_connected(Duration::from_secs(10));
    let user = connect(&nats.client_url(), &w.user_creds(&a, "a-user"))
        .await
        .unwrap();
    user.flush().await.unwrap();
    let listener = connect(&nats.client_url(), &w.user_creds(&w.sys, "listener"))
        .await
        .unwrap();
    let mut updates = listener
        .subscribe(format!("$SYS.ACCOUNT.{key}.CLAIMS.UPDATE"))
        .await
        .unwrap();
    listener.flush().await.unwrap();
    let newest = account_with_subs(&w, &a, 7, now);
    assert_eq!(one.post_account(&key, &newest).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !monitor(&nats, &format!("/accountz?acc={key}")).contains(&jti_of(&newest)) {
        assert!(
            Instant::now() < deadline,
            "{version}: nats-server did not apply the change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), updates.next()).await {
        seen += 1;
    }
    assert_eq!(seen, 1, "{version}: the change was announced {seen} times");
    assert_eq!(two.get_account(&key).text(), newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_posted_to_one_instance_is_served_by_the_other_and_announced_once() {
    for (version, binary) in nats_binaries() {
        two_instances(version, &binary).await;
    }
}

fn jetstream_down(version: &str, binary: &std::path::Path) {
    let w = World::new();
    let js = JsServer::start(binary, w.dir.path());
    let port = js.port;
    let nas = start_kv_nas(
        &w,
        "nas",
        &kv_nas_config(&w, &[js.url()], "accounts", 1, ""),
    );
    let (a, jwt) = w.new_account("A");
    let key = a.public_key();
    assert_eq!(nas.post_account(&key, &jwt).status, 200);
    assert_eq!(nas.get_account(&key).text(), jwt);
    drop(js);

    // Served from the cache; readiness and POSTs say the store is unavailable.
    assert_eq!(nas.get_account(&key).text(), jwt, "{version}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let r = nas.get("/readyz");
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ready.status, 503, "{version}: {}", ready.text());
    assert!(
        ready.text().contains(r#""store":{"ok":false"#),
        "{}",
        ready.text()
    );
    let (b, b_jwt) = w.new_account("B");
    let refused = nas.post_account(&b.public_key(), &b_jwt);
    assert_eq!(refused.status, 503, "{version}: {}", refused.text());
    assert!(refused.text().contains("unavailable"), "{}", refused.text());
    assert_eq!(nas.get_account(&key).text(), jwt, "{version}");

    // Back up (same port, same data): writes work again.
    let _js = JsServer::start_on(binary, w.dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = nas.post_account(&b.public_key(), &b_jwt);
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{version}: {}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(nas.get_account(&b.public_key()).text(), b_jwt);
    assert_eq!(nas.get("/readyz").status, 200);
}

#[test]
fn with_jetstream_down_gets_come_from_the_cache_and_posts_get_503() {
    for (version, binary) in nats_binaries() {
        jetstream_down(version, &binary);
    }
}
