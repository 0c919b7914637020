//! The HTTP API as `nsc push` and nats-server use it: every Go fixture gets its manifest's
//! verdict, accepted JWTs come back byte for byte, bad pushes get 400 with a reason and leave
//! the store untouched, and the GET variants behave as documented.

mod support;

use serde_json::json;
use support::*;

fn start_with_fixture_operator(tmp: &std::path::Path, extra: &str) -> AccountServer {
    AccountServer::start(
        tmp,
        &nas_config(
            &tmp.join("jwt"),
            Some(&fixtures().join("operator.jwt")),
            extra,
        ),
    )
}

#[test]
fn every_go_fixture_gets_its_manifest_verdict_and_is_served_back_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let nas = start_with_fixture_operator(tmp.path(), "");
    let m = manifest();
    let mut checked = 0;
    for f in m["files"].as_array().unwrap() {
        if f["kind"] != "account_jwt" {
            continue;
        }
        let file = f["file"].as_str().unwrap();
        let key = f["public_key"].as_str().unwrap();
        let body = fixture(file);
        let reply = nas.post_account(key, &body);
        let valid = f["valid"].as_bool().unwrap();
        if valid {
            assert_eq!(reply.status, 200, "{file}: {}", reply.text());
            assert!(
                reply.body.is_empty(),
                "{file}: 200 with body {:?}",
                reply.text()
            );
            let served = nas.get(&format!("/jwt/v1/accounts/{key}"));
            assert_eq!(served.status, 200);
            assert_eq!(served.body, body.as_bytes(), "{file} not served verbatim");
            assert_eq!(served.header("content-type"), Some("application/jwt"));
        } else {
            assert_eq!(
                reply.status,
                400,
                "{file} should be refused: {}",
                reply.text()
            );
            let expect = f["expect"].as_str().unwrap();
            let reason = reply.text().to_lowercase();
            let wanted = if expect.contains("expired") {
                "expired"
            } else if expect.contains("signature") {
                "signature"
            } else if expect.contains("self-signed") {
                "self-signed"
            } else {
                "untrusted issuer"
            };
            assert!(
                reason.contains(wanted),
                "{file}: {reason:?} lacks {wanted:?}"
            );
            assert_eq!(
                reply.text().trim_end().lines().count(),
                1,
                "{file}: reason is not one line"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 10);
}

#[test]
fn bad_pushes_get_400_with_a_reason_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let nas = start_with_fixture_operator(tmp.path(), "");
    let m = manifest();
    let a = m["accounts"]["A"].as_str().unwrap();
    let b = m["accounts"]["B"].as_str().unwrap();
    // Something valid is stored first, so "unchanged" means something.
    assert_eq!(nas.post_account(a, &fixture("accounts/A.jwt")).status, 200);
    let before = snapshot(&tmp.path().join("jwt"));

    let key_of = |name: &str| m["accounts"][name].as_str().unwrap().to_string();
    let cases: Vec<(String, String, &str)> = vec![
        (a.into(), "hello world".into(), "bad jwt"),
        (a.into(), String::new(), "empty"),
        (a.into(), "a.b.c".into(), "bad jwt"),
        (b.into(), fixture("accounts/A.jwt"), "don't match"),
        (
            key_of("UNTRUSTED"),
            fixture("accounts/UNTRUSTED.jwt"),
            "untrusted issuer",
        ),
        (key_of("EXP"), fixture("accounts/EXP.jwt"), "expired"),
        (
            key_of("TAMPERED_SIG"),
            fixture("accounts/TAMPERED_SIG.jwt"),
            "signature",
        ),
        (
            key_of("TAMPERED_PAYLOAD"),
            fixture("accounts/TAMPERED_PAYLOAD.jwt"),
            "signature",
        ),
        (
            a.into(),
            fixture("accounts/A_selfsigned.jwt"),
            "self-signed",
        ),
        (a.into(), fixture("operator.jwt"), "not account claim"),
        (a.into(), fixture("users/ua.jwt"), "bad jwt"),
    ];
    for (key, body, reason) in cases {
        let reply = nas.post_account(&key, &body);
        assert_eq!(reply.status, 400, "{reason}: {}", reply.text());
        assert!(
            reply.text().to_lowercase().contains(reason),
            "expected {reason:?} in {:?}",
            reply.text()
        );
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            snapshot(&tmp.path().join("jwt")),
            before,
            "store changed by {reason}"
        );
    }
    // Not-UTF-8 body.
    let reply = post(&nas.addr, &format!("/jwt/v1/accounts/{a}"), b"\xff\xfe\xfd");
    assert_eq!(reply.status, 400);
    // Invalid keys in the path.
    for bad in [
        "nope",
        "%2e%2e",
        &a.to_lowercase(),
        m["users"]["ua"].as_str().unwrap(),
    ] {
        let reply = post(
            &nas.addr,
            &format!("/jwt/v1/accounts/{bad}"),
            fixture("accounts/A.jwt").as_bytes(),
        );
        assert_eq!(reply.status, 400, "{bad}");
    }
    assert_eq!(snapshot(&tmp.path().join("jwt")), before);
}

