//! The HTTP API (axum): routes, shared response shapes and layers (CORS, body limit).
//! Handlers only translate between HTTP and the [`Accounts`] service; they hold no rules.

mod accounts;
mod activations;
mod body;
mod conns;
mod decode;
mod delete;
mod health;
mod help;
mod operator;
mod pack;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::accounts::Accounts;
use crate::activations::Activations;

pub use help::HELP_TEXT;

/// Where handlers get the services of the current configuration (whoever runs the server
/// swaps them on reload).
pub trait ServiceSource: Send + Sync + std::fmt::Debug {
    /// The account service now.
    fn accounts(&self) -> Arc<Accounts>;
    /// The activation service now.
    fn activations(&self) -> Arc<Activations>;
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The services of the current configuration.
    pub services: Arc<dyn ServiceSource>,
    /// Largest request body accepted, for the 413 message.
    pub max_body_bytes: usize,
}

impl AppState {
    /// The account service of the current configuration.
    pub(crate) fn accounts(&self) -> Arc<Accounts> {
        self.services.accounts()
    }

    /// The activation service of the current configuration.
    pub(crate) fn activations(&self) -> Arc<Activations> {
        self.services.activations()
    }
}

/// Request-level limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (413 above it).
    pub max_body_bytes: usize,
    /// Time a client has to send the whole request body, from the end of its headers (408
    /// after it); `None` = no limit.
    pub read_timeout: Option<Duration>,
    /// Time a request may take from its headers to its response (503 after it).
    pub write_timeout: Option<Duration>,
    /// Serve `/metrics` and record request metrics.
    pub metrics: bool,
}

/// The route nats-server's URL resolver fetches accounts on.
const ACCOUNT_ROUTE: &str = "/jwt/v1/accounts/{pubkey}";

/// The HTTP API as one service. nats-server's account fetch — `GET /jwt/v1/accounts/<key>`
/// with no query string and no `Origin` header — is answered directly; every other request
/// goes through the axum router and its layers. Both give the same reply, headers included
/// (the CORS layer's headers for a request without `Origin` are added here). Skipping the
/// router, extractors and layers saves about 1.5–2.5 µs per fetch, 10–15 % of its cost
/// (bench/run.sh).
#[derive(Clone)]
pub struct Api {
    state: AppState,
    router: Router,
    metrics: bool,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// Answers one request.
    pub async fn handle(self, request: axum::http::Request<hyper::body::Incoming>) -> Response {
        use tower::ServiceExt;
        if let Some(key) = plain_account_fetch(&request) {
            let started = std::time::Instant::now();
            let if_none_match = IfNoneMatch(request.headers().get(header::IF_NONE_MATCH).cloned());
            let mut response = accounts::get_account_plain(&self.state, key, &if_none_match).await;
            let headers = response.headers_mut();
            headers.insert(header::VARY, HeaderValue::from_static(CORS_VARY));
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(CORS_EXPOSE),
            );
            if self.metrics {
                crate::metrics::record_request(ACCOUNT_ROUTE.into(), &response, started);
            }
            return response;
        }
        match self.router.oneshot(request.map(Body::new)).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// `Vary` that the CORS layer adds to every reply.
const CORS_VARY: &str = "origin, access-control-request-headers";
/// Headers exposed to browsers (as the Go server).
const CORS_EXPOSE: &str = "authorization";

/// The account key of a plain account fetch (see [`Api`]), when `request` is one: a `GET`
/// without query or `Origin`, and a key segment that needs no percent-decoding.
fn plain_account_fetch<B>(request: &axum::http::Request<B>) -> Option<&str> {
    if request.method() != Method::GET
        || request.uri().query().is_some()
        || request.headers().contains_key(header::ORIGIN)
    {
        return None;
    }
    let key = request.uri().path().strip_prefix("/jwt/v1/accounts/")?;
    (!key.is_empty() && !key.contains(['/', '%'])).then_some(key)
}

/// Builds the API service: the router with every route, and the direct account fetch.
pub fn api(state: AppState, limits: &Limits) -> Api {
    Api {
        router: router(state.clone(), limits),
        state,
        metrics: limits.metrics,
    }
}

/// Builds the router with every route of the API.
fn router(state: AppState, limits: &Limits) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static(CORS_EXPOSE)]);
    // The write timeout bounds request handling; it matters for POSTs (fsync, signing
    // service); GETs answer from local files and skip the per-request timer.
    let write_limited = |route: MethodRouter<AppState>| match limits.write_timeout {
        Some(d) => route.layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            d,
        )),
        None => route,
    };
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/jwt/v1/help", get(help::help))
        .route("/jwt/v1/operator", get(operator::operator))
        .route("/jwt/v1/accounts", get(accounts::resolver_check))
        .route("/jwt/v1/accounts/", get(accounts::resolver_check))
        .route(
            ACCOUNT_ROUTE,
            get(accounts::get_account)
                .merge(write_limited(post(accounts::post_account)))
                .merge(write_limited(delete(delete::delete_account))),
        )
        .route(
            "/jwt/v1/activations",
            write_limited(post(activations::post_activation)),
        )
        .route(
            "/jwt/v1/activations/{hash}",
            get(activations::get_activation),
        )
        .route("/jwt/v1/pack", get(pack::pack));
    let router = if limits.metrics {
        router
            .route("/metrics", get(metrics_text))
            .route_layer(axum::middleware::from_fn(crate::metrics::track))
    } else {
        router
    };
    let router = router
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes));
    let router = router.layer(axum::middleware::from_fn_with_state(
        body::BodyLimits {
            max_bytes: limits.max_body_bytes,
            deadline: limits.read_timeout,
        },
        body::limit_body,
    ));
    router.layer(cors).with_state(state)
}

