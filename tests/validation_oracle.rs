//! "Stored means accepted", shown against the real thing: hundreds of generated account JWTs
//! (every claim field: absent, zero, negative, out of range, wrong type, wildcards, duplicate and
//! case-variant keys, imports and exports of every kind, mappings, trace, cluster traffic,
//! authorization, signing keys, tiered JetStream limits, revocations) go to nats-server 2.9.10
//! and 2.15.1 (full resolvers, `$SYS.REQ.CLAIMS.UPDATE`) and are POSTed to us. For each:
//! stored by us ⇒ accepted by both; refused by either ⇒ refused by us with a reason; accepted
//! by both, trusted, unexpired and unambiguous ⇒ stored by us. Then users of a sample of the
//! stored accounts connect through URL-resolver nats-servers of both versions.
//!
//! `ORACLE_SEED=<n>` replays a run; `ORACLE_CASES=<n>` changes the number of cases (600).

mod support;

use std::sync::LazyLock;

use nkeys::KeyPair;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use support::oracle::{sign_payload, Doc, Oracle};
use support::*;

/// Keys the generated claims refer to.
struct Pool {
    accounts: Vec<KeyPair>,
    users: Vec<String>,
    curve: String,
    untrusted_operator: KeyPair,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    accounts: (0..3).map(|_| KeyPair::new_account()).collect(),
    users: (0..3).map(|_| KeyPair::new_user().public_key()).collect(),
    curve: KeyPair::new(nkeys::KeyPairType::Curve).public_key(),
    untrusted_operator: KeyPair::new_operator(),
});

/// A value that refers to keys known only when the case runs.
#[derive(Debug, Clone)]
enum Val {
    Json(Value),
    /// The account's own key.
    SelfKey,
    /// An activation token from pool account `exporter` for this account.
    Activation {
        exporter: usize,
        kind: &'static str,
        subject: &'static str,
    },
    Obj(Vec<(String, Val)>),
    Arr(Vec<Val>),
}

impl Val {
    fn doc(&self, me: &str) -> Doc {
        match self {
            Val::Json(v) => Doc::tree(v.clone()),
            Val::SelfKey => Doc::of(json!(me)),
            Val::Activation {
                exporter,
                kind,
                subject,
            } => {
                let kp = &POOL.accounts[*exporter];
                let claims = json!({"sub": me, "name": "act",
                    "nats": {"subject": subject, "kind": kind, "type": "activation", "version": 2}});
                Doc::of(json!(sign(&claims, kp)))
            }
            Val::Obj(entries) => Doc::Obj(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.doc(me)))
                    .collect(),
            ),
            Val::Arr(items) => Doc::Arr(items.iter().map(|v| v.doc(me)).collect()),
        }
    }
}

fn j(v: Value) -> Val {
    Val::Json(v)
}

/// One change to the baseline claims.
#[derive(Debug, Clone)]
struct Edit {
    path: Vec<&'static str>,
    key: String,
    value: Option<Val>,
    /// Appended even when the key exists (a duplicate).
    append: bool,
    /// Makes the token ambiguous between Go and exact readers (duplicate or case variant).
    ambiguous: bool,
}

fn set(path: &[&'static str], key: &str, value: Val) -> Edit {
    Edit {
        path: path.to_vec(),
        key: key.to_string(),
        value: Some(value),
        append: false,
        ambiguous: false,
    }
}

fn remove(path: &[&'static str], key: &str) -> Edit {
    Edit {
        path: path.to_vec(),
        key: key.to_string(),
        value: None,
        append: false,
        ambiguous: false,
    }
}

fn int_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!(-1)),
        2 => Just(json!(0)),
        2 => (1i64..6).prop_map(|n| json!(n)),
        1 => Just(json!(1_000_000)),
        1 => Just(json!(-5)),
        1 => Just(json!(i64::MAX)),
        1 => Just(json!("5")),
        1 => Just(json!(1.5)),
        1 => Just(Value::Null),
        1 => Just(json!(true)),
    ]
}

