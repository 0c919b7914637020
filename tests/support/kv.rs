//! A single JetStream nats-server (plain user/password, no operator) for the KV store tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
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
        let port = free_port();
        let conf = dir.join(format!("js-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "host: 127.0.0.1\nport: {port}\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\nauthorization {{ user: {JS_USER}, password: {JS_PASSWORD} }}\n",
                dir.join(format!("js-{port}")).display()
            ),
        )
        .unwrap();
        let mut child = Command::new(binary)
            .args(["-c", conf.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nats-server");
        let logs = Logs::default();
        logs.follow(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while logs
            .wait_for("Server is ready", Duration::from_millis(50))
            .is_none()
        {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("JetStream nats-server did not start:\n{}", logs.text());
            }
        }
        JsServer { child, port, logs }
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for JsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
