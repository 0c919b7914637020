//! Benchmark data: a test operator, account JWTs signed by its signing key, a loader that POSTs
//! them through the HTTP API, and a NATS client that connects a fleet of users at once. Used by
//! `bench/run.sh`, `bench/kv.sh` and `bench/fleet.sh`.
//!
//! ```text
//! benchgen init <dir>                       operator.jwt + signing key seed in <dir>
//! benchgen accounts <dir> <n> <out>         <n> new accounts as "pubkey jwt" lines
//! benchgen store <dir> <n> <store>          <n> new accounts written as a sharded store
//! benchgen post <lines> <host:port> <conc>  POST every line (keep-alive, <conc> connections)
//! benchgen renew <dir> <lines> <n> <v> <out> <v> newer versions of the first <n> accounts
//!                                           of <lines>, version by version (overwrites)
//! benchgen fleet <dir> <n> <out>            <n> accounts with one user each, as
//!                                           "pubkey account_jwt user_jwt user_seed" lines;
//!                                           also a system account: <dir>/sys.jwt, sys.pub
//! benchgen connect <fleet> <host:port> [s]  every fleet user connects to nats-server at once
//!                                           (raw protocol, nonce signed); prints the time
//!                                           until all got PONG; fails after [s] (default 60)
//! ```

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use nats_account_server::jwt;
use nkeys::KeyPair;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn signing_key(dir: &Path) -> Result<KeyPair> {
    Ok(KeyPair::from_seed(
        std::fs::read_to_string(dir.join("signing.nk"))?.trim(),
    )?)
}

fn account_jwt(signer: &KeyPair, kp: &KeyPair, name: &str) -> Result<String> {
    let claims = json!({"name": name, "sub": kp.public_key(), "nats": {
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}}, "type": "account", "version": 2}});
    Ok(jwt::encode(&claims, signer)?)
}

fn account(signer: &KeyPair, i: usize) -> Result<(String, String)> {
    let kp = KeyPair::new_account();
    Ok((
        kp.public_key(),
        account_jwt(signer, &kp, &format!("bench-{i}"))?,
    ))
}

/// An account and one user of it (JWT issued by the account key, like `nsc add user`) as the
/// line "account_pubkey account_jwt user_jwt user_seed".
fn fleet_member(signer: &KeyPair, i: usize) -> Result<String> {
    let (acc, user) = (KeyPair::new_account(), KeyPair::new_user());
    let user_claims = json!({"name": format!("user-{i}"), "sub": user.public_key(), "nats": {
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}});
    Ok(format!(
        "{} {} {} {}",
        acc.public_key(),
        account_jwt(signer, &acc, &format!("fleet-{i}"))?,
        jwt::encode(&user_claims, &acc)?,
        user.seed()?
    ))
}

