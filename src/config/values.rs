//! Converters from config values to typed settings, as the Go server reads them (`"9090"` is a
//! fine port, `"true"` a fine bool, `"5m"` a fine duration); every error names the file, the
//! line and the key.

use std::path::{Path, PathBuf};

use super::expand_home;
use super::load::ConfigError;
use super::natsconf::{Node, Position, Value};

/// The error for a bad value of `key` written at `pos`.
pub(super) fn value_error(key: &str, pos: &Position, message: String) -> ConfigError {
    ConfigError::Value {
        file: pos.file.as_ref().clone(),
        line: pos.line,
        key: key.to_string(),
        message,
    }
}

/// How a value is named in an error: its type and the value.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("number {f}"),
        Value::Bool(b) => format!("boolean {b}"),
        Value::DateTime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".into(),
        Value::Map(_) => "a block".into(),
    }
}

/// A boolean: `true`/`false` (also `yes`/`no`/`on`/`off`, quoted or not).
pub(super) fn boolean(key: &str, node: &Node) -> Result<bool, ConfigError> {
    match &node.value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(value_error(
                key,
                &node.pos,
                format!("expected true or false, found string {s:?}"),
            )),
        },
        other => Err(value_error(
            key,
            &node.pos,
            format!("expected true or false, found {}", describe(other)),
        )),
    }
}

/// An integer, also written as a string of digits.
pub(super) fn integer(key: &str, node: &Node) -> Result<i64, ConfigError> {
    match &node.value {
        Value::Integer(i) => Ok(*i),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            value_error(
                key,
                &node.pos,
                format!("expected an integer, found string {s:?}"),
            )
        }),
        other => Err(value_error(
            key,
            &node.pos,
            format!("expected an integer, found {}", describe(other)),
        )),
    }
}

/// An integer of 0 or more.
pub(super) fn unsigned(key: &str, node: &Node) -> Result<u64, ConfigError> {
    let i = integer(key, node)?;
    u64::try_from(i).map_err(|_| {
        value_error(
            key,
            &node.pos,
            format!("expected a number of 0 or more, found {i}"),
        )
    })
}

/// Seconds: an integer, or a string of digits with a unit `s`, `m` or `h` (`"5m"`).
pub(super) fn seconds(key: &str, node: &Node) -> Result<u64, ConfigError> {
    let units = [("", 1), ("s", 1), ("m", 60), ("h", 3600)];
    duration(key, node, &units, "seconds or a duration like \"5m\"")
}

/// Milliseconds: an integer, or a string of digits with a unit `ms`, `s`, `m` or `h` (`"2m"`).
pub(super) fn millis(key: &str, node: &Node) -> Result<u64, ConfigError> {
    let units = [
        ("", 1),
        ("ms", 1),
        ("s", 1000),
        ("m", 60_000),
        ("h", 3_600_000),
    ];
    duration(key, node, &units, "milliseconds or a duration like \"2m\"")
}

/// A count of some unit: an integer, or a string of digits followed by one of `units` (the
/// suffix and how many units it stands for); `expected` names the forms in the error.
pub(super) fn duration(
    key: &str,
    node: &Node,
    units: &[(&str, u64)],
    expected: &str,
) -> Result<u64, ConfigError> {
    let Value::String(s) = &node.value else {
        return unsigned(key, node);
    };
    let text = s.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = units.iter().find(|(u, _)| *u == unit).map(|(_, n)| *n);
    match (scale, digits.parse::<u64>()) {
        (Some(scale), Ok(n)) => Ok(n.saturating_mul(scale)),
        _ => Err(value_error(
            key,
            &node.pos,
            format!("expected {expected}, found string {s:?}"),
        )),
    }
}

/// An integer above 0.
pub(super) fn positive(key: &str, node: &Node) -> Result<usize, ConfigError> {
    let i = integer(key, node)?;
    usize::try_from(i).ok().filter(|v| *v > 0).ok_or_else(|| {
        value_error(
            key,
            &node.pos,
            format!("expected a number above 0, found {i}"),
        )
    })
}

/// A TCP port (0 picks a free one).
pub(super) fn port(key: &str, node: &Node) -> Result<u16, ConfigError> {
    let i = integer(key, node)?;
    u16::try_from(i).map_err(|_| {
        value_error(
            key,
            &node.pos,
            format!("expected a port between 0 and 65535, found {i}"),
        )
    })
}

/// Permission bits in octal digits, at most `0777`: a string (`"0640"`) or an integer written
/// in octal digits (`0640` or `640`; the syntax reads either as the integer 640). The bits of
/// `owner_needs` must be set: the server must be able to use what it creates (`owner_access`
/// says what they are in the error).
pub(super) fn mode(
    key: &str,
    node: &Node,
    owner_needs: u32,
    owner_access: &str,
) -> Result<u32, ConfigError> {
    let text = match &node.value {
        Value::String(s) => s.trim().to_string(),
        Value::Integer(i) => i.to_string(),
        _ => String::new(),
    };
    let octal = !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let Some(bits) = u32::from_str_radix(&text, 8)
        .ok()
        .filter(|m| octal && *m <= 0o777)
    else {
        return Err(value_error(
            key,
            &node.pos,
            format!(
                "expected a mode in octal digits from 0 to 0777, like \"0640\", found {}",
                describe(&node.value)
            ),
        ));
    };
    if bits & owner_needs != owner_needs {
        return Err(value_error(
            key,
            &node.pos,
            format!(
                "mode {bits:04o} must give the owner {owner_access} access ({owner_needs:04o})"
            ),
        ));
    }
    Ok(bits)
}

/// A string (numbers and booleans are refused: quote them).
pub(super) fn string(key: &str, node: &Node) -> Result<String, ConfigError> {
    match &node.value {
        Value::String(s) => Ok(s.clone()),
        other => Err(value_error(
            key,
            &node.pos,
            format!(
                "expected a string, found {} (quote it if it is meant as text)",
                describe(other)
            ),
        )),
    }
}

/// A non-empty path, `~` expanded.
pub(super) fn path_value(key: &str, node: &Node) -> Result<PathBuf, ConfigError> {
    let text = string(key, node)?;
    if text.is_empty() {
        return Err(value_error(
            key,
            &node.pos,
            "expected a path, found \"\"".into(),
        ));
    }
    expand_home(Path::new(&text)).map_err(|e| value_error(key, &node.pos, e))
}

/// A list of strings, or one string standing for a list of one.
pub(super) fn strings(key: &str, node: &Node) -> Result<Vec<String>, ConfigError> {
    match &node.value {
        Value::Array(items) => items.iter().map(|n| string(key, n)).collect(),
        _ => Ok(vec![string(key, node)?]),
    }
}
