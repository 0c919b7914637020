//! Load: 1,000 concurrent keep-alive GET clients and 100 concurrent POST clients against the real
//! binary on loopback, bounded in time and count. Zero failed requests; the peak RSS of the
//! server is reported and bounded.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GET_CLIENTS: usize = 1000;
const GETS_PER_CLIENT: usize = 20;
const POST_CLIENTS: usize = 100;
const POSTS_PER_CLIENT: usize = 5;
const ACCOUNTS: usize = 200;

/// Lets this process (and the server it starts) open a few thousand sockets.
fn raise_fd_limit() {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max.min(16_384);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// One HTTP/1.1 request on a keep-alive connection; returns (status, body).
async fn request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    req: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    stream.write_all(req).await.map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    buf.reserve((head_end + len).saturating_sub(buf.len()));
    while buf.len() < head_end + len {
        let n = stream.read_buf(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-body".into());
        }
    }
    Ok((status, buf[head_end..head_end + len].to_vec()))
}

fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

#[test]
fn thousand_get_and_hundred_post_clients_without_a_single_error() {
    raise_fd_limit();
    let w = World::new();
    let store = w.path("jwt");
    std::fs::create_dir_all(&store).unwrap();
    // Accounts to read, written in the store's layout before the start.
    let mut readable = Vec::new();
    for i in 0..ACCOUNTS {
        let (kp, jwt) = w.new_account(&format!("R{i}"));
        std::fs::write(store.join(format!("{}.jwt", kp.public_key())), &jwt).unwrap();
        readable.push((kp.public_key(), jwt));
    }
    // Accounts to write: POSTS_PER_CLIENT increasing versions each.
    let t0 = now() - 10_000;
    let writable: Vec<(String, Vec<String>)> = (0..POST_CLIENTS)
        .map(|i| {
            let kp = nkeys::KeyPair::new_account();
            let versions = (0..POSTS_PER_CLIENT)
                .map(|v| {
                    let mut c = account_claims(&format!("W{i}"), &kp.public_key());
                    c["iat"] = json!(t0 + v as i64);
                    sign(&c, &w.signing_key)
                })
                .collect();
            (kp.public_key(), versions)
        })
        .collect();

    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(
            &store,
            Some(&w.operator_path),
            "logging { colors: false, time: false }\n",
        ),
    );
    let addr = nas.addr.clone();
    let readable = Arc::new(readable);
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..GET_CLIENTS {
            let (addr, readable, failures, done) = (addr.clone(), readable.clone(), failures.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut stream = match TcpStream::connect(&addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("GET client {c}: connect: {e}");
                        failures.fetch_add(GETS_PER_CLIENT, Ordering::Relaxed);
                        return;
                    }
                };
                let mut buf = Vec::with_capacity(8192);
                for r in 0..GETS_PER_CLIENT {
                    let (key, jwt) = &readable[(c * 7 + r * 13) % readable.len()];
                    let req = format!("GET /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\n\r\n");
                    match request(&mut stream, &mut buf, req.as_bytes()).await {
                        Ok((200, body)) if body == jwt.as_bytes() => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            eprintln!("GET client {c}: {:?}", other.map(|(s, b)| (s, b.len())));
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for (key, versions) in writable.iter().cloned() {
            let (addr, failures, done) = (addr.clone(), failures.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut stream = match TcpStream::connect(&addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("POST client: connect: {e}");
                        failures.fetch_add(POSTS_PER_CLIENT, Ordering::Relaxed);
                        return;
                    }
                };
                let mut buf = Vec::new();
                for jwt in versions {
                    let mut req = format!(
                        "POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nContent-Type: application/jwt\r\nContent-Length: {}\r\n\r\n",
                        jwt.len()
                    )
                    .into_bytes();
                    req.extend_from_slice(jwt.as_bytes());
                    match request(&mut stream, &mut buf, &req).await {
                        Ok((200, _)) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            eprintln!("POST {key}: {:?}", other.map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned())));
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        let all = futures_util::future::join_all(tasks);
        tokio::time::timeout(Duration::from_secs(300), all).await.expect("load test finished within 300 s");
    });
    let elapsed = started.elapsed();
    let total = GET_CLIENTS * GETS_PER_CLIENT + POST_CLIENTS * POSTS_PER_CLIENT;
    let rss_mib = peak_rss_kib(nas.pid()) as f64 / 1024.0;
    eprintln!(
        "load: {} requests ({} GET clients, {} POST clients) in {:.2?}: {:.0} req/s, {} failed, server peak RSS {:.1} MiB",
        done.load(Ordering::Relaxed),
        GET_CLIENTS,
        POST_CLIENTS,
        elapsed,
        done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        failures.load(Ordering::Relaxed),
        rss_mib
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(done.load(Ordering::Relaxed), total);
    assert!(rss_mib < 256.0, "peak RSS {rss_mib:.1} MiB");
    // Every writer ended with its newest version.
    for (key, versions) in &writable {
        assert_eq!(
            nas.get(&format!("/jwt/v1/accounts/{key}")).text(),
            *versions.last().unwrap()
        );
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Most the server's peak RSS may grow over its idle RSS while it streams the pack of a
/// 100,000-account store (about 70 MiB), to one client or to 4 at once: a pack is made as
/// the store is walked, one batch of keys and one chunk at a time, so its memory does not grow
/// with the store (before, the whole pack was built in memory).
const PACK_RSS_GROWTH_BOUND_MIB: f64 = 10.0;

/// `GET path` on a connection closed after the reply; the status and the de-chunked body.
async fn get_to_end(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..head_end]).to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let (mut rest, mut body) = (&all[head_end..], Vec::new());
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return (status, body);
        }
        body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest = &rest[line_end + 2 + size + 2..];
    }
}

