//! Named regressions of "stored means accepted": each JWT below once got 200 here while
//! nats-server refuses it (or it locked an account out). Each is refused with a 400 naming the
//! claim and the rule, and the good JWT stored before stays served. The differential test
//! (`validation_oracle.rs`) shows the same against nats-server 2.9.10 and 2.15.1.

mod support;

use nkeys::KeyPair;
use serde_json::{json, Value};
use support::oracle::sign_payload;
use support::*;

/// A server with a good JWT stored for a fresh account.
struct Setup {
    w: World,
    nas: AccountServer,
    account: KeyPair,
    good: String,
}

fn setup() -> Setup {
    setup_with("")
}

fn setup_with(extra: &str) -> Setup {
    let w = World::new();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("store"), Some(&w.operator_path), extra),
    );
    let account = KeyPair::new_account();
    let mut claims = account_claims("GOOD", &account.public_key());
    claims["iat"] = json!(now() - 100);
    let good = sign(&claims, &w.signing_key);
    assert_eq!(nas.post_account(&account.public_key(), &good).status, 200);
    Setup {
        w,
        nas,
        account,
        good,
    }
}

impl Setup {
    /// Claims of a newer version, edited by `edit`.
    fn newer(&self, edit: impl FnOnce(&mut Value)) -> Value {
        let mut claims = account_claims("NEW", &self.account.public_key());
        edit(&mut claims);
        claims
    }

    /// POSTs `jwt` and asserts a 400 whose text contains every one of `words`, and that the
    /// good JWT is still the one served.
    fn refused(&self, jwt: &str, words: &[&str]) {
        let key = self.account.public_key();
        let r = self.nas.post_account(&key, jwt);
        let text = r.text();
        assert_eq!(r.status, 400, "{text}");
        for w in words {
            assert!(text.contains(w), "{w:?} not in {text:?}");
        }
        assert_eq!(text.trim().lines().count(), 1, "one line: {text:?}");
        let served = self.nas.get(&format!("/jwt/v1/accounts/{key}"));
        assert_eq!(
            served.body,
            self.good.as_bytes(),
            "the good JWT is still served"
        );
    }

    fn refused_claims(&self, claims: &Value, words: &[&str]) {
        self.refused(&sign(claims, &self.w.signing_key), words);
    }

    /// A payload written by hand (duplicate or case-variant keys), signed by the signing key.
    fn refused_payload(&self, payload: &str, words: &[&str]) {
        self.refused(&sign_payload(payload, &self.w.signing_key), words);
    }

    /// A payload written by hand: `iat` now, `iss` the signing key, `sub` the account, then
    /// `fields` (JSON object members, as text).
    fn hand_payload(&self, fields: &str) -> String {
        format!(
            r#"{{"iat":{},"iss":"{}","sub":"{}",{fields}}}"#,
            now(),
            self.w.signing_key.public_key(),
            self.account.public_key()
        )
    }
}

fn export(subject: &str) -> Value {
    json!({"name": "e", "subject": subject, "type": "stream"})
}

#[test]
fn limits_without_exports_key_refuse_an_export() {
    let s = setup();
    let claims = s.newer(|c| {
        c["nats"]["limits"]
            .as_object_mut()
            .unwrap()
            .remove("exports");
        c["nats"]["exports"] = json!([export("a.b")]);
    });
    s.refused_claims(&claims, &["more exports", "limits.exports 0"]);
}

#[test]
fn limits_without_imports_key_refuse_an_import() {
    let s = setup();
    let other = KeyPair::new_account().public_key();
    let claims = s.newer(|c| {
        c["nats"]["limits"]
            .as_object_mut()
            .unwrap()
            .remove("imports");
        c["nats"]["imports"] =
            json!([{"name": "i", "subject": "a.b", "account": other, "type": "stream"}]);
    });
    s.refused_claims(&claims, &["more imports", "limits.imports 0"]);
}

