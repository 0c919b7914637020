//! At most one event per key per interval (GET `?notify=true` announcements).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before the ones older than the interval are dropped.
const PRUNE_AT: usize = 4096;

/// When each key last had an event allowed.
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl Throttle {
    /// A throttle allowing one event per key per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event for `key` may happen now (and records it when so).
    pub(crate) fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() >= PRUNE_AT {
            last.retain(|_, at| now.duration_since(*at) < self.every);
        }
        match last.get_mut(key) {
            Some(at) if now.duration_since(*at) < self.every => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                last.insert(key.to_string(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_key_per_interval() {
        let t = Throttle::new(Duration::from_millis(50));
        assert!(t.allow("a"));
        assert!(!t.allow("a"));
        assert!(t.allow("b"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.allow("a"));
    }
}
