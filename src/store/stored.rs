//! A JWT as read from the store, with the few claims the GET path needs (read without
//! verifying the signature: it was verified when it was stored) and its entity tag.

use bytes::Bytes;

/// A stored JWT with the few claims the GET path needs, read without verifying the signature
/// (it was verified when it was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJwt {
    /// The exact stored bytes.
    pub bytes: Bytes,
    /// The HTTP entity tag, a hash of the stored bytes, so every change gets a new one
    /// (`None` when the stored bytes do not decode as a JWT).
    pub etag: Option<String>,
    /// `exp` (0 = never).
    pub exp: i64,
    /// `iat` (0 when unknown).
    pub iat: i64,
}

/// The entity tag of stored JWT bytes: 160 bits of their SHA-256, base32.
pub fn etag_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    data_encoding::BASE32_NOPAD.encode(&digest[..20])
}

impl StoredJwt {
    /// Reads `exp` and `iat` from the payload segment of `bytes` and hashes them for the ETag.
    pub fn inspect(bytes: Bytes) -> Self {
        match crate::jwt::peek::peek(&bytes) {
            Some(p) => StoredJwt {
                etag: Some(etag_of(&bytes)),
                exp: p.exp,
                iat: p.iat,
                bytes,
            },
            None => StoredJwt {
                etag: None,
                exp: 0,
                iat: 0,
                bytes,
            },
        }
    }
}

/// One line of a pack (HTTP `/jwt/v1/pack`, NATS `$SYS.REQ.CLAIMS.PACK`): `<pubkey>|<jwt>`.
pub fn pack_line(key: &crate::keys::AccountKey, jwt: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(key.as_str().len() + 1 + jwt.len());
    push_pack_line(&mut line, key, jwt);
    line
}

/// Appends the pack line of `key` and `jwt` to `out` (a streamed pack gathers many in one
/// buffer).
pub fn push_pack_line(out: &mut Vec<u8>, key: &crate::keys::AccountKey, jwt: &[u8]) {
    out.extend_from_slice(key.as_str().as_bytes());
    out.push(b'|');
    out.extend_from_slice(jwt.trim_ascii());
}

/// Splits a pack line into its account key and JWT; `None` unless it has exactly one `|`
/// after a valid account key.
pub fn parse_pack_line(line: &[u8]) -> Option<(crate::keys::AccountKey, Bytes)> {
    let text = std::str::from_utf8(line).ok()?;
    let (key, jwt) = text.split_once('|')?;
    if jwt.contains('|') {
        return None;
    }
    let key = crate::keys::AccountKey::parse(key.trim()).ok()?;
    Some((key, Bytes::from(jwt.trim().to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn inspect_reads_exp_and_hashes_the_bytes() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!("{}.{}.sig", b64("{}"), b64(r#"{"jti":"J1","exp":42}"#));
        let s = StoredJwt::inspect(Bytes::from(token.clone()));
        assert_eq!(s.etag, Some(etag_of(token.as_bytes())));
        assert_eq!(s.exp, 42);
        let same_jti = format!("{}.{}.sig", b64("{}"), b64(r#"{"jti":"J1","exp":43}"#));
        assert_ne!(StoredJwt::inspect(Bytes::from(same_jti)).etag, s.etag);
        let s = StoredJwt::inspect(Bytes::from_static(b"garbage"));
        assert_eq!(s.etag, None);
        assert_eq!(s.exp, 0);
    }

    #[test]
    fn pack_lines() {
        let k = nkeys::KeyPair::new_account().public_key();
        let key = crate::keys::AccountKey::parse(&k).unwrap();
        let line = pack_line(&key, b"a.b.c\n");
        assert_eq!(line, format!("{k}|a.b.c").into_bytes());
        let (parsed, jwt) = parse_pack_line(&line).unwrap();
        assert_eq!((parsed, jwt.as_ref()), (key, &b"a.b.c"[..]));
        assert!(parse_pack_line(b"nokey|a.b.c").is_none());
        assert!(parse_pack_line(format!("{k}|a|b").as_bytes()).is_none());
        assert!(parse_pack_line(k.as_bytes()).is_none());
    }
}
