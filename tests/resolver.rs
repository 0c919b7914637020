//! nats-server (the real binary, operator mode, URL resolver) resolves accounts through us:
//! users of pushed accounts connect and exchange messages; users of accounts we never received
//! or of expired accounts are refused.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

fn nats_opts(operator: &std::path::Path, sys: &str, nas: &AccountServer) -> NatsOptions {
    NatsOptions {
        operator_path: operator.to_path_buf(),
        system_account: sys.to_string(),
        resolver_url: Some(nas.resolver_url()),
        resolver_block: None,
        port: None,
        monitor: false,
        extra: String::new(),
    }
}

/// The Go-written fixtures: A is signed by the operator's signing key, B by its identity key and
/// imports A's token-required stream with an activation token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_fixture_accounts_pushed_over_http_are_resolved_by_nats_server() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest();
    let operator = fixtures().join("operator.jwt");
    let nas = AccountServer::start(
        tmp.path(),
        &nas_config(&tmp.path().join("jwt"), Some(&operator), ""),
    );
    for name in ["SYS", "A", "B"] {
        let key = m["accounts"][name].as_str().unwrap();
        let reply = nas.post_account(key, &fixture(&format!("accounts/{name}.jwt")));
        assert_eq!(reply.status, 200, "POST {name}: {}", reply.text());
    }
    let sys = m["system_account"].as_str().unwrap();
    let nats = NatsServer::start(tmp.path(), "n1", &nats_opts(&operator, sys, &nas));

    let ua = fixtures().join("users/ua.creds");
    let ub = fixtures().join("users/ub.creds");
    let a1 = connect(&nats.client_url(), &ua)
        .await
        .expect("user of A connects");
    let a2 = connect(&nats.client_url(), &ua)
        .await
        .expect("second user of A connects");
    // Inside account A (issuer: operator signing key).
    assert_delivery(&a2, "greet.>", &a1, "greet.a").await;
    // Account B (issuer: operator identity key) receives A's private stream through the import
    // that carries an activation token.
    let b = connect(&nats.client_url(), &ub)
        .await
        .expect("user of B connects");
    assert_delivery(&b, "a.private.>", &a1, "a.private.news").await;
    // And nats-server fetched them from us.
    assert!(nas.logs.text().contains("updated JWT for account"));
}

/// The same three cases with keys and JWTs generated in Rust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_generated_accounts_resolve_including_signing_keys_and_activations() {
    let w = World::new();
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
    );
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );

    // Exporter X, signed by the operator signing key, with a token-required stream export.
    let x = nkeys::KeyPair::new_account();
    let mut xc = account_claims("X", &x.public_key());
    xc["nats"]["exports"] =
        json!([{"name": "secret", "subject": "x.secret.>", "type": "stream", "token_req": true}]);
    let x_jwt = sign(&xc, &w.signing_key);
    // Importer Y, signed by the operator identity key, with an activation token from X.
    let y = nkeys::KeyPair::new_account();
    let activation = sign(
        &json!({"name": "x.secret for Y", "sub": y.public_key(),
                "nats": {"subject": "x.secret.>", "kind": "stream", "type": "activation", "version": 2}}),
        &x,
    );
    let mut yc = account_claims("Y", &y.public_key());
    yc["nats"]["imports"] = json!([{"name": "secret", "subject": "x.secret.>", "account": x.public_key(),
                                    "token": activation, "type": "stream"}]);
    let y_jwt = sign(&yc, &w.operator);
    // Importer Z claims the same import without a token: we store it, nats-server gives it nothing.
    let z = nkeys::KeyPair::new_account();
    let mut zc = account_claims("Z", &z.public_key());
    zc["nats"]["imports"] = json!([{"name": "secret", "subject": "x.secret.>", "account": x.public_key(), "type": "stream"}]);
    for (kp, jwt) in [(&x, x_jwt), (&y, y_jwt), (&z, sign(&zc, &w.operator))] {
        assert_eq!(nas.post_account(&kp.public_key(), &jwt).status, 200);
    }

    let nats = NatsServer::start(
        w.dir.path(),
        "n1",
        &nats_opts(&w.operator_path, &w.sys.public_key(), &nas),
    );
    let ux = connect(&nats.client_url(), &w.user_creds(&x, "ux"))
        .await
        .expect("user of X connects");
    let ux2 = connect(&nats.client_url(), &w.user_creds(&x, "ux2"))
        .await
        .expect("user of X connects");
    assert_delivery(&ux2, "inside", &ux, "inside").await;
    let uy = connect(&nats.client_url(), &w.user_creds(&y, "uy"))
        .await
        .expect("user of Y connects");
    assert_delivery(&uy, "x.secret.>", &ux, "x.secret.one").await;
    let uz = connect(&nats.client_url(), &w.user_creds(&z, "uz"))
        .await
        .expect("user of Z connects");
    assert_no_delivery(&uz, "x.secret.>", &ux, "x.secret.two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_refuses_users_of_unknown_and_expired_accounts() {
    let w = World::new();
    let store = w.path("jwt");
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&store, Some(&w.operator_path), ""),
    );
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );

    // An account that expires two seconds after we accept it.
    let short = nkeys::KeyPair::new_account();
    let mut claims = account_claims("SHORT", &short.public_key());
    claims["exp"] = json!(now() + 2);
    assert_eq!(
        nas.post_account(&short.public_key(), &sign(&claims, &w.signing_key))
            .status,
        200
    );
    // A control account that stays valid.
    let (ok, ok_jwt) = w.new_account("OK");
    assert_eq!(nas.post_account(&ok.public_key(), &ok_jwt).status, 200);

    let nats = NatsServer::start(
        w.dir.path(),
        "n1",
        &nats_opts(&w.operator_path, &w.sys.public_key(), &nas),
    );
    connect(&nats.client_url(), &w.user_creds(&ok, "ok"))
        .await
        .expect("valid account connects");

    let never = nkeys::KeyPair::new_account();
    let err = connect(&nats.client_url(), &w.user_creds(&never, "never"))
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("authorization"), "{err}");
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", never.public_key()))
            .status,
        404
    );

    tokio::time::sleep(Duration::from_millis(3100)).await;
    // We still serve it (no check=true), nats-server refuses it because it expired.
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", short.public_key()))
            .status,
        200
    );
    let err = connect(&nats.client_url(), &w.user_creds(&short, "late"))
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("authorization"), "{err}");
}

/// The Go fixture EXP (expired an hour before the fixtures were made) placed in the store
/// directory by hand: we serve it, nats-server refuses its user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_refuses_the_go_fixture_expired_account() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest();
    let store = tmp.path().join("jwt");
    std::fs::create_dir_all(&store).unwrap();
    let exp_key = m["accounts"]["EXP"].as_str().unwrap();
    std::fs::write(
        store.join(format!("{exp_key}.jwt")),
        fixture("accounts/EXP.jwt"),
    )
    .unwrap();
    let operator = fixtures().join("operator.jwt");
    let nas = AccountServer::start(tmp.path(), &nas_config(&store, Some(&operator), ""));
    let sys = m["system_account"].as_str().unwrap();
    assert_eq!(
        nas.post_account(sys, &fixture("accounts/SYS.jwt")).status,
        200
    );
    assert_eq!(nas.get(&format!("/jwt/v1/accounts/{exp_key}")).status, 200);
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{exp_key}?check=true"))
            .status,
        404
    );

    let nats = NatsServer::start(tmp.path(), "n1", &nats_opts(&operator, sys, &nas));
    let err = connect(&nats.client_url(), &fixtures().join("users/uexp.creds"))
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("authorization"), "{err}");
}
