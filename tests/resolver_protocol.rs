//! nats-server's account-resolver protocol against real full-resolver and URL-resolver
//! servers (2.9.10 and 2.15.1): pushes over NATS answered and counted like a server's, LIST,
//! deletes that stay deleted across restarts, PACK in both directions, and rollback repair.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nkeys::KeyPair;
use serde_json::{json, Value};
use support::*;

const NAME: &str = "nas-proto";

/// Our server with a NATS block for `urls` (may be down), deletes on or off.
fn start_nas(w: &World, urls: &[String], allow_delete: bool) -> AccountServer {
    let extra = nats_block(w, urls, &format!("  name: {NAME}\n  syncinterval: \"1s\""));
    let config = nas_config(&w.path("jwt"), Some(&w.operator_path), &extra)
        .replace("logging {", "logging { debug: true, ")
        .replace(
            "store {",
            &format!("store {{ allowdelete: {allow_delete}, "),
        );
    AccountServer::start(w.dir.path(), &config)
}

/// Publishes `payload` on `subject` with a fresh reply inbox and collects the JSON replies
/// for `wait` (as `nsc push` does).
async fn collect(
    client: &async_nats::Client,
    subject: &str,
    payload: &[u8],
    wait: Duration,
) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(subject.to_string(), inbox, payload.to_vec().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        out.push(serde_json::from_slice(&msg.payload).unwrap_or(Value::Null));
    }
    out
}

/// Our reply among `replies` (the one named [`NAME`]).
fn our_reply<'a>(replies: &'a [Value], version: &str) -> &'a Value {
    replies
        .iter()
        .find(|r| r["server"]["name"] == NAME)
        .unwrap_or_else(|| panic!("{version}: no reply of ours among {replies:?}"))
}

/// Polls `check` every 100 ms until it holds or `within` passes.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until our server says it is connected to NATS and has subscribed.
fn wait_connected(nas: &AccountServer) {
    assert!(
        nas.logs
            .wait_for("connected to NATS", Duration::from_secs(15))
            .is_some(),
        "{}",
        nas.logs.text()
    );
    std::thread::sleep(Duration::from_millis(300));
}

/// An operator-signed delete request for `accounts`, as `nsc push --prune` makes it.
fn delete_request(signer: &KeyPair, accounts: &[String]) -> String {
    sign(
        &json!({"sub": signer.public_key(), "nats": {"accounts": accounts, "version": 2}}),
        signer,
    )
}

/// A newer JWT of `account` (iat one second later than now).
fn newer_jwt(w: &World, account: &KeyPair, name: &str, ahead: i64) -> String {
    let mut claims = account_claims(name, &account.public_key());
    claims["iat"] = json!(now() + ahead);
    sign(&claims, &w.signing_key)
}