fn bool_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!(true)),
        3 => Just(json!(false)),
        1 => Just(Value::Null),
        1 => Just(json!("true")),
        1 => Just(json!(1)),
    ]
}

fn subject() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("a.b"),
        2 => Just("svc.q"),
        2 => Just("w.>"),
        2 => Just("x.*.y"),
        1 => Just("*"),
        1 => Just(""),
        1 => Just(".a"),
        1 => Just("a..b"),
        1 => Just("a b"),
        1 => Just("a."),
    ]
}

fn account_ref() -> impl Strategy<Value = Val> {
    prop_oneof![
        4 => (0..3usize).prop_map(|i| j(json!(POOL.accounts[i].public_key()))),
        1 => Just(Val::SelfKey),
        1 => Just(j(json!(""))),
        1 => Just(j(json!("ABAD"))),
        1 => (0..3usize).prop_map(|i| j(json!(POOL.users[i]))),
    ]
}

fn kind() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(Some(json!("stream"))),
        3 => Just(Some(json!("service"))),
        1 => Just(None),
        1 => Just(Some(json!("bogus"))),
        1 => Just(Some(json!(""))),
    ]
}

/// Builds an object from optional fields.
fn obj(fields: Vec<(&str, Option<Val>)>) -> Val {
    Val::Obj(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn import() -> impl Strategy<Value = Val> {
    (
        subject(),
        account_ref(),
        kind(),
        prop::option::of(subject()),
        prop::option::of(subject()),
        prop::option::of(bool_like()),
        prop::option::of(bool_like()),
        prop::option::weighted(
            0.15,
            (
                0..3usize,
                prop_oneof![Just("stream"), Just("service")],
                subject(),
            ),
        ),
    )
        .prop_map(|(subject, account, kind, local, to, share, trace, token)| {
            obj(vec![
                ("name", Some(j(json!("imp")))),
                ("subject", Some(j(json!(subject)))),
                ("account", Some(account)),
                ("type", kind.map(j)),
                ("local_subject", local.map(|s| j(json!(s)))),
                ("to", to.map(|s| j(json!(s)))),
                ("share", share.map(j)),
                ("allow_trace", trace.map(j)),
                (
                    "token",
                    token.map(|(exporter, kind, subject)| Val::Activation {
                        exporter,
                        kind,
                        subject,
                    }),
                ),
            ])
        })
}

fn latency() -> impl Strategy<Value = Val> {
    (
        prop_oneof![
            Just(json!(50)),
            Just(json!(100)),
            Just(json!(0)),
            Just(json!(101)),
            Just(json!("headers")),
            Just(json!("bogus")),
            Just(json!(-1))
        ],
        prop_oneof![Just("lat.r"), Just("lat.*"), Just("")],
    )
        .prop_map(|(sampling, results)| {
            obj(vec![
                ("sampling", Some(j(sampling))),
                ("results", Some(j(json!(results)))),
            ])
        })
}

fn export() -> impl Strategy<Value = Val> {
    (
        (subject(), kind(), prop::option::of(bool_like())),
        prop::option::weighted(
            0.3,
            prop_oneof![
                Just(json!("Singleton")),
                Just(json!("Stream")),
                Just(json!("Chunked")),
                Just(json!("bogus"))
            ],
        ),
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(json!(1_000_000_000i64)),
                Just(json!(-1)),
                Just(json!("1s"))
            ],
        ),
        prop::option::weighted(0.2, latency()),
        prop::option::weighted(0.2, 0u64..4),
        prop::option::weighted(0.2, (bool_like(), bool_like())),
        prop::option::weighted(
            0.15,
            prop_oneof![
                (0..3usize).prop_map(|i| json!({ POOL.users[i].clone(): 1 })),
                Just(json!({"*": 1})),
                Just(json!({"garbage": 1}))
            ],
        ),
        prop::option::weighted(
            0.1,
            prop_oneof![Just(json!("https://x.example/i")), Just(json!("::bad"))],
        ),
    )
        .prop_map(
            |((subject, kind, token_req), rtype, threshold, lat, pos, adv_trace, revs, info)| {
                obj(vec![
                    ("name", Some(j(json!("exp")))),
                    ("subject", Some(j(json!(subject)))),
                    ("type", kind.map(j)),
                    ("token_req", token_req.map(j)),
                    ("response_type", rtype.map(j)),
                    ("response_threshold", threshold.map(j)),
                    ("service_latency", lat),
                    ("account_token_position", pos.map(|p| j(json!(p)))),
                    ("advertise", adv_trace.as_ref().map(|(a, _)| j(a.clone()))),
                    ("allow_trace", adv_trace.map(|(_, t)| j(t))),
                    ("revocations", revs.map(j)),
                    ("info_url", info.map(j)),
                ])
            },
        )
}

