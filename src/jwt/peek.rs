//! The few claims the serving path needs — `jti` (the ETag), `exp` (Cache-Control, `check`) and
//! `iat` (rollback checks) — read from a stored token without verifying it (it was verified
//! when it was stored).
//!
//! This runs for every GET that misses the JWT cache, so the payload JSON is scanned rather
//! than parsed: top-level keys are compared, the three values are read, and every other value
//! is skipped by tracking strings and brackets. For valid JSON the result is exactly what a
//! full parse gives (`tests/properties.rs` checks it against serde_json); a duplicate claim, a
//! claim of the wrong type or a payload that is not an object gives `None`. What sits inside
//! skipped values is not validated: tokens are validated in full when they are stored.

/// The claims [`peek`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    /// `jti` (`None` when absent or null: the Go library accepts tokens without one).
    pub jti: Option<String>,
    /// `exp` (0 when absent, null, or not an integer that fits an `i64`).
    pub exp: i64,
    /// `iat` (0 when absent, null, or not an integer that fits an `i64`).
    pub iat: i64,
}

/// `jti`, `exp` and `iat` of `token` (surrounding whitespace ignored), or `None` when the
/// token has no payload segment that decodes to a JSON object whose three claims have the
/// right types.
pub fn peek(token: &[u8]) -> Option<Peeked> {
    let text = std::str::from_utf8(token).ok()?.trim();
    let mut parts = text.split('.');
    let _header = parts.next()?;
    let payload = parts.next()?;
    let json = super::verify::b64_segment(payload, "payload").ok()?;
    scan_claims(&json)
}

/// Scans a JSON object for its top-level `jti`, `exp` and `iat`.
pub fn scan_claims(json: &[u8]) -> Option<Peeked> {
    std::str::from_utf8(json).ok()?;
    let mut s = Scanner { bytes: json, at: 0 };
    let (mut jti, mut exp, mut iat): (Option<Option<String>>, Option<i64>, Option<i64>) =
        (None, None, None);
    s.expect(b'{')?;
    if !s.eat(b'}') {
        loop {
            let key = s.string()?;
            s.expect(b':')?;
            match unescape(key)?.as_ref() {
                "jti" if jti.is_none() => jti = Some(s.optional_string()?),
                "exp" if exp.is_none() => exp = Some(s.optional_integer()?),
                "iat" if iat.is_none() => iat = Some(s.optional_integer()?),
                "jti" | "exp" | "iat" => return None, // duplicate claim
                _ => s.skip_value()?,
            }
            if s.eat(b',') {
                continue;
            }
            s.expect(b'}')?;
            break;
        }
    }
    s.skip_whitespace();
    if s.at != json.len() {
        return None;
    }
    Some(Peeked {
        jti: jti.flatten(),
        exp: exp.unwrap_or(0),
        iat: iat.unwrap_or(0),
    })
}

/// The text of a JSON string's raw contents (between the quotes), escapes resolved.
fn unescape(raw: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if raw.contains(&b'\\') {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        serde_json::from_slice::<String>(&quoted)
            .ok()
            .map(std::borrow::Cow::Owned)
    } else {
        std::str::from_utf8(raw)
            .ok()
            .map(std::borrow::Cow::Borrowed)
    }
}

/// A cursor over JSON bytes.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Skips whitespace, then consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A string; returns its raw contents (escapes not resolved).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(&self.bytes[start..self.at - 1]);
                }
                b'\\' => self.at += 2,
                c if c < 0x20 => return None,
                _ => self.at += 1,
            }
        }
    }

    /// A string or `null`.
    fn optional_string(&mut self) -> Option<Option<String>> {
        if self.literal(b"null") {
            return Some(None);
        }
        let raw = self.string()?;
        Some(Some(unescape(raw)?.into_owned()))
    }

    /// An integer or `null` (0); a number that is not an integer fitting an `i64` is 0.
    fn optional_integer(&mut self) -> Option<i64> {
        if self.literal(b"null") {
            return Some(0);
        }
        self.skip_whitespace();
        let start = self.at;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        let token = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        Some(token.parse::<i64>().unwrap_or(0))
    }

    /// Consumes `word` (after whitespace) if it is next.
    fn literal(&mut self, word: &[u8]) -> bool {
        self.skip_whitespace();
        if self
            .bytes
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// Skips one value of any kind; nested objects and arrays by counting brackets.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_whitespace();
        match *self.bytes.get(self.at)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.bytes.get(self.at)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while let Some(b'0'..=b'9' | b'a'..=b'z' | b'-' | b'+' | b'.' | b'E') =
                    self.bytes.get(self.at)
                {
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn reads_the_three_claims_and_skips_the_rest() {
        let json = r#" { "nats": {"jti": "inner", "a": [1, {"b": "}]\"["}], "exp": 5},
            "exp": 42, "name": "x\"y", "jti": "J\u0031", "iat": 7 } "#;
        assert_eq!(
            scan_claims(json.as_bytes()),
            Some(Peeked {
                jti: Some("J1".into()),
                exp: 42,
                iat: 7
            })
        );
        let token = format!("{}.{}.sig", b64("{}"), b64(r#"{"jti":"J","exp":1e3}"#));
        assert_eq!(
            peek(token.as_bytes()).map(|p| (p.jti, p.exp)),
            Some((Some("J".into()), 0))
        );
    }

    #[test]
    fn refuses_what_a_full_parse_refuses() {
        for bad in [
            r#"{"jti":"a","jti":"b"}"#,
            r#"{"jti":1}"#,
            r#"{"jti":"a","exp":"soon"}"#,
            r#"["jti"]"#,
            r#"{"jti":"a"} x"#,
            r#"{"jti":"a""#,
            r#"{"jti":"a","x":[1,2"#,
            "{\"jti\":\"a\nb\"}",
            "",
        ] {
            assert_eq!(scan_claims(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(peek(b"garbage"), None);
        for no_jti in [r#"{"exp":1}"#, r#"{"jti":null,"exp":1}"#] {
            let p = scan_claims(no_jti.as_bytes()).expect(no_jti);
            assert_eq!((p.jti, p.exp), (None, 1), "{no_jti}");
        }
        assert_eq!(scan_claims(b"{\"jti\":\"\xff\"}"), None);
    }
}
