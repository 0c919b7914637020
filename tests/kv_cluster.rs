//! Two account servers on a replicas-3 KV bucket of a three-node JetStream cluster (2.9.10 and
//! 2.15.1). During a storm of POSTs of many versions across both instances, the stream leader
//! of the bucket and one account server are SIGKILLed. Afterwards every JWT acknowledged with
//! 200 (or a newer one) is served by the surviving instance, and no GET sampled during the
//! storm saw an account go backwards on the instance it asked.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::jetstream::*;
use support::kv::*;
use support::*;

const ACCOUNTS: usize = 12;
const VERSIONS: i64 = 60;
/// How long the storm may go on after the kills (a new stream leader takes 4-9 s); it ends
/// sooner when every writer is done.
const AFTER_KILLS: Duration = Duration::from_secs(25);

/// The iat of a served JWT.
fn iat_of(jwt: &str) -> i64 {
    nats_account_server::jwt::peek::peek(jwt.as_bytes())
        .map(|p| p.iat)
        .unwrap_or(0)
}

/// Every version of every account: (public key, [(iat, jwt)]), oldest first.
fn versions(w: &World) -> Vec<(String, Vec<(i64, String)>)> {
    let base = now() - 10_000;
    (0..ACCOUNTS)
        .map(|i| {
            let kp = nkeys::KeyPair::new_account();
            let list = (1..=VERSIONS)
                .map(|v| {
                    let mut claims = account_claims(&format!("A{i}"), &kp.public_key());
                    claims["iat"] = json!(base + v);
                    claims["nats"]["limits"]["subs"] = json!(v);
                    (base + v, sign(&claims, &w.signing_key))
                })
                .collect();
            (kp.public_key(), list)
        })
        .collect()
}

/// The bucket stream's leader, as a node index.
fn stream_leader(cluster: &JsCluster) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = rt.block_on(async {
            let client = try_js_client(&cluster.urls()).await.ok()?;
            let js = async_nats::jetstream::new(client);
            stream_peers(&js, "KV_accounts").await.ok()
        });
        if let Some(i) = leader.and_then(|p| cluster.index_of(&p.leader)) {
            return i;
        }
        assert!(Instant::now() < deadline, "no stream leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Storm {
    /// Highest acknowledged iat per account.
    acked: Mutex<HashMap<String, i64>>,
    /// Acknowledgements after the kills.
    acked_after_kills: AtomicUsize,
    /// When the kills happened and the first acknowledgement after them.
    kill_times: Mutex<(Option<Instant>, Option<Instant>)>,
    killed: AtomicBool,
    stop: AtomicBool,
    /// (instance, account, served iat before, served iat after) of every backwards read.
    backwards: Mutex<Vec<(String, String, i64, i64)>>,
    reads: AtomicUsize,
    failed_reads: AtomicUsize,
}