fn mapping() -> impl Strategy<Value = Val> {
    let target = (
        subject(),
        prop_oneof![
            Just(json!(100)),
            Just(json!(50)),
            Just(json!(60)),
            Just(json!(0)),
            Just(json!(128)),
            Just(json!(150)),
            Just(json!(300)),
            Just(json!(-1))
        ],
        prop::option::of(prop_oneof![Just("c1"), Just("c2")]),
    )
        .prop_map(|(s, w, c)| {
            obj(vec![
                ("subject", Some(j(json!(s)))),
                ("weight", Some(j(w))),
                ("cluster", c.map(|c| j(json!(c)))),
            ])
        });
    (subject(), prop::collection::vec(target, 1..4))
        .prop_map(|(from, to)| Val::Obj(vec![(from.to_string(), Val::Arr(to))]))
}

fn signing_key() -> impl Strategy<Value = Val> {
    let template = (
        prop::option::of(subject()),
        prop::option::of(prop_oneof![
            Just(json!(["127.0.0.1/32"])),
            Just(json!(["bad-cidr"]))
        ]),
        prop::option::of(prop_oneof![
            Just(json!([{"start": "01:00:00", "end": "02:00:00"}])),
            Just(json!([{"start": "1am", "end": "2"}]))
        ]),
        prop::option::of(bool_like()),
    )
        .prop_map(|(allow, src, times, bearer)| {
            obj(vec![
                (
                    "pub",
                    allow.map(|s| obj(vec![("allow", Some(j(json!([s]))))])),
                ),
                ("src", src.map(j)),
                ("times", times.map(j)),
                ("bearer_token", bearer.map(j)),
            ])
        });
    prop_oneof![
        3 => (0..3usize).prop_map(|i| j(json!(POOL.accounts[i].public_key()))),
        1 => Just(j(json!(KeyPair::new_operator().public_key()))),
        1 => Just(j(json!("not-a-key"))),
        2 => (
            prop_oneof![Just("user_scope"), Just("bogus")],
            prop_oneof![
                3 => (0..3usize).prop_map(|i| POOL.accounts[i].public_key()),
                1 => Just(POOL.users[0].clone())
            ],
            prop::option::of(template),
        )
            .prop_map(|(kind, key, template)| obj(vec![
                ("kind", Some(j(json!(kind)))),
                ("key", Some(j(json!(key)))),
                ("role", Some(j(json!("r")))),
                ("template", template),
            ])),
    ]
}

fn authorization() -> impl Strategy<Value = Val> {
    let user_list = prop::collection::vec(
        prop_oneof![
            3 => (0..3usize).prop_map(|i| json!(POOL.users[i])),
            1 => (0..3usize).prop_map(|i| json!(POOL.accounts[i].public_key())),
            1 => Just(json!("garbage")),
        ],
        0..3,
    );
    let account_list = prop::collection::vec(
        prop_oneof![
            3 => (0..3usize).prop_map(|i| json!(POOL.accounts[i].public_key())),
            1 => Just(json!("*")),
            1 => Just(json!("garbage")),
        ],
        0..3,
    );
    (
        prop::option::of(user_list),
        prop::option::of(account_list),
        prop::option::of(prop_oneof![
            Just(json!(POOL.curve)),
            Just(json!("XBAD")),
            Just(json!(POOL.users[0]))
        ]),
    )
        .prop_map(|(users, accounts, xkey)| {
            obj(vec![
                ("auth_users", users.map(|u| j(json!(u)))),
                ("allowed_accounts", accounts.map(|a| j(json!(a)))),
                ("xkey", xkey.map(j)),
            ])
        })
}

