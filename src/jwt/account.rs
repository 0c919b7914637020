//! The `nats` part of an account JWT with the Go jwt library's field types (v2.3.0 and v2.8
//! together), so that a value Go cannot decode (a string for a number, `1.5` for an integer,
//! 300 for a `uint8` weight, an unknown export type) is refused here as it is there. Absent and
//! `null` fields are Go's zero values. Keys are matched exactly: tokens with keys Go would match
//! only by ignoring case were refused earlier (`json::check_keys`).

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{ClaimKind, JwtError, Token};

/// `Option<T>` fields read as Go reads them: absent or `null` is the zero value.
fn zero<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go `ExportType`: only `"stream"` and `"service"` decode (`null` and `""` do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Absent: decodes, refused by validation.
    #[default]
    Unknown,
    /// `"stream"`
    Stream,
    /// `"service"`
    Service,
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref() {
            Some("stream") => Ok(Kind::Stream),
            Some("service") => Ok(Kind::Service),
            other => Err(D::Error::custom(format!(
                "unknown export type {:?}",
                other.unwrap_or_default()
            ))),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Unknown => "unknown",
            Kind::Stream => "stream",
            Kind::Service => "service",
        })
    }
}

/// Go `SamplingRate`: a number, or `"headers"` in any case (0, as `null` is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sampling(pub i64);

impl<'de> Deserialize<'de> for Sampling {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None => Ok(Sampling(0)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("headers") => Ok(Sampling(0)),
            Some(v) => i64::deserialize(v).map(Sampling).map_err(D::Error::custom),
        }
    }
}

/// `{allow, deny}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Permission {
    /// Allowed subjects.
    #[serde(default, deserialize_with = "zero")]
    pub allow: Vec<String>,
    /// Denied subjects.
    #[serde(default, deserialize_with = "zero")]
    pub deny: Vec<String>,
}

/// `resp`: response permission.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ResponsePermission {
    /// Most responses.
    #[serde(default, deserialize_with = "zero")]
    pub max: i64,
    /// Time to live in nanoseconds.
    #[serde(default, deserialize_with = "zero")]
    pub ttl: i64,
}

/// Go `Permissions`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Permissions {
    /// Publish permission.
    #[serde(default, rename = "pub", deserialize_with = "zero")]
    pub publish: Permission,
    /// Subscribe permission.
    #[serde(default, rename = "sub", deserialize_with = "zero")]
    pub subscribe: Permission,
    /// Response permission (absent: none).
    #[serde(default)]
    pub resp: Option<ResponsePermission>,
}

/// `{start, end}` of a user's connect times.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct TimeRange {
    /// `HH:MM:SS`
    #[serde(default, deserialize_with = "zero")]
    pub start: String,
    /// `HH:MM:SS`
    #[serde(default, deserialize_with = "zero")]
    pub end: String,
}

/// Go `CIDRList`: a list, or one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CidrList(pub Vec<String>);

impl<'de> Deserialize<'de> for CidrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None => Ok(CidrList::default()),
            Some(Value::String(s)) => Ok(CidrList(
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
            Some(v) => Vec::<String>::deserialize(v)
                .map(CidrList)
                .map_err(D::Error::custom),
        }
    }
}

/// The template of a scoped signing key (Go `UserPermissionLimits`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct UserTemplate {
    /// Permissions.
    #[serde(flatten)]
    pub permissions: Permissions,
    /// Allowed source networks.
    #[serde(default)]
    pub src: CidrList,
    /// Allowed connect times.
    #[serde(default, deserialize_with = "zero")]
    pub times: Vec<TimeRange>,
    /// Time zone of `times`.
    #[serde(default, deserialize_with = "zero")]
    pub times_location: String,
    /// Most subscriptions.
    #[serde(default, deserialize_with = "zero")]
    pub subs: i64,
    /// Most data.
    #[serde(default, deserialize_with = "zero")]
    pub data: i64,
    /// Largest payload.
    #[serde(default, deserialize_with = "zero")]
    pub payload: i64,
    /// Bearer tokens allowed.
    #[serde(default, deserialize_with = "zero")]
    pub bearer_token: bool,
    /// Allowed connection types.
    #[serde(default, deserialize_with = "zero")]
    pub allowed_connection_types: Vec<String>,
}

/// A scoped signing key (`kind: user_scope`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct UserScope {
    /// Always `user_scope` here.
    #[serde(default, deserialize_with = "zero")]
    pub kind: String,
    /// The signing key.
    #[serde(default, deserialize_with = "zero")]
    pub key: String,
    /// Role name.
    #[serde(default, deserialize_with = "zero")]
    pub role: String,
    /// What users it signs may do.
    #[serde(default, deserialize_with = "zero")]
    pub template: UserTemplate,
    /// Description.
    #[serde(default, deserialize_with = "zero")]
    pub description: String,
}

