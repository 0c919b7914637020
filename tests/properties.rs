//! Property tests (proptest, bounded case counts so they run in CI): the JWT decoder, the config
//! parser and the directory store against simple models.

use std::collections::HashMap;
use std::path::Path;

use nats_account_server::config::natsconf::{self, Map, Value};
use nats_account_server::jwt;
use nats_account_server::keys::AccountKey;
use nats_account_server::store::{DirStore, JwtStore};
use proptest::prelude::*;
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text at all: an error or a token, never a panic.
    #[test]
    fn decoder_never_panics_on_text(text in ".{0,400}") {
        let _ = jwt::decode(&text);
        let _ = jwt::decode_account(&text);
    }

    /// Three well-formed base64 segments of arbitrary bytes: never a panic.
    #[test]
    fn decoder_never_panics_on_segments(h in proptest::collection::vec(any::<u8>(), 0..64),
                                        p in proptest::collection::vec(any::<u8>(), 0..256),
                                        s in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = jwt::decode(&format!("{}.{}.{}", b64(&h), b64(&p), b64(&s)));
        let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
        let _ = jwt::decode(&format!("{header}.{}.{}", b64(&p), b64(&s)));
    }

    /// Encoding then decoding keeps the claims; changing any character breaks the token.
    #[test]
    fn round_trip_and_tamper_detection(name in "\\PC{0,40}",
                                       exp in prop_oneof![Just(0i64), 1i64..4_000_000_000],
                                       tags in proptest::collection::vec("[a-z0-9]{1,8}", 0..4),
                                       flip in any::<prop::sample::Index>()) {
        let op = nkeys::KeyPair::new_operator();
        let acc = nkeys::KeyPair::new_account();
        let claims = json!({"name": name, "sub": acc.public_key(), "exp": exp,
                            "nats": {"type": "account", "version": 2, "tags": tags}});
        let token = jwt::encode(&claims, &op).unwrap();
        let (decoded, _) = jwt::decode_account(&token).unwrap();
        prop_assert_eq!(&decoded.claims.name, &name);
        prop_assert_eq!(decoded.claims.exp, exp);
        prop_assert_eq!(&decoded.claims.sub, &acc.public_key());
        // Flip one character of the header or payload segment.
        let signed_len = token.rfind('.').unwrap();
        let i = flip.index(signed_len);
        let mut bytes = token.clone().into_bytes();
        if bytes[i] != b'.' {
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != token {
                prop_assert!(jwt::decode(&tampered).is_err());
            }
        }
    }
}

/// A generated config value and how to write it.
#[derive(Debug, Clone)]
enum Gen {
    Int(i64),
    Bool(bool),
    Str(String),
    List(Vec<Gen>),
    Block(Vec<(String, Gen)>),
}

fn gen_value() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(Gen::Int),
        any::<bool>().prop_map(Gen::Bool),
        "[a-zA-Z0-9 ./:_-]{0,20}".prop_map(Gen::Str),
        "[\\t\\n\"\\\\a-z]{0,10}".prop_map(Gen::Str),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Gen::List),
            proptest::collection::vec(("k[a-z0-9_]{0,8}", inner), 0..5).prop_map(|entries| {
                // Keys are unique within a block (duplicates: last wins, tested elsewhere).
                let mut seen = std::collections::HashSet::new();
                Gen::Block(
                    entries
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render(g: &Gen, style: usize) -> String {
    match g {
        Gen::Int(i) => i.to_string(),
        Gen::Bool(b) => {
            ["true", "false", "yes", "no"][usize::from(!*b) + 2 * (style % 2)].to_string()
        }
        Gen::Str(s) => quote(s),
        Gen::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| render(i, style))
                .collect::<Vec<_>>()
                .join(if style.is_multiple_of(2) { ", " } else { "\n" })
        ),
        Gen::Block(entries) => format!("{{\n{}\n}}", render_entries(entries, style)),
    }
}

fn render_entries(entries: &[(String, Gen)], style: usize) -> String {
    let sep = [": ", " = ", " ", ":"][style % 4];
    entries
        .iter()
        .map(|(k, v)| format!("{k}{sep}{} # c", render(v, style)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn same(g: &Gen, v: &Value) -> bool {
    match (g, v) {
        (Gen::Int(a), Value::Integer(b)) => a == b,
        (Gen::Bool(a), Value::Bool(b)) => a == b,
        (Gen::Str(a), Value::String(b)) => a == b,
        (Gen::List(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, &y.value))
        }
        (Gen::Block(a), Value::Map(b)) => same_map(a, b),
        _ => false,
    }
}

fn same_map(a: &[(String, Gen)], b: &Map) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, &v2.value))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any generated config, written in any of the key/value styles, parses back to itself.
    #[test]
    fn config_round_trip(entries in proptest::collection::vec(("k[a-z0-9_]{0,8}", gen_value()), 0..6),
                         style in 0usize..8) {
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<(String, Gen)> = entries.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
        let text = render_entries(&entries, style);
        let parsed = natsconf::parse_str(&text, Path::new("/p.conf"), &|_| None);
        prop_assert!(parsed.is_ok(), "{text}\n{parsed:?}");
        let parsed = parsed.unwrap();
        prop_assert!(same_map(&entries, &parsed), "{text}\n{parsed:?}");
    }

    /// Any text: a tree or an error with a line inside the text, never a panic.
    #[test]
    fn config_parser_never_panics(text in "(?s).{0,300}") {
        if let Err(e) = natsconf::parse_str(&text, Path::new("/p.conf"), &|_| None) {
            prop_assert!(e.line <= text.lines().count() + 1, "{e:?}");
        }
        let _ = natsconf::parse_toml_str(&text, Path::new("/p.toml"));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Save(usize, Vec<u8>),
    Load(usize),
    Reopen,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0usize..6, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(k, v)| Op::Save(k, v)),
            4 => (0usize..6).prop_map(Op::Load),
            1 => Just(Op::Reopen),
        ],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random saves, loads and restarts agree with a map; no temp file is ever left over.
    #[test]
    fn store_matches_a_model(ops in ops(), shard in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let keys: Vec<AccountKey> = (0..6)
            .map(|_| AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap())
            .collect();
        let mut store = DirStore::open(tmp.path(), shard).unwrap();
        let mut model: HashMap<usize, Vec<u8>> = HashMap::new();
        for op in ops {
            match op {
                Op::Save(k, v) => {
                    store.save(&keys[k], &v).unwrap();
                    model.insert(k, v);
                }
                Op::Load(k) => prop_assert_eq!(store.load(&keys[k]).unwrap(), model.get(&k).cloned()),
                Op::Reopen => {
                    store = DirStore::open(tmp.path(), shard).unwrap();
                    prop_assert_eq!(store.sweep_temp_files().unwrap(), 0);
                }
            }
        }
        for (k, v) in &model {
            prop_assert_eq!(store.load(&keys[*k]).unwrap(), Some(v.clone()));
        }
    }
}

