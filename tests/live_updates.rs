//! Live updates over NATS with the real nats-server: the account server connects by itself
//! whenever NATS comes up, pushes every change to running servers (once), keeps changes made
//! during an outage, stores trusted newer updates other clients publish, answers lookups, and
//! connects over TLS.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use support::*;

/// An account server configured with NATS on `nats_port` (not necessarily running yet).
fn nas_with_nats(w: &World, nats_port: u16, extra_nats: &str) -> AccountServer {
    let creds = w.user_creds(&w.sys, "nas-sys");
    let extra = format!(
        "nats {{\n  servers: [\"nats://127.0.0.1:{nats_port}\"]\n  usercredentials: \"{}\"\n  reconnectwait: 200\n{extra_nats}}}\n",
        creds.display()
    );
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), &extra),
    );
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    nas
}

fn start_nats(w: &World, nas: &AccountServer, port: u16, extra: &str) -> NatsServer {
    let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), nas);
    opts.port = Some(port);
    opts.monitor = true;
    opts.extra = extra.to_string();
    NatsServer::start(w.dir.path(), &format!("n{port}"), &opts)
}

/// A client whose server errors (e.g. limit violations) are collected.
async fn client_with_errors(
    url: &str,
    creds: &std::path::Path,
) -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = errors.clone();
    let client = async_nats::ConnectOptions::with_credentials_file(creds.to_path_buf())
        .await
        .unwrap()
        .event_callback(move |event| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(event.to_string());
            }
        })
        .connect(url)
        .await
        .expect("client connects");
    (client, errors)
}

/// Subscribes twice and waits for the server's subscription-limit error.
async fn assert_subs_limited(client: &async_nats::Client, errors: &Arc<Mutex<Vec<String>>>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut subs = Vec::new();
    while tokio::time::Instant::now() < deadline {
        subs.push(
            client
                .subscribe(format!("limit.{}", subs.len()))
                .await
                .unwrap(),
        );
        let _ = client.flush().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.to_lowercase().contains("maximum subscriptions"))
        {
            return;
        }
    }
    panic!(
        "no subscription limit error; events: {:?}",
        errors.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_before_nats_it_connects_by_itself_and_live_updates_apply() {
    let w = World::new();
    let port = free_port();
    let nas = nas_with_nats(&w, port, "");
    // NATS is down: the HTTP API serves anyway and the connection is retried.
    assert_eq!(nas.get("/healthz").status, 200);
    assert!(nas
        .logs
        .wait_for(
            &format!("cannot connect to NATS at nats://127.0.0.1:{port}: Connection refused"),
            Duration::from_secs(10)
        )
        .is_some());
    assert!(nas
        .logs
        .wait_for("; next attempt in 200 ms", Duration::from_secs(5))
        .is_some());

    let a = nkeys::KeyPair::new_account();
    let t0 = now();
    assert_eq!(
        nas.post_account(&a.public_key(), &account_with_subs(&w, &a, -1, t0))
            .status,
        200
    );
    let nats = start_nats(&w, &nas, port, "");
    nas.wait_nats_connected(Duration::from_secs(10));

    // A client of A is connected; then a newer A lowers limits.subs to 1.
    let (client, errors) = client_with_errors(&nats.client_url(), &w.user_creds(&a, "ua")).await;
    client.flush().await.unwrap();
    let newer = account_with_subs(&w, &a, 1, t0 + 1);
    // A system-account observer counts the notifications we publish.
    let observer = connect(&nats.client_url(), &w.user_creds(&w.sys, "observer"))
        .await
        .unwrap();
    let mut seen = observer
        .subscribe(format!("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", a.public_key()))
        .await
        .unwrap();
    observer.flush().await.unwrap();
    assert_eq!(nas.post_account(&a.public_key(), &newer).status, 200);

    assert_subs_limited(&client, &errors).await;
    let accountz = monitor(&nats, &format!("/accountz?acc={}", a.public_key()));
    assert!(accountz.contains(&jti_of(&newer)), "{accountz}");

    // Exactly one notification per POST.
    let first = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.payload.as_ref(), newer.as_bytes());
    assert!(
        tokio::time::timeout(Duration::from_secs(2), seen.next())
            .await
            .is_err(),
        "a second notification was sent"
    );
    // nats-server's reply was counted (the earlier notifications were "skipped": A was not loaded).
    let summary = format!(
        "notification for {}: 1 nats-server(s) confirmed \"jwt updated\"",
        &a.public_key()[..12]
    );
    assert!(
        nas.logs
            .wait_for(&summary, Duration::from_secs(5))
            .is_some(),
        "{}",
        nas.logs.text()
    );

    // GET ?notify=true sends it again.
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}?notify=true", a.public_key()))
            .status,
        200
    );
    let again = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.payload.as_ref(), newer.as_bytes());
}