fn http_delete(nas: &AccountServer, key: &str, body: &str) -> Reply {
    let request = format!(
        "DELETE /jwt/v1/accounts/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_request(&nas.addr, request.as_bytes())
}

fn jwt_file(dir: &Path, key: &str) -> std::path::PathBuf {
    dir.join(format!("{key}.jwt"))
}

async fn push_list_with(version: &str, binary: &Path) {
    let w = World::new();
    let nats_dir = w.path("nats-jwt");
    let port = free_port();
    let nas = start_nas(&w, &[format!("nats://127.0.0.1:{port}")], false);
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    let mut opts = NatsOptions::full_resolver(&w, &nats_dir);
    opts.port = Some(port);
    let nats = NatsServer::start_binary(binary, w.dir.path(), "push", &opts);
    wait_connected(&nas);
    let creds = w.user_creds(&w.sys, "pusher");
    let client = connect(&nats.client_url(), &creds).await.unwrap();

    // A push as nsc makes it: both the nats-server and we answer, and we store it.
    let (account, jwt) = w.new_account("A");
    let replies = collect(
        &client,
        "$SYS.REQ.CLAIMS.UPDATE",
        jwt.as_bytes(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(replies.len(), 2, "{version}: {replies:?}");
    let ours = our_reply(&replies, version);
    assert_eq!(ours["data"]["message"], "jwt updated", "{version}");
    assert_eq!(ours["data"]["account"], account.public_key());
    assert!(ours["server"]["id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(ours.get("error").is_none());
    let served = nas.get_account(&account.public_key());
    assert_eq!(
        (served.status, served.text()),
        (200, jwt.clone()),
        "{version}"
    );

    // An older JWT: the nats-server takes it, we refuse it with our reason.
    let mut older = account_claims("A-old", &account.public_key());
    older["iat"] = json!(now() - 100);
    let older = sign(&older, &w.signing_key);
    let replies = collect(
        &client,
        "$SYS.REQ.CLAIMS.UPDATE",
        older.as_bytes(),
        Duration::from_secs(1),
    )
    .await;
    let ours = our_reply(&replies, version);
    assert_eq!(ours["error"]["code"], 409, "{version}: {ours}");
    assert!(ours["error"]["description"]
        .as_str()
        .unwrap()
        .contains("newer JWT is already stored"));
    let per_account = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", account.public_key());
    let replies = collect(&client, &per_account, b"not a jwt", Duration::from_secs(1)).await;
    let ours = our_reply(&replies, version);
    assert_eq!(ours["error"]["code"], 400, "{version}: {ours}");
    assert_eq!(nas.get_account(&account.public_key()).text(), jwt);

    // LIST: our reply holds what we store.
    let replies = collect(&client, "$SYS.REQ.CLAIMS.LIST", b"", Duration::from_secs(1)).await;
    let ours = our_reply(&replies, version);
    let mut listed: Vec<&str> = ours["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    listed.sort();
    let mut stored = vec![w.sys.public_key(), account.public_key()];
    stored.sort();
    assert_eq!(listed, stored, "{version}");

    // DELETE with deletes off: we refuse in the very words of the nats-server.
    let request = delete_request(&w.operator, std::slice::from_ref(&account.public_key()));
    let replies = collect(
        &client,
        "$SYS.REQ.CLAIMS.DELETE",
        request.as_bytes(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(replies.len(), 2, "{version}: {replies:?}");
    let ours = our_reply(&replies, version);
    let theirs = replies
        .iter()
        .find(|r| r["server"]["name"] != NAME)
        .unwrap();
    assert_eq!(
        ours["error"]["description"], theirs["error"]["description"],
        "{version}"
    );
    assert!(ours["error"]["description"]
        .as_str()
        .unwrap()
        .contains("delete must be enabled"));
    assert_eq!(nas.get_account(&account.public_key()).text(), jwt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_over_nats_is_stored_and_answered_and_list_shows_the_store() {
    for (version, binary) in nats_binaries() {
        push_list_with(version, &binary).await;
    }
}

/// A user of `account` connected to `server` under connection name `name`.
async fn user(
    w: &World,
    account: &KeyPair,
    server: &NatsServer,
    name: &str,
) -> Result<async_nats::Client, String> {
    let creds = w.user_creds(account, name);
    async_nats::ConnectOptions::with_credentials_file(creds)
        .await
        .unwrap()
        .name(name)
        .connection_timeout(Duration::from_secs(4))
        .max_reconnects(Some(1))
        .connect(server.client_url())
        .await
        .map_err(|e| e.to_string())
}

async fn delete_with(version: &str, binary: &Path) {
    let w = World::new();
    let dirs = [w.path("n0"), w.path("n1")];
    let ports = [free_port(), free_port()];
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    let mut nas = start_nas(&w, &urls, true);
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    let options = |i: usize| {
        let mut o = NatsOptions::full_resolver_with(&w, &dirs[i], true, "1s");
        o.port = Some(ports[i]);
        o
    };
    let mut cluster = start_cluster(binary, w.dir.path(), "d", 2, options);
    wait_for_routes(&cluster);
    wait_connected(&nas);
    let (account, jwt) = w.new_account("DOOMED");
    let pk = account.public_key();
    assert_eq!(nas.post_account(&pk, &jwt).status, 200);
    assert!(
        eventually(Duration::from_secs(5), || dirs
            .iter()
            .all(|d| jwt_file(d, &pk).exists())),
        "{version}: the servers did not get the account"
    );
    // A delete over NATS, as `nsc push --prune` sends it: every server and we answer.
    let (pruned, pruned_jwt) = w.new_account("PRUNED");
    let ppk = pruned.public_key();
    assert_eq!(nas.post_account(&ppk, &pruned_jwt).status, 200);
    assert!(eventually(Duration::from_secs(5), || dirs
        .iter()
        .all(|d| jwt_file(d, &ppk).exists())));
    let sys = connect(&cluster[1].client_url(), &w.user_creds(&w.sys, "nsc"))
        .await
        .unwrap();
    let request = delete_request(&w.operator, std::slice::from_ref(&ppk));
    let replies = collect(
        &sys,
        "$SYS.REQ.CLAIMS.DELETE",
        request.as_bytes(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(replies.len(), 3, "{version}: {replies:?}");
    for reply in &replies {
        assert_eq!(
            reply["data"]["message"], "deleted 1 accounts",
            "{version}: {reply}"
        );
    }
    assert_eq!(nas.get_account(&ppk).status, 404, "{version}");
    for dir in dirs.iter().chain([&w.path("jwt")]) {
        assert!(!jwt_file(dir, &ppk).exists() && dir.join(format!("{ppk}.jwt.deleted")).exists());
    }

    let u0 = user(&w, &account, &cluster[0], "doomed-0").await.unwrap();
    let u1 = user(&w, &account, &cluster[1], "doomed-1").await.unwrap();

    // Delete over HTTP: we delete and publish the request; both servers delete too.
    let request = delete_request(&w.operator, std::slice::from_ref(&pk));
    let reply = http_delete(&nas, &pk, &request);
    assert_eq!(
        (reply.status, reply.text().trim()),
        (200, "deleted 1 accounts"),
        "{version}"
    );
    assert_eq!(nas.get_account(&pk).status, 404);
    assert!(
        eventually(Duration::from_secs(5), || dirs
            .iter()
            .all(|d| !jwt_file(d, &pk).exists())),
        "{version}: the servers did not delete"
    );
    assert!(
        eventually(Duration::from_secs(5), || !has_connection(
            &cluster[0],
            "doomed-0"
        ) && !has_connection(
            &cluster[1],
            "doomed-1"
        )),
        "{version}: the users stay connected"
    );
    drop((u0, u1));

    // Everything restarts; the account stays deleted, whatever LOOKUP and PACK do.
    nas.kill();
    for s in cluster.iter_mut() {
        s.stop();
    }
    drop(cluster);
    let nas = start_nas(&w, &urls, true);
    let cluster = start_cluster(binary, w.dir.path(), "d", 2, options);
    wait_for_routes(&cluster);
    wait_connected(&nas);
    std::thread::sleep(Duration::from_millis(2500)); // two pack intervals of the servers and ours
    for (i, s) in cluster.iter().enumerate() {
        let refused = user(&w, &account, s, &format!("again-{i}")).await;
        assert!(
            refused.is_err(),
            "{version}: a user of the deleted account connected to node {i}"
        );
    }
    assert_eq!(nas.get_account(&pk).status, 404, "{version}");
    assert!(dirs.iter().all(|d| !jwt_file(d, &pk).exists()), "{version}");
    assert!(!jwt_file(&w.path("jwt"), &pk).exists(), "{version}");
    let sys = connect(&cluster[0].client_url(), &w.user_creds(&w.sys, "probe"))
        .await
        .unwrap();
    let lookup = format!("$SYS.REQ.ACCOUNT.{pk}.CLAIMS.LOOKUP");
    let inbox = sys.new_inbox();
    let mut answers = sys.subscribe(inbox.clone()).await.unwrap();
    sys.publish_with_reply(lookup, inbox, "".into())
        .await
        .unwrap();
    sys.flush().await.unwrap();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(1), answers.next()).await {
        assert!(
            msg.payload.is_empty(),
            "{version}: a lookup brought the account back"
        );
    }
    // The same JWT pushed again does not bring it back to our store (the deleted one's iat).
    let replies = collect(
        &sys,
        "$SYS.REQ.CLAIMS.UPDATE",
        jwt.as_bytes(),
        Duration::from_secs(1),
    )
    .await;
    let ours = our_reply(&replies, version);
    assert_eq!(ours["error"]["code"], 409, "{version}: {ours}");
    assert_eq!(nas.get_account(&pk).status, 404, "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_removes_the_account_everywhere_and_it_stays_deleted() {
    for (version, binary) in nats_binaries() {
        delete_with(version, &binary).await;
    }
}

async fn pack_fill_with(version: &str, binary: &Path) {
    let w = World::new();
    let port = free_port();
    let nats_dir = w.path("wiped");
    let mut opts = NatsOptions::full_resolver_with(&w, &nats_dir, false, "2s");
    opts.port = Some(port);
    let mut nats = NatsServer::start_binary(binary, w.dir.path(), "fill", &opts);
    let nas = start_nas(&w, &[nats.client_url()], false);
    wait_connected(&nas);
    let mut keys = vec![w.sys.public_key()];
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    for i in 0..5 {
        let (account, jwt) = w.new_account(&format!("P{i}"));
        assert_eq!(nas.post_account(&account.public_key(), &jwt).status, 200);
        keys.push(account.public_key());
    }
    let has_all = |dir: &Path| {
        keys.iter().all(|k| {
            std::fs::read_to_string(jwt_file(dir, k)).is_ok_and(|t| t == nas.get_account(k).text())
        })
    };
    assert!(
        eventually(Duration::from_secs(5), || has_all(&nats_dir)),
        "{version}"
    );
    // The node is wiped and restarted: nothing is pending on our side, no client connects.
    nats.stop();
    std::fs::remove_dir_all(&nats_dir).unwrap();
    let _nats = NatsServer::start_binary(binary, w.dir.path(), "fill", &opts);
    let started = Instant::now();
    assert!(!has_all(&nats_dir), "{version}: refilled before any pack");
    // Two intervals of 2 s, and half a second for the merge.
    let filled = eventually(Duration::from_millis(4500), || has_all(&nats_dir));
    assert!(
        filled,
        "{version}: not refilled within two intervals\n{}",
        nas.logs.text()
    );
    eprintln!("{version}: refilled in {:?}", started.elapsed());
    // Its next request carries a store hash equal to ours: nats-server hashes as we do.
    let in_sync = "store hash equals ours";
    let before = nas.logs.count(in_sync);
    assert!(
        eventually(Duration::from_secs(5), || nas.logs.count(in_sync) > before),
        "{version}: {}",
        nas.logs.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_full_resolver_is_refilled_by_our_pack_answers() {
    for (version, binary) in nats_binaries() {
        pack_fill_with(version, &binary).await;
    }
}

async fn catch_up_with(version: &str, binary: &Path) {
    let w = World::new();
    let port = free_port();
    let nats_dir = w.path("nats-jwt");
    let mut opts = NatsOptions::full_resolver(&w, &nats_dir);
    opts.port = Some(port);
    let nats = NatsServer::start_binary(binary, w.dir.path(), "catchup", &opts);
    let mut nas = start_nas(&w, &[nats.client_url()], false);
    wait_connected(&nas);
    let (account, jwt) = w.new_account("A");
    assert_eq!(nas.post_account(&account.public_key(), &jwt).status, 200);
    nas.kill();

    // While we are down, nsc pushes a new account and a newer version of A to the server.
    let client = connect(&nats.client_url(), &w.user_creds(&w.sys, "pusher"))
        .await
        .unwrap();
    let (b, b_jwt) = w.new_account("B");
    let a2 = newer_jwt(&w, &account, "A2", 1);
    for token in [&b_jwt, &a2] {
        let replies = collect(
            &client,
            "$SYS.REQ.CLAIMS.UPDATE",
            token.as_bytes(),
            Duration::from_millis(500),
        )
        .await;
        assert_eq!(replies.len(), 1, "{version}: {replies:?}");
    }
    let nas = start_nas(&w, &[nats.client_url()], false);
    let caught_up = eventually(Duration::from_secs(5), || {
        nas.get_account(&b.public_key()).text() == b_jwt
            && nas.get_account(&account.public_key()).text() == a2
    });
    assert!(
        caught_up,
        "{version}: our pack request did not bring the updates\n{}",
        nas.logs.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_made_while_we_were_away_come_back_through_our_pack_request() {
    for (version, binary) in nats_binaries() {
        catch_up_with(version, &binary).await;
    }
}

/// The `jti` the server's `/accountz` shows for `pk`, if any.
fn served_jti(server: &NatsServer, pk: &str) -> Option<String> {
    let v: Value = serde_json::from_str(&monitor(server, &format!("/accountz?acc={pk}"))).ok()?;
    v["account_detail"]["decoded_jwt"]["jti"]
        .as_str()
        .map(str::to_string)
}

async fn repair_with(version: &str, binary: &Path) {
    let w = World::new();
    let ports = [free_port(), free_port()];
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    let nas = start_nas(&w, &urls[..1], false);
    assert_eq!(
        nas.post_account(&w.sys.public_key(), &w.sys_jwt).status,
        200
    );
    let (account, old) = w.new_account("A");
    let pk = account.public_key();
    let new = newer_jwt(&w, &account, "A-new", 2);
    assert_eq!(nas.post_account(&pk, &old).status, 200);
    assert_eq!(nas.post_account(&pk, &new).status, 200);
    let cluster = start_cluster(binary, w.dir.path(), "r", 2, |i| {
        let mut o = NatsOptions::url_resolver(&w.operator_path, &w.sys.public_key(), &nas);
        o.port = Some(ports[i]);
        o
    });
    wait_for_routes(&cluster);
    wait_connected(&nas);
    // Users load the account on both servers.
    let _u0 = user(&w, &account, &cluster[0], "u0").await.unwrap();
    let _u1 = user(&w, &account, &cluster[1], "u1").await.unwrap();
    for s in &cluster {
        assert_eq!(served_jti(s, &pk), Some(jti_of(&new)), "{version}");
    }
    // Someone with system-account credentials publishes the older JWT on node 1.
    let sys = connect(&cluster[1].client_url(), &w.user_creds(&w.sys, "rogue"))
        .await
        .unwrap();
    let replies = collect(
        &sys,
        &format!("$SYS.ACCOUNT.{pk}.CLAIMS.UPDATE"),
        old.as_bytes(),
        Duration::from_millis(200),
    )
    .await;
    let published = Instant::now();
    assert!(
        replies
            .iter()
            .any(|r| r["data"]["message"] == "jwt updated"),
        "{version}: the servers did not take the older JWT: {replies:?}"
    );
    let repaired = eventually(Duration::from_secs(1), || {
        cluster
            .iter()
            .all(|s| served_jti(s, &pk) == Some(jti_of(&new)))
    });
    assert!(
        repaired && published.elapsed() < Duration::from_millis(1200),
        "{version}: servers still on the older JWT: {:?}\n{}",
        cluster
            .iter()
            .map(|s| served_jti(s, &pk))
            .collect::<Vec<_>>(),
        nas.logs.text()
    );
    assert!(nas.logs.text().contains("re-publishing the stored one"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_jwt_published_on_nats_is_undone_within_a_second() {
    for (version, binary) in nats_binaries() {
        repair_with(version, &binary).await;
    }
}

#[test]
fn http_delete_is_refused_when_disabled_and_explains_bad_requests() {
    let w = World::new();
    let off = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), ""),
    );
    let (account, jwt) = w.new_account("A");
    let pk = account.public_key();
    assert_eq!(off.post_account(&pk, &jwt).status, 200);
    let request = delete_request(&w.operator, std::slice::from_ref(&pk));
    let reply = http_delete(&off, &pk, &request);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply
        .text()
        .contains("delete must be enabled in server config"));
    assert_eq!(off.get(&format!("/jwt/v1/accounts/{pk}")).text(), jwt);
    drop(off);

    let nas = AccountServer::start(
        w.dir.path(),
        &nas_config(&w.path("jwt"), Some(&w.operator_path), "")
            .replace("store {", "store { allowdelete: true, "),
    );
    let (other, _) = w.new_account("B");
    let stranger = KeyPair::new_operator();
    let not_self_signed = sign(
        &json!({"sub": w.operator.public_key(), "nats": {"accounts": [pk]}}),
        &w.signing_key,
    );
    for (body, status, needle) in [
        (
            "garbage".to_string(),
            400,
            "delete accounts request by n/a failed",
        ),
        (
            delete_request(&stranger, std::slice::from_ref(&pk)),
            400,
            "not trusted",
        ),
        (not_self_signed, 400, "not self signed"),
        (
            sign(
                &json!({"sub": w.operator.public_key(), "nats": {"accounts": "x"}}),
                &w.operator,
            ),
            400,
            "malformed request",
        ),
        (
            delete_request(&w.operator, &[w.sys.public_key(), pk.clone()]),
            400,
            "system account",
        ),
        (
            delete_request(&w.operator, &[other.public_key()]),
            400,
            "does not name",
        ),
    ] {
        let reply = http_delete(&nas, &pk, &body);
        assert_eq!(reply.status, status, "{needle}: {}", reply.text());
        assert!(reply.text().contains(needle), "{needle}: {}", reply.text());
        assert_eq!(nas.get_account(&pk).text(), jwt, "{needle}");
    }
    // A signing key's request works; the JWT comes back only when issued after the deletion.
    let reply = http_delete(
        &nas,
        &pk,
        &delete_request(&w.signing_key, std::slice::from_ref(&pk)),
    );
    assert_eq!(
        (reply.status, reply.text().trim()),
        (200, "deleted 1 accounts")
    );
    assert_eq!(nas.get_account(&pk).status, 404);
    assert!(w.path("jwt").join(format!("{pk}.jwt.deleted")).exists());
    assert!(!nas.get("/jwt/v1/pack").text().contains(&pk));
    let again = nas.post_account(&pk, &jwt);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.text().contains("the account was deleted"));
    let fresh = newer_jwt(&w, &account, "A-again", 1);
    assert_eq!(nas.post_account(&pk, &fresh).status, 200);
    assert_eq!(nas.get_account(&pk).text(), fresh);
}
