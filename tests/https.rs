//! HTTPS: nats-server starts against an `https://` resolver URL served by us (`resolver_tls`).

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_resolves_accounts_over_https() {
    let w = World::new();
    let tls = make_tls_files(w.dir.path());
    let store = w.path("jwt");
    std::fs::create_dir_all(&store).unwrap();
    let (a, a_jwt) = w.new_account("A");
    std::fs::write(
        store.join(format!("{}.jwt", w.sys.public_key())),
        &w.sys_jwt,
    )
    .unwrap();
    std::fs::write(store.join(format!("{}.jwt", a.public_key())), &a_jwt).unwrap();
    let conf = format!(
        "http {{ host: 127.0.0.1, port: 0, tls {{ cert: \"{}\", key: \"{}\" }} }}\nstore {{ dir: \"{}\" }}\noperatorjwtpath: \"{}\"\nlogging {{ colors: false }}\n",
        tls.server_cert.display(),
        tls.server_key.display(),
        store.display(),
        w.operator_path.display()
    );
    let nas = AccountServer::start(w.dir.path(), &conf);
    assert!(
        nas.logs.text().contains("resolver: URL(https://127.0.0.1:"),
        "{}",
        nas.logs.text()
    );
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(try_raw_request(
        &nas.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .is_err());

    let mut opts = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
    opts.resolver_url = Some(format!("https://{}/jwt/v1/accounts/", nas.addr));
    opts.extra = format!("resolver_tls {{\n  ca_file: \"{}\"\n}}\n", tls.ca.display());
    let nats = NatsServer::start(w.dir.path(), "tls", &opts);
    let u1 = connect(&nats.client_url(), &w.user_creds(&a, "u1"))
        .await
        .expect("user of A connects");
    let u2 = connect(&nats.client_url(), &w.user_creds(&a, "u2"))
        .await
        .expect("user of A connects");
    assert_delivery(&u2, "over.tls", &u1, "over.tls").await;

    // Without the CA, nats-server refuses our certificate and cannot start.
    let mut untrusting = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
    untrusting.resolver_url = Some(format!("https://{}/jwt/v1/accounts/", nas.addr));
    assert!(NatsServer::try_start(w.dir.path(), "notrust", &untrusting).is_err());
}

#[test]
fn tls_settings_errors_name_the_file() {
    let w = World::new();
    let conf = format!(
        "http {{ host: 127.0.0.1, port: 0, tls {{ cert: \"{}\", key: \"{}\" }} }}\n",
        w.path("missing-cert.pem").display(),
        w.path("missing-key.pem").display()
    );
    std::fs::write(w.path("nas.conf"), conf).unwrap();
    let err = AccountServer::try_start_args(&["-c", w.path("nas.conf").to_str().unwrap()])
        .err()
        .unwrap();
    assert_eq!(err.0, Some(1));
    assert!(err.1.contains("missing-cert.pem"), "{}", err.1);
}
