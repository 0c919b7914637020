//! Crash safety: the real binary is SIGKILLed at a random moment during a storm of concurrent
//! POSTs, 20 times over one store. After each restart every account serves the last JWT that
//! was acknowledged with 200, or the newer one that was in flight — never an older one, a torn
//! or empty file. Temp files of the killed writes may stay (the startup sweep leaves them for a
//! minute) but are never taken for JWTs.
//!
//! With the `fault-injection` feature, the same storm against a store that writes in place
//! (`NAS_FAULT_INJECTION=in-place-writes`) must find problems: the check can see a torn write.

mod support;

use std::path::Path;
use std::process::Command;
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

/// What a storm found.
#[derive(Default)]
struct Storm {
    /// Each lost, old, torn or empty JWT, and each unexpected reply (empty: all is well).
    problems: Vec<String>,
    /// POSTs answered 200.
    acked: usize,
    /// Writers whose POST was open when the server was killed.
    killed_mid_request: usize,
    /// Temp files of killed writes seen after the restarts, summed over the rounds.
    temp_files: usize,
}

fn version(signer: &nkeys::KeyPair, a: &nkeys::KeyPair, iat: i64) -> String {
    let mut claims = account_claims("CRASH", &a.public_key());
    claims["iat"] = json!(iat);
    // Vary the size so a torn write would show.
    claims["nats"]["tags"] = json!(["x".repeat((iat % 97) as usize)]);
    sign(&claims, signer)
}

fn start(config: &Path, env: &[(&str, &str)]) -> AccountServer {
    let mut command = Command::new(AccountServer::binary());
    command.arg("-c").arg(config).envs(env.iter().copied());
    AccountServer::start_command(command)
}

/// Posts newer and newer JWTs of account `a` until `stop` or an error; returns what the writer
/// knows, how many POSTs got 200, and an unexpected reply if there was one.
fn writer(
    nas_addr: String,
    signer: nkeys::KeyPair,
    a: nkeys::KeyPair,
    first_iat: i64,
    stop: Arc<AtomicBool>,
    mut k: Known,
) -> (Known, usize, Option<String>) {
    let path = format!("/jwt/v1/accounts/{}", a.public_key());
    let mut acked = 0usize;
    for v in 0..1000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let jwt = version(&signer, &a, first_iat + v);
        k.in_flight = Some(jwt.clone());
        match try_post(&nas_addr, &path, jwt.as_bytes()) {
            Ok(r) if r.status == 200 => {
                k.acked = Some(jwt);
                k.in_flight = None;
                acked += 1;
            }
            Ok(r) => {
                let problem = format!("unexpected status {}: {}", r.status, r.text());
                return (k, acked, Some(problem));
            }
            Err(_) => break, // the server was killed mid-request
        }
    }
    (k, acked, None)
}

/// Checks what a restarted server serves for each account against what the writers knew, and
/// moves what it serves into `acked` (it is what the next round builds on).
fn check_served(
    round: i64,
    nas: &AccountServer,
    accounts: &[nkeys::KeyPair],
    known: &mut [Known],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let got = nas.get_account(&a.public_key());
        let k = &mut known[i];
        if got.status == 404 {
            if k.acked.is_some() {
                problems.push(format!(
                    "round {round}: account {i} lost its acknowledged JWT"
                ));
            }
            continue;
        }
        let text = got.text();
        if got.status != 200 {
            problems.push(format!(
                "round {round}: account {i}: status {}: {text}",
                got.status
            ));
        } else if k.acked.as_ref() != Some(&text) && k.in_flight.as_ref() != Some(&text) {
            problems.push(format!(
                "round {round}: account {i} serves a JWT that is neither the acknowledged nor the in-flight one"
            ));
        } else {
            // Whatever is served from now on is what was acknowledged next round.
            k.acked = Some(text);
            k.in_flight = None;
        }
    }
    problems
}