/// JetStream limits (flat in `limits`, or one tier of `tiered_limits`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct JetStreamLimits {
    /// Memory storage bytes.
    #[serde(default, deserialize_with = "zero")]
    pub mem_storage: i64,
    /// Disk storage bytes.
    #[serde(default, deserialize_with = "zero")]
    pub disk_storage: i64,
    /// Streams.
    #[serde(default, deserialize_with = "zero")]
    pub streams: i64,
    /// Consumers.
    #[serde(default, deserialize_with = "zero")]
    pub consumer: i64,
    /// Most unacknowledged messages.
    #[serde(default, deserialize_with = "zero")]
    pub max_ack_pending: i64,
    /// Largest memory stream.
    #[serde(default, deserialize_with = "zero")]
    pub mem_max_stream_bytes: i64,
    /// Largest disk stream.
    #[serde(default, deserialize_with = "zero")]
    pub disk_max_stream_bytes: i64,
    /// Streams must set a maximum size.
    #[serde(default, deserialize_with = "zero")]
    pub max_bytes_required: bool,
}

impl JetStreamLimits {
    /// `true` when any limit is set (Go `IsJSEnabled` looks at storage only; this is "present").
    pub fn is_set(&self) -> bool {
        *self != JetStreamLimits::default()
    }
}

/// Go `OperatorLimits`: NATS, account and JetStream limits. Absent means 0, as in Go.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Limits {
    /// Most subscriptions.
    #[serde(default, deserialize_with = "zero")]
    pub subs: i64,
    /// Most data.
    #[serde(default, deserialize_with = "zero")]
    pub data: i64,
    /// Largest payload.
    #[serde(default, deserialize_with = "zero")]
    pub payload: i64,
    /// Most imports (-1: unlimited).
    #[serde(default, deserialize_with = "zero")]
    pub imports: i64,
    /// Most exports (-1: unlimited).
    #[serde(default, deserialize_with = "zero")]
    pub exports: i64,
    /// Wildcard exports allowed.
    #[serde(default, deserialize_with = "zero")]
    pub wildcards: bool,
    /// Bearer tokens refused.
    #[serde(default, deserialize_with = "zero")]
    pub disallow_bearer: bool,
    /// Most connections.
    #[serde(default, deserialize_with = "zero")]
    pub conn: i64,
    /// Most leaf node connections.
    #[serde(default, deserialize_with = "zero")]
    pub leaf: i64,
    /// Flat JetStream limits.
    #[serde(flatten)]
    pub jetstream: JetStreamLimits,
    /// Per-tier JetStream limits.
    #[serde(default, deserialize_with = "zero")]
    pub tiered_limits: BTreeMap<String, JetStreamLimits>,
}

/// One entry of `imports`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Import {
    /// Name.
    #[serde(default, deserialize_with = "zero")]
    pub name: String,
    /// Imported subject.
    #[serde(default, deserialize_with = "zero")]
    pub subject: String,
    /// The exporting account.
    #[serde(default, deserialize_with = "zero")]
    pub account: String,
    /// Activation token.
    #[serde(default, deserialize_with = "zero")]
    pub token: String,
    /// Deprecated local subject.
    #[serde(default, deserialize_with = "zero")]
    pub to: String,
    /// Local subject.
    #[serde(default, deserialize_with = "zero")]
    pub local_subject: String,
    /// Stream or service.
    #[serde(default, rename = "type")]
    pub kind: Kind,
    /// Share latency information.
    #[serde(default, deserialize_with = "zero")]
    pub share: bool,
    /// Allow message tracing.
    #[serde(default, deserialize_with = "zero")]
    pub allow_trace: bool,
}

/// `service_latency` of an export.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Latency {
    /// 1..100, or "headers".
    #[serde(default)]
    pub sampling: Sampling,
    /// Subject the results go to.
    #[serde(default, deserialize_with = "zero")]
    pub results: String,
}

/// One entry of `exports`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Export {
    /// Name.
    #[serde(default, deserialize_with = "zero")]
    pub name: String,
    /// Exported subject.
    #[serde(default, deserialize_with = "zero")]
    pub subject: String,
    /// Stream or service.
    #[serde(default, rename = "type")]
    pub kind: Kind,
    /// Importers need an activation token.
    #[serde(default, deserialize_with = "zero")]
    pub token_req: bool,
    /// Revoked activations: account key (or `*`) → time.
    #[serde(default, deserialize_with = "zero")]
    pub revocations: BTreeMap<String, i64>,
    /// Singleton, Stream or Chunked.
    #[serde(default, deserialize_with = "zero")]
    pub response_type: String,
    /// Nanoseconds.
    #[serde(default, deserialize_with = "zero")]
    pub response_threshold: i64,
    /// Latency tracking.
    #[serde(default)]
    pub service_latency: Option<Latency>,
    /// Token of the subject that must be the importer's key.
    #[serde(default, deserialize_with = "zero")]
    pub account_token_position: u64,
    /// Advertised.
    #[serde(default, deserialize_with = "zero")]
    pub advertise: bool,
    /// Allow message tracing.
    #[serde(default, deserialize_with = "zero")]
    pub allow_trace: bool,
    /// Description.
    #[serde(default, deserialize_with = "zero")]
    pub description: String,
    /// Information URL.
    #[serde(default, deserialize_with = "zero")]
    pub info_url: String,
}