#[test]
fn absent_wildcards_refuse_a_wildcard_export() {
    let s = setup();
    let claims = s.newer(|c| {
        let limits = c["nats"]["limits"].as_object_mut().unwrap();
        limits.remove("wildcards");
        limits.insert("exports".into(), json!(5));
        c["nats"]["exports"] = json!([export("w.>")]);
    });
    s.refused_claims(&claims, &["wildcard exports", "limits.wildcards"]);
}

#[test]
fn no_limits_at_all_refuse_an_export() {
    let s = setup();
    let claims = s.newer(|c| {
        c["nats"].as_object_mut().unwrap().remove("limits");
        c["nats"]["exports"] = json!([export("a.b")]);
    });
    s.refused_claims(&claims, &["more exports"]);
}

#[test]
fn bogus_cluster_traffic_is_refused() {
    let s = setup();
    let claims = s.newer(|c| c["nats"]["cluster_traffic"] = json!("bogus"));
    s.refused_claims(&claims, &["cluster_traffic", "bogus"]);
}

#[test]
fn trace_destination_with_a_wildcard_is_refused() {
    let s = setup();
    let claims = s.newer(|c| c["nats"]["trace"] = json!({"dest": "t.*", "sampling": 50}));
    s.refused_claims(
        &claims,
        &["Trace.Destination", "not a valid publish subject"],
    );
}

#[test]
fn trace_sampling_of_200_is_refused() {
    let s = setup();
    let claims = s.newer(|c| c["nats"]["trace"] = json!({"dest": "t.x", "sampling": 200}));
    s.refused_claims(&claims, &["Trace.Sampling", "200"]);
}

#[test]
fn allowed_accounts_without_auth_users_are_refused() {
    let s = setup();
    let other = KeyPair::new_account().public_key();
    let claims = s.newer(|c| c["nats"]["authorization"] = json!({"allowed_accounts": [other]}));
    s.refused_claims(&claims, &["allowed_accounts needs auth_users"]);
}

#[test]
fn an_auth_user_that_is_not_a_user_key_is_refused() {
    let s = setup();
    let not_user = KeyPair::new_account().public_key();
    let claims = s.newer(|c| c["nats"]["authorization"] = json!({"auth_users": [not_user]}));
    s.refused_claims(&claims, &["AuthUser", "not a valid user public key"]);
}

#[test]
fn per_cluster_weights_of_60_and_60_are_refused() {
    let s = setup();
    let claims = s.newer(|c| {
        c["nats"]["mappings"] = json!({"m.a": [
            {"subject": "m.b", "weight": 60, "cluster": "c1"},
            {"subject": "m.c", "weight": 60, "cluster": "c1"}]})
    });
    s.refused_claims(&claims, &["mapping \"m.a\"", "cluster \"c1\" exceeds 100%"]);
}

#[test]
fn a_single_weight_of_150_is_refused() {
    let s = setup();
    let claims =
        s.newer(|c| c["nats"]["mappings"] = json!({"m.a": [{"subject": "m.b", "weight": 150}]}));
    s.refused_claims(&claims, &["weight 150 that exceeds 100"]);
}

#[test]
fn a_past_exp_spelled_exp_with_a_capital_is_refused() {
    let s = setup();
    let claims = s.newer(|_| {});
    let mut payload = serde_json::to_string(&claims).unwrap();
    payload.insert_str(1, &format!("\"Exp\":{},", now() - 10));
    let payload = payload.replacen(
        "{",
        &format!(
            "{{\"iss\":\"{}\",\"iat\":{},",
            s.w.signing_key.public_key(),
            now()
        ),
        1,
    );
    s.refused_payload(&payload, &["ambiguous claim key \"Exp\"", "\"exp\""]);
}

#[test]
fn a_second_sub_in_capitals_is_refused() {
    let s = setup();
    let other = KeyPair::new_account().public_key();
    let payload = s.hand_payload(&format!(
        r#""SUB":"{other}","nats":{{"limits":{{"conn":-1}},"type":"account","version":2}}"#
    ));
    s.refused_payload(&payload, &["ambiguous claim key \"SUB\""]);
}

