//! `GET /jwt/v1/help`: a short description of the API.

use axum::response::Response;

use super::ok_body;

/// The help text served on `/jwt/v1/help`.
pub const HELP_TEXT: &str = "\
# NATS Account Server JWT API

GET /jwt/v1/accounts
GET /jwt/v1/accounts/
    Resolver check used by nats-server at startup: 200 with an empty body.

GET /jwt/v1/accounts/<account public key>
    The stored account JWT (Content-Type: application/jwt, ETag: a hash of the stored bytes).
    404 when no JWT is stored for the key, 400 when the key is not an account public key.
    Query parameters:
      text=true    return the JWT as text/plain
      decode=true  return one JSON document: header, claims, their dates, decoded
                   embedded tokens and the signature
      check=true   return 404 if the JWT has expired
      notify=true  send the JWT to nats-servers again ($SYS.ACCOUNT.<key>.CLAIMS.UPDATE)
    If-None-Match with the ETag returns 304.

POST /jwt/v1/accounts/<account public key>
    Store a new account JWT (the body; this is what `nsc push` sends).
    The JWT must be for the key in the URL, signed by the operator or one of its signing keys,
    not expired and free of blocking validation errors.
    200 with an empty body when stored; 400 with a one-line reason otherwise; 409 when a newer
    JWT is stored or the account was deleted
    and the JWT is not newer than the deleted one.

DELETE /jwt/v1/accounts/<account public key>
    Delete accounts (store.allowdelete: true). The body is the operator-signed delete request
    `nsc push --prune` sends over NATS: a JWT with sub = iss = the operator or one of its
    signing keys and nats.accounts listing the accounts (the one in the URL among them). The
    accounts get 404 afterwards, and the request is published on $SYS.REQ.CLAIMS.DELETE.
    200 \"deleted N accounts\"; 400 with the reason; 403 when deletes are disabled.

GET /jwt/v1/operator
    The operator JWT (text=true and decode=true work as above). 404 when none is configured.

GET /jwt/v1/help
    This text.

GET /healthz
    200 while the server is running (liveness).

GET /readyz
GET /healthz?ready=true
    Readiness: 200 when the store is usable and, when NATS is configured, the NATS connection
    is up; 503 otherwise. The JSON body says which part is not, e.g.
    {\"ready\":false,\"store\":{\"ok\":true},\"nats\":{\"configured\":true,\"connected\":false,\"error\":\"...\"}}
";

pub(super) async fn help() -> Response {
    ok_body("text/plain", HELP_TEXT)
}
