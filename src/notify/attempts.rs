//! The NATS connection attempts: which server each one goes to, how long it waits, and one log
//! line per failed attempt that names the server, the cause (the OS error) and the real delay
//! until the next attempt.
//!
//! async-nats reports a failed reconnect only as an event without server or cause (`nats: IO
//! error`), but before every attempt it asks its `reconnect_to_server_callback` for the server
//! and the delay, handing over its server pool, where the previous attempt's server carries
//! that attempt's error. [`Attempts::choose`] is that callback: it logs the previous failure
//! together with the delay it then returns, so the line and the timing cannot disagree. The
//! initial connection is a loop of ours (see `nats::connect_with_retry`), which logs its own
//! failures; its attempts go through the same callback so that the server is known.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{ReconnectToServer, Server, ServerAddr};

use super::Shared;

/// The server choice and the failure log of one NATS connection task.
#[derive(Debug)]
pub(crate) struct Attempts {
    /// `reconnectwait`: the delay between failed attempts.
    wait: Duration,
    /// `maxreconnects` as async-nats counts it (`None`: for ever).
    max_reconnects: Option<usize>,
    shared: Arc<Shared>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The server of the latest attempt: the connected one while the connection is up.
    last: Option<ServerAddr>,
    /// Set by the initial connect loop: the configured server (by index) of its next attempt.
    initial: Option<usize>,
    /// Attempts since the connection was lost (async-nats gives up beyond `max_reconnects`).
    since_loss: usize,
}

