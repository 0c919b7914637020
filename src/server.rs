//! Wires the pieces together and runs them: trust (operator, system account) → store →
//! account service → HTTP listener; prints the `resolver:` line nats-server needs and stops
//! gracefully when asked.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::http::serve::{serve, ServeOptions};
use crate::http::{self, AppState};
use crate::notify::nats::{self, NatsSetupError};
use crate::notify::Notifier;
use crate::store::{DirStore, JwtStore, StoreError};
use crate::trust::{Trust, TrustError};

/// The version printed at startup and by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Operator or system account file problem.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// No store configured.
    #[error("no store is configured: set store {{ dir: <folder> }} in the config file or pass -dir <folder>")]
    NoStore,
    /// The HTTP host does not resolve.
    #[error("cannot resolve http host {host:?}: {reason}")]
    Resolve {
        /// The configured host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The HTTP port cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The NATS settings cannot be used.
    #[error(transparent)]
    Nats(#[from] NatsSetupError),
    /// The HTTP server failed while running.
    #[error("error attempting to serve requests: {0}")]
    Serve(std::io::Error),
}

/// A started server: where it listens and how to stop it.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    resolver_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), std::io::Error>>,
    nats_task: Option<JoinHandle<()>>,
}

impl Running {
    /// The bound HTTP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to put in nats-server's `resolver: URL(...)`.
    pub fn resolver_url(&self) -> &str {
        &self.resolver_url
    }

    /// Stops accepting connections, lets requests in flight finish, and returns.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        tracing::info!("stopping account server");
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = self.wait().await;
        if let Some(nats) = self.nats_task.take() {
            nats.abort();
            tracing::info!("disconnected from NATS");
        }
        result
    }

    /// Waits until the HTTP server ends.
    async fn wait(&mut self) -> Result<(), StartError> {
        let result = (&mut self.task)
            .await
            .map_err(|e| StartError::Serve(std::io::Error::other(e.to_string())))?;
        result.map_err(StartError::Serve)?;
        tracing::info!("http server stopped");
        Ok(())
    }
}

/// Opens the configured store and sweeps temp files a crash may have left, in the background
/// so that a huge store does not delay the start.
fn open_store(config: &Config) -> Result<Arc<dyn JwtStore>, StartError> {
    let dir = config.store.dir.as_ref().ok_or(StartError::NoStore)?;
    let store = Arc::new(DirStore::open(dir, config.store.shard)?);
    tracing::info!("creating a store at {}", store.describe());
    let sweeper = store.clone();
    tokio::task::spawn_blocking(move || match sweeper.sweep_temp_files() {
        Ok(n) => tracing::info!("store check done: removed {n} leftover temp file(s)"),
        Err(e) => tracing::warn!("could not sweep leftover temp files: {e}"),
    });
    Ok(store)
}

/// Resolves and binds the HTTP listener.
async fn bind(config: &Config) -> Result<TcpListener, StartError> {
    let host = config.http.host.as_str();
    let port = config.http.port;
    let addr: SocketAddr = if host.is_empty() {
        SocketAddr::from(([0, 0, 0, 0], port))
    } else {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| StartError::Resolve {
                host: host.to_string(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| StartError::Resolve {
                host: host.to_string(),
                reason: "no address found".into(),
            })?
    };
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// The `resolver: URL(...)` base for a configured host and the bound port.
pub fn resolver_url(host: &str, port: u16) -> String {
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("http://{host}:{port}/jwt/v1/accounts/")
}

/// Starts every part of the server and returns once the HTTP listener accepts connections.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    tracing::info!("starting NATS Account server, version {VERSION}");
    tracing::info!(
        "server time is {}",
        chrono::Local::now().format("%a %b %e %H:%M:%S %Z %Y")
    );
    for note in config.unsupported_settings() {
        tracing::warn!("{note}");
    }
    if let Some(path) = &config.operator_jwt_path {
        tracing::info!("loading operator from {}", path.display());
    }
    if let Some(path) = &config.system_account_jwt_path {
        tracing::info!("loading system account from {}", path.display());
    }
    let trust = Trust::load(
        config.operator_jwt_path.as_deref(),
        config.system_account_jwt_path.as_deref(),
    )?;
    match trust.operator() {
        Some(op) => tracing::info!(
            "Operator: {} ({}), {} signing key(s)",
            op.token.claims.name,
            op.token.claims.sub,
            op.claims.signing_keys.len()
        ),
        None => tracing::warn!(
            "No Operator is configured - You will NOT be able to push JWTs to this account server"
        ),
    }
    if let Some(sys) = trust.system_account() {
        tracing::info!("System Account: {} ({})", sys.name, sys.key);
    }
    let store = open_store(config)?;
    let notifier = if config.nats.servers.is_empty() {
        tracing::info!("NATS is not configured, server will not fire notifications on update");
        Notifier::disabled()
    } else {
        nats::check_files(&config.nats)?;
        Notifier::enabled()
    };
    let accounts = Arc::new(Accounts::new(Arc::new(trust), store, notifier.clone()));
    let nats_task = notifier
        .shared()
        .map(|shared| nats::spawn(config.nats.clone(), shared.clone(), accounts.clone()));
    let millis = |ms: u64| (ms > 0).then(|| std::time::Duration::from_millis(ms));
    let router = http::router(
        AppState {
            accounts,
            max_body_bytes: config.http.max_body_bytes,
        },
        &http::Limits {
            max_body_bytes: config.http.max_body_bytes,
            read_timeout: millis(config.http.read_timeout_ms),
            write_timeout: millis(config.http.write_timeout_ms),
        },
    );

    let listener = bind(config).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], config.http.port)),
        source,
    })?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let options = ServeOptions {
        read_timeout: millis(config.http.read_timeout_ms),
        max_connections: config.http.max_connections,
    };
    let task = tokio::spawn(serve(listener, router, options, async move {
        let _ = stop_rx.await;
    }));
    let url = resolver_url(&config.http.host, addr.port());
    tracing::info!("http listening on port {}", addr.port());
    tracing::info!("nats-account-server is running");
    tracing::info!("configure the nats-server with:");
    tracing::info!("  resolver: URL({url})");
    Ok(Running {
        addr,
        resolver_url: url,
        stop: Some(stop_tx),
        task,
        nats_task,
    })
}

/// Runs the server until `shutdown` completes, then stops it gracefully.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let mut running = start(config).await?;
    tokio::select! {
        _ = shutdown => running.shutdown().await,
        result = running.wait() => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_url_forms() {
        assert_eq!(
            resolver_url("", 9090),
            "http://127.0.0.1:9090/jwt/v1/accounts/"
        );
        assert_eq!(
            resolver_url("localhost", 1),
            "http://localhost:1/jwt/v1/accounts/"
        );
        assert_eq!(resolver_url("::1", 2), "http://[::1]:2/jwt/v1/accounts/");
        assert_eq!(resolver_url("[::1]", 2), "http://[::1]:2/jwt/v1/accounts/");
    }
}
