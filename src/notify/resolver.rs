//! The responders of nats-server's account-resolver protocol (peers §A.6): updates with
//! replies, lookups, LIST, DELETE and PACK, answered in nats-server's shapes so that `nsc push`
//! and full-resolver servers count this server as one of theirs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use crate::keys::AccountKey;

/// Subject of updates whose account is the JWT's `sub` (what `nsc push` sends).
pub const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";
/// Subject of LIST requests.
pub const CLAIMS_LIST: &str = "$SYS.REQ.CLAIMS.LIST";
/// Subject of DELETE requests.
pub const CLAIMS_DELETE: &str = "$SYS.REQ.CLAIMS.DELETE";
/// Subject of PACK requests.
pub const CLAIMS_PACK: &str = "$SYS.REQ.CLAIMS.PACK";
/// The queue group full resolvers answer PACK requests in.
pub const PACK_QUEUE: &str = "responder";

/// The answer to an update or delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done: `message` is e.g. `jwt updated` or `deleted 2 accounts`.
    Done {
        /// The account, for updates.
        account: Option<String>,
        /// What happened.
        message: String,
    },
    /// Refused or failed.
    Failed {
        /// The account, for updates (`n/a` when the JWT does not decode).
        account: Option<String>,
        /// A status code in HTTP's sense (nats-server always says 500).
        code: u16,
        /// Why, on one line.
        description: String,
    },
}

/// The JWTs a PACK reply carries and the store hash nats-server would compute over them.
#[derive(Debug, Clone, Default)]
pub struct Pack {
    /// XOR of the SHA-256 of every JWT's bytes.
    pub hash: [u8; 32],
    /// `(account key, JWT bytes)` of every stored, unexpired account.
    pub entries: Vec<(AccountKey, Bytes)>,
}

/// What the resolver protocol asks of the rest of the server.
pub trait Inbound: Send + Sync + 'static {
    /// The JWT to answer a `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` with, if any.
    fn lookup(&self, key: AccountKey) -> impl Future<Output = Option<Bytes>> + Send;
    /// Handles an update another client published; `key` is the account the subject names
    /// (`None` on `$SYS.REQ.CLAIMS.UPDATE`, where the JWT's `sub` decides).
    fn update(&self, key: Option<AccountKey>, jwt: Bytes) -> impl Future<Output = Answer> + Send;
    /// The stored, unexpired account keys (LIST).
    fn list(&self) -> impl Future<Output = Vec<String>> + Send;
    /// Handles an operator-signed delete request.
    fn delete(&self, jwt: Bytes) -> impl Future<Output = Answer> + Send;
    /// The pack of the store.
    fn pack(&self) -> impl Future<Output = Pack> + Send;
    /// Merges one JWT from another server's pack: `Ok(true)` when stored.
    fn merge(
        &self,
        key: AccountKey,
        jwt: Bytes,
    ) -> impl Future<Output = Result<bool, String>> + Send;
}

/// Who answers: the `server` object of every reply.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `nats.name`.
    pub name: String,
    /// A server nkey made at start, as nats-server's `id`.
    pub id: String,
}

impl ServerInfo {
    /// An identity named `name` with a fresh id.
    pub fn new(name: &str) -> Self {
        ServerInfo {
            name: name.to_string(),
            id: nkeys::KeyPair::new_server().public_key(),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "host": "",
            "id": self.id,
            "ver": env!("CARGO_PKG_VERSION"),
            "seq": 0,
            "jetstream": false,
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        })
    }
}

/// An update or delete reply in nats-server's shape.
pub fn reply_body(server: &ServerInfo, answer: &Answer) -> Bytes {
    let with_account = |mut v: serde_json::Value, account: &Option<String>| {
        if let Some(a) = account {
            v["account"] = json!(a);
        }
        v
    };
    let body = match answer {
        Answer::Done { account, message } => json!({
            "server": server.json(),
            "data": with_account(json!({"code": 200, "message": message}), account),
        }),
        Answer::Failed {
            account,
            code,
            description,
        } => json!({
            "server": server.json(),
            "error": with_account(json!({"code": code, "description": description}), account),
        }),
    };
    Bytes::from(body.to_string())
}

