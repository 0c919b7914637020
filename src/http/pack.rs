//! `GET /jwt/v1/pack?max=N`: `key|jwt` lines of stored, unexpired account JWTs, at most
//! `maxreplicationpack` (the default when `max` is absent).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{ok_body, text_error, AppState, Flags};

pub(super) async fn pack(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let accounts = state.accounts();
    let limit = accounts.pack_limit();
    let flags = Flags::parse(query.as_deref());
    let max = match flags.max.as_deref() {
        None | Some("") => limit,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n <= limit => n,
            Ok(_) => {
                return text_error(
                    StatusCode::BAD_REQUEST,
                    &format!("bad max parameter {text:?}, no more than {limit} are allowed"),
                )
            }
            Err(_) => {
                return text_error(
                    StatusCode::BAD_REQUEST,
                    &format!("bad max parameter {text:?}"),
                )
            }
        },
    };
    match accounts.pack(max).await {
        Ok(body) => ok_body("text/plain", body),
        Err(e) => {
            tracing::error!("{e}");
            text_error(StatusCode::INTERNAL_SERVER_ERROR, "error packing JWTs")
        }
    }
}