/// Every JWT file must hold a whole JWT; temp files are counted and must keep their hidden
/// name. Returns the problems and the number of temp files.
fn check_files(round: i64, store: &Path) -> (Vec<String>, usize) {
    let (mut problems, mut temps) = (Vec::new(), 0);
    for (path, bytes) in snapshot(store) {
        let name = path.rsplit('/').next().unwrap_or_default();
        if path.ends_with('/') {
            continue;
        }
        if name.contains(".jwt.tmp-") {
            assert!(
                name.starts_with('.'),
                "round {round}: temp file {path} is not hidden"
            );
            temps += 1;
        } else if bytes.is_empty() {
            problems.push(format!("round {round}: empty file {path}"));
        } else if let Err(e) = std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| nats_account_server::jwt::decode_account(t).map_err(|e| e.to_string()))
        {
            problems.push(format!("round {round}: {path} is not a whole JWT: {e}"));
        }
    }
    (problems, temps)
}

/// Runs the storm: up to `ROUNDS` rounds of concurrent POSTs ended by a SIGKILL, each followed
/// by a restart and the checks. Stops after the first round that found problems. `env` is set
/// for the server processes.
fn post_storm(env: &[(&str, &str)]) -> Storm {
    let w = World::new();
    let store = w.path("jwt");
    let config = nas_config(&store, Some(&w.operator_path), "").replace(
        &format!("store {{ dir: \"{}\" }}", store.display()),
        &format!("store {{ dir: \"{}\", shard: true }}", store.display()),
    );
    let config = AccountServer::write_config(w.dir.path(), &config);
    let accounts: Vec<nkeys::KeyPair> = (0..ACCOUNTS)
        .map(|_| nkeys::KeyPair::new_account())
        .collect();
    let mut known: Vec<Known> = vec![Known::default(); ACCOUNTS];
    let base = now() - 100_000;
    let mut seed = (now() as u64) | 1;
    let mut storm = Storm::default();

    for round in 0..ROUNDS {
        let mut nas = start(&config, env);
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let a = nkeys::KeyPair::from_seed(&a.seed().unwrap()).unwrap();
                let signer = nkeys::KeyPair::from_seed(&w.signing_key.seed().unwrap()).unwrap();
                let (addr, stop, k) = (nas.addr.clone(), stop.clone(), known[i].clone());
                let first_iat = base + round * 1000;
                std::thread::spawn(move || writer(addr, signer, a, first_iat, stop, k))
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 300));
        nas.kill(); // SIGKILL by handle
        stop.store(true, Ordering::SeqCst);
        for (i, h) in handles.into_iter().enumerate() {
            let (k, acked, problem) = h.join().expect("writer thread");
            storm.acked += acked;
            storm.killed_mid_request += usize::from(k.in_flight.is_some());
            storm.problems.extend(problem);
            known[i] = k;
        }

        let nas = start(&config, env);
        assert!(
            nas.logs
                .wait_for("store check done", Duration::from_secs(10))
                .is_some(),
            "{}",
            nas.logs.text()
        );
        storm
            .problems
            .extend(check_served(round, &nas, &accounts, &mut known));
        let (problems, temps) = check_files(round, &store);
        storm.problems.extend(problems);
        storm.temp_files += temps;
        if !storm.problems.is_empty() {
            break;
        }
    }
    eprintln!(
        "{} POSTs acknowledged, {} writers killed mid-request, {} temp files seen after restarts",
        storm.acked, storm.killed_mid_request, storm.temp_files
    );
    storm
}

#[test]
fn sigkill_during_a_post_storm_never_loses_or_tears_a_jwt() {
    let storm = post_storm(&[]);
    assert!(storm.problems.is_empty(), "{:#?}", storm.problems);
    // The storm was real: many writes acknowledged, and kills landed while requests were open.
    assert!(storm.acked > ROUNDS as usize * ACCOUNTS, "{}", storm.acked);
    assert!(storm.killed_mid_request > 0);
}

/// The negative control of the test above: a store that writes in place (no temp file, no
/// fsync) is caught with torn or empty files.
#[cfg(feature = "fault-injection")]
#[test]
fn the_crash_check_catches_a_store_that_writes_in_place() {
    let storm = post_storm(&[("NAS_FAULT_INJECTION", "in-place-writes")]);
    eprintln!("{:#?}", storm.problems);
    let torn = |p: &&String| p.contains("not a whole JWT") || p.contains("empty file");
    assert!(
        storm.problems.iter().any(|p| torn(&p)),
        "no torn or empty file found: {:#?}",
        storm.problems
    );
}
