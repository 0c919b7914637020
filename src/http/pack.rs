//! `GET /jwt/v1/pack?max=N`: `key|jwt` lines of stored, unexpired account JWTs, at most
//! `maxreplicationpack` (the default when `max` is absent), streamed as the store is walked
//! (chunked transfer encoding; a store failure midway cuts the response short).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;

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
    let mut chunks = accounts.pack_chunks(max);
    match chunks.recv().await {
        Some(Ok(first)) => {
            let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
                let chunk = chunks.recv().await?;
                if let Err(e) = &chunk {
                    tracing::error!("pack cut short: {e}");
                }
                Some((chunk, chunks))
            });
            let body = futures_util::stream::once(async { Ok(first) }).chain(rest);
            ok_body("text/plain", Body::from_stream(body))
        }
        Some(Err(e)) => {
            tracing::error!("{e}");
            text_error(StatusCode::INTERNAL_SERVER_ERROR, "error packing JWTs")
        }
        None => text_error(StatusCode::INTERNAL_SERVER_ERROR, "error packing JWTs"),
    }
}
