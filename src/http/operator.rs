//! `GET /jwt/v1/operator`: the operator JWT file, verbatim.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{decode, ok_body, text_error, AppState, Flags};

pub(super) async fn operator(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let accounts = state.accounts();
    let Some(op) = accounts.trust().operator() else {
        return text_error(StatusCode::NOT_FOUND, "no operator is configured");
    };
    let flags = Flags::parse(query.as_deref());
    if flags.text {
        return ok_body("text/plain", op.raw.clone());
    }
    if flags.decode {
        return decode::response(&op.raw);
    }
    ok_body("application/jwt", op.raw.clone())
}
