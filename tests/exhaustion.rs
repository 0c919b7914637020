//! Connection exhaustion: a client that holds more keep-alive connections than the server's
//! cap (each sending a request every 3 s, so none ever goes idle long enough for the read
//! timeout) must not keep nats-server from fetching accounts. Fresh connections are accepted
//! at the cap by closing the longest-idle ones; the open-files limit is raised or respected.
//! Also: connections that send nothing cost little and are closed after the read timeout.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// nats-server's account fetch budget (its URL resolver times out at 2 s).
const FETCH_BUDGET: Duration = Duration::from_millis(1900);
/// Each attacking connection sends a request this often.
const REQUEST_EVERY: Duration = Duration::from_secs(3);

/// A running attack: `conns` tasks that each keep one keep-alive connection and reconnect when
/// it is closed.
struct Attack {
    stop: Arc<AtomicBool>,
    /// Connections open that have been answered at least once.
    holding: Arc<AtomicUsize>,
    /// Connections made in all.
    connects: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Attack {
    fn start(addr: SocketAddr, conns: usize) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let holding = Arc::new(AtomicUsize::new(0));
        let connects = Arc::new(AtomicUsize::new(0));
        let (s, h, c) = (stop.clone(), holding.clone(), connects.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut tasks = Vec::with_capacity(conns);
                for i in 0..conns {
                    let (s, h, c) = (s.clone(), h.clone(), c.clone());
                    tasks.push(tokio::spawn(hold(addr, s, h, c)));
                    if i % 500 == 499 {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        });
        Attack {
            stop,
            holding,
            connects,
            thread: Some(thread),
        }
    }

    /// Waits (bounded) until at least `n` connections are held.
    fn wait_holding(&self, n: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.holding.load(Ordering::Relaxed) < n {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.holding.load(Ordering::Relaxed)
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One attacking connection: connect, `GET /healthz` every 3 s, reconnect when closed; until
/// `stop`.
async fn hold(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    holding: Arc<AtomicUsize>,
    connects: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        connects.fetch_add(1, Ordering::Relaxed);
        let mut answered = false;
        while !stop.load(Ordering::Relaxed) {
            let asked = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: attack\r\n\r\n")
                .await;
            let reply = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            let ok = asked.is_ok() && matches!(reply, Ok(Ok(n)) if n > 0);
            if !ok {
                break;
            }
            if !answered {
                answered = true;
                holding.fetch_add(1, Ordering::Relaxed);
            }
            // Sleep in short steps so the attack stops promptly.
            let until = Instant::now() + REQUEST_EVERY;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        if answered {
            holding.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// 20 fetches as nats-server makes them (a fresh connection, one GET of the account); returns
/// the slowest time, asserting each is a 200 with the JWT.
fn fetch_twenty(nas: &AccountServer, key: &str, jwt: &str) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let reply = try_raw_request(
            &nas.addr,
            format!("GET /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("fetch failed after {:?}: {e}", started.elapsed()));
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.text(), jwt);
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    slowest
}

/// Starts an attack of `conns` connections, waits until it holds `held` of them and every one
/// has sent requests for a while, then asserts that 20 nats-server-style fetches are each
/// answered within the budget. Returns the running attack.
fn attack_then_fetch(
    nas: &AccountServer,
    key: &str,
    jwt: &str,
    conns: usize,
    held: usize,
) -> Attack {
    let attack = Attack::start(nas.addr.parse().unwrap(), conns);
    let holding = attack.wait_holding(held, Duration::from_secs(60));
    assert!(
        holding >= held,
        "the attack holds only {holding} connections"
    );
    std::thread::sleep(REQUEST_EVERY);
    let slowest = fetch_twenty(nas, key, jwt);
    println!(
        "attack holds {} connections ({} connects made); slowest of 20 fetches: {slowest:?}",
        attack.holding.load(Ordering::Relaxed),
        attack.connects.load(Ordering::Relaxed)
    );
    assert!(slowest < FETCH_BUDGET, "a fetch took {slowest:?}");
    attack
}

/// Starts nats-server 2.9.10 and 2.15.1, each with its URL resolver pointed at `nas`, and
/// connects a user of an account pushed just before to each.
fn nats_servers_start_and_admit(w: &World, nas: &AccountServer) {
    let account = w.new_account("ADMITTED");
    assert_eq!(
        nas.post_account(&account.0.public_key(), &account.1).status,
        200
    );
    let creds = w.user_creds(&account.0, "admitted");
    let opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), nas);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (version, binary) in nats_binaries() {
        let started = Instant::now();
        let nats =
            NatsServer::start_binary(&binary, w.dir.path(), &format!("attacked-{version}"), &opts);
        rt.block_on(async {
            let client = connect(&nats.client_url(), &creds).await;
            assert!(client.is_ok(), "{version}: user not admitted: {client:?}");
        });
        println!(
            "nats-server {version} started and admitted a user in {:?} during the attack",
            started.elapsed()
        );
    }
}

fn world_with_account() -> (World, String, String) {
    let w = World::new();
    let (kp, jwt) = w.new_account("FETCHED");
    (w, kp.public_key(), jwt)
}

/// A server holding one pushed account (its key and JWT), once the open-files limit is raised
/// to at least `files` (this test holds `connections` connections).
fn serving_account(files: u64, connections: &str) -> (World, AccountServer, String, String) {
    let limit = nats_account_server::limits::raise_open_files().unwrap();
    assert!(
        limit.now >= files,
        "this test holds {connections} connections: it needs an open files hard limit of {files} or more (have {})",
        limit.now
    );
    let (w, key, jwt) = world_with_account();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
    );
    assert_eq!(nas.post_account(&key, &jwt).status, 200);
    (w, nas, key, jwt)
}

#[test]
fn ten_thousand_held_connections_do_not_lock_nats_server_out() {
    let (w, nas, key, jwt) = serving_account(12_000, "10,300");
    let attack = attack_then_fetch(&nas, &key, &jwt, 10_300, 10_000);
    nats_servers_start_and_admit(&w, &nas);
    assert!(
        nas.logs.count("closing the longest-idle") > 0,
        "the cap was never reached:\n{}",
        nas.logs.text()
    );
    drop(attack);
    assert_eq!(nas.logs.count("Too many open files"), 0);
}

#[test]
fn with_1024_open_files_the_cap_fits_and_fetches_still_work() {
    nats_account_server::limits::raise_open_files().unwrap();
    let (w, key, jwt) = world_with_account();
    let nas = AccountServer::start_with_open_files(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
        1024,
    );
    assert_eq!(
        nas.logs.count("http.maxconnections 10000 lowered to 896"),
        1,
        "{}",
        nas.logs.text()
    );
    assert_eq!(nas.post_account(&key, &jwt).status, 200);
    let attack = attack_then_fetch(&nas, &key, &jwt, 1_500, 890);
    nats_servers_start_and_admit(&w, &nas);
    drop(attack);
    assert_eq!(
        nas.logs.count("Too many open files"),
        0,
        "{}",
        nas.logs.text()
    );
}

/// Reads one reply with an empty body (`/healthz`) from a keep-alive connection.
fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).to_lowercase()
}

/// Whether the server closed `stream` (EOF within 3 s).
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    matches!(stream.read(&mut [0u8; 1]), Ok(0))
}

#[test]
fn a_connection_is_closed_after_its_request_bound_and_its_age() {
    use std::io::Write;
    let w = World::new();
    let config = nas_config(&w.path("jwt"), Some(&w.operator_path), "").replace(
        "port: 0 }",
        "port: 0, maxconnectionrequests: 3, maxconnectionage: \"1500ms\" }",
    );
    let nas = AccountServer::start(w.dir.path(), &config);
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut stream = std::net::TcpStream::connect(&nas.addr).unwrap();
    for n in 1..=3 {
        stream.write_all(request).unwrap();
        let head = read_head(&mut stream);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(
            head.contains("connection: close"),
            n == 3,
            "request {n}: {head}"
        );
    }
    assert!(closed_by_server(&mut stream));

    let mut stream = std::net::TcpStream::connect(&nas.addr).unwrap();
    let opened = Instant::now();
    stream.write_all(request).unwrap();
    assert!(read_head(&mut stream).starts_with("http/1.1 200"));
    assert!(closed_by_server(&mut stream));
    let age = opened.elapsed();
    assert!(
        age >= Duration::from_millis(1400) && age < Duration::from_secs(3),
        "closed after {age:?}"
    );
}

/// A connection costs hyper's state and buffers only once its client sends something: 2,000
/// connections that send nothing grow the server's RSS by a few KiB each (~14 KiB each when
/// every accepted connection got them at once), and a fetch still works among them.
#[test]
fn connections_that_send_nothing_cost_little_memory() {
    let (_w, nas, key, jwt) = serving_account(4_096, "2,000");
    let before = status_kib(nas.pid(), "VmRSS:");
    let held: Vec<_> = (0..2_000)
        .map(|_| std::net::TcpStream::connect(&nas.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let per_connection = (status_kib(nas.pid(), "VmRSS:").saturating_sub(before)) * 1024 / 2_000;
    println!("RSS per silent connection: {per_connection} bytes");
    assert!(
        per_connection < 5 * 1024,
        "each silent connection costs {per_connection} bytes"
    );
    assert!(fetch_twenty(&nas, &key, &jwt) < FETCH_BUDGET);
    drop(held);
}

/// A client that connects and sends nothing is disconnected after `http.readtimeout`.
#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_read_timeout() {
    let w = World::new();
    let config = nas_config(&w.path("jwt"), Some(&w.operator_path), "")
        .replace("port: 0 }", "port: 0, readtimeout: 300 }");
    let nas = AccountServer::start(w.dir.path(), &config);
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(&nas.addr).unwrap();
    assert!(closed_by_server(&mut silent));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "closed after {took:?}"
    );
}
