//! The JSON field names of the Go jwt library's claim structs (v2.3.0 and v2.8 together), by
//! position in a token. [`super::json::check_keys`] uses them to refuse keys that Go would match
//! to one of these fields only by ignoring case.

use super::json::Shape::{self, Each, Leaf, Struct};
use super::ClaimKind;

/// The JWT header.
pub(crate) const HEADER: Shape = Struct(&[("typ", Leaf), ("alg", Leaf)]);

const GENERIC: [(&str, Shape); 3] = [("tags", Leaf), ("type", Leaf), ("version", Leaf)];

/// `{allow, deny}` lists of a permission.
const PERMISSION: Shape = Struct(&[("allow", Leaf), ("deny", Leaf)]);

/// `default_permissions` and the permissions of a user template.
const PERMISSIONS: Shape = Struct(&[
    ("pub", PERMISSION),
    ("sub", PERMISSION),
    ("resp", Struct(&[("max", Leaf), ("ttl", Leaf)])),
]);

/// The template of a scoped signing key (Go `UserPermissionLimits`).
const USER_TEMPLATE: Shape = Struct(&[
    ("pub", PERMISSION),
    ("sub", PERMISSION),
    ("resp", Struct(&[("max", Leaf), ("ttl", Leaf)])),
    ("src", Leaf),
    ("times", Each(&Struct(&[("start", Leaf), ("end", Leaf)]))),
    ("times_location", Leaf),
    ("subs", Leaf),
    ("data", Leaf),
    ("payload", Leaf),
    ("bearer_token", Leaf),
    ("allowed_connection_types", Leaf),
]);

const SIGNING_KEY: Shape = Struct(&[
    ("kind", Leaf),
    ("key", Leaf),
    ("role", Leaf),
    ("template", USER_TEMPLATE),
    ("description", Leaf),
]);

const JETSTREAM_LIMITS: [(&str, Shape); 8] = [
    ("mem_storage", Leaf),
    ("disk_storage", Leaf),
    ("streams", Leaf),
    ("consumer", Leaf),
    ("max_ack_pending", Leaf),
    ("mem_max_stream_bytes", Leaf),
    ("disk_max_stream_bytes", Leaf),
    ("max_bytes_required", Leaf),
];

const LIMITS: Shape = Struct(&[
    ("subs", Leaf),
    ("data", Leaf),
    ("payload", Leaf),
    ("imports", Leaf),
    ("exports", Leaf),
    ("wildcards", Leaf),
    ("disallow_bearer", Leaf),
    ("conn", Leaf),
    ("leaf", Leaf),
    JETSTREAM_LIMITS[0],
    JETSTREAM_LIMITS[1],
    JETSTREAM_LIMITS[2],
    JETSTREAM_LIMITS[3],
    JETSTREAM_LIMITS[4],
    JETSTREAM_LIMITS[5],
    JETSTREAM_LIMITS[6],
    JETSTREAM_LIMITS[7],
    ("tiered_limits", Each(&Struct(&JETSTREAM_LIMITS))),
]);

const IMPORT: Shape = Struct(&[
    ("name", Leaf),
    ("subject", Leaf),
    ("account", Leaf),
    ("token", Leaf),
    ("to", Leaf),
    ("local_subject", Leaf),
    ("type", Leaf),
    ("share", Leaf),
    ("allow_trace", Leaf),
]);

const EXPORT: Shape = Struct(&[
    ("name", Leaf),
    ("subject", Leaf),
    ("type", Leaf),
    ("token_req", Leaf),
    ("revocations", Leaf),
    ("response_type", Leaf),
    ("response_threshold", Leaf),
    (
        "service_latency",
        Struct(&[("sampling", Leaf), ("results", Leaf)]),
    ),
    ("account_token_position", Leaf),
    ("advertise", Leaf),
    ("allow_trace", Leaf),
    ("description", Leaf),
    ("info_url", Leaf),
]);

const ACCOUNT_NATS: Shape = Struct(&[
    ("imports", Each(&IMPORT)),
    ("exports", Each(&EXPORT)),
    ("limits", LIMITS),
    ("signing_keys", Each(&SIGNING_KEY)),
    ("revocations", Leaf),
    ("default_permissions", PERMISSIONS),
    (
        "mappings",
        Each(&Each(&Struct(&[
            ("subject", Leaf),
            ("weight", Leaf),
            ("cluster", Leaf),
        ]))),
    ),
    (
        "authorization",
        Struct(&[
            ("auth_users", Leaf),
            ("allowed_accounts", Leaf),
            ("xkey", Leaf),
        ]),
    ),
    ("trace", Struct(&[("dest", Leaf), ("sampling", Leaf)])),
    ("cluster_traffic", Leaf),
    ("description", Leaf),
    ("info_url", Leaf),
    GENERIC[0],
    GENERIC[1],
    GENERIC[2],
]);

const OPERATOR_NATS: Shape = Struct(&[
    ("signing_keys", Leaf),
    ("account_server_url", Leaf),
    ("operator_service_urls", Leaf),
    ("system_account", Leaf),
    ("assert_server_version", Leaf),
    ("strict_signing_key_usage", Leaf),
    GENERIC[0],
    GENERIC[1],
    GENERIC[2],
]);

const ACTIVATION_NATS: Shape = Struct(&[
    ("subject", Leaf),
    ("kind", Leaf),
    ("issuer_account", Leaf),
    GENERIC[0],
    GENERIC[1],
    GENERIC[2],
]);

/// `nats` of any other claim type: only the generic fields are checked.
const GENERIC_NATS: Shape = Struct(&GENERIC);

/// The standard claims plus `nats` of the given shape; v1's top-level `type`, `tags` and
/// `issuer_account` are fields too (Go reads `type` to tell v1 from v2).
macro_rules! payload {
    ($nats:expr) => {
        Struct(&[
            ("aud", Leaf),
            ("exp", Leaf),
            ("jti", Leaf),
            ("iat", Leaf),
            ("iss", Leaf),
            ("name", Leaf),
            ("nbf", Leaf),
            ("sub", Leaf),
            ("nats", $nats),
            ("type", Leaf),
            ("tags", Leaf),
            ("issuer_account", Leaf),
        ])
    };
}

/// The shape of a whole payload of `kind`.
pub(crate) fn payload(kind: &ClaimKind) -> Shape {
    match kind {
        ClaimKind::Account => payload!(ACCOUNT_NATS),
        ClaimKind::Operator => payload!(OPERATOR_NATS),
        ClaimKind::Activation => payload!(ACTIVATION_NATS),
        _ => payload!(GENERIC_NATS),
    }
}
