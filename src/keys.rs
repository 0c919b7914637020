//! Account public keys as a validated type: a value of [`AccountKey`] is always a well-formed
//! account nkey (`A` + 55 base32 characters with a good checksum), so it is safe to use in file
//! names and NATS subjects.

use std::fmt;

/// Why a string is not an account public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty, wrong length, not base32, bad checksum or not an account key.
    #[error("{0:?} is not a valid account public key")]
    NotAccountKey(String),
    /// Not 56 base32 characters ending in `====`.
    #[error("{0:?} is not a valid activation hash id")]
    NotActivationId(String),
}

/// A validated account public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey(String);

/// The nkeys prefix byte of account public keys (`A`).
const ACCOUNT_PREFIX: u8 = 0;

/// CRC-16/XMODEM (poly 0x1021, init 0), the checksum nkeys appends.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `true` when `text` is a well-formed account public key.
fn is_account_key_text(text: &str) -> bool {
    if text.len() != 56 || !text.starts_with('A') {
        return false;
    }
    let Ok(raw) = data_encoding::BASE32_NOPAD.decode(text.as_bytes()) else {
        return false;
    };
    if raw.len() != 35 || raw[0] != ACCOUNT_PREFIX {
        return false;
    }
    let expected = u16::from_le_bytes([raw[33], raw[34]]);
    crc16(&raw[..33]) == expected
}

/// Longest text echoed back in error messages about keys (keeps replies one short line).
const MAX_ECHO: usize = 64;

impl AccountKey {
    /// Validates `text` as an account public key: 56 base32 characters decoding to the
    /// account prefix byte, 32 key bytes and a matching CRC-16 (what Go's
    /// `IsValidPublicAccountKey` checks; no curve arithmetic, so it is cheap on the GET path).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if is_account_key_text(text) {
            Ok(AccountKey(text.to_string()))
        } else {
            let mut echo: String = text.chars().take(MAX_ECHO).collect();
            if echo.len() < text.len() {
                echo.push('…');
            }
            Err(KeyError::NotAccountKey(echo))
        }
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last two characters, which name the shard folder in a sharded store.
    pub fn shard(&self) -> &str {
        &self.0[self.0.len() - 2..]
    }

    /// The first 12 characters, used in log lines (Go `ShortKey`).
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AccountKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountKey::parse(s)
    }
}

/// The hash id of an activation token (base32 of a SHA-256, with `=` padding): 56 characters
/// of `A-Z2-7` ending in `====`. Safe as a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivationId(String);

impl ActivationId {
    /// Validates `text` as an activation hash id.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let body = text.strip_suffix("====");
        let ok = text.len() == 56
            && body.is_some_and(|b| {
                b.bytes()
                    .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
            });
        if ok {
            Ok(ActivationId(text.to_string()))
        } else {
            let echo: String = text.chars().take(MAX_ECHO).collect();
            Err(KeyError::NotActivationId(echo))
        }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// First 12 characters of any key-like string (or the string itself when shorter), for logs.
pub fn short_key(key: &str) -> &str {
    match key.char_indices().nth(12) {
        Some((i, _)) => &key[..i],
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_account_keys_only() {
        let acc = nkeys::KeyPair::new_account().public_key();
        let key = AccountKey::parse(&acc).unwrap();
        assert_eq!(key.as_str(), acc);
        assert_eq!(key.shard(), &acc[54..]);
        assert_eq!(key.short(), &acc[..12]);
        for bad in [
            nkeys::KeyPair::new_operator().public_key(),
            nkeys::KeyPair::new_user().public_key(),
            String::new(),
            "../../etc/passwd".into(),
            acc.to_lowercase(),
            format!("{acc}x"),
            acc[..55].to_string(),
            format!("{}\0", &acc[..55]),
        ] {
            assert!(AccountKey::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn agrees_with_the_nkeys_crate() {
        for _ in 0..200 {
            let k = nkeys::KeyPair::new_account().public_key();
            assert!(AccountKey::parse(&k).is_ok());
            // Any single-character change must agree with nkeys' own validation.
            let mut chars: Vec<char> = k.chars().collect();
            let i = (k.as_bytes()[10] as usize) % 55 + 1;
            chars[i] = if chars[i] == 'Q' { 'R' } else { 'Q' };
            let changed: String = chars.into_iter().collect();
            let nkeys_ok = nkeys::KeyPair::from_public_key(&changed)
                .map(|kp| kp.key_pair_type() == nkeys::KeyPairType::Account)
                .unwrap_or(false);
            assert_eq!(AccountKey::parse(&changed).is_ok(), nkeys_ok, "{changed}");
        }
        // 56 'A's: all-zero bytes with a zero CRC are a valid key, as in Go.
        assert!(AccountKey::parse(&"A".repeat(56)).is_ok());
    }

    #[test]
    fn checksum_is_verified() {
        let acc = nkeys::KeyPair::new_account().public_key();
        let mut chars: Vec<char> = acc.chars().collect();
        chars[20] = if chars[20] == 'B' { 'C' } else { 'B' };
        let broken: String = chars.into_iter().collect();
        assert!(AccountKey::parse(&broken).is_err());
    }

    #[test]
    fn long_input_is_not_echoed_in_full() {
        let err = AccountKey::parse(&"A".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 150, "{err}");
    }

    #[test]
    fn activation_ids() {
        let id = "HDQBMXLIXHA5SWDQAAQSWJC5ITLPCMOYPUDSH74ZDAW65XLYVSFQ====";
        assert_eq!(ActivationId::parse(id).unwrap().as_str(), id);
        for bad in [
            "",
            "../x",
            &id[..55],
            &id.to_lowercase(),
            &id.replace("====", "AAAA"),
        ] {
            assert!(ActivationId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_key_handles_short_strings() {
        assert_eq!(short_key("foo"), "foo");
        assert_eq!(short_key("ABCDEFGHIJKLMNOP"), "ABCDEFGHIJKL");
    }
}
