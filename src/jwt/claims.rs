//! Typed views of the type-specific (`nats`) part of operator and activation claims (account
//! claims are in `account.rs`).
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
pub(crate) fn nats_of(token: &Token) -> Value {
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
