//! The accept loop: HTTP/1.1 connections served by hyper with the configured read and write
//! timeouts, a bound on concurrent connections, and a graceful shutdown that lets requests in
//! flight finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long requests in flight may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connection-level limits and TLS.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time a client has to send the request headers (`http.readtimeout`); also closes idle
    /// keep-alive connections and bounds the TLS handshake. `None` = no limit.
    pub read_timeout: Option<Duration>,
    /// Longest time a write to a client may make no progress (`http.writetimeout`): a client
    /// that does not read what we send is disconnected after it. `None` = no limit.
    pub write_timeout: Option<Duration>,
    /// Most connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Serve HTTPS with this acceptor.
    pub tls: Option<TlsAcceptor>,
}

/// The TLS side of the listener; its certificate can be replaced while serving (reload).
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor for `config`.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsAcceptor {
            config: Arc::new(std::sync::RwLock::new(config)),
        }
    }

    /// Uses `config` for connections accepted from now on.
    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Serves `api` on `listener` until `shutdown` completes, then drains connections.
pub async fn serve(
    listener: TcpListener,
    api: super::Api,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    builder.header_read_timeout(options.read_timeout);
    let service = hyper::service::service_fn(move |request| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(api.handle(request).await) }
    });
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let mut stream = tokio_io_timeout::TimeoutWriter::new(stream);
        stream.set_timeout(options.write_timeout);
        let stream = Box::pin(stream);
        match &options.tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service.clone());
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let builder = builder.clone();
                let service = service.clone();
                let watcher = graceful.watcher();
                let handshake_limit = options.read_timeout.unwrap_or(Duration::from_secs(10));
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(handshake_limit, acceptor.accept(stream)).await;
                    if let Ok(Ok(tls_stream)) = handshake {
                        let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    tracing::info!("stopping http server");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}
