//! A directory written by nats-server's own JWT store (its `full` NATS resolver) is served by
//! us as is.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_written_by_nats_server_full_resolver_is_served_as_is() {
    let w = World::new();
    let nats_dir = w.path("nats-jwt");
    let mut nats = NatsServer::start(
        w.dir.path(),
        "full",
        &NatsOptions::full_resolver(&w, &nats_dir),
    );
    let sys_user = w.user_creds(&w.sys, "sys");
    let client = connect(&nats.client_url(), &sys_user)
        .await
        .expect("system user connects");
    let mut pushed = Vec::new();
    for i in 0..3 {
        let (kp, jwt) = w.new_account(&format!("N{i}"));
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            client.request("$SYS.REQ.CLAIMS.UPDATE", jwt.clone().into()),
        )
        .await
        .expect("update reply in time")
        .expect("update request");
        let text = String::from_utf8_lossy(&reply.payload).into_owned();
        assert!(text.contains("jwt updated"), "{text}");
        pushed.push((kp.public_key(), jwt));
    }
    drop(client);
    nats.stop();

    // nats-server's layout: flat <dir>/<pubkey>.jwt.
    for (key, jwt) in &pushed {
        assert_eq!(
            std::fs::read_to_string(nats_dir.join(format!("{key}.jwt"))).unwrap(),
            *jwt
        );
    }
    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&nats_dir, Some(&w.operator_path), ""),
    );
    for (key, jwt) in &pushed {
        let r = nas.get(&format!("/jwt/v1/accounts/{key}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), *jwt);
    }
    // And new pushes land next to nats-server's files, in the same layout.
    let (kp, jwt) = w.new_account("OURS");
    assert_eq!(nas.post_account(&kp.public_key(), &jwt).status, 200);
    assert_eq!(
        std::fs::read_to_string(nats_dir.join(format!("{}.jwt", kp.public_key()))).unwrap(),
        jwt
    );
}
