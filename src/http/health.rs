//! `GET /healthz` (liveness: 200 while the process serves) and readiness on `GET /readyz` and
//! `GET /healthz?ready=true` (200 or 503 with a JSON report, see [`crate::health`]).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{AppState, Flags};
use crate::health::{readiness, Readiness};

/// `/healthz`: liveness, or readiness with `?ready=true`.
pub(super) async fn healthz(state: State<AppState>, RawQuery(query): RawQuery) -> Response {
    if Flags::parse(query.as_deref()).ready {
        readyz(state).await
    } else {
        StatusCode::OK.into_response()
    }
}

/// `/readyz`: 200 when ready, 503 otherwise; the body says what is and is not fine.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    respond(&readiness(&state.accounts()).await)
}

fn respond(report: &Readiness) -> Response {
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::to_vec(report).unwrap_or_default();
    body.push(b'\n');
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
