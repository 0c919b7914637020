//! A plain (no operator, no accounts) three-node JetStream cluster of real nats-servers on
//! loopback, with user/password authorization, for tests that need JetStream (a KV bucket
//! replicated on three nodes) and want to kill and restart nodes. Every wait is bounded; the
//! processes are killed by their handle on drop.
//!
//! Readiness comes from each node's monitoring `/jsz`, `meta_cluster` part (same meaning on
//! 2.9.10 and 2.15.1):
//! - `leader`: server name of the JetStream meta leader as this node knows it. After the
//!   leader is SIGKILLed the others keep naming it until they elect a new one (4-9 s), so a
//!   leader is only believed when it names a running node.
//! - `cluster_size`: the meta group's known peers, 3 from the first election on, and still 3
//!   while a node is down.
//! - `replicas`: the other peers with `current` and `active` (ns since last heard). Only the
//!   leader's list means anything: 2.9.10 lists replicas on the leader only; 2.15.1 lists them
//!   on followers too, where the fellow follower is `current: false, active: 0`. A dead peer
//!   shows `current: false` (no `offline` flag showed in `/jsz` within 14 s of a kill on either
//!   version, unlike stream info).
//!
//! 2.15.1 adds `quorum_needed`, `pending*` and `snapshot` to `meta_cluster`; nothing here needs
//! them.
//!
//! The waits poll over blocking HTTP and sleep the calling thread: from an async test, use a
//! multi-threaded runtime and `tokio::task::block_in_place` (or `spawn_blocking`) so that
//! client connections are serviced meanwhile.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, parse_reply, Logs};

pub use super::kv::{JS_PASSWORD, JS_USER};
/// The number of nodes of a [`JsCluster`].
pub const JS_NODES: usize = 3;
/// How long [`JsCluster::start`] and [`JsCluster::restart`] wait for the cluster to be ready.
pub const JS_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One running nats-server of a [`JsCluster`].
pub struct JsNode {
    child: Child,
}

impl JsNode {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Three nats-servers with JetStream routed into one cluster. Node `i` is named `<name><i>`,
/// keeps its client, monitoring and route ports and its store dir `<dir>/<name><i>/js` across
/// [`JsCluster::kill`] and [`JsCluster::restart`].
pub struct JsCluster {
    nodes: Vec<Option<JsNode>>,
    binary: PathBuf,
    name: String,
    ports: Vec<u16>,
    monitor_ports: Vec<u16>,
    config_paths: Vec<PathBuf>,
    store_dirs: Vec<PathBuf>,
    logs: Vec<Logs>,
}

/// The `meta_cluster` part of one node's `/jsz`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaView {
    /// Server name of the meta leader this node knows of (empty: none).
    pub leader: String,
    /// Number of peers of the meta group (0 when absent).
    pub cluster_size: u64,
    /// `(server name, current, offline)` of each replica listed (the leader's view is the one
    /// that counts, see the module documentation; `offline` is false when absent).
    pub replicas: Vec<(String, bool, bool)>,
}

