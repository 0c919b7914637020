//! Benchmark data: a test operator, account JWTs signed by its signing key, and a loader that
//! POSTs them through the HTTP API. Used by `bench/run.sh`.
//!
//! ```text
//! benchgen init <dir>                       operator.jwt + signing key seed in <dir>
//! benchgen accounts <dir> <n> <out>         <n> new accounts as "pubkey jwt" lines
//! benchgen store <dir> <n> <store>          <n> new accounts written as a sharded store
//! benchgen post <lines> <host:port> <conc>  POST every line (keep-alive, <conc> connections)
//! ```

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use nats_account_server::jwt;
use nkeys::KeyPair;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn signing_key(dir: &Path) -> Result<KeyPair> {
    Ok(KeyPair::from_seed(
        std::fs::read_to_string(dir.join("signing.nk"))?.trim(),
    )?)
}

fn account(signer: &KeyPair, i: usize) -> Result<(String, String)> {
    let kp = KeyPair::new_account();
    let claims = json!({"name": format!("bench-{i}"), "sub": kp.public_key(), "nats": {
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}}, "type": "account", "version": 2}});
    Ok((kp.public_key(), jwt::encode(&claims, signer)?))
}

/// Generates `n` accounts on all cores, handing each to `sink` in order.
fn generate(
    signer: &KeyPair,
    n: usize,
    mut sink: impl FnMut(String, String) -> Result<()>,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1);
    let chunk = 10_000;
    let mut start = 0;
    while start < n {
        let end = (start + chunk * threads).min(n);
        let seed = signer.seed()?;
        let parts: Vec<Vec<(String, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let seed = seed.clone();
                    s.spawn(move || {
                        let signer = KeyPair::from_seed(&seed).expect("seed");
                        (start + t * chunk..(start + (t + 1) * chunk).min(end))
                            .map(|i| account(&signer, i).expect("sign"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for (key, token) in parts.into_iter().flatten() {
            sink(key, token)?;
        }
        start = end;
    }
    Ok(())
}

async fn post_all(lines: &Path, addr: &str, concurrency: usize) -> Result<()> {
    let items: Vec<(String, String)> = std::io::BufReader::new(std::fs::File::open(lines)?)
        .lines()
        .map_while(std::result::Result::ok)
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let items = Arc::new(items);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (items, next, failed, addr) = (
            items.clone(),
            next.clone(),
            failed.clone(),
            addr.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
            let mut buf = vec![0u8; 4096];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((key, token)) = items.get(i) else { break };
                let req = format!(
                    "POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/jwt\r\nContent-Length: {}\r\n\r\n{token}",
                    token.len()
                );
                stream.write_all(req.as_bytes()).await.expect("write");
                let mut got = Vec::new();
                loop {
                    let n = stream.read(&mut buf).await.expect("read");
                    assert!(n > 0, "connection closed");
                    got.extend_from_slice(&buf[..n]);
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            if !head.starts_with("http/1.1 200") {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "posted {} JWTs in {secs:.2}s ({:.0}/s), {} failed",
        items.len(),
        items.len() as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
    if failed.load(Ordering::Relaxed) > 0 {
        return Err("some POSTs failed".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "init" => {
            let dir = Path::new(&args[1]);
            std::fs::create_dir_all(dir)?;
            let operator = KeyPair::new_operator();
            let signing = KeyPair::new_operator();
            let token = jwt::encode(
                &json!({"name": "BENCH", "sub": operator.public_key(), "nats": {
                    "signing_keys": [signing.public_key()], "type": "operator", "version": 2}}),
                &operator,
            )?;
            std::fs::write(dir.join("operator.jwt"), token)?;
            std::fs::write(dir.join("signing.nk"), signing.seed()?)?;
        }
        "accounts" => {
            let signer = signing_key(Path::new(&arg(1)))?;
            let mut out = BufWriter::new(std::fs::File::create(arg(3))?);
            generate(&signer, arg(2).parse()?, |k, t| {
                Ok(writeln!(out, "{k} {t}")?)
            })?;
            out.flush()?;
        }
        "store" => {
            let signer = signing_key(Path::new(&arg(1)))?;
            let store = std::path::PathBuf::from(arg(3));
            let mut keys = BufWriter::new(std::fs::File::create(store.with_extension("keys"))?);
            generate(&signer, arg(2).parse()?, |k, t| {
                let folder = store.join(&k[54..]);
                std::fs::create_dir_all(&folder)?;
                std::fs::write(folder.join(format!("{k}.jwt")), t)?;
                Ok(writeln!(keys, "{k}")?)
            })?;
            keys.flush()?;
        }
        "post" => post_all(Path::new(&arg(1)), &arg(2), arg(3).parse().unwrap_or(16)).await?,
        _ => return Err("usage: benchgen init|accounts|store|post ...".into()),
    }
    Ok(())
}
