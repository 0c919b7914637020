//! Typed views of the type-specific (`nats`) part of operator, account and activation claims.
//! Unknown fields are ignored; the raw token is never re-encoded.

use data_encoding::BASE32;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ClaimKind, JwtError, Token};

/// Operator claims (`nats` of an operator JWT).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperatorClaims {
    /// The operator's public key (`sub`).
    pub subject: String,
    /// `name`
    pub name: String,
    /// `nats.signing_keys`: further operator keys allowed to sign accounts.
    pub signing_keys: Vec<String>,
    /// `nats.system_account` (empty when absent).
    pub system_account: String,
    /// `nats.account_server_url` (empty when absent).
    pub account_server_url: String,
    /// `nats.operator_service_urls`
    pub operator_service_urls: Vec<String>,
    /// `nats.strict_signing_key_usage`
    pub strict_signing_key_usage: bool,
}

/// An account signing key: a bare key or a scoped signer.
#[derive(Debug, Clone, PartialEq)]
pub enum SigningKey {
    /// A plain account public key.
    Plain(String),
    /// `{"kind":"user_scope","key":..,"role":..,"template":{..}}`
    Scoped {
        /// `kind` as written (only `user_scope` is valid).
        kind: String,
        /// The signing key.
        key: String,
        /// `role`
        role: String,
        /// `template` kept as JSON.
        template: serde_json::Value,
    },
}

impl SigningKey {
    /// The public key of this signing key, whatever its form.
    pub fn key(&self) -> &str {
        match self {
            SigningKey::Plain(k) => k,
            SigningKey::Scoped { key, .. } => key,
        }
    }
}

/// One entry of `nats.imports`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Import {
    /// `name`
    pub name: String,
    /// `subject`
    pub subject: String,
    /// `account` (the exporting account)
    pub account: String,
    /// `token` (an activation JWT, may be empty)
    pub token: String,
    /// deprecated `to`
    pub to: String,
    /// `local_subject`
    pub local_subject: String,
    /// `type` (`stream` or `service`)
    pub kind: String,
}

/// One entry of `nats.exports`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Export {
    /// `name`
    pub name: String,
    /// `subject`
    pub subject: String,
    /// `type` (`stream` or `service`)
    pub kind: String,
    /// `token_req`
    pub token_req: bool,
    /// `response_type` (services)
    pub response_type: String,
    /// `response_threshold` in nanoseconds (services)
    pub response_threshold: i64,
    /// `account_token_position`
    pub account_token_position: u64,
    /// `service_latency` kept as JSON (null when absent).
    pub service_latency: serde_json::Value,
}

/// Account claims (`nats` of an account JWT), enough to validate it as the Go library does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountClaims {
    /// `nats.signing_keys`
    pub signing_keys: Vec<SigningKey>,
    /// `nats.imports`
    pub imports: Vec<Import>,
    /// `nats.exports`
    pub exports: Vec<Export>,
    /// `nats.limits` kept as JSON (an empty object when absent).
    pub limits: serde_json::Value,
    /// `nats.revocations`: user key (or `*`) → Unix seconds.
    pub revocations: std::collections::BTreeMap<String, i64>,
}

/// Activation claims (`nats` of an activation JWT).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActivationClaims {
    /// `nats.subject`: the exported subject.
    pub subject: String,
    /// `nats.kind` (v2) / `nats.type` of the import (`stream` or `service`).
    pub kind: String,
    /// `nats.issuer_account` (v2) or top-level `issuer_account` (v1), empty when absent.
    pub issuer_account: String,
}

