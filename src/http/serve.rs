//! The accept loop: HTTP/1.1 connections served by hyper with the configured read and write
//! timeouts, a cap on open connections that never locks new clients out, per-connection bounds,
//! and a graceful shutdown that lets requests in flight finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use super::conns::ConnectionLimits;
use super::conns::{Registered, Registry};

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
    /// Most connections open at once; at the cap the longest-idle ones make room.
    pub max_connections: usize,
    /// Per-connection bounds on requests and age.
    pub limits: ConnectionLimits,
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
///
/// Connections are accepted even at the cap: the longest-idle keep-alive connections are then
/// closed to make room, so clients that hold connections open cannot keep a nats-server from
/// fetching accounts. A new connection waits only when every open one is handling a request.
pub async fn serve(
    listener: TcpListener,
    api: super::Api,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = options.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(cap));
    let registry = Registry::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    builder.header_read_timeout(options.read_timeout);
    let mut full_warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = make_room(&slots, &registry, cap, &mut full_warned) => match permit {
                Some(p) => p,
                None => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let mut stream = tokio_io_timeout::TimeoutWriter::new(stream);
        stream.set_timeout(options.write_timeout);
        let mut connection = Connection {
            builder: builder.clone(),
            api: api.clone(),
            registered: registry.register(),
            limits: options.limits,
            stop: stop_rx.clone(),
        };
        let stream = Box::pin(stream);
        match &options.tls {
            None => {
                let first_bytes_within = options.read_timeout;
                tokio::spawn(async move {
                    if connection
                        .first_bytes(stream.get_ref(), first_bytes_within)
                        .await
                    {
                        // Boxed: a connection waiting for its first bytes stays small.
                        Box::pin(connection.run(TokioIo::new(stream))).await;
                    }
                    drop(permit);
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let handshake_limit = options.read_timeout.unwrap_or(Duration::from_secs(10));
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(handshake_limit, acceptor.accept(stream)).await;
                    if let Ok(Ok(tls_stream)) = handshake {
                        connection.run(TokioIo::new(tls_stream)).await;
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    tracing::info!("stopping http server");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(cap as u32)).await;
    if drained.is_err() {
        tracing::warn!("some HTTP connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}

/// A connection slot: at once below the cap; at the cap, the longest-idle connection is asked
/// to close (another one every [`ROOM_WAIT`] while none frees up, as a closing connection
/// finishes its response first). Warns at most once a minute. `None` once the server stops.
async fn make_room(
    slots: &Arc<Semaphore>,
    registry: &Registry,
    cap: usize,
    warned: &mut Option<Instant>,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return Some(permit);
    }
    if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *warned = Some(Instant::now());
        tracing::warn!(
            "{cap} HTTP connections are open (http.maxconnections): closing the longest-idle ones to accept new clients"
        );
    }
    loop {
        registry.close_longest_idle();
        match tokio::time::timeout(ROOM_WAIT, slots.clone().acquire_owned()).await {
            Ok(permit) => return permit.ok(),
            Err(_) => continue,
        }
    }
}

/// How long a new connection waits for a closing one before another is asked to close.
const ROOM_WAIT: Duration = Duration::from_millis(100);

/// What one connection's task needs.
struct Connection {
    builder: hyper::server::conn::http1::Builder,
    api: super::Api,
    registered: Registered,
    limits: ConnectionLimits,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    /// Waits until the client has sent something, so that a connection costs hyper's state and
    /// its read buffer (~10 KiB) only once a request arrives: in a connection storm most
    /// connections are accepted well before their client writes. `false` when nothing came
    /// within `limit` (the read timeout), or the connection was asked to close first (at the
    /// cap, or as the server stops).
    async fn first_bytes(
        &mut self,
        stream: &tokio::net::TcpStream,
        limit: Option<Duration>,
    ) -> bool {
        let timeout = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        if *self.stop.borrow() {
            return false;
        }
        let mut byte = [0u8; 1];
        tokio::select! {
            // A peek, as readiness alone can be reported before any byte came.
            peeked = stream.peek(&mut byte) => matches!(peeked, Ok(n) if n > 0),
            _ = timeout => false,
            _ = self.registered.conn.close.notified() => false,
            _ = self.stop.changed() => false,
        }
    }

    /// Serves requests on `io` until the client leaves, or until the connection is closed for
    /// room, age, its request count or shutdown (after the request in flight is answered).
    async fn run<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let conn = self.registered.conn.clone();
        let (api, max_requests) = (self.api.clone(), self.limits.max_requests);
        let service = hyper::service::service_fn(move |request| {
            let (api, conn) = (api.clone(), conn.clone());
            async move {
                let n = conn.request_started();
                let mut response = api.handle(request).await;
                if max_requests > 0 && n >= max_requests {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                conn.request_done();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let served = self.builder.serve_connection(io, service);
        tokio::pin!(served);
        let age = async {
            match self.limits.max_age {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(age);
        let close = &self.registered.conn.close;
        let mut closing = *self.stop.borrow();
        if closing {
            served.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                _ = served.as_mut() => return,
                _ = close.notified(), if !closing => {}
                _ = &mut age, if !closing => {}
                _ = self.stop.changed(), if !closing => {}
            }
            closing = true;
            served.as_mut().graceful_shutdown();
        }
    }
}
