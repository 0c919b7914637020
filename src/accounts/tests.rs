//! The account service's resolver-protocol rules, in process over a memory store: merges take
//! only newer JWTs, deletes stay deleted, the pack hash is nats-server's, and delete requests
//! are checked in nats-server's order.

use std::sync::Arc;

use bytes::Bytes;
use nkeys::KeyPair;
use serde_json::{json, Value};

use super::resolver::DeleteError;
use super::{unix_now, Accounts, Policy, SubmitError};
use crate::keys::AccountKey;
use crate::notify::Notifier;
use crate::store::{JwtStore, MemoryStore};
use crate::trust::Trust;

struct World {
    _dir: tempfile::TempDir,
    operator: KeyPair,
    signing_key: KeyPair,
    sys: KeyPair,
    store: Arc<MemoryStore>,
    accounts: Accounts,
}

fn world(allow_delete: bool) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (operator, signing_key, sys) = (
        KeyPair::new_operator(),
        KeyPair::new_operator(),
        KeyPair::new_account(),
    );
    let op = json!({"name": "OP", "sub": operator.public_key(), "nats": {
        "signing_keys": [signing_key.public_key()], "system_account": sys.public_key(),
        "type": "operator"}});
    let path = dir.path().join("op.jwt");
    std::fs::write(&path, crate::jwt::encode(&op, &operator).unwrap()).unwrap();
    let trust = Arc::new(Trust::load(Some(&path), None).unwrap());
    let store = Arc::new(MemoryStore::default());
    let policy = Policy {
        allow_delete,
        pack_limit: 10_000,
        ..Policy::default()
    };
    let blocking = Arc::new(crate::store::Blocking::new(store.clone()));
    let accounts = Accounts::with_policy(trust, blocking, Notifier::disabled(), policy);
    World {
        _dir: dir,
        operator,
        signing_key,
        sys,
        store,
        accounts,
    }
}

fn account_jwt(w: &World, account: &KeyPair, name: &str, iat: i64) -> Vec<u8> {
    let claims = json!({"name": name, "sub": account.public_key(), "iat": iat,
        "nats": {"limits": {"conn": -1, "subs": -1, "data": -1, "payload": -1, "imports": -1,
        "exports": -1, "wildcards": true, "leaf": -1}, "type": "account"}});
    crate::jwt::encode(&claims, &w.signing_key)
        .unwrap()
        .into_bytes()
}

fn key_of(kp: &KeyPair) -> AccountKey {
    AccountKey::parse(&kp.public_key()).unwrap()
}

fn delete_request(signer: &KeyPair, accounts: Value) -> Vec<u8> {
    let claims = json!({"sub": signer.public_key(), "nats": {"accounts": accounts}});
    crate::jwt::encode(&claims, signer).unwrap().into_bytes()
}

#[tokio::test]
async fn a_merge_takes_only_newer_trusted_jwts() {
    let w = world(false);
    let a = KeyPair::new_account();
    let k = key_of(&a);
    let now = unix_now();
    let v1 = account_jwt(&w, &a, "v1", now - 10);
    assert!(w.accounts.merge(&k, &v1).await.unwrap());
    assert!(!w.accounts.merge(&k, &v1).await.unwrap());
    let same_iat = account_jwt(&w, &a, "other", now - 10);
    assert!(!w.accounts.merge(&k, &same_iat).await.unwrap());
    let older = account_jwt(&w, &a, "old", now - 20);
    assert!(!w.accounts.merge(&k, &older).await.unwrap());
    assert_eq!(w.store.load(&k).unwrap().unwrap(), v1);
    let v2 = account_jwt(&w, &a, "v2", now - 5);
    assert!(w.accounts.merge(&k, &v2).await.unwrap());
    let mut untrusted = json!({"sub": a.public_key(), "iat": now, "nats": {"type": "account"}});
    untrusted["name"] = json!("x");
    let untrusted = crate::jwt::encode(&untrusted, &KeyPair::new_operator()).unwrap();
    assert!(matches!(
        w.accounts.merge(&k, untrusted.as_bytes()).await,
        Err(SubmitError::Rejected(_))
    ));
    assert_eq!(w.store.load(&k).unwrap().unwrap(), v2);
}