/// Posts every version of `list`, newest last, each to one of `addrs` (rotating), and now and
/// then an older version again (which must not win).
fn writer(storm: &Storm, addrs: &[String], key: &str, list: &[(i64, String)]) {
    for (n, (iat, jwt)) in list.iter().enumerate() {
        for attempt in 0..2 {
            let addr = &addrs[(n + attempt) % addrs.len()];
            let path = format!("/jwt/v1/accounts/{key}");
            let Ok(reply) = try_post(addr, &path, jwt.as_bytes()) else {
                continue;
            };
            if reply.status == 200 {
                let mut acked = storm.acked.lock().unwrap();
                let best = acked.entry(key.to_string()).or_insert(0);
                *best = (*best).max(*iat);
                if storm.killed.load(Ordering::SeqCst) {
                    storm.acked_after_kills.fetch_add(1, Ordering::SeqCst);
                    storm
                        .kill_times
                        .lock()
                        .unwrap()
                        .1
                        .get_or_insert_with(Instant::now);
                }
                break;
            }
        }
        if n % 7 == 6 {
            // An old version: 409 (or 503 while the cluster fails over), never 200.
            let old = &list[n / 2].1;
            if let Ok(r) = try_post(
                &addrs[n % addrs.len()],
                &format!("/jwt/v1/accounts/{key}"),
                old.as_bytes(),
            ) {
                assert_ne!(r.status, 200, "an older JWT was stored: {}", r.text());
            }
        }
        if storm.stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Reads random accounts from `addr` until told to stop; records any account whose served iat
/// went down on this instance.
fn sampler(storm: &Storm, addr: &str, keys: &[String]) {
    let mut last: HashMap<&str, i64> = HashMap::new();
    let mut n = 0usize;
    while !storm.stop.load(Ordering::SeqCst) {
        n += 1;
        let key = &keys[n % keys.len()];
        let Ok(reply) = try_raw_request(
            addr,
            format!("GET /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ) else {
            // The instance was killed.
            return;
        };
        storm.reads.fetch_add(1, Ordering::Relaxed);
        if reply.status != 200 {
            storm.failed_reads.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let iat = iat_of(&reply.text());
        let before = last.insert(key.as_str(), iat).unwrap_or(0);
        if iat < before {
            storm
                .backwards
                .lock()
                .unwrap()
                .push((addr.to_string(), key.clone(), before, iat));
        }
    }
}

fn storm_with(version: &str, binary: &std::path::Path) {
    let w = World::new();
    let mut cluster = JsCluster::start(binary, w.dir.path(), "js");
    let config = kv_nas_config(&w, &cluster.urls(), "accounts", 3, "");
    let mut one = start_kv_nas(&w, "one", &config);
    let two = start_kv_nas(&w, "two", &config);
    let addrs = vec![one.addr.clone(), two.addr.clone()];
    let accounts = versions(&w);
    let keys: Vec<String> = accounts.iter().map(|(k, _)| k.clone()).collect();
    let storm = Arc::new(Storm {
        acked: Mutex::default(),
        acked_after_kills: AtomicUsize::new(0),
        kill_times: Mutex::default(),
        killed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        backwards: Mutex::default(),
        reads: AtomicUsize::new(0),
        failed_reads: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let mut writers = Vec::new();
    for (key, list) in accounts.clone() {
        let (storm, addrs) = (storm.clone(), addrs.clone());
        writers.push(std::thread::spawn(move || {
            writer(&storm, &addrs, &key, &list)
        }));
    }
    let mut threads = Vec::new();
    for addr in addrs.clone() {
        let (storm, keys) = (storm.clone(), keys.clone());
        threads.push(std::thread::spawn(move || sampler(&storm, &addr, &keys)));
    }

    std::thread::sleep(Duration::from_millis(600));
    let leader = stream_leader(&cluster);
    eprintln!(
        "{version}: SIGKILL of stream leader {} and of instance 1 after {:?}",
        cluster.server_name(leader),
        started.elapsed()
    );
    cluster.kill(leader);
    one.kill();
    storm.kill_times.lock().unwrap().0 = Some(Instant::now());
    storm.killed.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + AFTER_KILLS;
    while Instant::now() < deadline && !writers.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    storm.stop.store(true, Ordering::SeqCst);
    for t in writers.into_iter().chain(threads) {
        t.join().unwrap();
    }

    let acked = storm.acked.lock().unwrap().clone();
    if let (Some(kill), Some(first)) = *storm.kill_times.lock().unwrap() {
        eprintln!(
            "{version}: first write acknowledged {:?} after the kills",
            first - kill
        );
    }
    let total: usize = acked.len();
    eprintln!(
        "{version}: {total} accounts acknowledged, {} acks after the kills, {} reads ({} not 200)",
        storm.acked_after_kills.load(Ordering::SeqCst),
        storm.reads.load(Ordering::Relaxed),
        storm.failed_reads.load(Ordering::Relaxed)
    );
    assert!(
        storm.acked_after_kills.load(Ordering::SeqCst) > 0,
        "{version}: no write acknowledged after the kills"
    );
    let backwards = storm.backwards.lock().unwrap().clone();
    assert!(
        backwards.is_empty(),
        "{version}: accounts went backwards: {backwards:?}"
    );
    for (key, iat) in &acked {
        // Bounded: the survivor serves the acknowledged JWT or a newer one.
        let deadline = Instant::now() + Duration::from_secs(20);
        let served = loop {
            let r = two.get_account(key);
            if r.status == 200 || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(served.status, 200, "{version}: {key}: {}", served.text());
        let served = iat_of(&served.text());
        assert!(
            served >= *iat,
            "{version}: {key} acknowledged iat {iat}, served {served}"
        );
    }
}

#[test]
fn acknowledged_jwts_survive_a_node_and_an_instance_killed_during_a_post_storm() {
    for (version, binary) in nats_binaries() {
        storm_with(version, &binary);
    }
}
