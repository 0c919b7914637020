//! Crash safety: the real binary is SIGKILLed at a random moment during a storm of concurrent
//! POSTs, 20 times over one store. After each restart every account serves the last JWT that
//! was acknowledged with 200, or the newer one that was in flight — never an older one, a torn
//! or empty file. Temp files of the killed writes may stay (the startup sweep leaves them for a
//! minute) but are never taken for JWTs.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;

const ROUNDS: i64 = 20;
const ACCOUNTS: usize = 8;

/// What one writer thread knows about its account.
#[derive(Default, Clone)]
struct Known {
    acked: Option<String>,
    in_flight: Option<String>,
}

fn version(signer: &nkeys::KeyPair, a: &nkeys::KeyPair, iat: i64) -> String {
    let mut claims = account_claims("CRASH", &a.public_key());
    claims["iat"] = json!(iat);
    // Vary the size so a torn write would show.
    claims["nats"]["tags"] = json!(["x".repeat((iat % 97) as usize)]);
    sign(&claims, signer)
}

#[test]
fn sigkill_during_a_post_storm_never_loses_or_tears_a_jwt() {
    let w = World::new();
    let store = w.path("jwt");
    let config = nas_config(&store, Some(&w.operator_path), "").replace(
        &format!("store {{ dir: \"{}\" }}", store.display()),
        &format!("store {{ dir: \"{}\", shard: true }}", store.display()),
    );
    let accounts: Vec<nkeys::KeyPair> = (0..ACCOUNTS)
        .map(|_| nkeys::KeyPair::new_account())
        .collect();
    let mut known: Vec<Known> = vec![Known::default(); ACCOUNTS];
    let base = now() - 100_000;
    let mut seed = (now() as u64) | 1;
    let (mut acked_total, mut killed_mid_request) = (0usize, 0usize);

    for round in 0..ROUNDS {
        let mut nas = AccountServer::start(w.dir.path(), &config);
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let a = nkeys::KeyPair::from_seed(&a.seed().unwrap()).unwrap();
                let signer = nkeys::KeyPair::from_seed(&w.signing_key.seed().unwrap()).unwrap();
                let addr = nas.addr.clone();
                let path = format!("/jwt/v1/accounts/{}", a.public_key());
                let stop = stop.clone();
                let mut k = known[i].clone();
                std::thread::spawn(move || {
                    let mut acked = 0usize;
                    for v in 0..1000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let jwt = version(&signer, &a, base + round * 1000 + v);
                        k.in_flight = Some(jwt.clone());
                        match try_post(&addr, &path, jwt.as_bytes()) {
                            Ok(r) if r.status == 200 => {
                                k.acked = Some(jwt);
                                k.in_flight = None;
                                acked += 1;
                            }
                            Ok(r) => panic!("unexpected status {}: {}", r.status, r.text()),
                            Err(_) => break, // the server was killed mid-request
                        }
                    }
                    (k, acked)
                })
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 300));
        nas.kill(); // SIGKILL by handle
        stop.store(true, Ordering::SeqCst);
        for (i, h) in handles.into_iter().enumerate() {
            let (k, acked) = h.join().expect("writer thread");
            acked_total += acked;
            killed_mid_request += usize::from(k.in_flight.is_some());
            known[i] = k;
        }

        let nas = AccountServer::start(w.dir.path(), &config);
        assert!(
            nas.logs
                .wait_for("store check done", Duration::from_secs(10))
                .is_some(),
            "{}",
            nas.logs.text()
        );
        for (i, a) in accounts.iter().enumerate() {
            let got = nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()));
            let k = &known[i];
            let allowed: Vec<&String> = k.acked.iter().chain(k.in_flight.iter()).collect();
            if got.status == 404 {
                assert!(
                    k.acked.is_none(),
                    "round {round}: account {i} lost its acknowledged JWT"
                );
                continue;
            }
            assert_eq!(got.status, 200);
            let text = got.text();
            assert!(
                allowed.iter().any(|j| **j == text),
                "round {round}: account {i} serves a JWT that is neither the acknowledged nor the in-flight one"
            );
            // Whatever is served from now on is what was acknowledged next round.
            known[i].acked = Some(text);
            known[i].in_flight = None;
        }
        // No empty files; every file but the (hidden) temp files is a whole JWT.
        for (path, bytes) in snapshot(&store) {
            if path.ends_with('/') {
                continue;
            }
            let name = path.rsplit('/').next().unwrap_or_default();
            if name.contains(".jwt.tmp-") {
                assert!(
                    name.starts_with('.'),
                    "round {round}: temp file {path} is not hidden"
                );
                continue;
            }
            assert!(!bytes.is_empty(), "round {round}: empty file {path}");
            let text = String::from_utf8(bytes).unwrap();
            nats_account_server::jwt::decode_account(&text)
                .unwrap_or_else(|e| panic!("round {round}: {path} is not a whole JWT: {e}"));
        }
    }
    // The storm was real: many writes acknowledged, and kills landed while requests were open.
    eprintln!("{acked_total} POSTs acknowledged, {killed_mid_request} writers killed mid-request");
    assert!(acked_total > ROUNDS as usize * ACCOUNTS, "{acked_total}");
    assert!(killed_mid_request > 0);
}
