//! The account-store contract, run against every backend: directory (flat and sharded),
//! memory, and the JetStream KV bucket on a real nats-server (2.9.10 and 2.15.1). The rules of
//! a write (newest `iat` wins, deletes stay deleted, same bytes change nothing) are decided by
//! the store atomically with the write, so concurrent writers (tasks of one process, or two
//! store instances on one bucket) cannot roll an account back.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use nats_account_server::config::JetStreamConfig;
use nats_account_server::keys::AccountKey;
use nats_account_server::store::{
    AccountStore, Blocking, DirStore, KvStore, MemoryStore, Mode, Put, PutError, Refusal, WriteRule,
};
use support::kv::JsServer;
use support::*;

fn key() -> AccountKey {
    AccountKey::parse(&nkeys::KeyPair::new_account().public_key()).unwrap()
}

/// A token whose payload carries `iat` and a tag (the store reads `iat` without verifying).
fn jwt(iat: i64, tag: &str) -> Bytes {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let payload = format!(r#"{{"iat":{iat},"jti":"{tag}"}}"#);
    Bytes::from(format!("{}.{}.sig", b64("{}"), b64(&payload)))
}

fn replace(iat: i64) -> WriteRule {
    WriteRule::by_iat(iat, Mode::Replace)
}

async fn put(
    store: &dyn AccountStore,
    k: &AccountKey,
    iat: i64,
    tag: &str,
) -> Result<Put, PutError> {
    store.put(k, jwt(iat, tag), &replace(iat)).await
}

fn refusal(r: Result<Put, PutError>) -> Refusal {
    match r {
        Err(PutError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The rules of one key's writes.
async fn newest_iat_wins(store: &dyn AccountStore) {
    let k = key();
    assert_eq!(store.load(&k).await.unwrap(), None);
    assert_eq!(
        put(store, &k, 10, "a").await.unwrap(),
        Put::Written { created: true }
    );
    assert_eq!(store.load(&k).await.unwrap(), Some(jwt(10, "a")));
    assert_eq!(put(store, &k, 10, "a").await.unwrap(), Put::Unchanged);
    let older = refusal(put(store, &k, 9, "old").await);
    assert_eq!(
        older,
        Refusal::Older {
            stored_iat: 10,
            posted_iat: 9
        }
    );
    assert_eq!(store.load(&k).await.unwrap(), Some(jwt(10, "a")));
    // A push of an equal iat replaces, a merge does not.
    assert_eq!(
        put(store, &k, 10, "b").await.unwrap(),
        Put::Written { created: false }
    );
    let merge = WriteRule::by_iat(10, Mode::Merge);
    let not_newer = refusal(store.put(&k, jwt(10, "c"), &merge).await);
    assert_eq!(
        not_newer,
        Refusal::NotNewer {
            stored_iat: 10,
            posted_iat: 10
        }
    );
    assert_eq!(
        put(store, &k, 11, "d").await.unwrap(),
        Put::Written { created: false }
    );
    assert_eq!(store.load(&k).await.unwrap(), Some(jwt(11, "d")));
    // A floor holds whatever is stored; a stored JWT that does not count holds nothing back.
    let mut floored = replace(12);
    floored.floor = Some(13);
    assert!(matches!(
        refusal(store.put(&k, jwt(12, "e"), &floored).await),
        Refusal::Older { stored_iat: 13, .. }
    ));
    let mut ignored = replace(5);
    ignored.stored_floor = Arc::new(|_| None);
    assert_eq!(
        store.put(&k, jwt(5, "f"), &ignored).await.unwrap(),
        Put::Written { created: false }
    );
}

/// Deletes leave tombstones that refuse JWTs not issued after the deleted one.
async fn deletes_stay_deleted(store: &dyn AccountStore) {
    let (k, never) = (key(), key());
    put(store, &k, 10, "a").await.unwrap();
    assert!(store.delete(&k, jwt(3, "request")).await.unwrap());
    assert_eq!(store.load(&k).await.unwrap(), None);
    assert!(!store.keys().await.unwrap().contains(&k));
    assert_eq!(
        refusal(put(store, &k, 10, "a").await),
        Refusal::Deleted {
            deleted_iat: 10,
            posted_iat: 10
        }
    );
    // Deleting again keeps the first tombstone (the deleted JWT, not the new request).
    assert!(!store.delete(&k, jwt(50, "again")).await.unwrap());
    assert_eq!(
        refusal(put(store, &k, 9, "x").await),
        Refusal::Deleted {
            deleted_iat: 10,
            posted_iat: 9
        }
    );
    assert_eq!(
        put(store, &k, 11, "back").await.unwrap(),
        Put::Written { created: true }
    );
    assert_eq!(store.load(&k).await.unwrap(), Some(jwt(11, "back")));
    // A key never stored keeps the request as its tombstone.
    assert!(!store.delete(&never, jwt(20, "request")).await.unwrap());
    assert!(matches!(
        refusal(put(store, &never, 20, "n").await),
        Refusal::Deleted {
            deleted_iat: 20,
            ..
        }
    ));
    assert_eq!(
        put(store, &never, 21, "n").await.unwrap(),
        Put::Written { created: true }
    );
    // `Always` writes whatever is stored.
    assert!(store
        .put(&k, jwt(1, "any"), &WriteRule::always())
        .await
        .is_ok());
    assert_eq!(store.load(&k).await.unwrap(), Some(jwt(1, "any")));
}

/// Listing and counting.
async fn keys_are_listed_sorted(store: &dyn AccountStore) {
    let before = store.keys().await.unwrap();
    let mut added: Vec<AccountKey> = (0..5).map(|_| key()).collect();
    for (i, k) in added.iter().enumerate() {
        put(store, k, 100 + i as i64, "k").await.unwrap();
    }
    let keys = store.keys().await.unwrap();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted");
    added.extend(before);
    added.sort();
    assert_eq!(keys, added);
    assert_eq!(store.count().await.unwrap(), keys.len());
    store.check().await.unwrap();
}

/// Many writers of one key at once, each with its own version: the newest stays, and every
/// write acknowledged as written was not older than what a reader saw before it.
async fn concurrent_writers_end_on_the_newest(stores: &[Arc<dyn AccountStore>]) {
    let k = key();
    let mut tasks = Vec::new();
    for version in 1..=40i64 {
        let store = stores[version as usize % stores.len()].clone();
        let k = k.clone();
        // Versions arrive in a scrambled order.
        let iat = (version * 17) % 41;
        tasks.push(tokio::spawn(async move {
            store
                .put(&k, jwt(iat, &format!("v{iat}")), &replace(iat))
                .await
        }));
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) | Err(PutError::Refused(Refusal::Older { .. })) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    for store in stores {
        assert_eq!(store.load(&k).await.unwrap(), Some(jwt(40, "v40")));
    }
}

async fn contract(stores: &[Arc<dyn AccountStore>]) {
    newest_iat_wins(stores[0].as_ref()).await;
    deletes_stay_deleted(stores[0].as_ref()).await;
    keys_are_listed_sorted(stores[0].as_ref()).await;
    concurrent_writers_end_on_the_newest(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directory_and_memory_stores_keep_the_contract() {
    // With group commit (puts batched by a writer thread) and without (each put alone).
    for (shard, group_commit) in [(false, true), (true, true), (true, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DirStore::<AccountKey>::open(tmp.path(), shard).unwrap();
        let dir = Arc::new(dir.with_group_commit(group_commit));
        contract(&[Arc::new(Blocking::new(dir))]).await;
    }
    contract(&[Arc::new(Blocking::new(Arc::new(
        MemoryStore::<AccountKey>::default(),
    )))])
    .await;
}

/// A KV store on `server`'s bucket `bucket`, open (bounded wait).
pub async fn open_kv(server: &JsServer, bucket: &str) -> Arc<KvStore> {
    let config = JetStreamConfig {
        servers: vec![server.url()],
        user: Some(support::kv::JS_USER.into()),
        password: Some(support::kv::JS_PASSWORD.into()),
        bucket: bucket.into(),
        ..JetStreamConfig::default()
    };
    let kv = KvStore::open(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while kv.check().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "bucket not open: {:?}",
            kv.check().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_jetstream_kv_store_keeps_the_contract_across_instances() {
    for (version, binary) in nats_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let server = JsServer::start(&binary, dir.path());
        // Two store instances on one bucket: the second one's writes race the first one's.
        let one = open_kv(&server, "contract").await;
        let two = open_kv(&server, "contract").await;
        eprintln!("{version}: bucket open");
        contract(&[one as Arc<dyn AccountStore>, two]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_watch_reports_changes_made_by_another_instance() {
    for (version, binary) in nats_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let server = JsServer::start(&binary, dir.path());
        let one = open_kv(&server, "watched").await;
        let config = JetStreamConfig {
            servers: vec![server.url()],
            user: Some(support::kv::JS_USER.into()),
            password: Some(support::kv::JS_PASSWORD.into()),
            bucket: "watched".into(),
            ..JetStreamConfig::default()
        };
        // Watched from before the bucket is open.
        let two = KvStore::open(&config).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _watch = two.watch(move |key, _| drop(tx.send(key)), || {});
        let k = key();
        // The watch starts in the background: write until it reports (bounded).
        let mut seen = None;
        for iat in 1..=50 {
            put(one.as_ref(), &k, iat, "w").await.unwrap();
            if let Ok(Some(key)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {
                seen = Some(key);
                break;
            }
        }
        assert_eq!(seen, Some(k), "{version}: no change reported");
    }
}