/// The account key in a `$SYS.ACCOUNT.<key>...` or `$SYS.REQ.ACCOUNT.<key>...` subject.
pub(crate) fn key_in_subject(subject: &str) -> Option<AccountKey> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let idx = if tokens.get(1) == Some(&"REQ") { 3 } else { 2 };
    tokens.get(idx).and_then(|t| AccountKey::parse(t).ok())
}

async fn respond(client: &Client, msg: &Message, body: Bytes, what: &str) {
    if let Some(reply) = msg.reply.clone() {
        if let Err(e) = client.publish(reply, body).await {
            tracing::warn!("cannot answer {what}: {e}");
        }
    }
}

/// Answers updates on `$SYS.REQ.CLAIMS.UPDATE` and the per-account update subjects.
pub(crate) async fn answer_updates<H: Inbound>(
    mut sub: Subscriber,
    client: Client,
    handler: Arc<H>,
    server: Arc<ServerInfo>,
) {
    while let Some(msg) = sub.next().await {
        let key = if msg.subject.as_str() == CLAIMS_UPDATE {
            None
        } else {
            match key_in_subject(msg.subject.as_str()) {
                Some(key) => Some(key),
                None => {
                    tracing::warn!("ignoring an update on a subject without an account key");
                    continue;
                }
            }
        };
        let answer = handler.update(key, msg.payload.clone()).await;
        respond(&client, &msg, reply_body(&server, &answer), "an update").await;
    }
}

/// Answers `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` with the stored JWT; unknown accounts get no
/// reply, so that an empty answer cannot end another server's lookup early.
pub(crate) async fn answer_lookups<H: Inbound>(
    mut sub: Subscriber,
    client: Client,
    handler: Arc<H>,
) {
    while let Some(msg) = sub.next().await {
        let Some(key) = key_in_subject(msg.subject.as_str()) else {
            continue;
        };
        match handler.lookup(key.clone()).await {
            Some(jwt) => {
                respond(&client, &msg, jwt, "a lookup").await;
                tracing::debug!("answered lookup of {}", key.short());
            }
            None => tracing::debug!("lookup of {}: no JWT stored", key.short()),
        }
    }
}

/// Answers `$SYS.REQ.CLAIMS.LIST` with the stored, unexpired account keys.
pub(crate) async fn answer_lists<H: Inbound>(
    mut sub: Subscriber,
    client: Client,
    handler: Arc<H>,
    server: Arc<ServerInfo>,
) {
    while let Some(msg) = sub.next().await {
        let keys = handler.list().await;
        let body = json!({"server": server.json(), "data": keys}).to_string();
        respond(&client, &msg, Bytes::from(body), "a list request").await;
    }
}

/// Answers `$SYS.REQ.CLAIMS.DELETE`.
pub(crate) async fn answer_deletes<H: Inbound>(
    mut sub: Subscriber,
    client: Client,
    handler: Arc<H>,
    server: Arc<ServerInfo>,
) {
    while let Some(msg) = sub.next().await {
        let answer = handler.delete(msg.payload.clone()).await;
        respond(
            &client,
            &msg,
            reply_body(&server, &answer),
            "a delete request",
        )
        .await;
    }
}

/// Deliveries of one request through both subscriptions arrive within this time.
const SAME_REQUEST: Duration = Duration::from_secs(2);
/// A requester whose hash stays different after our pack is sent it again after this time.
const REANSWER_AFTER: Duration = Duration::from_secs(600);

/// Pack requests already answered in full: reply subject → (their hash, our hash, when).
#[derive(Default)]
struct Answered(Mutex<HashMap<String, AnsweredState>>);

/// Their hash, our hash, and when a request was answered.
type AnsweredState = ([u8; 32], [u8; 32], Instant);

impl Answered {
    /// Records an answer; `true` when the same request state was answered before (within
    /// `window` when given).
    fn seen(
        &self,
        reply: &str,
        theirs: [u8; 32],
        ours: [u8; 32],
        window: Option<Duration>,
    ) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, o, at)) = map.get(reply) {
            if *t == theirs && *o == ours && window.is_none_or(|w| at.elapsed() < w) {
                return true;
            }
        }
        if map.len() > 1024 {
            map.clear();
        }
        map.insert(reply.to_string(), (theirs, ours, Instant::now()));
        false
    }
}