/// Sets the peak RSS (`VmHWM`) of `pid` back to its RSS now.
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

#[test]
fn packs_of_a_100k_store_stream_in_bounded_memory() {
    const STORE: usize = 100_000;
    raise_fd_limit();
    let w = World::new();
    let store = w.path("jwt");
    std::fs::create_dir_all(&store).unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for half in 0..2 {
            let (store, signer) = (&store, &w.signing_key);
            scope.spawn(move || {
                for i in (half..STORE).step_by(2) {
                    let kp = nkeys::KeyPair::new_account();
                    let jwt = sign(&account_claims(&format!("P{i}"), &kp.public_key()), signer);
                    std::fs::write(store.join(format!("{}.jwt", kp.public_key())), &jwt).unwrap();
                }
            });
        }
    });
    eprintln!("{STORE} JWTs written in {:.2?}", started.elapsed());
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(
            &store,
            Some(&w.operator_path),
            "maxreplicationpack: 100000\nlogging { colors: false, time: false }\n",
        ),
    );
    assert_eq!(nas.get("/healthz").status, 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for clients in [1, 4] {
        reset_peak_rss(nas.pid());
        let idle_mib = rss_kib(nas.pid()) as f64 / 1024.0;
        let started = Instant::now();
        let bodies: Vec<(u16, Vec<u8>)> = rt.block_on(async {
            let tasks = (0..clients).map(|_| {
                let addr = nas.addr.clone();
                tokio::spawn(async move { get_to_end(&addr, "/jwt/v1/pack?max=100000").await })
            });
            let all = futures_util::future::join_all(tasks);
            tokio::time::timeout(Duration::from_secs(300), all)
                .await
                .expect("packs within 300 s")
                .into_iter()
                .map(|r| r.unwrap())
                .collect()
        });
        let peak_mib = peak_rss_kib(nas.pid()) as f64 / 1024.0;
        let growth = peak_mib - idle_mib;
        let pack_mib = bodies[0].1.len() as f64 / 1048576.0;
        eprintln!(
            "{clients} concurrent packs of {STORE} accounts ({pack_mib:.1} MiB each) in {:.2?}: server RSS idle {idle_mib:.1} MiB, peak {peak_mib:.1} MiB (+{growth:.1} MiB, bound +{PACK_RSS_GROWTH_BOUND_MIB} MiB)",
            started.elapsed()
        );
        for (status, body) in &bodies {
            assert_eq!(*status, 200);
            assert_eq!(body, &bodies[0].1);
        }
        assert_eq!(bodies[0].1.split(|b| *b == b'\n').count(), STORE);
        assert!(pack_mib > 4.0 * PACK_RSS_GROWTH_BOUND_MIB);
        assert!(
            growth < PACK_RSS_GROWTH_BOUND_MIB,
            "peak RSS grew by {growth:.1} MiB"
        );
    }
}