/// The hash id of an activation (Go `HashID`): `base32std_padded(sha256(iss + "." + sub + "." +
/// clean(subject)))`, where `clean` cuts the subject before its first `*`/`>` token (`_` when the
/// first token is a wildcard). Errors when any of the three is empty.
pub fn activation_hash_id(iss: &str, sub: &str, subject: &str) -> Result<String, JwtError> {
    if iss.is_empty() || sub.is_empty() || subject.is_empty() {
        return Err(JwtError::Claims {
            kind: ClaimKind::Activation,
            reason: "hash id needs an issuer, a subject and an export subject".into(),
        });
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    let cleaned = match tokens.iter().position(|t| *t == "*" || *t == ">") {
        Some(0) => "_".to_string(),
        Some(i) => tokens[..i].join("."),
        None => subject.to_string(),
    };
    let digest = Sha256::digest(format!("{iss}.{sub}.{cleaned}").as_bytes());
    Ok(BASE32.encode(&digest))
}

impl ActivationClaims {
    /// The hash id of this activation as issued in `token`.
    pub fn hash_id(&self, token: &Token) -> Result<String, JwtError> {
        activation_hash_id(&token.claims.iss, &token.claims.sub, &self.subject)
    }
}

fn claims_error(kind: ClaimKind, e: impl std::fmt::Display) -> JwtError {
    JwtError::Claims {
        kind,
        reason: e.to_string(),
    }
}

/// The `nats` object of a token (an empty object when absent).
fn nats_of(token: &Token) -> Value {
    token
        .payload
        .get("nats")
        .cloned()
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOperator {
    signing_keys: Option<Vec<String>>,
    system_account: Option<String>,
    account_server_url: Option<String>,
    operator_service_urls: Option<Vec<String>>,
    strict_signing_key_usage: Option<bool>,
}

/// Typed operator claims of a decoded operator token.
pub(crate) fn parse_operator(token: &Token) -> Result<OperatorClaims, JwtError> {
    let raw: RawOperator =
        serde_json::from_value(nats_of(token)).map_err(|e| claims_error(ClaimKind::Operator, e))?;
    Ok(OperatorClaims {
        subject: token.claims.sub.clone(),
        name: token.claims.name.clone(),
        signing_keys: raw.signing_keys.unwrap_or_default(),
        system_account: raw.system_account.unwrap_or_default(),
        account_server_url: raw.account_server_url.unwrap_or_default(),
        operator_service_urls: raw.operator_service_urls.unwrap_or_default(),
        strict_signing_key_usage: raw.strict_signing_key_usage.unwrap_or(false),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawImport {
    name: Option<String>,
    subject: Option<String>,
    account: Option<String>,
    token: Option<String>,
    to: Option<String>,
    local_subject: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawExport {
    name: Option<String>,
    subject: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    token_req: Option<bool>,
    response_type: Option<String>,
    response_threshold: Option<i64>,
    account_token_position: Option<u64>,
    service_latency: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAccount {
    signing_keys: Option<Vec<Value>>,
    imports: Option<Vec<RawImport>>,
    exports: Option<Vec<RawExport>>,
    limits: Option<Value>,
    revocations: Option<std::collections::BTreeMap<String, i64>>,
}

/// Typed account claims of a decoded account token.
pub(crate) fn parse_account(token: &Token) -> Result<AccountClaims, JwtError> {
    let raw: RawAccount =
        serde_json::from_value(nats_of(token)).map_err(|e| claims_error(ClaimKind::Account, e))?;
    let mut signing_keys = Vec::new();
    for key in raw.signing_keys.unwrap_or_default() {
        signing_keys.push(match key {
            Value::String(k) => SigningKey::Plain(k),
            Value::Object(m) => {
                let text = |name: &str| -> Result<String, JwtError> {
                    match m.get(name) {
                        None | Some(Value::Null) => Ok(String::new()),
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(_) => Err(claims_error(
                            ClaimKind::Account,
                            format!("signing key field {name} is not a string"),
                        )),
                    }
                };
                SigningKey::Scoped {
                    kind: text("kind")?,
                    key: text("key")?,
                    role: text("role")?,
                    template: m.get("template").cloned().unwrap_or(Value::Null),
                }
            }
            _ => {
                return Err(claims_error(
                    ClaimKind::Account,
                    "a signing key is neither a string nor an object",
                ))
            }
        });
    }
    let imports = raw
        .imports
        .unwrap_or_default()
        .into_iter()
        .map(|i| Import {
            name: i.name.unwrap_or_default(),
            subject: i.subject.unwrap_or_default(),
            account: i.account.unwrap_or_default(),
            token: i.token.unwrap_or_default(),
            to: i.to.unwrap_or_default(),
            local_subject: i.local_subject.unwrap_or_default(),
            kind: i.kind.unwrap_or_default(),
        })
        .collect();
    let exports = raw
        .exports
        .unwrap_or_default()
        .into_iter()
        .map(|e| Export {
            name: e.name.unwrap_or_default(),
            subject: e.subject.unwrap_or_default(),
            kind: e.kind.unwrap_or_default(),
            token_req: e.token_req.unwrap_or(false),
            response_type: e.response_type.unwrap_or_default(),
            response_threshold: e.response_threshold.unwrap_or(0),
            account_token_position: e.account_token_position.unwrap_or(0),
            service_latency: e.service_latency.unwrap_or(Value::Null),
        })
        .collect();
    Ok(AccountClaims {
        signing_keys,
        imports,
        exports,
        limits: raw
            .limits
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| Value::Object(Default::default())),
        revocations: raw.revocations.unwrap_or_default(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawActivation {
    subject: Option<String>,
    kind: Option<String>,
    #[serde(rename = "type")]
    v1_kind: Option<String>,
    issuer_account: Option<String>,
}

/// Typed activation claims of a decoded activation token.
pub(crate) fn parse_activation(token: &Token) -> Result<ActivationClaims, JwtError> {
    let raw: RawActivation = serde_json::from_value(nats_of(token))
        .map_err(|e| claims_error(ClaimKind::Activation, e))?;
    let top_issuer = token
        .payload
        .get("issuer_account")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // In v2 `nats.type` is "activation" and the import kind is `nats.kind`; in v1 the import
    // kind was `nats.type`.
    let kind = match raw.kind {
        Some(k) if !k.is_empty() => k,
        _ if token.version == 1 => raw.v1_kind.unwrap_or_default(),
        _ => String::new(),
    };
    Ok(ActivationClaims {
        subject: raw.subject.unwrap_or_default(),
        kind,
        issuer_account: raw
            .issuer_account
            .filter(|s| !s.is_empty())
            .unwrap_or(top_issuer),
    })
}

/// Go's `ClaimsData` JSON with an empty `jti`, the input of the jti hash.
pub(crate) fn jti_input(claims: &super::StandardClaims) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut push = |name: &str, value: String| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        out.push_str(&value);
    };
    if !claims.aud.is_empty() {
        push("aud", go_json_string(&claims.aud));
    }
    if claims.exp != 0 {
        push("exp", claims.exp.to_string());
    }
    if claims.iat != 0 {
        push("iat", claims.iat.to_string());
    }
    if !claims.iss.is_empty() {
        push("iss", go_json_string(&claims.iss));
    }
    if !claims.name.is_empty() {
        push("name", go_json_string(&claims.name));
    }
    if claims.nbf != 0 {
        push("nbf", claims.nbf.to_string());
    }
    if !claims.sub.is_empty() {
        push("sub", go_json_string(&claims.sub));
    }
    out.push('}');
    out
}

/// A JSON string the way Go's encoder writes it (`<`, `>`, `&`, U+2028 and U+2029 escaped).
pub(crate) fn go_json_string(text: &str) -> String {
    let plain = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    plain
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The jti Go would compute for these standard claims.
pub(crate) fn compute_jti(claims: &super::StandardClaims) -> String {
    use sha2::Sha512_256;
    let digest = Sha512_256::digest(jti_input(claims).as_bytes());
    data_encoding::BASE32_NOPAD.encode(&digest)
}