#[test]
fn a_second_nats_object_of_type_user_is_refused() {
    let s = setup();
    let payload = s.hand_payload(
        r#""nats":{"type":"account","version":2},"NATS":{"type":"user","version":2}"#,
    );
    s.refused_payload(&payload, &["ambiguous claim key \"NATS\""]);
}

#[test]
fn duplicated_jti_iat_and_exp_are_refused() {
    let s = setup();
    for (dup, value) in [
        ("jti", json!("X")),
        ("iat", json!(now())),
        ("exp", json!(now() + 99)),
    ] {
        let payload = s.hand_payload(&format!(
            r#""jti":"J","exp":{},"{dup}":{value},"nats":{{"type":"account","version":2}}"#,
            now() + 50
        ));
        s.refused_payload(&payload, &["duplicate key", dup]);
    }
}

#[test]
fn jwts_without_jti_or_with_a_null_jti_are_stored_and_served() {
    let s = setup();
    for jti in [None, Some(Value::Null)] {
        let mut claims = s.newer(|_| {});
        claims["iss"] = json!(s.w.signing_key.public_key());
        claims["iat"] = json!(now());
        if let Some(j) = &jti {
            claims["jti"] = j.clone();
        }
        let payload = serde_json::to_string(&claims).unwrap();
        let jwt = sign_payload(&payload, &s.w.signing_key);
        let key = s.account.public_key();
        assert_eq!(s.nas.post_account(&key, &jwt).status, 200, "jti {jti:?}");
        let got = s.nas.get(&format!("/jwt/v1/accounts/{key}"));
        assert_eq!(
            got.status,
            200,
            "GET never 500 for an accepted JWT: {}",
            got.text()
        );
        assert_eq!(got.body, jwt.as_bytes());
        assert!(got.header("etag").is_some());
    }
}

#[test]
fn two_versions_with_the_same_jti_get_different_etags() {
    let s = setup();
    let key = s.account.public_key();
    let path = format!("/jwt/v1/accounts/{key}");
    let mut etags = Vec::new();
    for conn in [5, 6] {
        let mut claims = s.newer(|c| c["nats"]["limits"]["conn"] = json!(conn));
        claims["iss"] = json!(s.w.signing_key.public_key());
        claims["iat"] = json!(now());
        claims["jti"] = json!("SAMEJTI");
        let jwt = sign_payload(&serde_json::to_string(&claims).unwrap(), &s.w.signing_key);
        assert_eq!(s.nas.post_account(&key, &jwt).status, 200);
        let got = s.nas.get(&path);
        let etag = got.header("etag").unwrap().to_string();
        assert_eq!(
            get_with(&s.nas.addr, &path, &[("If-None-Match", &etag)]).status,
            304
        );
        etags.push(etag);
    }
    assert_ne!(etags[0], etags[1], "a changed JWT must get a new ETag");
    let stale = get_with(&s.nas.addr, &path, &[("If-None-Match", &etags[0])]);
    assert_eq!(stale.status, 200, "the old ETag no longer matches");
}

#[test]
fn an_iat_beyond_the_clock_skew_is_refused() {
    let s = setup();
    let mut claims = s.newer(|_| {});
    claims["iat"] = json!(now() + 5 * 365 * 86400);
    s.refused(
        &sign_future(&claims, &s.w.signing_key),
        &["iat", "maxclockskew"],
    );
    // Within the default skew of 5 minutes it is fine.
    let mut claims = s.newer(|_| {});
    claims["iat"] = json!(now() + 60);
    let jwt = sign_future(&claims, &s.w.signing_key);
    assert_eq!(
        s.nas.post_account(&s.account.public_key(), &jwt).status,
        200
    );
}

/// Signs claims keeping the `iat` they carry (the encoder would set it to now).
fn sign_future(claims: &Value, signer: &KeyPair) -> String {
    let mut c = claims.clone();
    c["iss"] = json!(signer.public_key());
    sign_payload(&serde_json::to_string(&c).unwrap(), signer)
}

