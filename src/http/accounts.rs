//! The account routes: the resolver check, GET of one account JWT (what nats-server's URL
//! resolver calls), and POST of a new one (what `nsc push` sends).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{decode, ok_body, text_error, AppState, Flags, IfNoneMatch};
use crate::accounts::{unix_now, LookupError, Source, StoredJwt, SubmitError};
use crate::keys::AccountKey;
use crate::store::StoreError;

/// Seconds a cache may keep serving a stale JWT while it revalidates or when we are down.
const STALE_SECONDS: i64 = 3600;

/// `GET /jwt/v1/accounts[/]`: nats-server's startup check that the resolver is up.
pub(super) async fn resolver_check() -> Response {
    tracing::trace!("server sent resolver check");
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            (header::EXPIRES, "0"),
        ],
    )
        .into_response()
}

/// The account key of the URL; any problem (bad percent-encoding, not UTF-8, not an account key)
/// is a 400 before anything touches the store.
pub(super) fn parse_key(
    path: Result<Path<String>, PathRejection>,
) -> Result<AccountKey, Box<Response>> {
    let Path(text) = path.map_err(|_| {
        Box::new(text_error(
            StatusCode::BAD_REQUEST,
            "the key in the URL is not a valid account public key",
        ))
    })?;
    parse_key_text(&text)
}

/// [`parse_key`] for key text that needs no percent-decoding.
fn parse_key_text(text: &str) -> Result<AccountKey, Box<Response>> {
    AccountKey::parse(text)
        .map_err(|e| Box::new(text_error(StatusCode::BAD_REQUEST, &e.to_string())))
}

/// Whether reading a body failed because the client was too slow.
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<super::body::BodyTimedOut>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// [`cache_control`] of a JWT that never expires.
const NEVER_EXPIRES_CACHE_CONTROL: &str =
    "max-age=0, stale-while-revalidate=3600, stale-if-error=3600";

/// The Cache-Control value: until the JWT expires, and `max-age=0` (always revalidate) for a JWT
/// that never expires, where the Go server sent a negative max-age. `now` is only asked for
/// (and the text only formatted) when the JWT expires: this is on the GET path.
pub(crate) fn cache_control(exp: i64, now: impl FnOnce() -> i64) -> HeaderValue {
    if exp <= 0 {
        return HeaderValue::from_static(NEVER_EXPIRES_CACHE_CONTROL);
    }
    let max_age = (exp - now()).max(0);
    let text = format!(
        "max-age={max_age}, stale-while-revalidate={STALE_SECONDS}, stale-if-error={STALE_SECONDS}"
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(NEVER_EXPIRES_CACHE_CONTROL))
}

/// RFC 9110 weak comparison of an `If-None-Match` header against our ETag (`*` matches).
pub(crate) fn if_none_match_hits(header: &IfNoneMatch, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    header
        .0
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == bare)
}

/// `GET /jwt/v1/accounts/<pubkey>`.
pub(super) async fn get_account(
    State(state): State<AppState>,
    pubkey: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    if_none_match: IfNoneMatch,
) -> Response {
    let flags = Flags::parse(query.as_deref());
    if flags.jti.is_some() {
        return text_error(
            StatusCode::NOT_IMPLEMENTED,
            "lookup by jti is no longer supported",
        );
    }
    let key = match parse_key(pubkey) {
        Ok(k) => k,
        Err(resp) => return *resp,
    };
    respond_with_account(&state, key, &flags, &if_none_match).await
}

/// `GET /jwt/v1/accounts/<pubkey>` without a query string, for a key segment that needs no
/// percent-decoding: what nats-server sends. [`super::Api`] answers it without the router;
/// the reply is the one [`get_account`] gives.
pub(super) async fn get_account_plain(
    state: &AppState,
    key_text: &str,
    if_none_match: &IfNoneMatch,
) -> Response {
    match parse_key_text(key_text) {
        Ok(key) => respond_with_account(state, key, &Flags::default(), if_none_match).await,
        Err(resp) => *resp,
    }
}

/// Looks `key` up and serves its JWT with `flags`.
async fn respond_with_account(
    state: &AppState,
    key: AccountKey,
    flags: &Flags,
    if_none_match: &IfNoneMatch,
) -> Response {
    tracing::trace!("request for JWT for - {}", key.short());
    let (jwt, source) = match state.accounts().lookup(&key).await {
        Ok(Some(found)) => found,
        Ok(None) => return text_error(StatusCode::NOT_FOUND, "no matching account JWT"),
        Err(e @ LookupError::Store(StoreError::Unavailable(_))) => {
            tracing::error!("{} - {e}", key.short());
            return text_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
        Err(e) => {
            tracing::error!("{} - {e}", key.short());
            return text_error(StatusCode::INTERNAL_SERVER_ERROR, "error loading JWT");
        }
    };
    if source == Source::SystemAccountFile {
        tracing::trace!("returning system JWT from configuration");
    }
    serve_stored(jwt, flags, if_none_match, key.short(), |jwt| {
        state.accounts().notify_again(&key, jwt.bytes.clone());
    })
}

/// Serves a stored JWT with the query flags: `text`, `decode`, `check` (404 when expired), the
/// ETag / If-None-Match (304) dance, `notify` (runs `notify` with the JWT), and Cache-Control.
pub(crate) fn serve_stored(
    jwt: StoredJwt,
    flags: &Flags,
    if_none_match: &IfNoneMatch,
    label: &str,
    notify: impl FnOnce(&StoredJwt),
) -> Response {
    if flags.text {
        return ok_body("text/plain", jwt.bytes);
    }
    if flags.decode {
        return decode::response(&jwt.bytes);
    }
    let Some(tag) = jwt.etag.as_deref() else {
        tracing::error!("{label} - stored JWT cannot be decoded");
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error loading JWT: the stored JWT cannot be decoded",
        );
    };
    if flags.check && jwt.exp > 0 && jwt.exp < unix_now() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let etag = format!("\"{tag}\"");
    let etag_value = HeaderValue::from_str(&etag).ok();
    if if_none_match_hits(if_none_match, &etag) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Some(v) = etag_value {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return resp;
    }
    if flags.notify {
        notify(&jwt);
    }
    tracing::trace!("returning JWT for - {label}");
    let mut resp = ok_body("application/jwt", jwt.bytes);
    let h = resp.headers_mut();
    if let Some(v) = etag_value {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, cache_control(jwt.exp, unix_now));
    resp
}

