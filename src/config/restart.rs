//! The settings a reload (SIGHUP) cannot apply. A reload rebuilds trust, stores, the NATS
//! connection, the watch, the replica sync and the activation quota, and replaces the HTTPS
//! certificate; the listener (address, limits, timeouts, body size, TLS on or off), the
//! metrics route and the logger are set up once at start.

use super::Config;

/// The keys (e.g. `http.metrics`) whose value in `next` differs from the one the server
/// started with and that only a restart applies, in config order.
pub fn restart_only_changes(started: &Config, next: &Config) -> Vec<&'static str> {
    let (a, b) = (&started.http, &next.http);
    let (la, lb) = (&started.logging, &next.logging);
    let tls_on = |c: &Config| c.http.tls.cert.is_some() && c.http.tls.key.is_some();
    [
        ("http.host", a.host != b.host),
        ("http.port", a.port != b.port),
        ("http.readtimeout", a.read_timeout_ms != b.read_timeout_ms),
        (
            "http.writetimeout",
            a.write_timeout_ms != b.write_timeout_ms,
        ),
        ("http.maxbodysize", a.max_body_bytes != b.max_body_bytes),
        (
            "http.maxconnections",
            a.max_connections != b.max_connections,
        ),
        (
            "http.maxconnectionrequests",
            a.max_connection_requests != b.max_connection_requests,
        ),
        (
            "http.maxconnectionage",
            a.max_connection_age_ms != b.max_connection_age_ms,
        ),
        ("http.listenbacklog", a.listen_backlog != b.listen_backlog),
        ("http.metrics", a.metrics != b.metrics),
        // With TLS on, a reload loads the new certificate; turning it on or off needs a restart.
        ("http.tls", tls_on(started) != tls_on(next)),
        ("logging.time", la.time != lb.time),
        ("logging.debug", la.debug != lb.debug),
        ("logging.trace", la.trace != lb.trace),
        ("logging.colors", la.colors != lb.colors),
        ("logging.pid", la.pid != lb.pid),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restart_settings_are_named() {
        let started = Config::default();
        let mut next = Config::default();
        assert!(restart_only_changes(&started, &next).is_empty());
        // Settings a reload applies are not named.
        next.store.dir = Some("/elsewhere".into());
        next.nats.servers = vec!["nats://n:4222".into()];
        next.operator_jwt_path = Some("/op.jwt".into());
        next.http.tls.root = Some("/ca.pem".into());
        assert!(restart_only_changes(&started, &next).is_empty());
        next.http.metrics = true;
        next.http.port = 1;
        next.logging.colors = Some(false);
        next.http.tls.cert = Some("/c.pem".into());
        next.http.tls.key = Some("/k.pem".into());
        assert_eq!(
            restart_only_changes(&started, &next),
            ["http.port", "http.metrics", "http.tls", "logging.colors"]
        );
        // A new certificate for a server started with TLS is applied.
        let mut renewed = next.clone();
        renewed.http.tls.cert = Some("/c2.pem".into());
        assert!(restart_only_changes(&next, &renewed).is_empty());
    }
}