impl MetaView {
    fn from_jsz(jsz: &Value) -> MetaView {
        let meta = &jsz["meta_cluster"];
        let replicas = meta["replicas"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        (
                            r["name"].as_str().unwrap_or_default().to_string(),
                            r["current"].as_bool().unwrap_or(false),
                            r["offline"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        MetaView {
            leader: meta["leader"].as_str().unwrap_or_default().to_string(),
            cluster_size: meta["cluster_size"].as_u64().unwrap_or(0),
            replicas,
        }
    }
}

impl JsCluster {
    /// Writes the configs of three nodes of `binary` under `dir` (server names `<name>0..2`,
    /// cluster name `name`), starts them and waits (up to [`JS_READY_TIMEOUT`]) until the
    /// JetStream meta group has a leader that every node agrees on and that sees the others
    /// current. Panics with every node's log otherwise.
    pub fn start(binary: &Path, dir: &Path, name: &str) -> JsCluster {
        let ports: Vec<u16> = (0..JS_NODES).map(|_| free_port()).collect();
        let monitor_ports: Vec<u16> = (0..JS_NODES).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..JS_NODES).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let mut config_paths = Vec::new();
        let mut store_dirs = Vec::new();
        for i in 0..JS_NODES {
            let node_dir = dir.join(format!("{name}{i}"));
            let store_dir = node_dir.join("js");
            std::fs::create_dir_all(&store_dir).unwrap();
            let conf = format!(
                "server_name: {name}{i}\n\
                 host: 127.0.0.1\n\
                 port: {port}\n\
                 http: \"127.0.0.1:{http}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  max_file_store: 1GB\n}}\n\
                 cluster {{\n  name: {name}\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n\
                 authorization {{\n  user: {JS_USER}\n  password: {JS_PASSWORD}\n}}\n",
                port = ports[i],
                http = monitor_ports[i],
                store = store_dir.display(),
                route = route_ports[i],
                routes = routes.join(", "),
            );
            let config_path = node_dir.join("nats.conf");
            std::fs::write(&config_path, conf).unwrap();
            config_paths.push(config_path);
            store_dirs.push(store_dir);
        }
        let mut cluster = JsCluster {
            nodes: (0..JS_NODES).map(|_| None).collect(),
            binary: binary.to_path_buf(),
            name: name.to_string(),
            ports,
            monitor_ports,
            config_paths,
            store_dirs,
            logs: (0..JS_NODES).map(|_| Logs::default()).collect(),
        };
        let deadline = Instant::now() + JS_READY_TIMEOUT;
        for i in 0..JS_NODES {
            cluster.spawn(i);
        }
        for i in 0..JS_NODES {
            cluster.wait_process_ready(i, 1, deadline);
        }
        cluster.wait_ready_until(deadline);
        cluster
    }

    fn spawn(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is already running");
        let child = super::spawn_nats(&self.binary, &self.config_paths[i], &self.logs[i]);
        self.nodes[i] = Some(JsNode { child });
    }

    /// Waits until node `i` has logged "Server is ready" `count` times in all, panicking if it
    /// exits or `deadline` passes.
    fn wait_process_ready(&mut self, i: usize, count: usize, deadline: Instant) {
        loop {
            if self.logs[i].count("Server is ready") >= count {
                return;
            }
            let exited = self.nodes[i]
                .as_mut()
                .map(|n| matches!(n.child.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "nats-server {}{i} exited at start\n{}",
                    self.name,
                    self.all_logs()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "nats-server {}{i} not ready in time\n{}",
                    self.name,
                    self.all_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>` of every running node, in node order.
    pub fn urls(&self) -> Vec<String> {
        (0..JS_NODES)
            .filter(|&i| self.is_running(i))
            .map(|i| self.url(i))
            .collect()
    }

    /// `nats://127.0.0.1:<port>` of node `i` (running or not: the port stays the node's).
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.ports[i])
    }

    /// The server name of node `i` (`<name><i>`).
    pub fn server_name(&self, i: usize) -> String {
        format!("{}{i}", self.name)
    }

    /// The index of the node whose server name is `server_name`.
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        (0..JS_NODES).find(|&i| self.server_name(i) == server_name)
    }

    /// The monitoring port of node `i`.
    pub fn monitor_port(&self, i: usize) -> u16 {
        self.monitor_ports[i]
    }

    /// The JetStream store dir of node `i` (`<dir>/<name><i>/js`).
    pub fn store_dir(&self, i: usize) -> &Path {
        &self.store_dirs[i]
    }

    /// Node `i`'s stderr, over all its runs (each restart appends).
    pub fn logs(&self, i: usize) -> &Logs {
        &self.logs[i]
    }

    /// Every node's log, labelled, for panic messages.
    pub fn all_logs(&self) -> String {
        (0..JS_NODES)
            .map(|i| format!("--- {} ---\n{}", self.server_name(i), self.logs[i].text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether node `i` was started and not killed (a node that crashed on its own still counts:
    /// its death shows in [`JsCluster::ready_leader`] and the logs).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// The process of node `i`, when running.
    pub fn node(&self, i: usize) -> Option<&JsNode> {
        self.nodes[i].as_ref()
    }

    /// Node `i`'s `/jsz` as JSON; `None` when it is down or does not answer within 2 s.
    pub fn jsz(&self, i: usize) -> Option<Value> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.monitor_ports[i]));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let req = format!("GET /jsz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).ok()?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).ok()?;
        if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return None;
        }
        let reply = parse_reply(&buf);
        if reply.status != 200 {
            return None;
        }
        serde_json::from_slice(&reply.body).ok()
    }

    /// Node `i`'s view of the JetStream meta group (from `/jsz`), when it answers.
    pub fn meta(&self, i: usize) -> Option<MetaView> {
        self.jsz(i).map(|j| MetaView::from_jsz(&j))
    }

    /// The index of the meta leader, when every running node names the same running node as
    /// leader, the group has [`JS_NODES`] peers, and the leader sees every other running node
    /// as current. `None` otherwise (no leader, election under way, a node catching up).
    pub fn ready_leader(&self) -> Option<usize> {
        let running: Vec<usize> = (0..JS_NODES).filter(|&i| self.is_running(i)).collect();
        let mut views = Vec::new();
        for &i in &running {
            views.push((i, self.meta(i)?));
        }
        let leader = views.first()?.1.leader.clone();
        if leader.is_empty()
            || views
                .iter()
                .any(|(_, v)| v.leader != leader || v.cluster_size != JS_NODES as u64)
        {
            return None;
        }
        let li = self.index_of(&leader)?;
        let (_, lv) = views.iter().find(|(i, _)| *i == li)?;
        let all_current = running.iter().filter(|&&i| i != li).all(|&i| {
            let name = self.server_name(i);
            lv.replicas
                .iter()
                .any(|(n, current, offline)| *n == name && *current && !*offline)
        });
        all_current.then_some(li)
    }

    /// Waits (bounded by `timeout`) for [`JsCluster::ready_leader`]; the leader's index and how
    /// long it took. Panics with every log on timeout.
    pub fn wait_ready(&self, timeout: Duration) -> (usize, Duration) {
        let started = Instant::now();
        let leader = self.wait_ready_until(started + timeout);
        (leader, started.elapsed())
    }

    fn wait_ready_until(&self, deadline: Instant) -> usize {
        loop {
            if let Some(leader) = self.ready_leader() {
                return leader;
            }
            if Instant::now() >= deadline {
                let views: Vec<String> = (0..JS_NODES)
                    .map(|i| format!("{}: {:?}", self.server_name(i), self.meta(i)))
                    .collect();
                panic!(
                    "JetStream cluster {} not ready in time\n{}\n{}",
                    self.name,
                    views.join("\n"),
                    self.all_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs node `i` through its child handle and reaps it; its slot becomes empty. Panics
    /// if it is not running.
    pub fn kill(&mut self, i: usize) {
        let mut node = self.nodes[i]
            .take()
            .unwrap_or_else(|| panic!("node {i} is not running"));
        let _ = node.child.kill();
        let _ = node.child.wait();
        self.logs[i].0.lock().unwrap().push(format!(
            "=== {} killed (SIGKILL) by the test ===",
            self.server_name(i)
        ));
    }

    /// Starts node `i` again with the same config (ports, store dir), waits until it is ready
    /// and the cluster has a meta leader that sees every running node current (up to
    /// [`JS_READY_TIMEOUT`]); returns how long that took.
    pub fn restart(&mut self, i: usize) -> Duration {
        let started = Instant::now();
        let deadline = started + JS_READY_TIMEOUT;
        let before = self.logs[i].count("Server is ready");
        self.spawn(i);
        self.wait_process_ready(i, before + 1, deadline);
        self.wait_ready_until(deadline);
        started.elapsed()
    }
}

impl Drop for JsCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().flatten() {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// The Raft view of a stream from its info (`$JS.API.STREAM.INFO`, answered by its leader).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPeers {
    /// Server name of the stream leader (empty: none).
    pub leader: String,
    /// `(server name, current, offline)` of every other peer.
    pub replicas: Vec<(String, bool, bool)>,
}

impl StreamPeers {
    /// Whether there is a leader and every other peer is current and online.
    pub fn all_current(&self) -> bool {
        !self.leader.is_empty() && self.replicas.iter().all(|(_, c, off)| *c && !*off)
    }

    /// Whether `server_name` leads or is a current, online replica.
    pub fn is_current(&self, server_name: &str) -> bool {
        self.leader == server_name
            || self
                .replicas
                .iter()
                .any(|(n, c, off)| n == server_name && *c && !*off)
    }
}

/// The leader and replicas of `stream`.
pub async fn stream_peers(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Result<StreamPeers, String> {
    let s = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    let info = s.get_info().await.map_err(|e| e.to_string())?;
    let cluster = info.cluster.ok_or("stream info without cluster")?;
    Ok(StreamPeers {
        leader: cluster.leader.unwrap_or_default(),
        replicas: cluster
            .replicas
            .into_iter()
            .map(|p| (p.name, p.current, p.offline))
            .collect(),
    })
}

/// Waits (bounded by `timeout`, polling every 100 ms) until `stream` has a leader and every
/// replica is current ([`StreamPeers::all_current`]); how long it took, or the last view.
///
/// [`JsCluster::restart`] only waits for the meta group: a restarted node's stream replicas
/// catch up afterwards (a second or more), and until then reads served by that replica (an
/// ordered consumer, e.g. a KV `history`, may be placed there) can be stale. On nats-server
/// 2.9.10 "current" is not enough: a restarted replica can be reported current while it still
/// lacks the writes made while it was down, until the stream's next write makes it catch up.
pub async fn wait_stream_current(
    js: &async_nats::jetstream::Context,
    stream: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = tokio::time::Instant::now();
    loop {
        let last =
            match tokio::time::timeout(Duration::from_secs(5), stream_peers(js, stream)).await {
                Ok(Ok(peers)) if peers.all_current() => return Ok(started.elapsed()),
                Ok(Ok(peers)) => format!("{peers:?}"),
                Ok(Err(e)) => e,
                Err(_) => "stream info: no answer within 5 s".to_string(),
            };
        if started.elapsed() >= timeout {
            return Err(format!(
                "stream {stream} not current within {timeout:?}: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client of the cluster: every URL of `urls`, user [`JS_USER`] / [`JS_PASSWORD`], a 5 s
/// connection timeout, a 5 s request timeout and reconnect delays of at most 250 ms (the
/// default backoff grows to 4 s), so that a test survives a node's death quickly.
pub async fn js_client(urls: &[String]) -> async_nats::Client {
    try_js_client(urls)
        .await
        .unwrap_or_else(|e| panic!("connect to {urls:?}: {e}"))
}

/// Like [`js_client`], returning the error instead of panicking.
pub async fn try_js_client(urls: &[String]) -> Result<async_nats::Client, String> {
    let addrs: Vec<async_nats::ServerAddr> = urls
        .iter()
        .map(|u| u.parse().map_err(|e| format!("{u}: {e}")))
        .collect::<Result<_, _>>()?;
    async_nats::ConnectOptions::new()
        .user_and_password(JS_USER.to_string(), JS_PASSWORD.to_string())
        .name("nas-js-harness")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)))
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 50).min(250)))
        .connect(addrs)
        .await
        .map_err(|e| e.to_string())
}