static LIMIT_INTS: [&str; 14] = [
    "subs",
    "data",
    "payload",
    "imports",
    "exports",
    "conn",
    "leaf",
    "mem_storage",
    "disk_storage",
    "streams",
    "consumer",
    "max_ack_pending",
    "mem_max_stream_bytes",
    "disk_max_stream_bytes",
];

fn ambiguous() -> impl Strategy<Value = Edit> {
    let case = |path: &[&'static str], key: &str, value: Value| Edit {
        path: path.to_vec(),
        key: key.to_string(),
        value: Some(j(value)),
        append: true,
        ambiguous: true,
    };
    prop_oneof![
        Just(case(&[], "Exp", json!(1_000_000))),
        Just(case(&[], "SUB", json!(POOL.accounts[0].public_key()))),
        Just(case(&[], "sub", json!(POOL.accounts[1].public_key()))),
        Just(case(&[], "jti", json!("SECOND"))),
        Just(case(&[], "iat", json!(1))),
        Just(case(&[], "exp", json!(2_000_000_000i64))),
        Just(case(&[], "NATS", json!({"type": "user", "version": 2}))),
        Just(case(&["nats"], "Type", json!("user"))),
        Just(case(&["nats", "limits"], "exports", json!(0))),
        Just(case(&["nats", "limits"], "Wildcards", json!(false))),
        Just(case(&["nats", "limits"], "ExPorts", json!(0))),
        Just(case(&[], "ſub", json!(POOL.accounts[2].public_key()))),
    ]
}

