//! Replica mode: a replica serves what its primary has — through the initial pack, through NATS
//! notifications while both run, and through the periodic re-sync after it missed them.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

fn version(w: &World, a: &nkeys::KeyPair, iat: i64) -> String {
    let mut c = account_claims("A", &a.public_key());
    c["iat"] = json!(iat);
    c["nats"]["tags"] = json!([format!("v{iat}")]);
    sign(&c, &w.signing_key)
}

/// A primary account server with its own folder and store in the world, and `extra` config.
fn start_primary(w: &World, extra: &str) -> AccountServer {
    let dir = w.dir.path().join("primary");
    std::fs::create_dir_all(&dir).unwrap();
    AccountServer::start(
        &dir,
        &nas_config(&w.path("primary-jwt"), Some(&w.operator_path), extra),
    )
}

fn wait_for_body(server: &AccountServer, path: &str, want: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if server.get(path).text() == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_follows_the_primary_by_notification_and_by_resync() {
    let w = World::new();
    let port = free_port();
    let nats_block = |name: &str| {
        format!(
            "nats {{ servers: [\"nats://127.0.0.1:{port}\"], usercredentials: \"{}\", reconnectwait: 200 }}\n",
            w.user_creds(&w.sys, name).display()
        )
    };
    let primary = start_primary(&w, &nats_block("primary"));
    assert_eq!(
        primary.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let path = format!("/jwt/v1/accounts/{key}");
    let t0 = now() - 1000;
    assert_eq!(primary.post_account(&key, &version(&w, &a, t0)).status, 200);

    let _nats = NatsServer::start(
        w.dir.path(),
        "rep",
        &NatsOptions {
            port: Some(port),
            ..NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &primary)
        },
    );
    let replica_conf = |extra: &str| {
        format!(
            "http {{ host: 127.0.0.1, port: 0 }}\nstore {{ dir: \"{}\" }}\noperatorjwtpath: \"{}\"\nlogging {{ colors: false }}\nprimary: \"http://{}/\"\n{extra}",
            w.path("replica-jwt").display(),
            w.operator_path.display(),
            primary.addr
        )
    };
    let replica_dir = w.dir.path().join("replica");
    std::fs::create_dir_all(&replica_dir).unwrap();
    // 1. Initial pack, then a notification (re-sync only every minute here).
    let mut replica = AccountServer::start(
        &replica_dir,
        &replica_conf(&format!(
            "{}replicationinterval: 60000\n",
            nats_block("replica")
        )),
    );
    assert_eq!(
        replica.get(&path).text(),
        version(&w, &a, t0),
        "initial pack"
    );
    replica.wait_nats_connected(Duration::from_secs(10));
    let v1 = version(&w, &a, t0 + 1);
    assert_eq!(primary.post_account(&key, &v1).status, 200);
    assert!(
        wait_for_body(&replica, &path, &v1, Duration::from_secs(5)),
        "notification not applied: {}",
        replica.logs.text()
    );
    // A replica refuses pushes and says where to go.
    let r = replica.post_account(&key, &version(&w, &a, t0 + 2));
    assert_eq!(r.status, 405);
    assert!(
        r.text().contains("push JWTs to the primary"),
        "{}",
        r.text()
    );
    // An account it never heard of is fetched from the primary on demand.
    let (b, b_jwt) = w.new_account("B");
    replica.kill();

    // 2. The replica was down: the primary moved on.
    let v2 = version(&w, &a, t0 + 2);
    assert_eq!(primary.post_account(&key, &v2).status, 200);
    assert_eq!(primary.post_account(&b.public_key(), &b_jwt).status, 200);
    // Restarted without NATS and with a fast re-sync: the start sync brings v2 ...
    let replica = AccountServer::start(&replica_dir, &replica_conf("replicationinterval: 500\n"));
    assert_eq!(replica.get(&path).text(), v2);
    assert_eq!(
        replica
            .get(&format!("/jwt/v1/accounts/{}", b.public_key()))
            .text(),
        b_jwt
    );
    // ... and the periodic re-sync brings what changes later, with no notification at all.
    let v3 = version(&w, &a, t0 + 3);
    assert_eq!(primary.post_account(&key, &v3).status, 200);
    assert!(
        wait_for_body(&replica, &path, &v3, Duration::from_secs(5)),
        "re-sync did not bring v3: {}",
        replica.logs.text()
    );
    assert!(replica.logs.text().contains("synchronised with primary"));

    // Only JWTs our operator trusts are taken from a primary.
    let c = nkeys::KeyPair::new_account();
    std::fs::write(
        w.path("primary-jwt")
            .join(format!("{}.jwt", c.public_key())),
        sign(
            &account_claims("C", &c.public_key()),
            &nkeys::KeyPair::new_operator(),
        ),
    )
    .unwrap();
    assert_eq!(
        replica
            .get(&format!("/jwt/v1/accounts/{}", c.public_key()))
            .status,
        404
    );
}

/// GETs of keys the primary does not have are not forwarded one for one: a key the primary
/// did not have is answered 404 without asking again for a short time, then asked again.
#[test]
fn a_replica_remembers_misses_for_a_short_time() {
    let w = World::new();
    let primary = start_primary(&w, "logging { colors: false, trace: true }\n");
    let replica_dir = w.dir.path().join("replica");
    std::fs::create_dir_all(&replica_dir).unwrap();
    let replica = AccountServer::start(
        &replica_dir,
        &nas_config(
            &w.path("replica-jwt"),
            Some(&w.operator_path),
            &format!("primary: \"http://{}/\"\n", primary.addr),
        ),
    );
    let unknown: Vec<nkeys::KeyPair> = (0..3).map(|_| nkeys::KeyPair::new_account()).collect();
    let asked = |kp: &nkeys::KeyPair| {
        primary
            .logs
            .count(&format!("request for JWT for - {}", &kp.public_key()[..12]))
    };
    let started = Instant::now();
    for i in 0..300 {
        let key = unknown[i % 3].public_key();
        assert_eq!(replica.get_account(&key).status, 404);
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let forwarded: usize = unknown.iter().map(asked).sum();
    let bound = 3 * (took.as_secs() as usize / 2 + 1);
    println!(
        "300 GETs of 3 unknown keys in {took:?}: {forwarded} asked at the primary (bound {bound})"
    );
    assert!(
        forwarded >= 3 && forwarded <= bound,
        "{forwarded} lookups at the primary"
    );
    // Once the primary has the account and the miss has aged, the replica serves it.
    let (kp, jwt) = (
        &unknown[0],
        sign(
            &account_claims("LATE", &unknown[0].public_key()),
            &w.signing_key,
        ),
    );
    assert_eq!(primary.post_account(&kp.public_key(), &jwt).status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(replica.get_account(&kp.public_key()).text(), jwt);
}
