//! Never roll back, never let a bad request in: rollback refusal, per-account serialisation,
//! hostile paths and bodies, size limits, slow clients. Every case checks the status and that
//! the store did not change.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use support::*;

fn versioned(w: &World, a: &nkeys::KeyPair, iat: i64, tag: &str) -> String {
    let mut claims = account_claims("A", &a.public_key());
    claims["iat"] = json!(iat);
    claims["nats"]["tags"] = json!([tag]);
    sign(&claims, &w.signing_key)
}

fn start(w: &World, extra: &str) -> AccountServer {
    AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), extra),
    )
}

#[test]
fn older_jwts_are_refused_with_409_and_identical_reposts_are_fine() {
    let w = World::new();
    let nas = start(&w, "");
    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let t0 = now();
    let newer = versioned(&w, &a, t0, "new");
    let older = versioned(&w, &a, t0 - 100, "old");
    assert_eq!(nas.post_account(&key, &newer).status, 200);
    let before = snapshot(&w.path("jwt"));
    let reply = nas.post_account(&key, &older);
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert!(
        reply.text().contains("newer JWT is already stored"),
        "{}",
        reply.text()
    );
    assert_eq!(snapshot(&w.path("jwt")), before);
    let again = nas.post_account(&key, &newer);
    assert_eq!((again.status, again.body.len()), (200, 0));
    assert_eq!(snapshot(&w.path("jwt")), before);
    assert_eq!(nas.get(&format!("/jwt/v1/accounts/{key}")).text(), newer);
}

#[test]
fn fifty_concurrent_versions_leave_the_newest_stored() {
    let w = World::new();
    let nas = start(&w, "");
    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let t0 = now() - 1000;
    let versions: Vec<String> = (0..50)
        .map(|i| versioned(&w, &a, t0 + i, &format!("v{i}")))
        .collect();
    // Post them from 50 threads in a shuffled order, released together.
    let mut order: Vec<usize> = (0..50).collect();
    let mut seed = now() as u64 | 1;
    for i in (1..order.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let handles: Vec<_> = order
        .into_iter()
        .map(|i| {
            let jwt = versions[i].clone();
            let addr = nas.addr.clone();
            let key = key.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                post(&addr, &format!("/jwt/v1/accounts/{key}"), jwt.as_bytes()).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200));
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{key}")).text(),
        versions[49]
    );
}

fn raw(addr: &str, text: &str) -> Reply {
    raw_request(addr, text.as_bytes())
}

#[test]
fn hostile_paths_are_400_and_touch_nothing() {
    let w = World::new();
    let nas = start(&w, "");
    let (a, a_jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&a.public_key(), &a_jwt).status, 200);
    let before = snapshot(&w.path("jwt"));
    let long = "A".repeat(10_000);
    let lower = a.public_key().to_lowercase();
    let op = w.operator.public_key();
    let user = nkeys::KeyPair::new_user().public_key();
    let bad_keys = [
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "%2e%2e%2f%2e%2e%2fjwt",
        "%00",
        "ABC%00DEF",
        long.as_str(),
        lower.as_str(),
        op.as_str(),
        user.as_str(),
        "A",
        "%ff%fe",
    ];
    for bad in bad_keys {
        let path = format!("/jwt/v1/accounts/{bad}");
        let g = nas.get(&path);
        assert_eq!(g.status, 400, "GET {}", &bad[..bad.len().min(40)]);
        assert!(
            g.text().contains("not a valid account public key"),
            "{}",
            g.text()
        );
        let p = post(&nas.addr, &path, a_jwt.as_bytes());
        assert_eq!(p.status, 400, "POST {}", &bad[..bad.len().min(40)]);
        assert_eq!(snapshot(&w.path("jwt")), before);
    }
    // Raw `../` segments never reach a handler.
    let r = raw(
        &nas.addr,
        "GET /jwt/v1/accounts/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.status == 404 || r.status == 400, "{}", r.status);
    assert_eq!(snapshot(&w.path("jwt")), before);
}