/// One edit of the baseline: any claim field.
fn edit() -> impl Strategy<Value = Edit> {
    let lim = &["nats", "limits"];
    prop_oneof![
        6 => (prop::sample::select(&LIMIT_INTS[..]), int_like())
            .prop_map(move |(k, v)| set(lim, k, j(v))),
        2 => (prop::sample::select(&LIMIT_INTS[..]), Just(()))
            .prop_map(move |(k, _)| remove(lim, k)),
        3 => (prop_oneof![Just("wildcards"), Just("disallow_bearer"), Just("max_bytes_required")],
              prop::option::of(bool_like()))
            .prop_map(move |(k, v)| match v { Some(v) => set(lim, k, j(v)), None => remove(lim, k) }),
        1 => Just(remove(&["nats"], "limits")),
        1 => Just(set(&["nats"], "limits", j(json!({})))),
        2 => (prop::sample::select(&LIMIT_INTS[7..]), int_like(), prop::bool::ANY)
            .prop_map(move |(k, v, flat_too)| {
                let mut e = set(lim, "tiered_limits", j(json!({"R1": {k: v, "streams": -1}})));
                if flat_too { e.value = Some(j(json!({"R1": {k: 1}, "R3": {k: 1}}))); }
                e
            }),
        6 => prop::collection::vec(import(), 1..4).prop_map(|v| set(&["nats"], "imports", Val::Arr(v))),
        6 => prop::collection::vec(export(), 1..4).prop_map(|v| set(&["nats"], "exports", Val::Arr(v))),
        3 => mapping().prop_map(|m| set(&["nats"], "mappings", m)),
        2 => (subject(), prop_oneof![Just(json!(50)), Just(json!(100)), Just(json!(0)),
                                     Just(json!(200)), Just(json!(-1)), Just(Value::Null)])
            .prop_map(|(d, s)| set(&["nats"], "trace", obj(vec![("dest", Some(j(json!(d)))), ("sampling", Some(j(s)))]))),
        2 => prop_oneof![Just(json!("system")), Just(json!("owner")), Just(json!("")),
                         Just(json!("bogus")), Just(json!(5))]
            .prop_map(|v| set(&["nats"], "cluster_traffic", j(v))),
        3 => authorization().prop_map(|a| set(&["nats"], "authorization", a)),
        3 => prop::collection::vec(signing_key(), 1..3).prop_map(|v| set(&["nats"], "signing_keys", Val::Arr(v))),
        2 => prop_oneof![
                (0..3usize).prop_map(|i| json!({ POOL.users[i].clone(): 1_000_000 })),
                Just(json!({"*": 1_000_000})),
                Just(json!({"garbage": 5})),
                Just(json!({"*": "soon"})),
            ].prop_map(|v| set(&["nats"], "revocations", j(v))),
        2 => (subject(), prop::option::of(int_like()))
            .prop_map(|(s, max)| set(&["nats"], "default_permissions", obj(vec![
                ("pub", Some(obj(vec![("allow", Some(j(json!([s]))))]))),
                ("sub", Some(obj(vec![("deny", Some(j(json!([s]))))]))),
                ("resp", max.map(|m| obj(vec![("max", Some(j(m))), ("ttl", Some(j(json!(1_000_000_000))))]))),
            ]))),
        1 => prop_oneof![Just(json!("https://example.com/a")), Just(json!("::nope")), Just(json!(""))]
            .prop_map(|v| set(&["nats"], "info_url", j(v))),
        1 => Just(set(&["nats"], "description", j(json!("d")))),
        1 => prop_oneof![Just(json!(["t1"])), Just(json!("t1")), Just(json!([1]))]
            .prop_map(|v| set(&["nats"], "tags", j(v))),
        2 => prop_oneof![Just(json!(-100)), Just(json!(1)), Just(json!(9_999_999_999i64)),
                         Just(json!("x")), Just(Value::Null)]
            .prop_map(|v| set(&[], "exp", j(v))),
        1 => prop_oneof![Just(json!(1)), Just(json!(9_999_999_999i64)), Just(json!(-3))]
            .prop_map(|v| set(&[], "nbf", j(v))),
        2 => prop_oneof![Just(json!(0)), Just(json!(-7)), Just(json!(9_000_000_000i64)),
                         Just(json!(i64::MAX)), Just(json!(1.5)), Just(Value::Null)]
            .prop_map(|v| set(&[], "iat", j(v))),
        2 => prop_oneof![Just(None), Just(Some(Value::Null)), Just(Some(json!(7)))]
            .prop_map(|v| match v { Some(v) => set(&[], "jti", j(v)), None => remove(&[], "jti") }),
        1 => prop_oneof![Just(json!(5)), Just(json!("aud")), Just(Value::Null)]
            .prop_map(|v| set(&[], "aud", j(v))),
        1 => prop_oneof![Just(json!(3)), Just(json!("user")), Just(json!(1)), Just(json!("2"))]
            .prop_map(|v| match v.as_str() {
                Some("user") => set(&["nats"], "type", j(v)),
                _ => set(&["nats"], "version", j(v)),
            }),
        4 => ambiguous(),
        4 => limits_with_one_export_or_import(),
    ]
}

/// A whole `nats` object with one valid import or export and the limits that govern it absent,
/// 0, 1 or -1 (and `wildcards` absent, false or true), or no limits at all.
fn limits_with_one_export_or_import() -> impl Strategy<Value = Edit> {
    (
        prop_oneof![Just("a.b"), Just("w.>")],
        prop_oneof![Just(None), Just(Some(0)), Just(Some(1)), Just(Some(-1))],
        prop_oneof![Just(None), Just(Some(false)), Just(Some(true))],
        any::<bool>(),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(subject, limit, wildcards, is_import, has_limits)| {
            let mut limits = json!({"conn": -1, "subs": -1, "data": -1, "payload": -1});
            if let Some(n) = limit {
                limits[if is_import { "imports" } else { "exports" }] = json!(n);
            }
            if let Some(w) = wildcards {
                limits["wildcards"] = json!(w);
            }
            let mut nats = json!({"type": "account", "version": 2});
            if has_limits {
                nats["limits"] = limits;
            }
            if is_import {
                nats["imports"] = json!([{"name": "i", "subject": subject, "type": "stream",
                    "account": POOL.accounts[0].public_key()}]);
            } else {
                nats["exports"] = json!([{"name": "e", "subject": subject, "type": "stream"}]);
            }
            set(&[], "nats", j(nats))
        })
}

