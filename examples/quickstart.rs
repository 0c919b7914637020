//! The quick start's helper: makes a demo operator, system account, account and users (keys and
//! JWTs made here with nkeys, nothing else needed), writes the account server's and
//! nats-server's configs, pushes JWTs, and plays a NATS client. Used by `scripts/quickstart.sh`.
//!
//! ```text
//! quickstart init <dir>           keys, JWTs, creds, nas.conf, nats-server.conf
//! quickstart push <dir> <name>    POST accounts/<name>.jwt to the account server
//! quickstart limit <dir> <subs>   re-sign DEMO with limits.subs = <subs> (accounts/DEMO.jwt)
//! quickstart client <dir>         connect as the DEMO user, publish and receive "hello"
//! quickstart check-limit <dir>    connect as the DEMO user, expect the subscription limit
//! ```
//! Ports come from `NAS_PORT` (9090) and `NATS_PORT` (4222).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use nats_account_server::jwt;
use nkeys::KeyPair;
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

fn account_claims(name: &str, key: &str, subs: i64) -> Value {
    json!({"name": name, "sub": key, "nats": {
        "limits": {"subs": subs, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}}, "type": "account", "version": 2}})
}

fn user_creds(account: &KeyPair, name: &str) -> Result<String> {
    let user = KeyPair::new_user();
    let claims = json!({"name": name, "sub": user.public_key(), "nats": {
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}});
    let token = jwt::encode(&claims, account)?;
    Ok(jwt::creds::format_user_creds(&token, &user.seed()?))
}

fn seed(dir: &Path, name: &str) -> Result<KeyPair> {
    let text = std::fs::read_to_string(dir.join("keys").join(format!("{name}.nk")))?;
    Ok(KeyPair::from_seed(text.trim())?)
}

