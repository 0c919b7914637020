//! Every store mode of the original: memory (the default without a directory), a read-only
//! watched directory (one notification per edit, seen by a NATS subscriber and applied by a real
//! nats-server), and an nsc operator folder.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use support::*;

#[test]
fn memory_store_is_the_default_and_forgets_on_restart() {
    let w = World::new();
    let conf = format!(
        "http {{ host: 127.0.0.1, port: 0 }}\noperatorjwtpath: \"{}\"\nlogging {{ colors: false }}\n",
        w.operator_path.display()
    );
    let nas = AccountServer::start(w.dir.path(), &conf);
    assert!(
        nas.logs.text().contains("in-memory store"),
        "{}",
        nas.logs.text()
    );
    let (a, a_jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&a.public_key(), &a_jwt).status, 200);
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .text(),
        a_jwt
    );
    assert_eq!(
        nas.get("/jwt/v1/pack").text(),
        format!("{}|{a_jwt}", a.public_key())
    );
    drop(nas);
    let nas = AccountServer::start(w.dir.path(), &conf);
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .status,
        404
    );
}

/// Writes a file the way editors and deploy tools do: temp file, then rename.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("edit-tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_directory_is_served_checked_and_each_edit_is_announced_once() {
    let w = World::new();
    let dir = w.path("ro");
    std::fs::create_dir_all(&dir).unwrap();
    let a = nkeys::KeyPair::new_account();
    let t0 = now();
    let a_v1 = {
        let mut c = account_claims("A", &a.public_key());
        c["iat"] = json!(t0);
        sign(&c, &w.signing_key)
    };
    let a_file = dir.join(format!("{}.jwt", a.public_key()));
    std::fs::write(&a_file, &a_v1).unwrap();
    std::fs::write(dir.join(format!("{}.jwt", w.sys.public_key())), &w.sys_jwt).unwrap();
    // An untrusted JWT and garbage: never served.
    let u = nkeys::KeyPair::new_account();
    std::fs::write(
        dir.join(format!("{}.jwt", u.public_key())),
        sign(
            &account_claims("U", &u.public_key()),
            &nkeys::KeyPair::new_operator(),
        ),
    )
    .unwrap();
    let g = nkeys::KeyPair::new_account();
    std::fs::write(dir.join(format!("{}.jwt", g.public_key())), "garbage").unwrap();

    let port = free_port();
    let creds = w.user_creds(&w.sys, "nas");
    let conf = format!(
        "http {{ host: 127.0.0.1, port: 0 }}\nstore {{ dir: \"{}\", readonly: true }}\noperatorjwtpath: \"{}\"\nlogging {{ colors: false }}\nnats {{ servers: [\"nats://127.0.0.1:{port}\"], usercredentials: \"{}\", reconnectwait: 200 }}\n",
        dir.display(),
        w.operator_path.display(),
        creds.display()
    );
    let nas = AccountServer::start(w.dir.path(), &conf);
    let before = snapshot(&dir);
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .text(),
        a_v1
    );
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", u.public_key()))
            .status,
        404
    );
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", g.public_key()))
            .status,
        404
    );
    assert!(
        nas.logs.text().contains("not serving the stored JWT"),
        "{}",
        nas.logs.text()
    );
    let reply = nas.post_account(&a.public_key(), &a_v1);
    assert_eq!(reply.status, 405, "{}", reply.text());
    assert!(reply.text().contains("read-only"), "{}", reply.text());
    assert_eq!(snapshot(&dir), before);

    let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
    opts.port = Some(port);
    opts.monitor = true;
    let nats = NatsServer::start(w.dir.path(), "ro", &opts);
    nas.wait_nats_connected(Duration::from_secs(10));
    // A client of A keeps A loaded in nats-server.
    let client = connect(&nats.client_url(), &w.user_creds(&a, "ua"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let observer = connect(&nats.client_url(), &w.user_creds(&w.sys, "observer"))
        .await
        .unwrap();
    let mut updates = observer
        .subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE")
        .await
        .unwrap();
    observer.flush().await.unwrap();

    // Edit A: a new version replaces the file.
    let a_v2 = {
        let mut c = account_claims("A", &a.public_key());
        c["iat"] = json!(t0 + 1);
        c["nats"]["limits"]["subs"] = json!(7);
        sign(&c, &w.signing_key)
    };
    replace_file(&a_file, &a_v2);
    let msg = tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("notification")
        .unwrap();
    assert_eq!(
        msg.subject.as_str(),
        format!("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", a.public_key())
    );
    assert_eq!(msg.payload.as_ref(), a_v2.as_bytes());
    assert!(
        tokio::time::timeout(Duration::from_secs(2), updates.next())
            .await
            .is_err(),
        "a second notification for one edit"
    );
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .text(),
        a_v2
    );
    // nats-server applied it.
    let jti = nats_account_server::jwt::decode(&a_v2).unwrap().claims.jti;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !monitor(&nats, &format!("/accountz?acc={}", a.public_key())).contains(&jti) {
        assert!(
            std::time::Instant::now() < deadline,
            "nats-server did not apply the edit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Edits with an untrusted JWT, or the same content again, announce nothing.
    replace_file(
        &a_file,
        &sign(
            &account_claims("A", &a.public_key()),
            &nkeys::KeyPair::new_operator(),
        ),
    );
    assert!(tokio::time::timeout(Duration::from_secs(2), updates.next())
        .await
        .is_err());
    assert!(nas
        .logs
        .wait_for("is not served", Duration::from_secs(2))
        .is_some());
    replace_file(&a_file, &a_v2);
    let msg = tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("back to v2")
        .unwrap();
    assert_eq!(msg.payload.as_ref(), a_v2.as_bytes());
    std::fs::write(&a_file, &a_v2).unwrap(); // same bytes again
    assert!(tokio::time::timeout(Duration::from_secs(2), updates.next())
        .await
        .is_err());
    drop(client);
}

#[test]
fn nsc_operator_folder_is_served_read_only() {
    let w = World::new();
    // nsc's layout: <stores>/<Op>/.nsc, <Op>/<Op>.jwt, <Op>/accounts/<Name>/<Name>.jwt, users/.
    let op_dir = w.path("stores/TESTOP");
    std::fs::create_dir_all(op_dir.join("accounts/A/users")).unwrap();
    std::fs::create_dir_all(op_dir.join("accounts/SYS")).unwrap();
    std::fs::write(
        op_dir.join(".nsc"),
        r#"{"managed":false,"name":"TESTOP","kind":"operator","version":"1"}"#,
    )
    .unwrap();
    std::fs::write(op_dir.join("TESTOP.jwt"), &w.operator_jwt).unwrap();
    let (a, a_jwt) = w.new_account("A");
    std::fs::write(op_dir.join("accounts/A/A.jwt"), &a_jwt).unwrap();
    std::fs::write(op_dir.join("accounts/SYS/SYS.jwt"), &w.sys_jwt).unwrap();
    let user_creds = std::fs::read_to_string(w.user_creds(&a, "ua")).unwrap();
    let user_jwt = nats_account_server::jwt::creds::parse_decorated_jwt(&user_creds);
    std::fs::write(op_dir.join("accounts/A/users/ua.jwt"), &user_jwt).unwrap();

    let nas = AccountServer::start_args(&["-nsc", op_dir.to_str().unwrap(), "-hp", "127.0.0.1:0"]);
    // The operator comes from the folder.
    assert_eq!(nas.get("/jwt/v1/operator").text(), w.operator_jwt);
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .text(),
        a_jwt
    );
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", w.sys.public_key()))
            .text(),
        w.sys_jwt
    );
    assert_eq!(
        nas.get(&format!(
            "/jwt/v1/accounts/{}",
            nkeys::KeyPair::new_account().public_key()
        ))
        .status,
        404
    );
    assert_eq!(nas.post_account(&a.public_key(), &a_jwt).status, 405);
    // A new account added by nsc is found.
    let (b, b_jwt) = w.new_account("B");
    std::fs::create_dir_all(op_dir.join("accounts/B")).unwrap();
    std::fs::write(op_dir.join("accounts/B/B.jwt"), &b_jwt).unwrap();
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", b.public_key()))
            .text(),
        b_jwt
    );
    // Edits are noticed (no NATS here: the notification is skipped with a log line).
    let mut c = account_claims("A", &a.public_key());
    c["iat"] = json!(now() + 1);
    let a_v2 = sign(&c, &w.signing_key);
    std::fs::write(op_dir.join("accounts/A/A.jwt"), &a_v2).unwrap();
    assert!(
        nas.logs
            .wait_for(
                &format!("file change for {}", &a.public_key()[..12]),
                Duration::from_secs(5)
            )
            .is_some(),
        "{}",
        nas.logs.text()
    );
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", a.public_key()))
            .text(),
        a_v2
    );

    // A folder that is not an nsc operator folder is refused with its name.
    let err = AccountServer::try_start_args(&[
        "-nsc",
        w.path("stores").to_str().unwrap(),
        "-hp",
        "127.0.0.1:0",
    ])
    .err()
    .unwrap();
    assert_eq!(err.0, Some(1));
    assert!(err.1.contains("not an nsc operator folder"), "{}", err.1);
}

