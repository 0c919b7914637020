//! The open HTTP connections and what each is doing, so that at the connection cap the
//! longest-idle keep-alive connections can be closed to make room for a new client (a
//! nats-server fetching an account must always get in), and each connection is bounded in
//! requests and age.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Per-connection bounds (`http.maxconnectionrequests`, `http.maxconnectionage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Requests served on one connection before it is closed (0 = no bound).
    pub max_requests: u64,
    /// Time after which a connection is closed once its request in flight is answered.
    pub max_age: Option<Duration>,
}

/// One connection's state, shared between its task, its service and the [`Registry`].
#[derive(Debug)]
pub(crate) struct Conn {
    /// The registry's epoch, which idle times count from.
    epoch: Instant,
    /// Milliseconds since the registry's epoch at which the connection became idle, plus one;
    /// 0 while a request is being handled.
    idle_since: AtomicU64,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// Set once the connection was asked to close (so it is not chosen twice).
    closing: AtomicBool,
    /// Wakes the connection's task to close it.
    pub(crate) close: Notify,
}

impl Conn {
    /// A request starts: the connection is busy. Returns the request's number (1 for the first).
    pub(crate) fn request_started(&self) -> u64 {
        self.idle_since.store(0, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The request was answered: the connection is idle from now.
    pub(crate) fn request_done(&self) {
        self.idle_since.store(stamp(self.epoch), Ordering::Relaxed);
    }
}

/// Now, in milliseconds since `epoch`, plus one (0 means busy).
fn stamp(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64 + 1
}

/// All open connections. Cheap on the request path: two atomic stores per request.
#[derive(Debug)]
pub(crate) struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// The longest-idle connections of the last scan, the longest-idle last.
    candidates: Mutex<Vec<(u64, Weak<Conn>)>>,
}

/// Connections picked by one scan for closing.
const CANDIDATES: usize = 256;

/// Removes its connection from the registry when the connection's task ends.
#[derive(Debug)]
pub(crate) struct Registered {
    registry: Arc<Registry>,
    id: u64,
    /// The connection's state.
    pub(crate) conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    /// An empty registry.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Registry {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            candidates: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection that was just accepted (idle until its first request).
    pub(crate) fn register(self: &Arc<Self>) -> Registered {
        let conn = Arc::new(Conn {
            epoch: self.epoch,
            idle_since: AtomicU64::new(stamp(self.epoch)),
            requests: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, conn.clone());
        Registered {
            registry: self.clone(),
            id,
            conn,
        }
    }

    /// Asks the longest-idle connection to close; returns `false` when none is idle.
    /// Connections handling a request are never chosen; a closed idle keep-alive connection
    /// costs its client one reconnect. One scan of the open connections picks the
    /// [`CANDIDATES`] longest-idle ones; later calls take from them (each checked to be still
    /// idle since then), so a stream of new connections does not scan every open one each time.
    pub(crate) fn close_longest_idle(&self) -> bool {
        let mut candidates = self.candidates.lock().unwrap_or_else(|e| e.into_inner());
        for rescanned in [false, true] {
            if rescanned {
                *candidates = self.longest_idle(CANDIDATES);
            }
            while let Some((since, conn)) = candidates.pop() {
                let Some(conn) = conn.upgrade() else { continue };
                if conn.idle_since.load(Ordering::Relaxed) == since
                    && !conn.closing.swap(true, Ordering::Relaxed)
                {
                    conn.close.notify_one();
                    return true;
                }
            }
        }
        false
    }

    /// Up to `count` idle connections, the longest-idle last.
    fn longest_idle(&self, count: usize) -> Vec<(u64, Weak<Conn>)> {
        let mut idle: Vec<(u64, Weak<Conn>)> = self
            .lock()
            .values()
            .filter(|c| !c.closing.load(Ordering::Relaxed))
            .filter_map(|c| match c.idle_since.load(Ordering::Relaxed) {
                0 => None,
                since => Some((since, Arc::downgrade(c))),
            })
            .collect();
        if idle.len() > count {
            idle.select_nth_unstable_by_key(count - 1, |(since, _)| *since);
            idle.truncate(count);
        }
        idle.sort_unstable_by_key(|(since, _)| std::cmp::Reverse(*since));
        idle
    }

    /// Open connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_connections_are_closed_and_busy_ones_never() {
        let registry = Registry::new();
        let oldest = registry.register();
        std::thread::sleep(Duration::from_millis(5));
        let busy = registry.register();
        busy.conn.request_started();
        std::thread::sleep(Duration::from_millis(5));
        let newer = registry.register();
        assert!(registry.close_longest_idle());
        assert!(oldest.conn.closing.load(Ordering::Relaxed));
        assert!(!newer.conn.closing.load(Ordering::Relaxed));
        // The oldest is already closing; the busy one is never chosen.
        assert!(registry.close_longest_idle());
        assert!(newer.conn.closing.load(Ordering::Relaxed));
        assert!(!registry.close_longest_idle());
        assert!(!busy.conn.closing.load(Ordering::Relaxed));
        assert_eq!(registry.len(), 3);
        drop(oldest);
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn requests_are_counted_and_idle_time_restarts() {
        let registry = Registry::new();
        let r = registry.register();
        assert_eq!(r.conn.request_started(), 1);
        assert!(!registry.close_longest_idle());
        r.conn.request_done();
        assert_eq!(r.conn.request_started(), 2);
        // A candidate that was used after the scan is skipped.
        let other = registry.register();
        std::thread::sleep(Duration::from_millis(5));
        r.conn.request_done();
        *registry.candidates.lock().unwrap() = registry.longest_idle(2);
        other.conn.request_started();
        other.conn.request_done();
        assert!(registry.close_longest_idle());
        assert!(r.conn.closing.load(Ordering::Relaxed));
        assert!(!other.conn.closing.load(Ordering::Relaxed));
    }
}