#[test]
fn without_an_operator_every_push_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let nas = AccountServer::start(tmp.path(), &nas_config(&tmp.path().join("jwt"), None, ""));
    let a = manifest()["accounts"]["A"].as_str().unwrap().to_string();
    let reply = nas.post_account(&a, &fixture("accounts/A.jwt"));
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("no operator"), "{}", reply.text());
    assert!(nas.logs.text().contains("No Operator is configured"));
}

#[test]
fn rust_made_pushes_nbf_limits_and_imports_are_validated() {
    let w = World::new();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
    );
    let kp = nkeys::KeyPair::new_account();
    let key = kp.public_key();

    let mut future = account_claims("F", &key);
    future["nbf"] = json!(now() + 3600);
    let reply = nas.post_account(&key, &sign(&future, &w.signing_key));
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("not yet valid"), "{}", reply.text());

    let mut too_many = account_claims("L", &key);
    too_many["nats"]["limits"]["exports"] = json!(0);
    too_many["nats"]["exports"] = json!([{"subject": "a.b", "type": "stream"}]);
    assert_eq!(
        nas.post_account(&key, &sign(&too_many, &w.signing_key))
            .status,
        400
    );

    let other_op = nkeys::KeyPair::new_operator();
    let reply = nas.post_account(&key, &sign(&account_claims("U", &key), &other_op));
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("untrusted issuer"));

    let other_acc = nkeys::KeyPair::new_account();
    let reply = nas.post_account(&key, &sign(&account_claims("U", &key), &other_acc));
    assert_eq!(reply.status, 400, "{}", reply.text());

    // A v1-format JWT by the operator is fine; a trailing newline is trimmed.
    let mut v1 = account_claims("V1", &key);
    v1["type"] = json!("account");
    v1["nats"].as_object_mut().unwrap().remove("type");
    v1["nats"].as_object_mut().unwrap().remove("version");
    let token = nats_account_server::jwt::encode_v1(&v1, &w.operator).unwrap();
    let reply = nas.post_account(&key, &format!("{token}\n"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{key}")).body,
        token.as_bytes()
    );
    assert!(w.path("jwt").join(format!("{key}.jwt")).exists());
}

