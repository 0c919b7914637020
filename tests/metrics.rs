//! `/metrics` (Prometheus text): off by default; when enabled, the counters move with traffic.

mod support;

use support::*;

/// The value of the first sample line that starts with `prefix` (labels included).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_requests_posts_and_store_size() {
    let w = World::new();
    let off = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("off"), Some(&w.operator_path), ""),
    );
    assert_eq!(off.get("/metrics").status, 404);
    drop(off);

    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(
            &w.path("jwt"),
            Some(&w.operator_path),
            "http { host: 127.0.0.1, port: 0, metrics: true }\n",
        ),
    );
    let (a, a_jwt) = w.new_account("A");
    let key = a.public_key();
    assert_eq!(nas.post_account(&key, &a_jwt).status, 200);
    assert_eq!(nas.post_account(&key, "garbage").status, 400);
    assert_eq!(nas.get(&format!("/jwt/v1/accounts/{key}")).status, 200);
    assert_eq!(
        nas.get(&format!(
            "/jwt/v1/accounts/{}",
            nkeys::KeyPair::new_account().public_key()
        ))
        .status,
        404
    );
    let first = nas.get("/metrics");
    assert_eq!(first.status, 200);
    let text = first.text();
    let route = "route=\"/jwt/v1/accounts/{pubkey}\"";
    assert_eq!(
        sample(
            &text,
            &format!("nas_http_requests_total{{{route},status=\"200\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("nas_http_requests_total{{{route},status=\"400\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("nas_http_requests_total{{{route},status=\"404\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nas_post_outcomes_total{outcome=\"stored\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nas_post_outcomes_total{outcome=\"rejected\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "nas_store_jwts"), Some(1.0), "{text}");
    assert!(
        text.contains("nas_http_request_duration_seconds_bucket"),
        "{text}"
    );

    // More traffic: the counters move.
    for _ in 0..3 {
        assert_eq!(nas.get(&format!("/jwt/v1/accounts/{key}")).status, 200);
    }
    let (b, b_jwt) = w.new_account("B");
    assert_eq!(nas.post_account(&b.public_key(), &b_jwt).status, 200);
    assert_eq!(nas.post_account(&b.public_key(), &b_jwt).status, 200);
    let text = nas.get("/metrics").text();
    assert_eq!(
        sample(
            &text,
            &format!("nas_http_requests_total{{{route},status=\"200\"}}")
        ),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nas_post_outcomes_total{outcome=\"stored\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "nas_post_outcomes_total{outcome=\"unchanged\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "nas_store_jwts"), Some(2.0), "{text}");
    assert!(
        sample(
            &text,
            "nas_http_requests_total{route=\"/metrics\",status=\"200\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
}