#[test]
fn unknown_methods_get_405() {
    let w = World::new();
    let nas = start(&w, "");
    let key = nkeys::KeyPair::new_account().public_key();
    for (method, path) in [
        ("PUT", format!("/jwt/v1/accounts/{key}")),
        ("PATCH", format!("/jwt/v1/accounts/{key}")),
        ("POST", "/healthz".to_string()),
        ("POST", "/jwt/v1/operator".to_string()),
        ("DELETE", "/jwt/v1/accounts".to_string()),
    ] {
        let r = raw(&nas.addr, &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(r.status, 405, "{method} {path}");
        assert!(
            r.header("allow").is_some(),
            "{method} {path}: no Allow header"
        );
    }
}

#[test]
fn bodies_over_the_limit_get_413() {
    let w = World::new();
    let (a, a_jwt) = w.new_account("A");
    let key = a.public_key();
    // Default limit: 1 MiB.
    let nas = start(&w, "");
    let before = snapshot(&w.path("jwt"));
    let big = vec![b'x'; 1024 * 1024 + 1];
    let r = post(&nas.addr, &format!("/jwt/v1/accounts/{key}"), &big);
    assert_eq!(r.status, 413);
    assert!(
        r.text().contains("larger than the limit of 1048576 bytes"),
        "{}",
        r.text()
    );
    assert_eq!(snapshot(&w.path("jwt")), before);
    drop(nas);

    // Configured limit, also for a chunked body without Content-Length.
    let nas = start(&w, "http { host: 127.0.0.1, port: 0, maxbodysize: 2kb }\n");
    let r = post(
        &nas.addr,
        &format!("/jwt/v1/accounts/{key}"),
        &vec![b'x'; 2049],
    );
    assert_eq!(r.status, 413);
    let chunk = "y".repeat(3000);
    let req = format!(
        "POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    assert_eq!(raw(&nas.addr, &req).status, 413);
    assert_eq!(snapshot(&w.path("jwt")), before);
    // A JWT under the limit still works.
    assert_eq!(nas.post_account(&key, &a_jwt).status, 200);
}

/// Reads until the server closes the connection (bounded) and returns what it sent.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(out),
            Err(_) => return None,
        }
    }
}

#[test]
fn slow_clients_are_cut_off_by_the_read_timeout() {
    let w = World::new();
    let nas = start(
        &w,
        "http { host: 127.0.0.1, port: 0, readtimeout: 300, writetimeout: 2000 }\n",
    );
    let key = nkeys::KeyPair::new_account().public_key();

    // Headers that never end.
    let started = Instant::now();
    let mut s = TcpStream::connect(&nas.addr).unwrap();
    s.write_all(b"GET /jwt/v1/accounts/ HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        read_until_closed(&mut s, Duration::from_secs(5)).is_some(),
        "connection kept open"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A body that never arrives in full.
    let started = Instant::now();
    let mut s = TcpStream::connect(&nas.addr).unwrap();
    s.write_all(
        format!(
            "POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\neyJ0"
        )
        .as_bytes(),
    )
    .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5)).expect("connection kept open");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // An idle keep-alive connection is closed too, and the server still serves others.
    let mut s = TcpStream::connect(&nas.addr).unwrap();
    assert!(read_until_closed(&mut s, Duration::from_secs(5)).is_some());
    assert_eq!(nas.get("/healthz").status, 200);
    assert!(snapshot(&w.path("jwt")).is_empty());
}

/// `readtimeout` bounds the whole body, not each read: a body that trickles in one byte every
/// 300 ms (each read well inside the timeout) gets 408 within twice the timeout.
#[test]
fn a_trickled_body_gets_408_within_the_read_timeout() {
    let w = World::new();
    let nas = start(
        &w,
        "http { host: 127.0.0.1, port: 0, readtimeout: 1000, writetimeout: 2000 }\n",
    );
    let key = nkeys::KeyPair::new_account().public_key();
    let mut s = TcpStream::connect(&nas.addr).unwrap();
    let started = Instant::now();
    s.write_all(
        format!("POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..30 {
                std::thread::sleep(Duration::from_millis(300));
                if s.write_all(b"e").is_err() {
                    break;
                }
            }
        })
    };
    let answer = read_until_closed(&mut s, Duration::from_secs(10)).expect("connection kept open");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("did not arrive within the read timeout"),
        "{text}"
    );
    assert!(
        took < Duration::from_millis(2000),
        "answered after {took:?}"
    );
    writer.join().unwrap();
    assert!(snapshot(&w.path("jwt")).is_empty());
}