fn init(dir: &Path) -> Result<()> {
    for sub in ["keys", "accounts", "jwt"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let (nas_port, nats_port) = (port("NAS_PORT", 9090), port("NATS_PORT", 4222));
    let operator = KeyPair::new_operator();
    let signing = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let demo = KeyPair::new_account();
    let operator_jwt = jwt::encode(
        &json!({"name": "DEMO_OPERATOR", "sub": operator.public_key(), "nats": {
            "signing_keys": [signing.public_key()], "system_account": sys.public_key(),
            "account_server_url": format!("http://127.0.0.1:{nas_port}/jwt/v1"),
            "type": "operator", "version": 2}}),
        &operator,
    )?;
    std::fs::write(dir.join("operator.jwt"), &operator_jwt)?;
    std::fs::write(
        dir.join("accounts/SYS.jwt"),
        jwt::encode(&account_claims("SYS", &sys.public_key(), -1), &operator)?,
    )?;
    std::fs::write(
        dir.join("accounts/DEMO.jwt"),
        jwt::encode(&account_claims("DEMO", &demo.public_key(), -1), &signing)?,
    )?;
    for (name, kp) in [
        ("operator_signing", &signing),
        ("SYS", &sys),
        ("DEMO", &demo),
    ] {
        std::fs::write(dir.join("keys").join(format!("{name}.nk")), kp.seed()?)?;
    }
    std::fs::write(dir.join("sys.creds"), user_creds(&sys, "sys")?)?;
    std::fs::write(dir.join("demo.creds"), user_creds(&demo, "demo")?)?;
    let abs = std::fs::canonicalize(dir)?;
    std::fs::write(
        dir.join("nas.conf"),
        format!(
            "# written by: cargo run --example quickstart -- init\noperatorjwtpath: \"{0}/operator.jwt\"\nhttp {{ host: 127.0.0.1, port: {nas_port} }}\nstore {{ dir: \"{0}/jwt\", shard: true }}\nnats {{\n  servers: [\"nats://127.0.0.1:{nats_port}\"]\n  usercredentials: \"{0}/sys.creds\"\n  reconnectwait: 250\n}}\n",
            abs.display()
        ),
    )?;
    std::fs::write(
        dir.join("nats-server.conf"),
        format!(
            "host: 127.0.0.1\nport: {nats_port}\noperator: \"{}/operator.jwt\"\nsystem_account: {}\nresolver: URL(http://127.0.0.1:{nas_port}/jwt/v1/accounts/)\n",
            abs.display(),
            sys.public_key()
        ),
    )?;
    println!(
        "demo operator, accounts SYS and DEMO, and creds written to {}",
        dir.display()
    );
    Ok(())
}

fn push(dir: &Path, name: &str) -> Result<()> {
    let token = std::fs::read_to_string(dir.join("accounts").join(format!("{name}.jwt")))?;
    let key = jwt::decode(&token)?.claims.sub;
    let addr = format!("127.0.0.1:{}", port("NAS_PORT", 9090));
    let mut stream = std::net::TcpStream::connect(&addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/jwt\r\nContent-Length: {}\r\n\r\n{token}",
        token.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply.lines().next().unwrap_or_default().to_string();
    if !status.contains(" 200 ") {
        return Err(format!("push of {name} failed: {reply}").into());
    }
    println!("pushed {name} ({key}): {status}");
    Ok(())
}

fn limit(dir: &Path, subs: i64) -> Result<()> {
    let demo = seed(dir, "DEMO")?;
    let signing = seed(dir, "operator_signing")?;
    let mut claims = account_claims("DEMO", &demo.public_key(), subs);
    // One second newer than the current version, so it is never refused as a rollback.
    let current = std::fs::read_to_string(dir.join("accounts/DEMO.jwt"))?;
    claims["iat"] = json!(jwt::decode(&current)?.claims.iat + 1);
    std::fs::write(
        dir.join("accounts/DEMO.jwt"),
        jwt::encode(&claims, &signing)?,
    )?;
    println!("DEMO re-signed with limits.subs = {subs}");
    Ok(())
}

async fn connect(
    dir: &Path,
    events: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Result<async_nats::Client> {
    let url = format!("nats://127.0.0.1:{}", port("NATS_PORT", 4222));
    let mut options =
        async_nats::ConnectOptions::with_credentials_file(dir.join("demo.creds")).await?;
    if let Some(tx) = events {
        options = options.event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event.to_string());
            }
        });
    }
    Ok(options.connect(url).await?)
}

async fn client(dir: &Path) -> Result<()> {
    let client = connect(dir, None).await?;
    let mut sub = client.subscribe("demo.hello").await?;
    client.flush().await?;
    for _ in 0..40 {
        client.publish("demo.hello", "hello".into()).await?;
        client.flush().await?;
        if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(250), sub.next()).await {
            println!(
                "received {} as the DEMO user",
                String::from_utf8_lossy(&msg.payload)
            );
            return Ok(());
        }
    }
    Err("no message received within 10 s".into())
}

async fn check_limit(dir: &Path) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = connect(dir, Some(tx)).await?;
    let mut subs = Vec::new();
    for i in 0..40 {
        subs.push(client.subscribe(format!("demo.limit.{i}")).await?);
        let _ = client.flush().await;
        if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(250), rx.recv()).await {
            if event.to_lowercase().contains("maximum subscriptions") {
                println!(
                    "the pushed limit took effect: nats-server said \"{event}\" at subscription {}",
                    i + 1
                );
                return Ok(());
            }
        }
    }
    Err("the subscription limit was not enforced within 10 s".into())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("demo"));
    match args.first().map(String::as_str) {
        Some("init") => init(&dir),
        Some("push") => push(&dir, args.get(2).map(String::as_str).unwrap_or("DEMO")),
        Some("limit") => limit(&dir, args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1)),
        Some("client") => client(&dir).await,
        Some("check-limit") => check_limit(&dir).await,
        _ => Err("usage: quickstart init|push|limit|client|check-limit <dir> [arg]".into()),
    }
}
