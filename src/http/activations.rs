//! The activation routes: POST a token, GET it by hash id.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::accounts::serve_stored;
use super::{text_error, AppState, Flags, IfNoneMatch};
use crate::activations::ActivationError;
use crate::keys::ActivationId;

/// `POST /jwt/v1/activations`.
pub(super) async fn post_activation(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return text_error(rejection.status(), &rejection.body_text()),
    };
    match state.activations().submit(&body).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(ActivationError::Rejected(why)) => {
            tracing::error!("rejected activation JWT - {why}");
            text_error(StatusCode::BAD_REQUEST, &why)
        }
        Err(ActivationError::Quota(why)) => {
            tracing::error!("refused activation JWT - {why}");
            text_error(StatusCode::FORBIDDEN, &why)
        }
        Err(ActivationError::Refused(why)) => {
            let mut resp = text_error(StatusCode::METHOD_NOT_ALLOWED, &why);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            resp
        }
        Err(e) => {
            tracing::error!("{e}");
            text_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// `GET /jwt/v1/activations/<hash>` (the `=` padding may be sent as `%3D`).
pub(super) async fn get_activation(
    State(state): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    if_none_match: IfNoneMatch,
) -> Response {
    let flags = Flags::parse(query.as_deref());
    let id = match hash.ok().and_then(|Path(h)| ActivationId::parse(&h).ok()) {
        Some(id) => id,
        None => return text_error(StatusCode::BAD_REQUEST, "not a valid activation hash id"),
    };
    let activations = state.activations();
    let jwt = match activations.lookup(&id).await {
        Ok(Some(jwt)) => jwt,
        Ok(None) => return text_error(StatusCode::NOT_FOUND, "No Matching JWT"),
        Err(e) => {
            tracing::error!("activation {id}: {e}");
            return text_error(StatusCode::INTERNAL_SERVER_ERROR, "error loading JWT");
        }
    };
    serve_stored(
        jwt,
        &flags,
        &if_none_match,
        crate::keys::short_key(id.as_str()),
        |jwt| activations.notify_again(&id, jwt),
    )
}
