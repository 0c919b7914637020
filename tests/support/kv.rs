//! A single JetStream nats-server (plain user/password, no operator) for the KV store tests.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use super::{free_port, Logs};

/// The JetStream user of the test servers.
pub const JS_USER: &str = "nas";
/// Its password.
pub const JS_PASSWORD: &str = "s3cret";

/// One nats-server with JetStream, killed on drop.
pub struct JsServer {
    child: Child,
    /// Client port.
    pub port: u16,
    /// Its stderr.
    pub logs: Logs,
}

impl JsServer {
    /// Starts `binary` with JetStream in `dir` on a free port; waits (20 s at most) until ready.
    pub fn start(binary: &Path, dir: &Path) -> JsServer {
        Self::start_on(binary, dir, free_port())
    }

    /// Like [`JsServer::start`] on `port` (a restart keeps its port and its data).
    pub fn start_on(binary: &Path, dir: &Path, port: u16) -> JsServer {
        let conf = dir.join(format!("js-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "host: 127.0.0.1\nport: {port}\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\nauthorization {{ user: {JS_USER}, password: {JS_PASSWORD} }}\n",
                dir.join(format!("js-{port}")).display()
            ),
        )
        .unwrap();
        let logs = Logs::default();
        let mut child = super::spawn_nats(binary, &conf, &logs);
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Err(logs) = super::wait_nats_ready(&mut child, &logs, 1, deadline) {
            panic!("JetStream nats-server did not start:\n{logs}");
        }
        JsServer { child, port, logs }
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// An account-server config on the world's operator whose store is the KV bucket `bucket` of
/// `servers` (created with `replicas`), with `extra` config text.
pub fn kv_nas_config(
    w: &super::World,
    servers: &[String],
    bucket: &str,
    replicas: usize,
    extra: &str,
) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "http {{ host: 127.0.0.1, port: 0 }}\nlogging {{ colors: false }}\noperatorjwtpath: \"{}\"\nstore {{\n  jetstream {{\n    servers: [{}]\n    user: {JS_USER}\n    password: {JS_PASSWORD}\n    bucket: {bucket}\n    replicas: {replicas}\n  }}\n}}\n{extra}",
        w.operator_path.display(),
        servers.join(", ")
    )
}

/// Starts an account server with `config` in its own folder `<world>/<name>`; waits until its
/// store is usable (bucket open, changes watched: readiness says so; 20 s at most).
pub fn start_kv_nas(w: &super::World, name: &str, config: &str) -> super::AccountServer {
    let dir = w.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let nas = super::AccountServer::start(&dir, config);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nas.get("/readyz").text().contains(r#""store":{"ok":true}"#) {
        assert!(
            Instant::now() < deadline,
            "store not usable: {}",
            nas.logs.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nas
}

impl Drop for JsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