#[test]
fn get_variants_headers_and_fallbacks() {
    let w = World::new();
    let sys_path = w.path("sys.jwt");
    std::fs::write(&sys_path, &w.sys_jwt).unwrap();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(
            &w.path("jwt"),
            Some(&w.operator_path),
            &format!("systemaccountjwtpath: \"{}\"\n", sys_path.display()),
        ),
    );
    // Resolver check.
    for path in ["/jwt/v1/accounts", "/jwt/v1/accounts/"] {
        let r = nas.get(path);
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(
            r.header("cache-control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(r.header("expires"), Some("0"));
    }
    assert_eq!(nas.get("/healthz").status, 200);
    let help = nas.get("/jwt/v1/help");
    assert_eq!(help.status, 200);
    assert_eq!(help.text(), nats_account_server::http::HELP_TEXT);
    let op = nas.get("/jwt/v1/operator");
    assert_eq!((op.status, op.text()), (200, w.operator_jwt.clone()));
    let decoded = nas.get("/jwt/v1/operator?decode=true");
    assert_eq!(decoded.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&decoded.text()).expect("JSON");
    assert_eq!(doc["header"]["alg"], "ed25519-nkey");
    assert_eq!(doc["claims"]["sub"], w.operator.public_key());
    assert_eq!(nas.get("/jwt/v2/operator").status, 404);
    assert_eq!(nas.get("/jwt/v1/biz").status, 404);

    // System account fallback from the file, before anything is stored.
    let sys = nas.get(&format!("/jwt/v1/accounts/{}", w.sys.public_key()));
    assert_eq!((sys.status, sys.text()), (200, w.sys_jwt.clone()));

    // One account with an expiry.
    let kp = nkeys::KeyPair::new_account();
    let key = kp.public_key();
    let mut claims = account_claims("E", &key);
    claims["exp"] = json!(now() + 1000);
    let token = sign(&claims, &w.signing_key);
    let path = format!("/jwt/v1/accounts/{key}");
    assert_eq!(nas.get(&path).status, 404);
    assert_eq!(nas.get(&path).text(), "no matching account JWT\n");
    assert_eq!(nas.post_account(&key, &token).status, 200);
    let r = nas.get(&path);
    let tag = nats_account_server::accounts::etag_of(token.as_bytes());
    assert_eq!(r.header("etag"), Some(format!("\"{tag}\"").as_str()));
    let cc = r.header("cache-control").unwrap();
    let max_age: i64 = cc
        .trim_start_matches("max-age=")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((990..=1000).contains(&max_age), "{cc}");
    assert!(cc.contains("stale-while-revalidate=3600, stale-if-error=3600"));
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(
        get_with(&nas.addr, &path, &[("If-None-Match", &etag)]).status,
        304
    );
    assert_eq!(
        get_with(&nas.addr, &path, &[("If-None-Match", "\"other\"")]).status,
        200
    );
    let text = nas.get(&format!("{path}?text=true"));
    assert_eq!(
        (text.header("content-type"), text.text()),
        (Some("text/plain"), token.clone())
    );
    // `?decode=true` is one JSON document; the dates are fields of their own.
    let decoded = nas.get(&format!("{path}?decode=true")).text();
    let doc: serde_json::Value = serde_json::from_str(&decoded).expect("JSON");
    assert_eq!(doc["header"]["alg"], "ed25519-nkey", "{decoded}");
    assert_eq!(doc["claims"]["sub"], key, "{decoded}");
    let iat = doc["claims"]["iat"].as_i64().unwrap();
    let date = doc["dates"]["iat"].as_str().unwrap();
    assert_eq!(chrono_free_secs(date), iat, "{date} is not the iat {iat}");
    assert_eq!(nas.get(&format!("{path}?check=true")).status, 200);
    assert_eq!(nas.get(&format!("{path}?notify=true")).status, 200);
    assert!(nas.logs.text().contains("skipping notification"));
    assert_eq!(nas.get(&format!("{path}?jti=x")).status, 501);

    // A JWT that never expires gets max-age=0 instead of the Go server's negative value.
    let (never, never_jwt) = w.new_account("N");
    assert_eq!(
        nas.post_account(&never.public_key(), &never_jwt).status,
        200
    );
    let r = nas.get(&format!("/jwt/v1/accounts/{}", never.public_key()));
    assert!(r.header("cache-control").unwrap().starts_with("max-age=0,"));

    // Wrong method and bad keys.
    let put = raw_request(
        &nas.addr,
        format!("PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(put.status, 405);
    assert_eq!(nas.get("/jwt/v1/accounts/NOTAKEY").status, 400);
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", w.operator.public_key()))
            .status,
        400
    );

    // CORS as the original: any origin echoed.
    let r = get_with(&nas.addr, &path, &[("Origin", "http://example.test")]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.test")
    );
}

#[test]
fn sharded_store_layout_is_last_two_characters_then_key() {
    let w = World::new();
    let store = w.path("jwt");
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&store, Some(&w.operator_path), "").replace(
            &format!("store {{ dir: \"{}\" }}", store.display()),
            &format!("store {{ dir: \"{}\", shard: true }}", store.display()),
        ),
    );
    let mut keys = Vec::new();
    for i in 0..5 {
        let (kp, jwt) = w.new_account(&format!("S{i}"));
        assert_eq!(nas.post_account(&kp.public_key(), &jwt).status, 200);
        keys.push((kp.public_key(), jwt));
    }
    let snap = snapshot(&store);
    let files: Vec<&String> = snap.keys().filter(|k| !k.ends_with('/')).collect();
    assert_eq!(files.len(), 5, "{files:?}");
    for (key, jwt) in &keys {
        let rel = format!("{}/{key}.jwt", &key[54..]);
        assert_eq!(
            snap.get(&rel).map(|b| b.as_slice()),
            Some(jwt.as_bytes()),
            "{rel}"
        );
    }
}

/// nats-server's plain fetch (`GET /jwt/v1/accounts/<key>`, no query, no Origin) is answered
/// without the router; its replies must be the router's, headers included.
#[test]
fn plain_account_fetches_get_the_same_reply_as_the_router_path() {
    let w = World::new();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
    );
    let (kp, jwt) = w.new_account("SAME");
    let key = kp.public_key();
    assert_eq!(nas.post_account(&key, &jwt).status, 200);
    let etag = nas
        .get(&format!("/jwt/v1/accounts/{key}"))
        .header("etag")
        .unwrap()
        .to_string();
    let without_date = |r: &Reply| {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(name, _)| name != "date")
            .cloned()
            .collect();
        headers.sort();
        (r.status, headers, r.body.clone())
    };
    let unknown = nkeys::KeyPair::new_account().public_key();
    let if_none_match = [("If-None-Match", etag.as_str())];
    let no_headers: &[(&str, &str)] = &[];
    // (key segment, request headers, expected status)
    let cases = [
        (key.clone(), no_headers, 200),
        (key.clone(), &if_none_match[..], 304),
        (unknown, no_headers, 404),
        ("NOTAKEY".to_string(), no_headers, 400),
        (w.operator.public_key(), no_headers, 400),
    ];
    for (segment, headers, status) in cases {
        let plain = get_with(&nas.addr, &format!("/jwt/v1/accounts/{segment}"), headers);
        // An unknown query parameter sends the same request through the router.
        let routed = get_with(
            &nas.addr,
            &format!("/jwt/v1/accounts/{segment}?unused=1"),
            headers,
        );
        assert_eq!(plain.status, status, "{segment}: {}", plain.text());
        assert_eq!(without_date(&plain), without_date(&routed), "{segment}");
        assert!(plain.header("vary").is_some(), "{segment}: CORS headers");
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SS+00:00` (days from the
/// civil date, as in Howard Hinnant's algorithm), so the test does not trust the server's own
/// date code.
fn chrono_free_secs(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    assert!(text.ends_with("+00:00"), "{text}");
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}