/// `POST /jwt/v1/accounts/<pubkey>`: validate, store, reply 200 with an empty body.
pub(super) async fn post_account(
    State(state): State<AppState>,
    pubkey: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (key, body) = match key_and_body(&state, pubkey, body) {
        Ok(parts) => parts,
        Err(resp) => return *resp,
    };
    match state.accounts().submit(&key, &body).await {
        Ok(done) => {
            crate::metrics::post_outcome(if done.changed { "stored" } else { "unchanged" });
            tracing::info!(
                "updated JWT for account - {} - {}{}",
                key.short(),
                done.token.claims.jti,
                if done.changed { "" } else { " (unchanged)" }
            );
            StatusCode::OK.into_response()
        }
        Err(SubmitError::Rejected(why)) => {
            crate::metrics::post_outcome("rejected");
            tracing::error!("{} - rejected JWT - {why}", key.short());
            text_error(StatusCode::BAD_REQUEST, &why.to_string())
        }
        Err(e @ SubmitError::Conflict(_)) => {
            crate::metrics::post_outcome("older");
            tracing::error!("{} - rejected JWT - {e}", key.short());
            text_error(StatusCode::CONFLICT, &e.to_string())
        }
        Err(SubmitError::Refused(why)) => {
            crate::metrics::post_outcome("refused");
            let mut resp = text_error(StatusCode::METHOD_NOT_ALLOWED, &why);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            resp
        }
        Err(SubmitError::Accepted(text)) => {
            crate::metrics::post_outcome("accepted_for_signing");
            tracing::info!(
                "{} - JWT accepted by the signing service, not stored yet",
                key.short()
            );
            (
                StatusCode::ACCEPTED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                text,
            )
                .into_response()
        }
        Err(SubmitError::Signing(e)) => {
            crate::metrics::post_outcome("signing_failed");
            use crate::notify::RequestError;
            let status = match e {
                RequestError::Unavailable | RequestError::NoResponders(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                RequestError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
                RequestError::Other(_) => StatusCode::BAD_GATEWAY,
            };
            let message = format!("Failure during signature request: signing service {e}");
            tracing::error!("{} - error when signing account - {e}", key.short());
            text_error(status, &message)
        }
        Err(e @ SubmitError::Store(StoreError::Unavailable(_))) => {
            crate::metrics::post_outcome("unavailable");
            tracing::error!("{} - {e}", key.short());
            text_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(e) => {
            crate::metrics::post_outcome("error");
            tracing::error!("{} - {e}", key.short());
            text_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// The account key of the URL and the request body of a write, or the error reply.
pub(super) fn key_and_body(
    state: &AppState,
    pubkey: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(AccountKey, Bytes), Box<Response>> {
    let key = parse_key(pubkey)?;
    let body = read_body(state, &key, body)?;
    Ok((key, body))
}

/// The request body, or the error reply when it could not be read (too large, too slow).
fn read_body(
    state: &AppState,
    key: &AccountKey,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    body.map_err(|rejection| {
        let mut status = rejection.status();
        if timed_out(&rejection) {
            status = StatusCode::REQUEST_TIMEOUT;
        }
        let message = if status == StatusCode::REQUEST_TIMEOUT {
            super::body::BodyTimedOut.to_string()
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            super::body::too_large(state.max_body_bytes)
        } else {
            format!("cannot read the request body: {}", rejection.body_text())
        };
        tracing::error!("{} - {message}", key.short());
        Box::new(text_error(status, &message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_never_negative() {
        let at_1000 = |exp| cache_control(exp, || 1000).to_str().unwrap().to_string();
        assert_eq!(at_1000(0), NEVER_EXPIRES_CACHE_CONTROL);
        assert_eq!(
            NEVER_EXPIRES_CACHE_CONTROL,
            "max-age=0, stale-while-revalidate=3600, stale-if-error=3600"
        );
        assert!(at_1000(1100).starts_with("max-age=100,"));
        assert!(at_1000(900).starts_with("max-age=0,"));
    }

    #[test]
    fn if_none_match_forms() {
        let h = |v: &str| IfNoneMatch(Some(HeaderValue::from_str(v).unwrap()));
        assert!(if_none_match_hits(&h("\"J\""), "\"J\""));
        assert!(if_none_match_hits(&h("W/\"J\""), "\"J\""));
        assert!(if_none_match_hits(&h("\"X\", \"J\""), "\"J\""));
        assert!(if_none_match_hits(&h("*"), "\"J\""));
        assert!(!if_none_match_hits(&h("\"JJ\""), "\"J\""));
        assert!(!if_none_match_hits(&IfNoneMatch(None), "\"J\""));
    }
}