async fn metrics_text() -> Response {
    match crate::metrics::render() {
        Some(text) => ok_body("text/plain; version=0.0.4", text),
        None => text_error(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}

async fn not_found() -> Response {
    text_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// A plain-text error reply: the status and one line of explanation.
pub(crate) fn text_error(status: StatusCode, message: &str) -> Response {
    let mut body = message.replace(['\r', '\n'], " ");
    body.push('\n');
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A 200 reply with a body of the given content type.
pub(crate) fn ok_body(content_type: &'static str, body: impl Into<Body>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

/// The `If-None-Match` request header, extracted without cloning the whole header map.
#[derive(Debug, Default)]
pub(crate) struct IfNoneMatch(pub Option<HeaderValue>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(IfNoneMatch(
            parts.headers.get(header::IF_NONE_MATCH).cloned(),
        ))
    }
}

/// The boolean query flags of the GET routes. As in the Go server, a flag is on when its
/// first value is `true` in any letter case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub text: bool,
    pub decode: bool,
    pub check: bool,
    pub notify: bool,
    /// `ready=true` on `/healthz`: answer with readiness.
    pub ready: bool,
    /// The value of `jti` (a lookup mode the Go v1.0 server refuses with 501).
    pub jti: Option<String>,
    /// The value of `max` (pack size).
    pub max: Option<String>,
}

/// Query pairs read; the rest of a longer query is ignored (a client sends a handful, and
/// this bounds the work a hostile query string can cause).
pub(crate) const MAX_QUERY_PAIRS: usize = 32;

impl Flags {
    /// Reads the flags from a query string, in one pass over at most [`MAX_QUERY_PAIRS`] pairs.
    pub fn parse(query: Option<&str>) -> Self {
        let mut flags = Flags::default();
        // Which of text, decode, check, notify, jti, max, ready was seen (the first value wins).
        let mut seen = [false; 7];
        for pair in query.unwrap_or("").split('&').take(MAX_QUERY_PAIRS) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "text" => 0,
                "decode" => 1,
                "check" => 2,
                "notify" => 3,
                "jti" => 4,
                "max" => 5,
                "ready" => 6,
                _ => continue,
            };
            if std::mem::replace(&mut seen[slot], true) {
                continue;
            }
            let on = value.eq_ignore_ascii_case("true");
            match slot {
                0 => flags.text = on,
                1 => flags.decode = on,
                2 => flags.check = on,
                3 => flags.notify = on,
                4 => flags.jti = (!value.is_empty()).then(|| value.to_string()),
                5 => flags.max = Some(value.to_string()),
                _ => flags.ready = on,
            }
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_use_the_first_value_and_any_case() {
        let f = Flags::parse(Some(
            "text=TRUE&decode=1&check=true&check=false&notify=True",
        ));
        assert!(f.text && !f.decode && f.check && f.notify && !f.ready);
        assert!(Flags::parse(Some("ready=true&ready=false")).ready);
        assert_eq!(Flags::parse(None), Flags::default());
        assert_eq!(Flags::parse(Some("jti=abc")).jti.as_deref(), Some("abc"));
        assert_eq!(Flags::parse(Some("jti=")).jti, None);
    }

    #[test]
    fn only_the_first_pairs_of_a_long_query_are_read() {
        let filler = |n: usize| (0..n).map(|i| format!("x{i}=1")).collect::<Vec<_>>();
        let mut pairs = filler(MAX_QUERY_PAIRS - 1);
        pairs.push("text=true".into());
        assert!(Flags::parse(Some(&pairs.join("&"))).text);
        let mut pairs = filler(MAX_QUERY_PAIRS);
        pairs.push("text=true".into());
        assert!(!Flags::parse(Some(&pairs.join("&"))).text);
        // 16,000 distinct names (the quadratic case before) read as the first 32.
        let long = filler(16_000).join("&") + "&decode=true";
        assert_eq!(Flags::parse(Some(&long)), Flags::default());
    }
}
