//! Real nats-servers as validation oracles, and a JSON document builder that can write what
//! serde cannot (duplicate keys, key order), for tokens Go and we might read differently.
//!
//! A nats-server with `resolver { type: full }` answers `$SYS.REQ.CLAIMS.UPDATE` with
//! `jwt updated` or `jwt validation failed - ...`: its verdict on decoding and validation (it
//! checks neither trust nor expiry there).

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use nkeys::KeyPair;

use super::{NatsOptions, NatsServer, World};

/// A full-resolver nats-server trusting the world's operator, with a system-account client.
pub struct Oracle {
    pub server: NatsServer,
    pub client: async_nats::Client,
    /// `2.9.10` or `2.15.1`, for messages.
    pub version: &'static str,
}

impl Oracle {
    /// Starts `binary` as a full-resolver server named `name`.
    pub async fn start(w: &World, binary: &Path, name: &str, version: &'static str) -> Oracle {
        let opts = NatsOptions::full_resolver(w, &w.path(&format!("{name}-jwt")));
        let server = NatsServer::start_binary(binary, w.dir.path(), name, &opts);
        let creds = w.user_creds(&w.sys, &format!("{name}-sys"));
        let client = super::connect(&server.client_url(), &creds)
            .await
            .unwrap_or_else(|e| panic!("system user cannot connect to {version}: {e}"));
        Oracle {
            server,
            client,
            version,
        }
    }

    /// The server's verdict on an account JWT: `Ok(())` for `jwt updated`, else the reason.
    pub async fn verdict(&self, jwt: &str) -> Result<(), String> {
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            self.client
                .request("$SYS.REQ.CLAIMS.UPDATE", jwt.to_string().into()),
        )
        .await
        .unwrap_or_else(|_| panic!("{} did not answer an update", self.version))
        .unwrap_or_else(|e| panic!("{} update request failed: {e}", self.version));
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_else(|e| {
            panic!(
                "{} answered no JSON ({e}): {}",
                self.version,
                String::from_utf8_lossy(&reply.payload)
            )
        });
        if v["data"]["code"] == 200 {
            Ok(())
        } else {
            Err(v["error"]["description"]
                .as_str()
                .unwrap_or("no description")
                .to_string())
        }
    }
}

/// Signs a payload written as JSON text (kept byte for byte) as a v2 JWT.
pub fn sign_payload(payload: &str, signer: &KeyPair) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let head = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let signed = format!("{head}.{}", b64(payload.as_bytes()));
    let sig = signer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&sig))
}

/// A JSON document that keeps key order and may hold a key twice.
#[derive(Debug, Clone)]
pub enum Doc {
    /// JSON text written as is.
    Lit(String),
    /// An object: keys in order, duplicates allowed.
    Obj(Vec<(String, Doc)>),
    /// An array.
    Arr(Vec<Doc>),
}

impl Doc {
    /// A literal from a serde value.
    pub fn of(v: serde_json::Value) -> Doc {
        Doc::Lit(v.to_string())
    }

    /// A serde value with its objects as editable [`Doc::Obj`]s.
    pub fn tree(v: serde_json::Value) -> Doc {
        match v {
            serde_json::Value::Object(m) => {
                Doc::Obj(m.into_iter().map(|(k, v)| (k, Doc::tree(v))).collect())
            }
            other => Doc::of(other),
        }
    }

    /// How often `key` (exactly) is in the object at `path` (0 when there is no such object).
    pub fn count(&self, path: &[&str], key: &str) -> usize {
        let Doc::Obj(entries) = self else {
            return 0;
        };
        match path.split_first() {
            None => entries.iter().filter(|(k, _)| k == key).count(),
            Some((first, rest)) => entries
                .iter()
                .rev()
                .find(|(k, _)| k == first)
                .map_or(0, |(_, child)| child.count(rest, key)),
        }
    }

    /// The JSON text.
    pub fn render(&self) -> String {
        match self {
            Doc::Lit(s) => s.clone(),
            Doc::Arr(items) => format!(
                "[{}]",
                items.iter().map(Doc::render).collect::<Vec<_>>().join(",")
            ),
            Doc::Obj(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::Value::from(k.as_str()), v.render()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// The entries of the object at `path` (objects are created along the way; a literal in
    /// the way is replaced by an object).
    pub fn object_at(&mut self, path: &[&str]) -> &mut Vec<(String, Doc)> {
        if !matches!(self, Doc::Obj(_)) {
            *self = Doc::Obj(Vec::new());
        }
        let Doc::Obj(entries) = self else {
            unreachable!()
        };
        match path.split_first() {
            None => entries,
            Some((first, rest)) => {
                if !entries.iter().any(|(k, _)| k == first) {
                    entries.push((first.to_string(), Doc::Obj(Vec::new())));
                }
                let (_, child) = entries.iter_mut().find(|(k, _)| k == first).unwrap();
                child.object_at(rest)
            }
        }
    }

    /// Sets `key` in the object at `path` (replacing it in place when present).
    pub fn set(&mut self, path: &[&str], key: &str, value: Doc) {
        let entries = self.object_at(path);
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    /// Appends `key` to the object at `path`, even when it is there already.
    pub fn append(&mut self, path: &[&str], key: &str, value: Doc) {
        self.object_at(path).push((key.to_string(), value));
    }

    /// Removes `key` from the object at `path`.
    pub fn remove(&mut self, path: &[&str], key: &str) {
        self.object_at(path).retain(|(k, _)| k != key);
    }
}