impl Attempts {
    /// Attempts `wait` apart, giving up a lost connection after `max_reconnects` attempts.
    pub(crate) fn new(wait: Duration, max_reconnects: Option<usize>, shared: Arc<Shared>) -> Self {
        Attempts {
            wait,
            max_reconnects,
            shared,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The delay between failed attempts.
    pub(crate) fn wait(&self) -> Duration {
        self.wait
    }

    /// The next initial connection attempt goes to configured server `index` (modulo their
    /// number), at once.
    pub(crate) fn initial(&self, index: usize) {
        let mut state = self.lock();
        state.initial = Some(index);
        state.last = None;
    }

    /// The server of the latest attempt (the connected one while connected), for log lines.
    pub(crate) fn server(&self) -> Option<String> {
        self.lock().last.as_ref().map(show)
    }

    /// The `reconnect_to_server_callback`: picks the server and the delay of the next attempt
    /// from async-nats' server pool, and logs the failure of the previous one (see the module
    /// documentation).
    pub(crate) fn choose(&self, pool: &[Server]) -> Option<ReconnectToServer> {
        let mut state = self.lock();
        if pool.is_empty() {
            return None;
        }
        if let Some(index) = state.initial.take() {
            let addr = pool[index % pool.len()].addr.clone();
            state.last = Some(addr.clone());
            state.since_loss = 0;
            return Some(ReconnectToServer {
                addr,
                delay: Some(Duration::ZERO),
            });
        }
        let previous = state
            .last
            .as_ref()
            .and_then(|last| pool.iter().position(|s| &s.addr == last));
        // The previous attempt's server keeps its error until a connect to it succeeds: no
        // error means it was the connected server and this is the first attempt since the loss.
        let failed = previous.and_then(|i| pool[i].last_error.as_deref());
        let next = previous.map_or(0, |i| (i + 1) % pool.len());
        let delay = if failed.is_some() {
            self.wait
        } else {
            state.since_loss = 0;
            Duration::ZERO
        };
        state.since_loss += 1;
        if let (Some(i), None) = (previous, failed) {
            // Logged here rather than on async-nats' Disconnected event, which may be handled
            // after this call: the line names the server that was lost, never the next one.
            let server = show(&pool[i].addr);
            self.shared.set_error(format!("{server}: connection lost"));
            tracing::warn!("disconnected from NATS at {server}; reconnecting");
        }
        if let (Some(i), Some(error)) = (previous, failed) {
            let server = show(&pool[i].addr);
            let cause = cause(error);
            self.shared.set_error(format!("{server}: {cause}"));
            let then = match self.max_reconnects {
                Some(max) if state.since_loss > max => {
                    format!("no attempts left (nats.maxreconnects: {max})")
                }
                _ if next == i => format!("next attempt in {} ms", delay.as_millis()),
                _ => format!(
                    "next attempt, to {}, in {} ms",
                    show(&pool[next].addr),
                    delay.as_millis()
                ),
            };
            tracing::warn!("cannot reconnect to NATS at {server}: {cause}; {then}");
        }
        let addr = pool[next].addr.clone();
        state.last = Some(addr.clone());
        Some(ReconnectToServer {
            addr,
            delay: Some(delay),
        })
    }
}

/// A server address as logged: its URL without user name or password.
pub(crate) fn show(addr: &ServerAddr) -> String {
    let mut url = addr.clone().into_inner();
    // Only fails for URLs that cannot carry credentials, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// The configured URLs as logged (credentials removed; unparsable ones as written).
pub(crate) fn show_all(urls: &[String]) -> String {
    urls.iter()
        .map(|u| {
            u.parse::<ServerAddr>()
                .map_or_else(|_| u.clone(), |a| show(&a))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cause in a connection error's text: the OS error alone for an I/O error (async-nats
/// writes `IO error: Connection refused (os error 111)`), the whole text otherwise.
pub(crate) fn cause(error: &str) -> &str {
    error.strip_prefix("IO error: ").unwrap_or(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str, error: Option<&str>) -> Server {
        Server {
            addr: url.parse().unwrap(),
            failed_attempts: usize::from(error.is_some()),
            did_connect: false,
            is_discovered: false,
            last_error: error.map(str::to_string),
        }
    }

    fn attempts(max: Option<usize>) -> Attempts {
        Attempts::new(Duration::from_millis(200), max, Arc::new(Shared::default()))
    }

    #[test]
    fn initial_attempts_go_to_the_chosen_server_at_once() {
        let a = attempts(None);
        let pool = [
            server("nats://a:1", None),
            server("nats://user:secret@b:2", None),
        ];
        a.initial(3);
        let next = a.choose(&pool).unwrap();
        assert_eq!(show(&next.addr), "nats://b:2");
        assert_eq!(next.delay, Some(Duration::ZERO));
        assert_eq!(a.server().as_deref(), Some("nats://b:2"));
    }

    #[test]
    fn after_a_loss_the_first_attempt_is_immediate_then_wait_apart() {
        let a = attempts(Some(2));
        a.initial(0);
        a.choose(&[server("nats://a:1", None)]).unwrap();
        // Connected to a, then lost: a has no error, so this is the first attempt.
        let first = a.choose(&[server("nats://a:1", None)]).unwrap();
        assert_eq!(first.delay, Some(Duration::ZERO));
        assert_eq!(
            a.shared.error().as_deref(),
            Some("nats://a:1: connection lost")
        );
        let refused = "IO error: Connection refused (os error 111)";
        let second = a.choose(&[server("nats://a:1", Some(refused))]).unwrap();
        assert_eq!(second.delay, Some(Duration::from_millis(200)));
        assert_eq!(
            a.shared.error().as_deref(),
            Some("nats://a:1: Connection refused (os error 111)")
        );
        // Servers take turns.
        let pool = [
            server("nats://a:1", Some(refused)),
            server("nats://b:2", None),
        ];
        assert_eq!(show(&a.choose(&pool).unwrap().addr), "nats://b:2");
    }

    #[test]
    fn urls_are_shown_without_credentials_and_causes_without_the_kind() {
        assert_eq!(
            show_all(&["nats://u:p@h:4222".into(), "not a url".into()]),
            "nats://h:4222, not a url"
        );
        assert_eq!(
            cause("IO error: Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
        assert_eq!(cause("timed out"), "timed out");
    }
}
