//! Reading JWT JSON so that no reader can see another token than we do.
//!
//! Go's `encoding/json` (what nats-server and nsc use) matches object keys to struct fields
//! without regard to case and lets the last of duplicate keys win; serde and our claim scanner
//! match exactly. Rather than imitate Go's folding, tokens whose meaning depends on it are
//! refused: a duplicate key anywhere, or a key that equals a known claim field only when case is
//! ignored (`"Exp"`, `"SUB"`, `"NATS"`). What is left reads the same in Go and here.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::JwtError;

/// A JSON value whose objects never held a key twice.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key \"{}\" (Go would read the last one, we the first: refused as ambiguous)",
                    printable(&key)
                )));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Parses `bytes` as a JSON object, refusing duplicate keys at any depth.
pub(crate) fn parse_object(
    bytes: &[u8],
    part: &'static str,
) -> Result<Map<String, Value>, JwtError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(Strict(Value::Object(map))) => Ok(map),
        Ok(_) => Err(JwtError::Json {
            part,
            reason: "not a JSON object".into(),
        }),
        Err(e) => Err(JwtError::Json {
            part,
            reason: e.to_string(),
        }),
    }
}

/// Where in a token a JSON object sits, and so which keys Go would match to fields there.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// A Go struct: these are its JSON field names, each with the shape of its value.
    Struct(&'static [(&'static str, Shape)]),
    /// A Go map or slice: every value (element) has this shape.
    Each(&'static Shape),
    /// Anything else (strings, numbers, or values Go reads with its own rules).
    Leaf,
}

/// Go's case folding of one character, as far as it can turn a key into a known ASCII name.
fn fold(c: char) -> char {
    match c {
        'ſ' => 's',
        '\u{212A}' => 'k',
        'ı' | 'İ' => 'i',
        _ => c.to_ascii_lowercase(),
    }
}

fn folds_to(key: &str, field: &str) -> bool {
    key.chars().count() == field.chars().count()
        && key.chars().map(fold).eq(field.chars().map(fold))
}

/// Refuses keys of `value` (at `path`) that match a field of `shape` only when case is ignored.
pub(crate) fn check_keys(value: &Value, shape: Shape, path: &str) -> Result<(), JwtError> {
    match value {
        Value::Object(map) => check_object(map, shape, path),
        Value::Array(items) => match shape {
            Shape::Each(inner) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| check_keys(v, *inner, &format!("{path}[{i}]"))),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// [`check_keys`] for an object.
pub(crate) fn check_object(
    map: &Map<String, Value>,
    shape: Shape,
    path: &str,
) -> Result<(), JwtError> {
    match shape {
        Shape::Struct(fields) => {
            for (key, inner) in map {
                if let Some((name, field_shape)) = fields.iter().find(|(f, _)| f == key) {
                    check_keys(inner, *field_shape, &join(path, name))?;
                } else if let Some((name, _)) = fields.iter().find(|(f, _)| folds_to(key, f)) {
                    return Err(JwtError::AmbiguousKey {
                        key: printable(&join(path, key)),
                        field: join(path, name),
                    });
                }
            }
            Ok(())
        }
        Shape::Each(inner) => map
            .iter()
            .try_for_each(|(key, v)| check_keys(v, *inner, &join(path, key))),
        Shape::Leaf => Ok(()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `text` cut to 64 characters with control characters escaped, safe for one log line.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"b":{"c":1}}"#, "payload").is_ok());
        for bad in [r#"{"a":1,"a":2}"#, r#"{"n":{"x":[{"k":1,"k":1}]}}"#] {
            let err = parse_object(bad.as_bytes(), "payload").unwrap_err();
            assert!(err.to_string().contains("duplicate key"), "{err}");
        }
        assert!(parse_object(b"[1]", "payload").is_err());
        assert!(parse_object(br#"{"a":1} x"#, "payload").is_err());
    }

    #[test]
    fn case_variants_of_known_fields_are_refused() {
        const INNER: Shape = Shape::Struct(&[("type", Shape::Leaf)]);
        const TOP: Shape =
            Shape::Struct(&[("exp", Shape::Leaf), ("sub", Shape::Leaf), ("nats", INNER)]);
        let ok: Value = serde_json::from_str(r#"{"exp":1,"Other":2,"nats":{"type":"x"}}"#).unwrap();
        assert!(check_keys(&ok, TOP, "").is_ok());
        for (bad, named) in [
            (r#"{"Exp":1}"#, "Exp"),
            (r#"{"nats":{"TYPE":"user"}}"#, "nats.TYPE"),
            (r#"{"ſub":1}"#, "ſub"),
            (r#"{"NATS":{}}"#, "NATS"),
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            let err = check_keys(&v, TOP, "").unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
    }
}
