//! The log of NATS connection attempts (issue 14): the first attempt at once, exactly one line
//! per failed attempt naming the server, the OS error and the delay until the next attempt,
//! and that delay matching the time between attempts — for the initial connection and for
//! reconnects after a loss.

mod support;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

/// The time stamp of a log line (`2006/01/02 15:04:05.000000 [INF] ...`).
fn stamp(line: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(&line[..26], "%Y/%m/%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("no time stamp in {line:?}: {e}"))
}

fn millis_between(a: &str, b: &str) -> i64 {
    (stamp(b) - stamp(a)).num_milliseconds()
}

/// Waits (bounded) until `needle` is in at least `n` lines; returns those lines.
fn wait_lines(nas: &AccountServer, needle: &str, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    while nas.logs.count(needle) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines: Vec<String> = nas
        .logs
        .text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= n, "{}", nas.logs.text());
    lines
}

/// Our server with time stamps on and `nats { servers: [url], reconnectwait: wait_ms }`.
fn nas_with_nats_at(dir: &std::path::Path, url: &str, wait_ms: u64) -> AccountServer {
    AccountServer::start(
        dir,
        &format!(
            "http {{ host: 127.0.0.1, port: 0 }}\nlogging {{ colors: false, time: true }}\nnats {{ servers: [\"{url}\"], reconnectwait: {wait_ms} }}\n"
        ),
    )
}

#[test]
fn the_first_attempt_is_immediate_and_each_failure_states_the_real_delay() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let nas = nas_with_nats_at(tmp.path(), &url, 1000);
    let failed = format!("[ERR] cannot connect to NATS at {url}: ");
    let attempts = wait_lines(&nas, &failed, 4, Duration::from_secs(15));
    for line in &attempts {
        assert!(
            line.ends_with("Connection refused (os error 111); next attempt in 1000 ms"),
            "{line}"
        );
    }
    // The first attempt does not wait.
    let connecting = nas
        .logs
        .wait_for(
            &format!("connecting to NATS for notifications at {url}"),
            Duration::from_secs(1),
        )
        .unwrap();
    let first = millis_between(&connecting, &attempts[0]);
    assert!(first < 500, "first attempt after {first} ms");
    // The stated delay is the time between attempts (loose bounds for a busy machine).
    for pair in attempts.windows(2) {
        let gap = millis_between(&pair[0], &pair[1]);
        assert!((900..1700).contains(&gap), "{gap} ms between\n{pair:?}");
    }
    // No other warning or error: one line per attempt.
    let other: Vec<String> = nas
        .logs
        .text()
        .lines()
        .filter(|l| l.contains("[ERR]") || l.contains("[WRN]"))
        .filter(|l| !l.contains(&failed) && !l.contains("No Operator is configured"))
        .map(str::to_string)
        .collect();
    assert!(other.is_empty(), "{other:#?}");
}

#[test]
fn attempts_counted_at_the_server_match_the_lines_and_their_delay() {
    // A "server" that records when each connection arrives and closes it at once.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(s) => {
                    seen.lock().unwrap().push(Instant::now());
                    drop(s);
                }
                Err(_) => break,
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let mut nas = nas_with_nats_at(tmp.path(), &url, 300);
    let failed = format!("[ERR] cannot connect to NATS at {url}: ");
    wait_lines(&nas, &failed, 6, Duration::from_secs(15));
    nas.kill();
    let lines = nas.logs.count(&failed);
    let arrivals = arrivals.lock().unwrap().clone();
    // The attempt in flight when the server was killed may have no line yet.
    assert!(
        arrivals.len() == lines || arrivals.len() == lines + 1,
        "{} attempts, {lines} lines:\n{}",
        arrivals.len(),
        nas.logs.text()
    );
    assert!(
        nas.logs.text().contains("next attempt in 300 ms"),
        "{}",
        nas.logs.text()
    );
    let first = arrivals[0] - started;
    assert!(
        first < Duration::from_secs(3),
        "first attempt after {first:?}"
    );
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(280) && gap < Duration::from_millis(1000),
            "{gap:?} between attempts"
        );
    }
}

#[test]
fn after_a_loss_each_reconnect_attempt_names_the_server_and_the_os_error() {
    let w = World::new();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let nas = start_nas_with_sys(&w, &nats_block(&w, std::slice::from_ref(&url), ""));
    let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
    opts.port = Some(port);
    let mut nats = NatsServer::start(w.dir.path(), "n1", &opts);
    assert!(nas
        .logs
        .wait_for(
            &format!("connected to NATS for account notifications at {url}"),
            Duration::from_secs(10)
        )
        .is_some());
    nats.stop();
    assert!(
        nas.logs
            .wait_for(
                &format!("[WRN] disconnected from NATS at {url}; reconnecting"),
                Duration::from_secs(10)
            )
            .is_some(),
        "{}",
        nas.logs.text()
    );
    let failed = format!("[WRN] cannot reconnect to NATS at {url}: ");
    let lines = wait_lines(&nas, &failed, 5, Duration::from_secs(15));
    // The first reconnect is immediate and may meet the closing socket; the rest are refused.
    for line in &lines[1..] {
        assert!(
            line.ends_with("Connection refused (os error 111); next attempt in 200 ms"),
            "{line}"
        );
    }
    for pair in lines[1..].windows(2) {
        let gap = millis_between(&pair[0], &pair[1]);
        assert!((150..900).contains(&gap), "{gap} ms between\n{pair:?}");
    }
    let text = nas.logs.text();
    assert!(!text.contains("IO error"), "{text}");
    assert!(!text.contains("nats error"), "{text}");

    let _nats = NatsServer::start(w.dir.path(), "n1", &opts);
    assert!(
        nas.logs
            .wait_for(
                &format!("[INF] reconnected to NATS at {url}"),
                Duration::from_secs(10)
            )
            .is_some(),
        "{}",
        nas.logs.text()
    );
}
