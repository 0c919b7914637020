//! Wires the pieces together and runs them: trust (operator, system account) → store →
//! account and activation services (+ NATS connection, file watch, replica sync) → HTTP(S)
//! listener. Prints the `resolver:` line nats-server needs, reloads on SIGHUP without dropping
//! the listener, and stops gracefully.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accounts::{Accounts, Policy};
use crate::activations::Activations;
use crate::config::{restart, Config};
use crate::http::serve::{serve, ConnectionLimits, ServeOptions, TlsAcceptor};
use crate::http::{self, AppState};
use crate::notify::nats::{self, NatsSetupError};
use crate::notify::Notifier;
use crate::replica::{self, Primary};
use crate::store::{watch, NscStore, StoreError};
use crate::tls::{self, TlsError};
use crate::trust::{Trust, TrustError};

pub(crate) mod stores;

/// The version printed at startup and by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the server could not start (or a reload was refused).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Operator or system account file problem.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
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
    /// The HTTPS settings cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A combination of settings that cannot work.
    #[error("{0}")]
    Conflict(String),
    /// The file watch cannot be set up.
    #[error("cannot watch {path}: {reason}")]
    Watch {
        /// The folder.
        path: String,
        /// Why.
        reason: String,
    },
    /// The HTTP server failed while running.
    #[error("error attempting to serve requests: {0}")]
    Serve(std::io::Error),
}

/// Everything built from one configuration. A reload builds a new one and swaps it in; the old
/// one's background tasks stop when it is dropped (requests in flight keep what they hold).
#[derive(Debug)]
pub struct Services {
    /// The account service.
    pub accounts: Arc<Accounts>,
    /// The activation service.
    pub activations: Arc<Activations>,
    tasks: Vec<JoinHandle<()>>,
    _watch: Option<watch::Watch>,
    /// `false` once these services are dropped: blocking work that outlives them (the
    /// temp-file sweep, the deferred watch) then logs nothing, so that a failed start's error
    /// stays the last line.
    live: Arc<AtomicBool>,
}