/// One target of a subject mapping.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct WeightedMapping {
    /// Target subject.
    #[serde(default, deserialize_with = "zero")]
    pub subject: String,
    /// Percent (Go `uint8`).
    #[serde(default, deserialize_with = "zero")]
    pub weight: u8,
    /// Cluster the target applies to.
    #[serde(default, deserialize_with = "zero")]
    pub cluster: String,
}

/// `authorization`: external authorization (jwt v2.8).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Authorization {
    /// Users that handle auth callouts.
    #[serde(default, deserialize_with = "zero")]
    pub auth_users: Vec<String>,
    /// Accounts users may be placed in.
    #[serde(default, deserialize_with = "zero")]
    pub allowed_accounts: Vec<String>,
    /// Curve key for encryption.
    #[serde(default, deserialize_with = "zero")]
    pub xkey: String,
}

/// `trace`: message tracing (jwt v2.8).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Trace {
    /// Destination subject.
    #[serde(default, deserialize_with = "zero")]
    pub dest: String,
    /// Percent sampled.
    #[serde(default, deserialize_with = "zero")]
    pub sampling: i64,
}

/// A signing key: a bare account key or a scoped signer.
#[derive(Debug, Clone, PartialEq)]
pub enum SigningKey {
    /// A plain account public key.
    Plain(String),
    /// A `user_scope` signer.
    Scoped(Box<UserScope>),
}

impl SigningKey {
    /// The public key of this signing key, whatever its form.
    pub fn key(&self) -> &str {
        match self {
            SigningKey::Plain(k) => k,
            SigningKey::Scoped(s) => &s.key,
        }
    }
}

/// Go `SigningKeys.UnmarshalJSON`: strings are keys, objects are scoped signers by their exact
/// `kind` (only `user_scope`), anything else is skipped.
fn signing_keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SigningKey>, D::Error> {
    let mut keys = Vec::new();
    for item in Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default() {
        match item {
            Value::String(k) => keys.push(SigningKey::Plain(k)),
            Value::Object(ref m) => match m.get("kind") {
                Some(Value::String(kind)) if kind == "user_scope" => {
                    let scope = UserScope::deserialize(item).map_err(D::Error::custom)?;
                    keys.push(SigningKey::Scoped(Box::new(scope)));
                }
                other => {
                    return Err(D::Error::custom(format!(
                        "unknown signing key scope {}",
                        other.map_or("(none)".to_string(), Value::to_string)
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(keys)
}

/// The `nats` object of an account JWT.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct AccountClaims {
    /// Imports.
    #[serde(default, deserialize_with = "zero")]
    pub imports: Vec<Import>,
    /// Exports.
    #[serde(default, deserialize_with = "zero")]
    pub exports: Vec<Export>,
    /// Limits (absent: all zero, as in Go).
    #[serde(default, deserialize_with = "zero")]
    pub limits: Limits,
    /// Signing keys.
    #[serde(default, deserialize_with = "signing_keys")]
    pub signing_keys: Vec<SigningKey>,
    /// Revoked users: user key (or `*`) → time.
    #[serde(default, deserialize_with = "zero")]
    pub revocations: BTreeMap<String, i64>,
    /// Default user permissions.
    #[serde(default, deserialize_with = "zero")]
    pub default_permissions: Permissions,
    /// Subject mappings.
    #[serde(default, deserialize_with = "zero")]
    pub mappings: BTreeMap<String, Vec<WeightedMapping>>,
    /// External authorization.
    #[serde(default, deserialize_with = "zero")]
    pub authorization: Authorization,
    /// Message tracing.
    #[serde(default)]
    pub trace: Option<Trace>,
    /// `system` or `owner`.
    #[serde(default, deserialize_with = "zero")]
    pub cluster_traffic: String,
    /// Description.
    #[serde(default, deserialize_with = "zero")]
    pub description: String,
    /// Information URL.
    #[serde(default, deserialize_with = "zero")]
    pub info_url: String,
    /// Tags.
    #[serde(default, deserialize_with = "zero")]
    pub tags: Vec<String>,
}

/// Typed account claims of a decoded account token, as Go's `DecodeAccountClaims` reads them
/// (flat JetStream limits are dropped when tiers are present). A value Go cannot decode is an
/// error naming its path.
pub(crate) fn parse_account(token: &Token) -> Result<AccountClaims, JwtError> {
    let nats = super::claims::nats_of(token);
    let mut claims: AccountClaims =
        serde_path_to_error::deserialize(&nats).map_err(|e| JwtError::Claims {
            kind: ClaimKind::Account,
            reason: format!("nats.{}: {}", e.path(), e.inner()),
        })?;
    if !claims.limits.tiered_limits.is_empty() {
        claims.limits.jetstream = JetStreamLimits::default();
    }
    Ok(claims)
}
