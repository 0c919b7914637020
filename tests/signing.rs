//! The signing service (Go v1.0 `signrequestsubject`): a self-signed account JWT is sent as a
//! NATS request; a JWT signed by a trusted key in the reply is stored and served; a text reply
//! gives 202 with that text; no responder gives a clear 5xx.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_pushes_go_through_the_signing_service() {
    let w = World::new();
    let port = free_port();
    let creds = w.user_creds(&w.sys, "nas");
    let extra = format!(
        "nats {{ servers: [\"nats://127.0.0.1:{port}\"], usercredentials: \"{}\", reconnectwait: 200 }}\nsignrequestsubject: \"accounts.sign\"\nsignrequesttimeout: 2000\n",
        creds.display()
    );
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), &extra),
    );
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    let nats = NatsServer::start(
        w.dir.path(),
        "sign",
        &NatsOptions {
            port: Some(port),
            ..NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas)
        },
    );
    nas.wait_nats_connected(Duration::from_secs(10));

    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let self_signed = sign(&account_claims("A", &key), &a);

    // No responder yet: 503 with a clear reason, nothing stored.
    let r = nas.post_account(&key, &self_signed);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("signing service"), "{}", r.text());
    assert_eq!(nas.get(&format!("/jwt/v1/accounts/{key}")).status, 404);

    // A responder that signs with the operator's signing key.
    let signer = connect(&nats.client_url(), &w.user_creds(&w.sys, "signer"))
        .await
        .unwrap();
    let mut requests = signer.subscribe("accounts.sign").await.unwrap();
    signer.flush().await.unwrap();
    let signing_seed = w.signing_key.seed().unwrap();
    let responder = {
        let signer = signer.clone();
        tokio::spawn(async move {
            let signing_key = nkeys::KeyPair::from_seed(&signing_seed).unwrap();
            let mut mode_text = false;
            while let Some(msg) = requests.next().await {
                let reply = msg.reply.clone().unwrap();
                let posted = String::from_utf8(msg.payload.to_vec()).unwrap();
                let (token, _) = nats_account_server::jwt::decode_account(&posted).unwrap();
                let answer = if mode_text || token.claims.name == "ask-later" {
                    mode_text = true;
                    "your request is pending approval".to_string()
                } else {
                    let mut claims = serde_json::Value::Object(token.payload.clone());
                    claims.as_object_mut().unwrap().remove("iat");
                    sign(&claims, &signing_key)
                };
                signer.publish(reply, answer.into()).await.unwrap();
                signer.flush().await.unwrap();
            }
        })
    };

    // The responder's interest reaches the account server's connection asynchronously.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut attempts = 0;
    let r = loop {
        attempts += 1;
        let r = nas.post_account(&key, &self_signed);
        if r.status != 503 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("signed after {attempts} attempt(s)");
    assert_eq!(r.status, 200, "{}", r.text());
    let served = nas.get(&format!("/jwt/v1/accounts/{key}")).text();
    let (token, _) = nats_account_server::jwt::decode_account(&served).unwrap();
    assert_eq!(token.claims.iss, w.signing_key.public_key());
    assert_eq!(token.claims.sub, key);

    // A responder that answers with text: 202 and that text, nothing stored.
    let b = nkeys::KeyPair::new_account();
    let mut bc = account_claims("ask-later", &b.public_key());
    bc["nats"]["tags"] = json!(["x"]);
    let r = nas.post_account(&b.public_key(), &sign(&bc, &b));
    assert_eq!(
        (r.status, r.text()),
        (202, "your request is pending approval".to_string())
    );
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", b.public_key()))
            .status,
        404
    );
    // JWTs signed by a trusted key never involve the service.
    let (c, c_jwt) = w.new_account("C");
    assert_eq!(nas.post_account(&c.public_key(), &c_jwt).status, 200);
    responder.abort();
}