#[test]
fn hand_edits_of_a_writable_store_reach_the_jwt_cache() {
    let w = World::new();
    let store = w.path("jwt");
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&store, Some(&w.operator_path), ""),
    );
    let a = nkeys::KeyPair::new_account();
    let key = a.public_key();
    let path = format!("/jwt/v1/accounts/{key}");
    let t0 = now();
    let v = |i: i64| {
        let mut c = account_claims("A", &key);
        c["iat"] = json!(t0 + i);
        sign(&c, &w.signing_key)
    };
    assert_eq!(nas.post_account(&key, &v(0)).status, 200);
    // Served (and cached) a few times.
    for _ in 0..3 {
        assert_eq!(nas.get(&path).text(), v(0));
    }
    // A POST replaces it at once.
    assert_eq!(nas.post_account(&key, &v(1)).status, 200);
    assert_eq!(nas.get(&path).text(), v(1));
    // A hand edit (rename into place, as deploy tools do) and a plain rewrite are picked up.
    for (i, rename) in [(2, true), (3, false)] {
        let file = store.join(format!("{key}.jwt"));
        if rename {
            replace_file(&file, &v(i));
        } else {
            std::fs::write(&file, v(i)).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while nas.get(&path).text() != v(i) {
            assert!(
                std::time::Instant::now() < deadline,
                "edit {i} never served"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Removing the file removes it from service.
    std::fs::remove_file(store.join(format!("{key}.jwt"))).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while nas.get(&path).status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "removed file still served"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