/// Who signs the case.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Signer {
    SigningKey,
    Operator,
    Untrusted,
    SelfSigned,
}

#[derive(Debug, Clone)]
struct Case {
    edits: Vec<Edit>,
    signer: Signer,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(edit(), 1..4),
        prop_oneof![
            14 => Just(Signer::SigningKey),
            3 => Just(Signer::Operator),
            2 => Just(Signer::Untrusted),
            1 => Just(Signer::SelfSigned),
        ],
    )
        .prop_map(|(edits, signer)| Case { edits, signer })
}

/// The baseline document of account `me`, issued at `iat`.
fn baseline(me: &str, iat: i64) -> Doc {
    let mut d = Doc::Obj(Vec::new());
    d.set(&[], "jti", Doc::of(json!(format!("J{iat}{}", &me[..8]))));
    d.set(&[], "iat", Doc::of(json!(iat)));
    d.set(&[], "iss", Doc::of(json!("")));
    d.set(&[], "name", Doc::of(json!("gen")));
    d.set(&[], "sub", Doc::of(json!(me)));
    let limits = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                        "wildcards": true, "conn": -1, "leaf": -1});
    d.set(&["nats"], "limits", Doc::tree(limits));
    d.set(
        &["nats"],
        "default_permissions",
        Doc::tree(json!({"pub": {}, "sub": {}})),
    );
    d.set(&["nats"], "type", Doc::of(json!("account")));
    d.set(&["nats"], "version", Doc::of(json!(2)));
    d
}

struct Made {
    jwt: String,
    account: KeyPair,
    trusted: bool,
    ambiguous: bool,
    /// Refused by us for time reasons nats-server's update path does not check.
    time_refusal: bool,
    /// The claims as an exact reader sees them (for the connect sample).
    claims: Value,
}

fn make(w: &World, case: &Case, now: i64) -> Made {
    let account = KeyPair::new_account();
    let me = account.public_key();
    let mut doc = baseline(&me, now - 5);
    let signer = match case.signer {
        Signer::SigningKey => &w.signing_key,
        Signer::Operator => &w.operator,
        Signer::Untrusted => &POOL.untrusted_operator,
        Signer::SelfSigned => &account,
    };
    doc.set(&[], "iss", Doc::of(json!(signer.public_key())));
    let mut ambiguous = false;
    for e in &case.edits {
        match &e.value {
            None => doc.remove(&e.path, &e.key),
            Some(v) if e.append => doc.append(&e.path, &e.key, v.doc(&me)),
            Some(v) => doc.set(&e.path, &e.key, v.doc(&me)),
        }
    }
    // Still in the final document: a case variant, or a key written twice.
    for e in case.edits.iter().filter(|e| e.ambiguous) {
        let exact = e.key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        let n = doc.count(&e.path, &e.key);
        ambiguous |= (n >= 1 && !exact) || n >= 2;
    }
    let payload = doc.render();
    let claims: Value = serde_json::from_str(&payload).unwrap();
    let int = |k: &str| claims[k].as_i64().unwrap_or(0);
    // nats-server treats any non-zero exp not in the future as expired.
    let time_refusal =
        (int("exp") != 0 && int("exp") <= now) || int("nbf") > now || int("iat") > now + 300;
    Made {
        jwt: sign_payload(&payload, signer),
        trusted: matches!(case.signer, Signer::SigningKey | Signer::Operator),
        account,
        ambiguous,
        time_refusal,
        claims,
    }
}

