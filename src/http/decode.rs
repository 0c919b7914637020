//! The `?decode=true` view of a JWT: header and claims as indented JSON (keys sorted), with
//! dates next to `iat`/`exp` and embedded activation tokens decoded, then the signature.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde::Serialize;

use super::{ok_body, text_error};

/// Renders `token` for humans, or explains why it cannot be.
pub(crate) fn render(token: &[u8]) -> Result<String, &'static str> {
    let text = std::str::from_utf8(token).map_err(|_| "error decoding JWT: not UTF-8 text")?;
    let parts: Vec<&str> = text.trim().split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("error decoding JWT: expected 3 chunks");
    };
    let header = json_segment(header).ok_or("error decoding JWT header")?;
    let claims = json_segment(payload).ok_or("error decoding JWT claims")?;
    let mut out = pretty(&header, 0).ok_or("error encoding JWT header")?;
    out.push_str("\n\r\n");
    out.push_str(&annotate(
        &pretty(&claims, 0).ok_or("error encoding JWT claims")?,
    ));
    out.push_str("\n\r\n");
    out.push_str(signature);
    Ok(out)
}

/// The `decode=true` HTTP reply.
pub(crate) fn response(token: &[u8]) -> Response {
    match render(token) {
        Ok(body) => ok_body("text/plain", body),
        Err(why) => text_error(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}

fn json_segment(segment: &str) -> Option<serde_json::Value> {
    let cleaned: String = segment
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cleaned)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// 4-space indented JSON, each line after the first prefixed by `indent` spaces.
fn pretty(value: &serde_json::Value, indent: usize) -> Option<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    sort_keys(value).serialize(&mut ser).ok()?;
    let text = String::from_utf8(buf).ok()?;
    let pad = " ".repeat(indent);
    Some(text.replace('\n', &format!("\n{pad}")))
}

/// A copy of `value` whose objects list their keys in sorted order.
fn sort_keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sort_keys).collect())
        }
        other => other.clone(),
    }
}

/// Adds `(YYYY-MM-DD)` after `iat`/`exp` numbers and expands `token` strings into their claims.
fn annotate(json: &str) -> String {
    let mut out = Vec::new();
    for line in json.split('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let mut replaced = None;
        for key in ["\"iat\": ", "\"exp\": "] {
            if let Some(rest) = trimmed.strip_prefix(key) {
                let (number, tail) = match rest.strip_suffix(',') {
                    Some(n) => (n, ","),
                    None => (rest, ""),
                };
                if let Ok(secs) = number.parse::<i64>() {
                    if let Some(date) = chrono::DateTime::from_timestamp(secs, 0) {
                        replaced = Some(format!(
                            "{line_start}{key}{number} ({}){tail}",
                            date.format("%Y-%m-%d"),
                            line_start = &line[..indent]
                        ));
                    }
                }
            }
        }
        if let Some(rest) = trimmed.strip_prefix("\"token\": \"") {
            let (token, tail) = match rest.strip_suffix("\",") {
                Some(t) => (t, ","),
                None => (rest.strip_suffix('"').unwrap_or(rest), ""),
            };
            let parts: Vec<&str> = token.split('.').collect();
            let decoded = parts.get(1).and_then(|p| json_segment(p));
            replaced = Some(match decoded.and_then(|v| pretty(&v, indent)) {
                Some(expanded) => format!("{}\"token\": {expanded}{tail}", &line[..indent]),
                None => format!("{}\"token\": <bad token>{tail}", &line[..indent]),
            });
        }
        out.push(replaced.unwrap_or_else(|| line.to_string()));
    }
    out.join("\n")
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
        assert!(
            out.starts_with("{\n    \"alg\": \"ed25519-nkey\",\n    \"typ\": \"JWT\"\n}\n\r\n{"),
            "{out}"
        );
        assert!(out.contains("\"iat\": 1795514256 (2026-11-24),"), "{out}");
        assert!(out.contains("times.*"), "{out}");
        assert!(out.ends_with("\n\r\nSIG"), "{out}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b"x"[..], b"a.b", b"a.b.c", b"\xff\xfe", b"...."] {
            assert!(render(bad).is_err());
        }
    }
}
