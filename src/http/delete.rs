//! `DELETE /jwt/v1/accounts/<pubkey>`: an operator-signed delete request (the generic JWT
//! `nsc push --prune` sends over NATS) as the body. The accounts it names are deleted here and
//! the request is published on `$SYS.REQ.CLAIMS.DELETE` so full-resolver servers delete too.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::accounts::key_and_body;
use super::{text_error, AppState};
use crate::accounts::resolver::DeleteError;

/// Deletes the accounts the signed request in the body names; the URL's account must be one
/// of them. 200 with `deleted N accounts`, 400 with the reason, 403 when deletes are off.
pub(super) async fn delete_account(
    State(state): State<AppState>,
    pubkey: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (key, body) = match key_and_body(&state, pubkey, body) {
        Ok(parts) => parts,
        Err(resp) => return *resp,
    };
    let accounts = state.accounts();
    let request = match accounts.check_delete(&body) {
        Ok(r) => r,
        Err(failure) => {
            let status = match &failure.error {
                DeleteError::Disabled => StatusCode::FORBIDDEN,
                DeleteError::Refused(_) => StatusCode::METHOD_NOT_ALLOWED,
                e if e.is_bad_request() => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::error!("{} - delete refused - {failure}", key.short());
            return text_error(status, &failure.to_string());
        }
    };
    if !request.accounts.contains(&key) {
        return text_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "the delete request does not name {key} (its nats.accounts lists {} other account(s))",
                request.accounts.len()
            ),
        );
    }
    let deleted = accounts.delete(&request).await;
    // Published whatever happened here: the full-resolver servers delete on their own.
    accounts.notifier().delete_requested(request.raw);
    match deleted {
        Ok(n) => (StatusCode::OK, format!("deleted {n} accounts\n")).into_response(),
        Err(failure) => {
            tracing::error!("{} - {failure}", key.short());
            text_error(StatusCode::INTERNAL_SERVER_ERROR, &failure.to_string())
        }
    }
}