/// Makes `n` items with `make` on all cores, handing each to `sink` in order.
fn generate<T: Send>(
    signer: &KeyPair,
    n: usize,
    make: fn(&KeyPair, usize) -> Result<T>,
    mut sink: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1);
    let chunk = 10_000;
    let mut start = 0;
    while start < n {
        let end = (start + chunk * threads).min(n);
        let seed = signer.seed()?;
        let parts: Vec<Vec<T>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let seed = seed.clone();
                    s.spawn(move || {
                        let signer = KeyPair::from_seed(&seed).expect("seed");
                        (start + t * chunk..(start + (t + 1) * chunk).min(end))
                            .map(|i| make(&signer, i).expect("sign"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for item in parts.into_iter().flatten() {
            sink(item)?;
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
                            // The server ends a connection after `maxconnectionrequests`.
                            if head.contains("\nconnection: close") {
                                stream = tokio::net::TcpStream::connect(&addr)
                                    .await
                                    .expect("connect");
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

/// Newer versions of the first `count` accounts of `lines` ("pubkey jwt"): `versions` rounds,
/// round `v` with every JWT re-signed with `iat + v`, so each line POSTed in order is an
/// overwrite with a newer JWT (never the same bytes again).
fn renew(dir: &Path, lines: &Path, count: usize, versions: i64, out: &Path) -> Result<()> {
    let signer = signing_key(dir)?;
    let text = std::fs::read_to_string(lines)?;
    let mut claims = Vec::new();
    for line in text.lines().take(count) {
        let (key, token) = line.split_once(' ').ok_or("a line without a JWT")?;
        let payload = token.split('.').nth(1).ok_or("not a JWT")?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
        claims.push((
            key.to_string(),
            serde_json::from_slice::<serde_json::Value>(&bytes)?,
        ));
    }
    let mut out = BufWriter::new(std::fs::File::create(out)?);
    for v in 1..=versions {
        for (key, c) in &claims {
            let mut c = c.clone();
            c["iat"] = json!(c["iat"].as_i64().unwrap_or(0) + v);
            writeln!(out, "{key} {}", jwt::encode(&c, &signer)?)?;
        }
    }
    Ok(out.flush()?)
}

/// Writes the fleet lines to `out`, and a system account (signed by the operator's signing key)
/// to `<dir>/sys.jwt` and `<dir>/sys.pub`.
fn fleet(dir: &Path, n: usize, out: &Path) -> Result<()> {
    let signer = signing_key(dir)?;
    let sys = KeyPair::new_account();
    std::fs::write(dir.join("sys.jwt"), account_jwt(&signer, &sys, "SYS")?)?;
    std::fs::write(dir.join("sys.pub"), sys.public_key())?;
    let mut out = BufWriter::new(std::fs::File::create(out)?);
    generate(&signer, n, fleet_member, |line| {
        Ok(writeln!(out, "{line}")?)
    })?;
    Ok(out.flush()?)
}

/// A fleet user: JWT and key pair (parsed before the clock starts).
struct User {
    jwt: String,
    key: KeyPair,
}

fn read_fleet(path: &Path) -> Result<Vec<User>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split(' ').collect::<Vec<_>>()[..] {
            [_, _, jwt, seed] => Ok(User {
                jwt: jwt.to_string(),
                key: KeyPair::from_seed(seed)?,
            }),
            _ => Err(format!("bad fleet line: {l:.60}").into()),
        })
        .collect()
}

/// The `nonce` of nats-server's `INFO {...}` line.
fn nonce_of(info: &str) -> Result<String> {
    let json = info
        .strip_prefix("INFO ")
        .ok_or("no INFO from the server")?;
    let value: serde_json::Value = serde_json::from_str(json.trim())?;
    Ok(value["nonce"]
        .as_str()
        .ok_or("INFO without nonce")?
        .to_string())
}

/// One client: INFO, CONNECT with the user JWT and the signed nonce, PING; `Ok` on PONG. The
/// connection is handed back so that it stays open until every client is done.
async fn connect_one(
    addr: &str,
    user: &User,
) -> Result<tokio::io::BufReader<tokio::net::TcpStream>> {
    let mut conn = tokio::io::BufReader::new(tokio::net::TcpStream::connect(addr).await?);
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(user.key.sign(nonce_of(&line)?.as_bytes())?);
    let connect = json!({"jwt": user.jwt, "sig": sig, "verbose": false, "pedantic": false,
                         "protocol": 1, "echo": false});
    let hello = format!("CONNECT {connect}\r\nPING\r\n");
    conn.get_mut().write_all(hello.as_bytes()).await?;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err("connection closed".into());
        }
        if line.starts_with("PONG") {
            return Ok(conn);
        }
        if line.starts_with("-ERR") {
            return Err(line.trim().to_string().into());
        }
    }
}

/// Connects every fleet user at once; prints "connected <ok> of <n> in <ms> ms, <failed> failed".
async fn connect_all(fleet: &Path, addr: &str, timeout_s: u64) -> Result<()> {
    let users = read_fleet(fleet)?;
    let n = users.len();
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + Duration::from_secs(timeout_s));
    let tasks: Vec<_> = users
        .into_iter()
        .map(|user| {
            let addr = addr.to_string();
            tokio::spawn(async move {
                let done = tokio::time::timeout_at(deadline, connect_one(&addr, &user)).await;
                (done, started.elapsed())
            })
        })
        .collect();
    let (mut open, mut errors, mut last) = (Vec::new(), Vec::new(), Duration::ZERO);
    for task in tasks {
        match task.await? {
            (Ok(Ok(conn)), at) => {
                open.push(conn);
                last = last.max(at);
            }
            (Ok(Err(e)), _) => errors.push(e.to_string()),
            (Err(_), _) => errors.push("timed out".to_string()),
        }
    }
    for e in errors.iter().take(3) {
        eprintln!("connect failed: {e}");
    }
    let ms = last.as_secs_f64() * 1000.0;
    println!(
        "connected {} of {n} in {ms:.0} ms, {} failed",
        open.len(),
        errors.len()
    );
    if !errors.is_empty() {
        return Err("some connections failed".into());
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
            generate(&signer, arg(2).parse()?, account, |(k, t)| {
                Ok(writeln!(out, "{k} {t}")?)
            })?;
            out.flush()?;
        }
        "store" => {
            let signer = signing_key(Path::new(&arg(1)))?;
            let store = std::path::PathBuf::from(arg(3));
            let mut keys = BufWriter::new(std::fs::File::create(store.with_extension("keys"))?);
            generate(&signer, arg(2).parse()?, account, |(k, t)| {
                let folder = store.join(&k[54..]);
                std::fs::create_dir_all(&folder)?;
                std::fs::write(folder.join(format!("{k}.jwt")), t)?;
                Ok(writeln!(keys, "{k}")?)
            })?;
            keys.flush()?;
        }
        "post" => post_all(Path::new(&arg(1)), &arg(2), arg(3).parse().unwrap_or(16)).await?,
        "renew" => renew(
            Path::new(&arg(1)),
            Path::new(&arg(2)),
            arg(3).parse()?,
            arg(4).parse()?,
            Path::new(&arg(5)),
        )?,
        "fleet" => fleet(Path::new(&arg(1)), arg(2).parse()?, Path::new(&arg(3)))?,
        "connect" => connect_all(Path::new(&arg(1)), &arg(2), arg(3).parse().unwrap_or(60)).await?,
        _ => return Err("usage: benchgen init|accounts|store|post|renew|fleet|connect ...".into()),
    }
    Ok(())
}