impl Drop for Services {
    fn drop(&mut self) {
        self.live.store(false, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The trust of `config`: its operator (`operatorjwtpath`, or the nsc folder's operator) and
/// system account.
pub fn load_trust(config: &Config) -> Result<Trust, StartError> {
    let operator_path = config.operator_jwt_path.clone().or_else(|| {
        config
            .store
            .nsc
            .as_ref()
            .map(|nsc| NscStore::operator_jwt_path(nsc))
    });
    if let Some(path) = &operator_path {
        tracing::info!("loading operator from {}", path.display());
    }
    if let Some(path) = &config.system_account_jwt_path {
        tracing::info!("loading system account from {}", path.display());
    }
    Ok(Trust::load(
        operator_path.as_deref(),
        config.system_account_jwt_path.as_deref(),
    )?
    .with_max_clock_skew(i64::try_from(config.max_clock_skew_secs).unwrap_or(i64::MAX)))
}

/// Builds the services for `config` (`previous` hands over pending notifications on reload).
pub async fn build_services(
    config: &Config,
    previous: Option<&Services>,
) -> Result<Services, StartError> {
    if config.store.cleanup_interval_ms != 0 {
        tracing::warn!("store.cleanupinterval is ignored: this server never deletes expired JWTs");
    }
    let live = Arc::new(AtomicBool::new(true));
    let stores = stores::open(config, &live).await?;
    let trust = load_trust(config)?;
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

    let notifier = if config.nats.servers.is_empty() {
        tracing::info!("NATS is not configured, server will not fire notifications on update");
        if config.sign_request_subject.is_some() {
            tracing::warn!("signrequestsubject is set but NATS is not: signing requests will fail");
        }
        Notifier::disabled()
    } else {
        nats::check_files(&config.nats)?;
        Notifier::enabled()
    };
    if let Some(old) = previous {
        notifier.adopt_pending(old.accounts.notifier());
    }

    let primary = match &config.primary {
        Some(_) if stores.kv.is_some() => {
            return Err(StartError::Conflict(
                "replica mode (primary) cannot be used with a jetstream store: run more account servers on the same bucket instead".into(),
            ));
        }
        Some(url) => {
            if stores.accounts.is_read_only() {
                return Err(StartError::Conflict(
                    "replica mode (primary) cannot be used with a read-only or nsc store".into(),
                ));
            }
            tracing::info!("starting in replicated mode, with primary at {url}");
            let p = Primary::new(
                url,
                Duration::from_millis(config.replication_timeout_ms.max(1)),
                config.max_replication_pack,
            )
            .map_err(StartError::Conflict)?;
            Some(Arc::new(p))
        }
        None => None,
    };
    let refuse_posts = if let Some(p) = &primary {
        Some(format!(
            "this account server is a replica of {}: push JWTs to the primary",
            p.url()
        ))
    } else if stores.accounts.is_read_only() {
        Some("this account server is read-only: its JWTs are managed as files (store.readonly / nsc)".into())
    } else {
        None
    };
    let policy = Policy {
        verify_reads: stores.accounts.is_read_only(),
        refuse_posts,
        allow_delete: config.store.allow_delete,
        signing: config.sign_request_subject.clone().map(|subject| {
            tracing::info!(
                "self-signed account JWTs are sent to the signing service on {subject:?}"
            );
            (
                subject,
                Duration::from_millis(config.sign_request_timeout_ms.max(1)),
            )
        }),
        primary: primary
            .clone()
            .map(|p| p as Arc<dyn crate::accounts::Upstream>),
        pack_limit: usize::try_from(config.max_replication_pack).unwrap_or(0),
        cache_bytes: if stores.cacheable.is_some() || stores.kv.is_some() {
            config.store.cache_bytes
        } else {
            0
        },
    };
    let accounts = Arc::new(Accounts::with_policy(
        Arc::new(trust),
        stores.accounts,
        notifier.clone(),
        policy,
    ));
    let activations = Arc::new(Activations::new(
        stores.activations,
        accounts.clone(),
        config.activations,
    ));

    let mut tasks = Vec::new();
    if let Some(kv) = &stores.kv {
        let (changed, lost) = (accounts.clone(), accounts.clone());
        tasks.push(kv.watch(
            move |key, stored| changed.stored_now(&key, stored.as_deref()),
            move || lost.forget_all(),
        ));
    }
    if let Some(shared) = notifier.shared() {
        tasks.push(nats::spawn(
            config.nats.clone(),
            shared.clone(),
            accounts.clone(),
        ));
    }
    if let Some(primary) = primary {
        tracing::info!("grabbing initial JWT pack from primary {}", primary.url());
        match replica::sync_once(&primary, &accounts).await {
            Ok(r) => tracing::info!(
                "initial pack from primary: {} stored, {} unchanged, {} refused",
                r.stored,
                r.unchanged,
                r.refused
            ),
            Err(e) => tracing::warn!("cannot load the initial pack from the primary: {e}"),
        }
        let interval = Duration::from_millis(config.replication_interval_ms.max(100));
        tasks.push(tokio::spawn({
            let (primary, accounts) = (primary.clone(), accounts.clone());
            async move {
                tokio::time::sleep(interval).await;
                let _ = replica::spawn_sync(primary, accounts, interval).await;
            }
        }));
    }
    let watch = match (&stores.watch, &stores.cacheable) {
        (Some(path), _) => Some(
            watch::watch(path, accounts.clone(), watch::Mode::Announce).map_err(|e| {
                StartError::Watch {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?,
        ),
        (None, Some(path)) if config.store.cache_bytes > 0 => {
            // Setting up a recursive watch lists the whole store: keep it off the start path.
            let (path, accounts, live) = (path.clone(), accounts.clone(), live.clone());
            let slot = Arc::new(std::sync::Mutex::new(None));
            let filled = slot.clone();
            tokio::task::spawn_blocking(move || {
                let watched = watch::watch(&path, accounts, watch::Mode::Invalidate);
                match watched {
                    _ if !live.load(Ordering::SeqCst) => {}
                    Ok(w) => *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(w),
                    Err(e) => tracing::warn!("cannot watch {}: {e}", path.display()),
                }
            });
            Some(watch::Watch::deferred(slot))
        }
        _ => None,
    };
    Ok(Services {
        accounts,
        activations,
        tasks,
        _watch: watch,
        live,
    })
}

/// The services of the current configuration, swapped on reload.
#[derive(Debug)]
struct Current(RwLock<Arc<Services>>);

impl Current {
    fn current(&self) -> Arc<Services> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl http::ServiceSource for Current {
    fn accounts(&self) -> Arc<Accounts> {
        self.current().accounts.clone()
    }

    fn activations(&self) -> Arc<Activations> {
        self.current().activations.clone()
    }
}

/// A started server: where it listens, how to reload and how to stop it.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    resolver_url: String,
    services: Arc<Current>,
    tls: Option<TlsAcceptor>,
    /// The configuration of the start: what settings a reload cannot change are compared to.
    started: Config,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), std::io::Error>>,
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

    /// Applies a new configuration: new trust, store, NATS connection, watch and replica sync
    /// are built first and swapped in only when all of them work; the listener stays. On error
    /// the running configuration is kept. Each changed setting that only a restart applies
    /// (the listener, metrics, logging) is named in a warning.
    pub async fn reload(&self, config: &Config) -> Result<(), StartError> {
        let current = self.current();
        let next = build_services(config, Some(&current)).await?;
        if let (Some(acceptor), Some(cert), Some(key)) =
            (&self.tls, &config.http.tls.cert, &config.http.tls.key)
        {
            acceptor.replace(tls::server_config(cert, key)?);
        }
        *self.services.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        for key in restart::restart_only_changes(&self.started, config) {
            tracing::warn!("reload: {key} changed; it takes effect at the next restart");
        }
        tracing::info!("configuration reloaded");
        Ok(())
    }

    fn current(&self) -> Arc<Services> {
        self.services.current()
    }

    /// Stops accepting connections, lets requests in flight finish, and returns.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        tracing::info!("stopping account server");
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = self.wait().await;
        if self.current().accounts.notifier().connected().is_some() {
            tracing::info!("disconnected from NATS");
        }
        result
    }

    /// Waits until the HTTP server ends (it ends on its own only on a fatal error).
    pub async fn wait(&mut self) -> Result<(), StartError> {
        let result = (&mut self.task)
            .await
            .map_err(|e| StartError::Serve(std::io::Error::other(e.to_string())))?;
        result.map_err(StartError::Serve)?;
        tracing::info!("http server stopped");
        Ok(())
    }
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
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    socket
        .and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(config.http.listen_backlog)
        })
        .map_err(|source| StartError::Bind { addr, source })
}

/// Raises the open-files limit and returns the HTTP connection cap that fits it.
fn connection_cap(configured: usize) -> usize {
    let files = match crate::limits::raise_open_files() {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!("cannot read the open files limit: {e}");
            return configured;
        }
    };
    if files.now > files.before {
        tracing::info!(
            "open files limit raised from {} to the hard limit {}",
            files.before,
            files.now
        );
    } else {
        tracing::info!(
            "open files limit is {} (hard limit {})",
            files.now,
            files.hard
        );
    }
    let cap = crate::limits::connection_cap(configured, files.now);
    if cap < configured {
        tracing::warn!(
            "http.maxconnections {configured} lowered to {cap}: the process may open {} files",
            files.now
        );
    }
    cap
}

/// The `resolver: URL(...)` base for a configured host and the bound port.
pub fn resolver_url(scheme: &str, host: &str, port: u16) -> String {
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{scheme}://{host}:{port}/jwt/v1/accounts/")
}

/// Starts every part of the server and returns once the HTTP listener accepts connections.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    tls::install_crypto_provider();
    tracing::info!("starting NATS Account server, version {VERSION}");
    tracing::info!(
        "server time is {}",
        chrono::Local::now().format("%a %b %e %H:%M:%S %Z %Y")
    );
    let tls_acceptor = match (&config.http.tls.cert, &config.http.tls.key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::new(tls::server_config(cert, key)?)),
        (None, None) => None,
        _ => return Err(TlsError::Incomplete.into()),
    };
    if config.http.metrics {
        crate::metrics::install().map_err(StartError::Conflict)?;
        tracing::info!("serving Prometheus metrics on /metrics");
    }
    let services = Arc::new(Current(RwLock::new(Arc::new(
        build_services(config, None).await?,
    ))));
    let millis = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
    let api = http::api(
        AppState {
            services: services.clone(),
            max_body_bytes: config.http.max_body_bytes,
        },
        &http::Limits {
            max_body_bytes: config.http.max_body_bytes,
            read_timeout: millis(config.http.read_timeout_ms),
            write_timeout: millis(config.http.write_timeout_ms),
            metrics: config.http.metrics,
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
        write_timeout: millis(config.http.write_timeout_ms),
        max_connections: connection_cap(config.http.max_connections),
        limits: ConnectionLimits {
            max_requests: config.http.max_connection_requests,
            max_age: millis(config.http.max_connection_age_ms),
        },
        tls: tls_acceptor.clone(),
    };
    let task = tokio::spawn(serve(listener, api, options, async move {
        let _ = stop_rx.await;
    }));
    let scheme = if tls_acceptor.is_some() {
        "https"
    } else {
        "http"
    };
    let url = resolver_url(scheme, &config.http.host, addr.port());
    tracing::info!("{scheme} listening on {addr}");
    tracing::info!("nats-account-server is running");
    tracing::info!("configure the nats-server with:");
    tracing::info!("  resolver: URL({url})");
    Ok(Running {
        addr,
        resolver_url: url,
        services,
        tls: tls_acceptor,
        started: config.clone(),
        stop: Some(stop_tx),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_url_forms() {
        assert_eq!(
            resolver_url("http", "", 9090),
            "http://127.0.0.1:9090/jwt/v1/accounts/"
        );
        assert_eq!(
            resolver_url("http", "localhost", 1),
            "http://localhost:1/jwt/v1/accounts/"
        );
        assert_eq!(
            resolver_url("https", "::1", 2),
            "https://[::1]:2/jwt/v1/accounts/"
        );
        assert_eq!(
            resolver_url("http", "[::1]", 2),
            "http://[::1]:2/jwt/v1/accounts/"
        );
    }
}