/// Answers PACK requests. In queue group `responder` exactly as a full resolver: the
/// requester's hash equal to ours gets one empty message, else one `<pk>|<jwt>` message per
/// JWT and an empty one. nats-server delivers a queue request to a responder on the
/// requester's own node first (usually the requester itself), so a plain subscription also
/// sees every request and answers those whose hash differs from ours, once per state.
pub(crate) async fn answer_packs<H: Inbound>(
    queued: Subscriber,
    plain: Subscriber,
    client: Client,
    handler: Arc<H>,
) {
    let answered = Answered::default();
    let mut both =
        futures_util::stream::select(queued.map(|m| (true, m)), plain.map(|m| (false, m)));
    while let Some((from_queue, msg)) = both.next().await {
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let pack = handler.pack().await;
        let theirs: [u8; 32] = msg.payload.as_ref().try_into().unwrap_or([0xff; 32]);
        let in_sync = msg.payload.as_ref() == pack.hash;
        // A queue delivery that the plain subscription answered a moment ago is the same
        // request; a plain one is answered again only after a while (in case it was lost).
        let window = Some(if from_queue {
            SAME_REQUEST
        } else {
            REANSWER_AFTER
        });
        if in_sync {
            tracing::debug!("pack request: the requester's store hash equals ours");
            if from_queue {
                respond(&client, &msg, Bytes::new(), "a pack request").await;
            }
            continue;
        }
        if answered.seen(reply.as_str(), theirs, pack.hash, window) {
            continue;
        }
        for (key, jwt) in &pack.entries {
            let line = crate::store::stored::pack_line(key, jwt);
            if let Err(e) = client.publish(reply.clone(), Bytes::from(line)).await {
                tracing::warn!("cannot answer a pack request: {e}");
                break;
            }
        }
        respond(&client, &msg, Bytes::new(), "a pack request").await;
        tracing::info!(
            "answered a pack request with {} JWT(s) ({})",
            pack.entries.len(),
            if from_queue {
                "queue responder"
            } else {
                "store hash differs"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_subjects() {
        let k = nkeys::KeyPair::new_account().public_key();
        assert_eq!(
            key_in_subject(&format!("$SYS.ACCOUNT.{k}.CLAIMS.UPDATE"))
                .unwrap()
                .as_str(),
            k
        );
        assert_eq!(
            key_in_subject(&format!("$SYS.REQ.ACCOUNT.{k}.CLAIMS.LOOKUP"))
                .unwrap()
                .as_str(),
            k
        );
        assert!(key_in_subject("$SYS.ACCOUNT.nope.CLAIMS.UPDATE").is_none());
        assert!(key_in_subject("x").is_none());
    }

    #[test]
    fn replies_have_nats_servers_shape() {
        let server = ServerInfo::new("nas");
        let ok = reply_body(
            &server,
            &Answer::Done {
                account: Some("AK".into()),
                message: "jwt updated".into(),
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&ok).unwrap();
        assert_eq!(v["server"]["name"], "nas");
        assert!(v["server"]["id"].as_str().unwrap().starts_with('N'));
        assert_eq!(
            v["data"],
            json!({"account": "AK", "code": 200, "message": "jwt updated"})
        );
        let err = reply_body(
            &server,
            &Answer::Failed {
                account: None,
                code: 500,
                description: "nope".into(),
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(v["error"], json!({"code": 500, "description": "nope"}));
        assert!(v.get("data").is_none());
    }

    #[test]
    fn a_pack_state_is_answered_once_per_requester() {
        let a = Answered::default();
        assert!(!a.seen("r1", [1; 32], [2; 32], None));
        assert!(a.seen("r1", [1; 32], [2; 32], None));
        assert!(!a.seen("r1", [1; 32], [3; 32], None));
        assert!(!a.seen("r2", [1; 32], [3; 32], None));
        assert!(!a.seen("r2", [1; 32], [3; 32], Some(Duration::ZERO)));
    }
}