/// Writes the world's operator JWT again with `signing_keys`.
fn rewrite_operator(w: &World, signing_keys: &[String]) {
    let op = sign(
        &json!({"name": "TESTOP", "sub": w.operator.public_key(),
            "nats": {"signing_keys": signing_keys, "system_account": w.sys.public_key(),
                     "type": "operator", "version": 2}}),
        &w.operator,
    );
    std::fs::write(&w.operator_path, op).unwrap();
}

#[test]
fn a_jwt_from_a_removed_signing_key_does_not_block_the_fix() {
    // A stolen signing key issued a JWT with an iat years ahead, accepted under a huge skew.
    let s = setup_with("maxclockskew: 999999999\n");
    let key = s.account.public_key();
    let mut stolen = s.newer(|c| c["nats"]["limits"]["conn"] = json!(0));
    stolen["iat"] = json!(now() + 5 * 365 * 86400);
    let stolen = sign_future(&stolen, &s.w.signing_key);
    assert_eq!(s.nas.post_account(&key, &stolen).status, 200);
    let fix = sign(&s.newer(|_| {}), &s.w.operator);
    // Negative control: while the key is trusted, the stored JWT blocks the older fix.
    assert_eq!(s.nas.post_account(&key, &fix).status, 409);

    // The operator removes the stolen key; the fix (signed by the operator) is accepted.
    let store = s.w_store();
    let Setup { w, nas, .. } = s;
    drop(nas);
    rewrite_operator(&w, &[]);
    let config = nas_config(&store, Some(&w.operator_path), "maxclockskew: 999999999\n");
    let nas = AccountServer::start(w.dir.path(), &config);
    let r = nas.post_account(&key, &fix);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{key}")).body,
        fix.as_bytes()
    );
}

#[test]
fn a_far_future_iat_already_stored_does_not_block_once_the_skew_applies() {
    let s = setup_with("maxclockskew: 999999999\n");
    let key = s.account.public_key();
    let mut ahead = s.newer(|_| {});
    ahead["iat"] = json!(now() + 5 * 365 * 86400);
    assert_eq!(
        s.nas
            .post_account(&key, &sign_future(&ahead, &s.w.signing_key))
            .status,
        200
    );
    let store = s.w_store();
    let Setup { w, nas, .. } = s;
    drop(nas);
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&store, Some(&w.operator_path), ""),
    );
    let fix = sign(&account_claims("FIX", &key), &w.signing_key);
    assert_eq!(nas.post_account(&key, &fix).status, 200);
}

impl Setup {
    fn w_store(&self) -> std::path::PathBuf {
        self.w.path("store")
    }
}

#[test]
fn the_system_account_cannot_be_rolled_back_through_its_file() {
    let w = World::new();
    let sys = w.sys.public_key();
    let mut older = account_claims("SYS", &sys);
    older["iat"] = json!(now() - 1000);
    let older = sign(&older, &w.operator);
    let file = w.path("sys.jwt");
    std::fs::write(&file, &w.sys_jwt).unwrap();
    let extra = format!("systemaccountjwtpath: \"{}\"\n", file.display());
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("store"), Some(&w.operator_path), &extra),
    );
    let path = format!("/jwt/v1/accounts/{sys}");
    let public = nas.get(&path);
    assert_eq!(public.body, w.sys_jwt.as_bytes());
    let r = nas.post_account(&sys, &older);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(nas.get(&path).body, w.sys_jwt.as_bytes());
    // The file's own JWT (equal iat) and a newer one are taken.
    assert_eq!(nas.post_account(&sys, &w.sys_jwt).status, 200);
    let mut newer = account_claims("SYS", &sys);
    newer["iat"] = json!(now() + 1);
    let newer = sign(&newer, &w.operator);
    assert_eq!(nas.post_account(&sys, &newer).status, 200);
    assert_eq!(nas.get(&path).body, newer.as_bytes());
}

#[test]
fn a_negative_exp_is_refused_as_nats_server_sees_it_expired() {
    // Go's Validate ignores exp < 0; nats-server marks the account expired and refuses its users.
    let s = setup();
    let claims = s.newer(|c| c["exp"] = json!(-100));
    s.refused_claims(&claims, &["claim is expired"]);
}
