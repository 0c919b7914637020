//! The `?decode=true` view of a JWT: one JSON document (keys sorted, 4-space indents) with the
//! header, the claims exactly as signed, the `iat`/`exp`/`nbf` dates in their own fields,
//! embedded activation tokens decoded beside the claims, and the signature.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{ok_body, text_error};

/// Renders `token` as a JSON document for humans, or explains why it cannot be.
pub(crate) fn render(token: &[u8]) -> Result<String, &'static str> {
    let text = std::str::from_utf8(token).map_err(|_| "error decoding JWT: not UTF-8 text")?;
    let parts: Vec<&str> = text.trim().split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("error decoding JWT: expected 3 chunks");
    };
    let header = json_segment(header).ok_or("error decoding JWT header")?;
    let claims = json_segment(payload).ok_or("error decoding JWT claims")?;
    let mut doc = json!({ "header": header, "signature": signature });
    let dates = dates(&claims);
    if !dates.is_empty() {
        doc["dates"] = Value::Object(dates);
    }
    let mut tokens = Vec::new();
    embedded_tokens(&claims, "claims", &mut tokens);
    if !tokens.is_empty() {
        doc["tokens"] = Value::Array(tokens);
    }
    doc["claims"] = claims;
    pretty(&doc).ok_or("error encoding the decoded JWT")
}

/// The `decode=true` HTTP reply.
pub(crate) fn response(token: &[u8]) -> Response {
    match render(token) {
        Ok(body) => ok_body("application/json", body),
        Err(why) => text_error(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}

fn json_segment(segment: &str) -> Option<Value> {
    let cleaned: String = segment
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cleaned)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `iat`, `exp` and `nbf` of `claims` as RFC 3339 UTC times, under the same names.
fn dates(claims: &Value) -> Map<String, Value> {
    ["iat", "exp", "nbf"]
        .into_iter()
        .filter_map(|key| {
            let secs = claims.get(key)?.as_i64()?;
            let date = chrono::DateTime::from_timestamp(secs, 0)?;
            Some((key.to_string(), Value::String(date.to_rfc3339())))
        })
        .collect()
}

/// Every `token` string under `value` (activation tokens of imports): where it sits and its
/// decoded claims (`null` when it does not decode).
fn embedded_tokens(value: &Value, path: &str, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let here = format!("{path}.{key}");
                match (key.as_str(), item) {
                    ("token", Value::String(token)) => {
                        let claims = token.split('.').nth(1).and_then(json_segment);
                        out.push(json!({ "path": here, "claims": claims }));
                    }
                    _ => embedded_tokens(item, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                embedded_tokens(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// 4-space indented JSON with the keys of every object sorted.
fn pretty(value: &Value) -> Option<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    sort_keys(value).serialize(&mut ser).ok()?;
    let mut text = String::from_utf8(buf).ok()?;
    text.push('\n');
    Some(text)
}

/// A copy of `value` whose objects list their keys in sorted order.
fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn renders_header_claims_dates_and_tokens() {
        let inner = format!(
            "{}.{}.sig",
            b64("{}"),
            b64(r#"{"sub":"B","nats":{"subject":"times.*"}}"#)
        );
        let claims = format!(
            r#"{{"iat":1795514256,"jti":"J","nats":{{"imports":[{{"token":"{inner}","type":"stream"}}]}}}}"#
        );
        let token = format!(
            "{}.{}.SIG",
            b64(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
            b64(&claims)
        );
        let out = render(token.as_bytes()).unwrap();
        let doc: Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(doc["header"]["alg"], "ed25519-nkey");
        assert_eq!(doc["claims"]["iat"], 1795514256, "claims stay as signed");
        assert_eq!(doc["dates"]["iat"], "2026-11-24T09:57:36+00:00");
        assert!(doc["dates"].get("exp").is_none());
        assert_eq!(doc["signature"], "SIG");
        assert_eq!(doc["tokens"][0]["path"], "claims.nats.imports[0].token");
        assert_eq!(doc["tokens"][0]["claims"]["nats"]["subject"], "times.*");
        assert!(
            out.starts_with("{\n    \"claims\": {\n        \"iat\""),
            "{out}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b"x"[..], b"a.b", b"a.b.c", b"\xff\xfe", b"...."] {
            assert!(render(bad).is_err());
        }
    }
}