#[path = "reference/claims_by_full_parse.rs"]
mod reference;
use reference::claims_by_full_parse;

/// Any JSON value (bounded depth), with strings that need escaping.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        "(\\PC|[\"\\\\{}\\[\\]\u{1}\n])*".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::vec(("(jti|exp|iat|[a-z\"]{0,4})", inner), 0..6)
                .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A time claim: mostly an integer, sometimes absent or any other value.
fn claim_number() -> impl Strategy<Value = Option<serde_json::Value>> {
    prop_oneof![
        1 => Just(None),
        3 => any::<i64>().prop_map(|n| Some(serde_json::Value::from(n))),
        1 => json_value().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For every JSON document serde_json writes, compact or pretty, the scanner reads the
    /// same jti/exp/iat as a full parse (or refuses it just the same).
    #[test]
    fn claim_scanner_agrees_with_a_full_parse(
        jti in prop_oneof![
            1 => Just(None),
            4 => "(\\PC|[\"\\\\\u{1}])*".prop_map(|s| Some(serde_json::Value::from(s))),
            1 => json_value().prop_map(Some),
        ],
        exp in claim_number(),
        iat in claim_number(),
        others in proptest::collection::vec(("[a-z_]{1,6}", json_value()), 0..5),
        pretty in any::<bool>(),
    ) {
        let mut object = serde_json::Map::new();
        for (key, value) in others {
            object.insert(key, value);
        }
        for (key, value) in [("jti", jti), ("exp", exp), ("iat", iat)] {
            if let Some(value) = value {
                object.insert(key.to_string(), value);
            }
        }
        let value = serde_json::Value::Object(object);
        let text = if pretty {
            serde_json::to_vec_pretty(&value).unwrap()
        } else {
            serde_json::to_vec(&value).unwrap()
        };
        prop_assert_eq!(jwt::peek::scan_claims(&text), claims_by_full_parse(&text));
    }

    /// Arbitrary bytes: never a panic.
    #[test]
    fn claim_scanner_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = jwt::peek::scan_claims(&bytes);
        let _ = jwt::peek::peek(&bytes);
    }
}

/// Hand-picked documents where the two must also agree: escapes in keys and values, numbers
/// at and past the i64 range, whitespace everywhere, duplicates.
#[test]
fn claim_scanner_agrees_on_edge_cases() {
    for doc in [
        r#"{"jti":"a","exp":9223372036854775807,"iat":-9223372036854775808}"#,
        r#"{"jti":"a","exp":9223372036854775808,"iat":-9223372036854775809}"#,
        r#"{"jti":"a","exp":1.0,"iat":1e3}"#,
        r#"{"jti":"a","exp":-0,"iat":null}"#,
        r#"{"\u006a\u0074\u0069":"esc\"aped\\","exp":3}"#,
        r#"  {  "jti"  :  "a"  ,  "exp"  :  5  }  "#,
        r#"{"jti":"a","jti":"b"}"#,
        r#"{"jti":"a","\u0065xp":1,"exp":2}"#,
        r#"{"jti":"a","exp":true}"#,
        r#"{"jti":"a","nats":{"jti":"b","exp":[1,{"iat":"}"}]}}"#,
        r#"{"jti":"a"}[]"#,
        r#"[]"#,
        r#"["a", 1, 2]"#,
        r#"{}"#,
    ] {
        assert_eq!(
            jwt::peek::scan_claims(doc.as_bytes()),
            claims_by_full_parse(doc.as_bytes()),
            "{doc}"
        );
    }
}