#[tokio::test]
async fn a_deleted_account_comes_back_only_with_a_newer_jwt() {
    let w = world(true);
    let (a, b) = (KeyPair::new_account(), KeyPair::new_account());
    let now = unix_now();
    let v1 = account_jwt(&w, &a, "v1", now - 10);
    w.accounts.submit(&key_of(&a), &v1).await.unwrap();
    let request = w
        .accounts
        .check_delete(&delete_request(
            &w.operator,
            json!([a.public_key(), b.public_key()]),
        ))
        .unwrap();
    assert_eq!(w.accounts.delete(&request).await.unwrap(), 2);
    assert_eq!(w.accounts.lookup(&key_of(&a)).await.unwrap(), None);
    for (key, jwt) in [
        (key_of(&a), v1.clone()),
        (key_of(&b), account_jwt(&w, &b, "b", now - 100)),
    ] {
        assert!(matches!(
            w.accounts.merge(&key, &jwt).await,
            Err(SubmitError::Conflict(crate::store::Refusal::Deleted { .. }))
        ));
        assert!(matches!(
            w.accounts.submit(&key, &jwt).await,
            Err(SubmitError::Conflict(crate::store::Refusal::Deleted { .. }))
        ));
    }
    let v2 = account_jwt(&w, &a, "v2", now + 1);
    assert!(w.accounts.merge(&key_of(&a), &v2).await.unwrap());
    assert!(w.accounts.lookup(&key_of(&a)).await.unwrap().is_some());
}

#[tokio::test]
async fn the_pack_hash_is_the_xor_of_the_sha256_of_unexpired_jwts() {
    use sha2::{Digest, Sha256};
    let w = world(false);
    let now = unix_now();
    let mut expected = [0u8; 32];
    for i in 0..3 {
        let a = KeyPair::new_account();
        let jwt = account_jwt(&w, &a, &format!("A{i}"), now - i);
        w.accounts.submit(&key_of(&a), &jwt).await.unwrap();
        for (e, d) in expected.iter_mut().zip(Sha256::digest(&jwt)) {
            *e ^= d;
        }
    }
    // An expired JWT put there by hand is neither packed, hashed nor listed.
    let gone = KeyPair::new_account();
    let claims = json!({"sub": gone.public_key(), "iat": now - 100, "exp": now - 50,
        "nats": {"type": "account"}});
    let expired = crate::jwt::encode(&claims, &w.signing_key).unwrap();
    w.store.save(&key_of(&gone), expired.as_bytes()).unwrap();
    let pack = w.accounts.pack_state().await.unwrap();
    assert_eq!(pack.hash, expected);
    assert_eq!(pack.entries.len(), 3);
    let listed = crate::notify::resolver::Inbound::list(&w.accounts).await;
    assert_eq!(listed.len(), 3);
    assert!(!listed.contains(&gone.public_key()));
    assert_eq!(
        world(false).accounts.pack_state().await.unwrap().hash,
        [0u8; 32]
    );
}

#[test]
fn delete_requests_are_checked_in_nats_servers_order() {
    let on = world(true);
    let a = KeyPair::new_account().public_key();
    let err = |w: &World, body: &[u8]| w.accounts.check_delete(body).unwrap_err().error;
    // The signature comes first, then the switch, then the rest.
    assert!(matches!(
        err(&world(false), b"x.y.z"),
        DeleteError::Decode(_)
    ));
    let good = delete_request(&on.operator, json!([a]));
    assert!(matches!(err(&world(false), &good), DeleteError::Disabled));
    let not_self = crate::jwt::encode(
        &json!({"sub": on.operator.public_key(), "nats": {"accounts": [a]}}),
        &on.signing_key,
    )
    .unwrap();
    assert!(matches!(
        err(&on, not_self.as_bytes()),
        DeleteError::NotSelfSigned
    ));
    let stranger = KeyPair::new_operator();
    assert!(matches!(
        err(&on, &delete_request(&stranger, json!([a]))),
        DeleteError::NotTrusted
    ));
    for bad in [json!("A"), json!(["nope"]), json!([1]), Value::Null] {
        assert!(matches!(
            err(&on, &delete_request(&on.operator, bad)),
            DeleteError::Malformed
        ));
    }
    assert!(matches!(
        err(
            &on,
            &delete_request(&on.operator, json!([a, on.sys.public_key()]))
        ),
        DeleteError::SystemAccount
    ));
    let ok = on.accounts.check_delete(&good).unwrap();
    assert_eq!(ok.by, on.operator.public_key());
    assert_eq!(ok.accounts, vec![AccountKey::parse(&a).unwrap()]);
    assert_eq!(ok.raw, Bytes::from(good));
    let by_signing_key = delete_request(&on.signing_key, json!([]));
    assert!(on
        .accounts
        .check_delete(&by_signing_key)
        .unwrap()
        .accounts
        .is_empty());
}