/// A flood of `?notify=true` GETs sends at most one notification per second for the account
/// (unauthenticated GETs cannot flood NATS), with either nats-server version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_notify_gets_sends_one_notification_per_second() {
    for (version, binary) in nats_binaries() {
        let w = World::new();
        let port = free_port();
        let nas = nas_with_nats(&w, port, "");
        let a = nkeys::KeyPair::new_account();
        let jwt = account_with_subs(&w, &a, -1, now());
        assert_eq!(nas.post_account(&a.public_key(), &jwt).status, 200);
        let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
        opts.port = Some(port);
        let nats = NatsServer::start_binary(&binary, w.dir.path(), &format!("n{port}"), &opts);
        nas.wait_nats_connected(Duration::from_secs(10));
        let observer = connect(&nats.client_url(), &w.user_creds(&w.sys, "observer"))
            .await
            .unwrap();
        let mut seen = observer
            .subscribe(format!("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", a.public_key()))
            .await
            .unwrap();
        observer.flush().await.unwrap();
        println!("nats-server {version}:");
        // A flood of ?notify=true GETs sends at most one notification per second for the account.
        let started = std::time::Instant::now();
        let (addr, path) = (
            nas.addr.clone(),
            format!("/jwt/v1/accounts/{}?notify=true", a.public_key()),
        );
        let served = tokio::task::spawn_blocking(move || {
            (0..3000)
                .filter(|_| get(&addr, &path).status == 200)
                .count()
        })
        .await
        .unwrap();
        let flood = started.elapsed();
        assert_eq!(served, 3000);
        let mut sent = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1500), seen.next()).await
        {
            sent += 1;
        }
        let bound = flood.as_secs() as usize + 2;
        println!("3000 GETs with notify=true in {flood:?}: {sent} notifications (bound {bound})");
        assert!(
            sent >= 1 && sent <= bound,
            "{sent} notifications for 3000 GETs in {flood:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_nats_is_down_is_in_force_after_it_comes_back() {
    let w = World::new();
    let port = free_port();
    let nas = nas_with_nats(&w, port, "");
    let a = nkeys::KeyPair::new_account();
    let t0 = now();
    assert_eq!(
        nas.post_account(&a.public_key(), &account_with_subs(&w, &a, -1, t0))
            .status,
        200
    );
    let mut nats = start_nats(&w, &nas, port, "");
    nas.wait_nats_connected(Duration::from_secs(10));
    let creds = w.user_creds(&a, "ua");
    let (client, _) = client_with_errors(&nats.client_url(), &creds).await;
    client.flush().await.unwrap();
    drop(client);

    nats.stop();
    assert!(nas
        .logs
        .wait_for("disconnected from NATS at nats://", Duration::from_secs(10))
        .is_some());
    let newer = account_with_subs(&w, &a, 1, t0 + 1);
    let reply = nas.post_account(&a.public_key(), &newer);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .text(),
        newer
    );
    assert!(nas
        .logs
        .wait_for("is pending and will be sent", Duration::from_secs(5))
        .is_some());

    let nats = start_nats(&w, &nas, port, "");
    assert!(
        nas.logs
            .wait_for(
                &format!("sent update notification for {}", &a.public_key()[..12]),
                Duration::from_secs(15)
            )
            .is_some(),
        "{}",
        nas.logs.text()
    );
    let (client, errors) = client_with_errors(&nats.client_url(), &creds).await;
    assert_subs_limited(&client, &errors).await;
    let accountz = monitor(&nats, &format!("/accountz?acc={}", a.public_key()));
    assert!(accountz.contains(&jti_of(&newer)), "{accountz}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_published_by_others_are_stored_only_when_newer_and_trusted() {
    let w = World::new();
    let port = free_port();
    let nas = nas_with_nats(&w, port, "");
    let nats = start_nats(&w, &nas, port, "");
    nas.wait_nats_connected(Duration::from_secs(10));
    let sys = connect(&nats.client_url(), &w.user_creds(&w.sys, "publisher"))
        .await
        .unwrap();

    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let t0 = now();
    let v1 = account_with_subs(&w, &a, 10, t0);
    assert_eq!(nas.post_account(&key, &v1).status, 200);
    let path = format!("/jwt/v1/accounts/{key}");
    let subject = format!("$SYS.ACCOUNT.{key}.CLAIMS.UPDATE");
    let publish = |jwt: String| {
        let sys = sys.clone();
        let subject = subject.clone();
        async move {
            sys.publish(subject, jwt.into()).await.unwrap();
            sys.flush().await.unwrap();
        }
    };

    // Newer and trusted: stored.
    let v2 = account_with_subs(&w, &a, 20, t0 + 10);
    publish(v2.clone()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nas.get(&path).text() != v2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(nas.get(&path).text(), v2);

    // Older, expired, untrusted: ignored with a log line each.
    let older = account_with_subs(&w, &a, 30, t0 + 5);
    let mut expired = account_claims("A", &key);
    expired["iat"] = json!(t0 + 20);
    expired["exp"] = json!(t0 - 10);
    let expired = sign(&expired, &w.signing_key);
    let mut untrusted = account_claims("A", &key);
    untrusted["iat"] = json!(t0 + 30);
    let untrusted = sign(&untrusted, &nkeys::KeyPair::new_operator());
    let before = nas.logs.count("refused an update for");
    for jwt in [older, expired, untrusted] {
        publish(jwt).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nas.logs.count("refused an update for") < before + 3
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = nas.logs.text();
    assert_eq!(
        nas.logs.count("refused an update for"),
        before + 3,
        "{logs}"
    );
    assert!(logs.contains("refusing to roll back"), "{logs}");
    assert!(logs.contains("expired"), "{logs}");
    assert!(logs.contains("untrusted issuer"), "{logs}");
    assert_eq!(nas.get(&path).text(), v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_get_the_stored_jwt_and_unknown_accounts_get_no_reply() {
    let w = World::new();
    let port = free_port();
    let nas = nas_with_nats(&w, port, "");
    let nats = start_nats(&w, &nas, port, "");
    nas.wait_nats_connected(Duration::from_secs(10));
    let (a, a_jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&a.public_key(), &a_jwt).status, 200);
    let sys = connect(&nats.client_url(), &w.user_creds(&w.sys, "asker"))
        .await
        .unwrap();

    let ask = |key: String| {
        let sys = sys.clone();
        async move {
            let req = async_nats::Request::new().timeout(Some(Duration::from_secs(2)));
            sys.send_request(format!("$SYS.REQ.ACCOUNT.{key}.CLAIMS.LOOKUP"), req)
                .await
        }
    };
    let reply = ask(a.public_key()).await.expect("lookup answered");
    assert_eq!(reply.payload.as_ref(), a_jwt.as_bytes());
    let unknown = ask(nkeys::KeyPair::new_account().public_key()).await;
    assert!(unknown.is_err(), "unknown account got a reply: {unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_to_a_tls_nats_server_with_a_root_ca_and_with_a_client_certificate() {
    for mutual in [false, true] {
        let w = World::new();
        let tls = make_tls_files(w.dir.path());
        let port = free_port();
        let mut nats_tls = format!("  tls {{ root: \"{}\"", tls.ca.display());
        if mutual {
            nats_tls.push_str(&format!(
                ", cert: \"{}\", key: \"{}\"",
                tls.client_cert.display(),
                tls.client_key.display()
            ));
        }
        nats_tls.push_str(" }\n");
        let nas = nas_with_nats(&w, port, &nats_tls);
        let server_tls = format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {mutual}\n}}\n",
            tls.server_cert.display(),
            tls.server_key.display(),
            tls.ca.display()
        );
        let nats = start_nats(&w, &nas, port, &server_tls);
        assert!(
            nas.logs
                .wait_for(
                    "connected to NATS for account notifications",
                    Duration::from_secs(15)
                )
                .is_some(),
            "mutual={mutual}: {}\n{}",
            nas.logs.text(),
            nats.logs.text()
        );
        // And notifications flow over it.
        let (a, a_jwt) = w.new_account("A");
        assert_eq!(nas.post_account(&a.public_key(), &a_jwt).status, 200);
        assert!(nas
            .logs
            .wait_for(
                &format!("sent update notification for {}", &a.public_key()[..12]),
                Duration::from_secs(10)
            )
            .is_some());
    }
}

#[test]
fn unreadable_creds_stop_the_start_naming_the_file() {
    let w = World::new();
    let missing = w.path("missing.creds");
    let conf = nas_config(
        &w.path("jwt"),
        Some(&w.operator_path),
        &format!(
            "nats {{ servers: [\"nats://127.0.0.1:1\"], usercredentials: \"{}\" }}\n",
            missing.display()
        ),
    );
    std::fs::write(w.path("nas.conf"), conf).unwrap();
    let err = AccountServer::try_start_args(&["-c", w.path("nas.conf").to_str().unwrap()])
        .err()
        .expect("must not start");
    assert_eq!(err.0, Some(1));
    assert!(err.1.contains("missing.creds"), "{}", err.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_maxreconnects_it_goes_back_to_connecting_instead_of_exiting() {
    let w = World::new();
    let port = free_port();
    let nas = nas_with_nats(&w, port, "  maxreconnects: 1\n");
    let mut nats = start_nats(&w, &nas, port, "");
    let connected = "connected to NATS for account notifications";
    assert!(nas
        .logs
        .wait_for(connected, Duration::from_secs(10))
        .is_some());
    nats.stop();
    assert!(
        nas.logs
            .wait_for("gave up reconnecting to NATS", Duration::from_secs(20))
            .is_some(),
        "{}",
        nas.logs.text()
    );
    assert_eq!(nas.get("/healthz").status, 200);
    let _nats = start_nats(&w, &nas, port, "");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while nas.logs.count(connected) < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(nas.logs.count(connected), 2, "{}", nas.logs.text());
}