/// Whether a user of this (stored) account should be able to connect.
fn connectable(claims: &Value) -> bool {
    let limits = &claims["nats"]["limits"];
    let conn_ok = matches!(limits["conn"].as_i64(), Some(n) if n == -1 || n > 0);
    let revoked = claims["nats"]["revocations"].get("*").is_some();
    // With auth users, other users go to an auth callout service (none runs here).
    let callout = claims["nats"]["authorization"]["auth_users"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    conn_ok && !revoked && !callout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_means_accepted_by_nats_server_2_9_and_2_15() {
    let w = World::new();
    let old = Oracle::start(&w, &nats_server_binary(), "oracle29", "2.9.10").await;
    let new = Oracle::start(&w, &nats_server_215_binary(), "oracle215", "2.15.1").await;
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("store"), Some(&w.operator_path), ""),
    );
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );

    let seed: u64 = std::env::var("ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now() as u64);
    let cases: usize = std::env::var("ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    println!("ORACLE_SEED={seed} ORACLE_CASES={cases}");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = case();

    let (mut stored, mut refused_by_oracle, mut ours_only) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut sample = Vec::new();
    let now = now();
    for i in 0..cases {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let made = make(&w, &case, now);
        let v29 = old.verdict(&made.jwt).await;
        let v215 = new.verdict(&made.jwt).await;
        let key = made.account.public_key();
        let ours = nas.post_account(&key, &made.jwt);
        let both_accept = v29.is_ok() && v215.is_ok();
        let should_store = both_accept && made.trusted && !made.ambiguous && !made.time_refusal;
        let we_stored = ours.status == 200;
        let verdicts = format!(
            "2.9.10: {v29:?}; 2.15.1: {v215:?}; ours: {} {}",
            ours.status,
            ours.text().trim()
        );
        if we_stored && !both_accept {
            failures.push(format!(
                "#{i} stored by us but refused by nats-server ({verdicts})\n  case: {case:?}"
            ));
        } else if !we_stored && ours.text().trim().is_empty() {
            failures.push(format!("#{i} refused without a reason ({verdicts})"));
        } else if should_store && !we_stored {
            failures.push(format!("#{i} over-refusal: accepted by both, trusted, unexpired, unambiguous ({verdicts})\n  case: {case:?}"));
        } else if we_stored && !should_store {
            failures.push(format!("#{i} stored although untrusted, expired or ambiguous ({verdicts})\n  case: {case:?}"));
        }
        if we_stored {
            stored += 1;
            let got = nas.get(&format!("/jwt/v1/accounts/{key}"));
            if got.status != 200 || got.body != made.jwt.as_bytes() {
                failures.push(format!(
                    "#{i} stored but GET answers {} {}",
                    got.status,
                    got.text()
                ));
            }
            if connectable(&made.claims) && sample.len() < 8 {
                sample.push((made.account, made.claims));
            }
        } else if !both_accept {
            refused_by_oracle += 1;
        } else {
            ours_only += 1;
        }
    }
    println!(
        "{cases} generated account JWTs: {stored} stored by us (accepted by both nats-servers), \
         {refused_by_oracle} refused by a nats-server and by us, {ours_only} accepted by both \
         but refused by us (untrusted, expired, not yet valid, future iat or ambiguous keys); \
         {} mismatches",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches (replay with ORACLE_SEED={seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stored >= 50 && refused_by_oracle >= 50,
        "the generator lost its balance"
    );
    assert!(
        sample.len() >= 4,
        "too few connectable stored accounts: {}",
        sample.len()
    );

    // Users of stored accounts connect through URL-resolver servers of both versions.
    for (binary, name) in [
        (nats_server_binary(), "url29"),
        (nats_server_215_binary(), "url215"),
    ] {
        let opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
        let server = NatsServer::start_binary(&binary, w.dir.path(), name, &opts);
        for (account, claims) in &sample {
            let creds = w.user_creds(account, &format!("{name}-u"));
            let client = connect(&server.client_url(), &creds).await.unwrap_or_else(|e| {
                panic!("{name}: a user of stored account {} cannot connect: {e}\nclaims: {claims}\n{}",
                    account.public_key(), server.logs.text())
            });
            client.flush().await.unwrap();
        }
        println!(
            "{name}: users of {} stored accounts connected",
            sample.len()
        );
    }
}