#[tokio::test]
async fn the_pack_streams_in_chunks_up_to_max_without_expired_jwts() {
    let w = world(false);
    let now = unix_now();
    let mut expected = Vec::new();
    for i in 0..150 {
        let a = KeyPair::new_account();
        let jwt = account_jwt(&w, &a, &format!("A{i}"), now);
        w.accounts.submit(&key_of(&a), &jwt).await.unwrap();
        expected.push(crate::store::stored::pack_line(&key_of(&a), &jwt));
    }
    // An expired JWT put there by hand is left out.
    let b = KeyPair::new_account();
    let claims = json!({"sub": b.public_key(), "iat": now - 10, "exp": now - 5,
        "nats": {"type": "account"}});
    let expired = crate::jwt::encode(&claims, &w.signing_key).unwrap();
    w.store.save(&key_of(&b), expired.as_bytes()).unwrap();
    let accounts = Arc::new(w.accounts);
    let pack = |max| {
        let mut chunks = accounts.pack_chunks(max);
        async move {
            let mut all = Vec::new();
            while let Some(chunk) = chunks.recv().await {
                all.push(chunk.unwrap());
            }
            all
        }
    };
    let chunks = pack(usize::MAX).await;
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.len() < 2 * super::PACK_CHUNK));
    let body = chunks.concat();
    let mut lines: Vec<Vec<u8>> = body.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
    lines.sort();
    expected.sort();
    assert_eq!(lines, expected);
    assert_eq!(pack(10).await.concat().split(|c| *c == b'\n').count(), 10);
    assert_eq!(pack(0).await, vec![Bytes::new()]);
}

#[tokio::test]
async fn a_watch_echo_of_the_cached_jwt_keeps_it_and_any_other_drops_it() {
    let w = world(false);
    let policy = Policy {
        cache_bytes: 1 << 20,
        ..Policy::default()
    };
    let blocking = Arc::new(crate::store::Blocking::new(w.store.clone()));
    let accounts = Accounts::with_policy(
        w.accounts.trust.clone(),
        blocking,
        Notifier::disabled(),
        policy,
    );
    let a = KeyPair::new_account();
    let k = key_of(&a);
    let now = unix_now();
    let (v1, v2, v3) = (
        account_jwt(&w, &a, "A", now),
        account_jwt(&w, &a, "A", now + 1),
        account_jwt(&w, &a, "A", now + 2),
    );
    accounts.submit(&k, &v1).await.unwrap();
    async fn served(accounts: &Accounts, k: &AccountKey) -> Vec<u8> {
        accounts.lookup(k).await.unwrap().unwrap().0.bytes.to_vec()
    }
    assert_eq!(served(&accounts, &k).await, v1);
    // Behind the cache's back (another instance), the store changes.
    w.store.save(&k, &v2).unwrap();
    accounts.stored_now(&k, Some(&v1));
    assert_eq!(
        served(&accounts, &k).await,
        v1,
        "the echo of the cached JWT keeps it"
    );
    accounts.stored_now(&k, Some(&v2));
    assert_eq!(served(&accounts, &k).await, v2, "a different JWT drops it");
    w.store.save(&k, &v3).unwrap();
    accounts.stored_now(&k, None);
    assert_eq!(served(&accounts, &k).await, v3, "a delete drops it");
}
