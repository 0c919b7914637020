//! Prometheus metrics (`GET /metrics`, enabled with `http { metrics: true }`): requests by route
//! and status with a latency histogram, POST outcomes, notifications, the NATS connection state
//! and the number of stored JWTs. Recording goes through the `metrics` facade; without an
//! installed recorder every call is a no-op.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Requests served, by route and status.
pub const HTTP_REQUESTS: &str = "nas_http_requests_total";
/// Request latency in seconds, by route.
pub const HTTP_DURATION: &str = "nas_http_request_duration_seconds";
/// POST results, by outcome.
pub const POST_OUTCOMES: &str = "nas_post_outcomes_total";
/// Notifications sent or failed.
pub const NOTIFICATIONS: &str = "nas_notifications_total";
/// Notifications waiting for the NATS connection.
pub const NOTIFICATIONS_PENDING: &str = "nas_notifications_pending";
/// 1 while connected to NATS, 0 otherwise.
pub const NATS_CONNECTED: &str = "nas_nats_connected";
/// Account JWTs in the store.
pub const STORE_JWTS: &str = "nas_store_jwts";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse it).
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5,
        ])
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The current metrics in the Prometheus text format, when installed.
pub fn render() -> Option<String> {
    HANDLE.get().map(|h| {
        h.run_upkeep();
        h.render()
    })
}

/// Records one POST outcome.
pub fn post_outcome(outcome: &'static str) {
    metrics::counter!(POST_OUTCOMES, "outcome" => outcome).increment(1);
}

/// Middleware that counts requests by route and status and times them.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    record_request(route.into(), &response, started);
    response
}

/// Counts one request by route and status and records how long it took since `started`.
pub fn record_request(route: metrics::SharedString, response: &Response, started: Instant) {
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
}