/// `Expect: 100-continue` with a declared body over `maxbodysize`: 413 at once, never
/// `100 Continue` (the client does not send the body). Under the limit, 100 comes.
#[test]
fn no_100_continue_for_a_body_over_the_limit() {
    let w = World::new();
    let nas = start(&w, "http { host: 127.0.0.1, port: 0, maxbodysize: 2048 }\n");
    let key = nkeys::KeyPair::new_account().public_key();
    let first_line = |length: usize| {
        let mut s = TcpStream::connect(&nas.addr).unwrap();
        s.write_all(
            format!(
                "POST /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {length}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let over = first_line(1_000_000);
    assert!(over.starts_with("HTTP/1.1 413"), "{over}");
    assert!(
        over.contains("larger than the limit of 2048 bytes"),
        "{over}"
    );
    let under = first_line(100);
    assert!(under.starts_with("HTTP/1.1 100 Continue"), "{under}");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn malformed_jwts_are_400_without_a_panic() {
    let w = World::new();
    let nas = start(&w, "");
    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let good = w.new_account("X").1;
    let parts: Vec<&str> = good.split('.').collect();
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let signed = |payload: &[u8]| {
        let input = format!("{header}.{}", b64(payload));
        let sig = b64(&w.signing_key.sign(input.as_bytes()).unwrap());
        format!("{input}.{sig}")
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut flipped = parts[2].to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header not JSON", format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]).into_bytes()),
        ("header not base64", format!("!!!.{}.{}", parts[1], parts[2]).into_bytes()),
        ("header wrong alg", format!("{}.{}.{}", b64(br#"{"typ":"JWT","alg":"none"}"#), parts[1], parts[2]).into_bytes()),
        ("payload not JSON", signed(b"hello").into_bytes()),
        ("payload is an array", signed(b"[1,2,3]").into_bytes()),
        ("huge numbers", signed(format!(r#"{{"sub":"{key}","iat":1e999999,"exp":123456789012345678901234567890,"nats":{{"type":"account","version":2}}}}"#).as_bytes()).into_bytes()),
        ("deep nesting", signed(format!(r#"{{"sub":"{key}","nats":{deep}}}"#).as_bytes()).into_bytes()),
        ("invalid UTF-8 in payload", signed(b"{\"sub\":\"\xff\xfe\"}").into_bytes()),
        ("invalid UTF-8 body", vec![0xff, 0xfe, b'.', 0x80, b'.', 0x81]),
        ("non-canonical base64", format!("{}.{}.{}", parts[0], parts[1], flipped).into_bytes()),
        ("padding", format!("{}==.{}.{}", parts[0], parts[1], parts[2]).into_bytes()),
        ("NUL bytes", b"eyJ\0.\0.\0".to_vec()),
        ("only dots", b"..".to_vec()),
        ("many chunks", b"a.b.c.d.e.f".to_vec()),
    ];
    for (what, body) in cases {
        let r = post(&nas.addr, &format!("/jwt/v1/accounts/{key}"), &body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(
            r.text().trim_end().lines().count(),
            1,
            "{what}: {:?}",
            r.text()
        );
        assert!(
            snapshot(&w.path("jwt")).is_empty(),
            "{what} stored something"
        );
    }
    assert_eq!(nas.get("/healthz").status, 200);
}

/// A client that sends requests but does not read the replies: once nothing can be written to
/// it for `writetimeout`, the connection is closed (the server does not keep it, and a slot of
/// `maxconnections`, forever). Others are still served.
#[test]
fn clients_that_do_not_read_are_cut_off_by_the_write_timeout() {
    let w = World::new();
    let store = w.path("jwt");
    std::fs::create_dir_all(&store).unwrap();
    // A large JWT (~670 KB), placed in the store by hand, so that a few replies fill the
    // socket buffers between us and the server.
    let a = nkeys::KeyPair::new_account();
    let mut claims = account_claims("BIG", &a.public_key());
    claims["nats"]["tags"] = json!(["x".repeat(500_000)]);
    let big = sign(&claims, &w.signing_key);
    std::fs::write(store.join(format!("{}.jwt", a.public_key())), &big).unwrap();
    let nas = start(
        &w,
        "http { host: 127.0.0.1, port: 0, readtimeout: 10000, writetimeout: 500 }\n",
    );
    const REQUESTS: usize = 40; // ~27 MB of replies: more than loopback buffers hold
    let mut s = TcpStream::connect(&nas.addr).unwrap();
    let request = format!(
        "GET /jwt/v1/accounts/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        a.public_key()
    );
    s.write_all(request.repeat(REQUESTS).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    // Now read: what was sent before the cut, then the end of the connection.
    let started = Instant::now();
    let received =
        read_until_closed(&mut s, Duration::from_secs(10)).expect("the connection was closed");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        received.len() < REQUESTS * big.len(),
        "all {} bytes of the replies were delivered: the stalled connection was kept",
        received.len()
    );
    eprintln!(
        "{} of {} bytes delivered before the cut",
        received.len(),
        REQUESTS * big.len()
    );
    assert!(
        received.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "the first reply went out before the stall"
    );
    assert_eq!(nas.get("/healthz").status, 200);
}

/// Text from a request cannot forge log lines: a JWT whose `sub` holds a newline and a fake
/// `[INF]` line is logged on one line with the newline escaped, and a 200 KB `sub` of an
/// activation is cut.
#[test]
fn request_text_cannot_forge_or_flood_log_lines() {
    let w = World::new();
    let nas = start(&w, "");
    let fresh = nkeys::KeyPair::new_account();
    let key = nkeys::KeyPair::new_account().public_key();
    let forged = sign(
        &serde_json::json!({"sub": "x\n[INF] forged line\r\n", "nats": {"type": "account", "version": 2}}),
        &fresh,
    );
    let r = nas.post_account(&key, &forged);
    assert_eq!(r.status, 400, "{}", r.text());
    let huge = sign(
        &serde_json::json!({"sub": "S".repeat(200_000), "nats": {"type": "activation", "version": 2,
            "subject": "a.b", "kind": "stream"}}),
        &fresh,
    );
    let r = post(&nas.addr, "/jwt/v1/activations", huge.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(nas
        .logs
        .wait_for("rejected activation JWT", Duration::from_secs(5))
        .is_some());
    let logs = nas.logs.text();
    assert!(logs.contains("x\\n[INF] forged line\\r\\n"), "{logs}");
    for line in logs.lines() {
        assert!(!line.starts_with("[INF] forged"), "forged line: {line}");
        assert!(line.len() < 2200, "a line of {} bytes", line.len());
    }
    assert!(logs.contains("more bytes)"), "{logs}");
}
