//! The blocks of the config file, one reader each: a reader sets the fields of the keys it
//! knows and answers `false` for a key it does not know, which [`Cx`] then refuses or warns
//! about.

use std::cell::RefCell;

use super::keys::{self, normalize};
use super::load::{did_you_mean, ConfigError, UnknownKeys};
use super::natsconf::{Map, Node, Value};
use super::values::*;
use super::TlsConfig;
use super::{Config, HttpConfig, JetStreamConfig, LoggingConfig, NatsConfig, StoreConfig};
use crate::activations::Quota;

/// What a reader answers: `true` when it knew the key.
type Known = Result<bool, ConfigError>;

/// The walk's context: what an unknown key does, and the warnings found so far.
pub(super) struct Cx {
    unknown: UnknownKeys,
    warnings: RefCell<Vec<String>>,
}

impl Cx {
    /// A walk where unknown keys are treated as `unknown` says.
    pub(super) fn new(unknown: UnknownKeys) -> Self {
        Cx {
            unknown,
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// The warnings collected.
    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings.into_inner()
    }

    /// An unknown key at dotted path `key` of a block whose keys are `known`: an error, or a
    /// warning when unknown keys are allowed. Keys used as `$variables` are not settings.
    pub(super) fn unknown(
        &self,
        key: &str,
        node: &Node,
        known: &[&str],
    ) -> Result<(), ConfigError> {
        if node.referenced {
            return Ok(());
        }
        let name = key.rsplit('.').next().unwrap_or(key);
        let suggestion = keys::suggest(name, known, !key.contains('.'));
        let (file, line) = (node.pos.file.as_ref().clone(), node.pos.line);
        if self.unknown == UnknownKeys::Warn {
            self.warnings.borrow_mut().push(format!(
                "{}:{line}: unknown key {key:?}{} is ignored",
                file.display(),
                did_you_mean(&suggestion)
            ));
            return Ok(());
        }
        Err(ConfigError::UnknownKey {
            file,
            line,
            key: key.to_string(),
            suggestion,
        })
    }

    /// Reads the block at dotted path `path` key by key with `read` (normalised key, dotted
    /// path, value); the keys `read` does not know are checked against `known`.
    fn each(
        &self,
        path: &str,
        node: &Node,
        known: &[&str],
        mut read: impl FnMut(&str, &str, &Node) -> Known,
    ) -> Result<(), ConfigError> {
        for (k, n) in block(path, node)? {
            let p = format!("{path}.{k}");
            if !read(&normalize(k), &p, n)? {
                self.unknown(&p, n, known)?;
            }
        }
        Ok(())
    }

    /// A `tls { ... }` block (nats-server's aliases accepted).
    fn tls(&self, path: &str, node: &Node) -> Result<TlsConfig, ConfigError> {
        let mut tls = TlsConfig::default();
        self.each(path, node, keys::TLS, |k, p, n| {
            match k {
                "root" | "cafile" | "ca" => tls.root = Some(path_value(p, n)?),
                "cert" | "certfile" => tls.cert = Some(path_value(p, n)?),
                "key" | "keyfile" => tls.key = Some(path_value(p, n)?),
                "handshakefirst" => tls.handshake_first = boolean(p, n)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(tls)
    }
}

/// The map of a block, or an error naming the key when the value is not a block.
fn block<'n>(key: &str, node: &'n Node) -> Result<&'n Map, ConfigError> {
    match &node.value {
        Value::Map(m) => Ok(m),
        other => Err(value_error(
            key,
            &node.pos,
            format!("expected a block {{ ... }}, found {}", describe(other)),
        )),
    }
}

/// A top-level key (`key` normalised, `path` as written).
pub(super) fn top(cx: &Cx, c: &mut Config, key: &str, path: &str, node: &Node) -> Known {
    match key {
        "logging" => cx.each(path, node, keys::LOGGING, |k, p, n| {
            logging(&mut c.logging, k, p, n)
        })?,
        "nats" => cx.each(path, node, keys::NATS, |k, p, n| {
            nats(cx, &mut c.nats, k, p, n)
        })?,
        "http" => cx.each(path, node, keys::HTTP, |k, p, n| {
            http(cx, &mut c.http, k, p, n)
        })?,
        "store" => cx.each(path, node, keys::STORE, |k, p, n| {
            store(cx, &mut c.store, k, p, n)
        })?,
        "activations" => cx.each(path, node, keys::ACTIVATIONS, |k, p, n| {
            activations(&mut c.activations, k, p, n)
        })?,
        "operatorjwtpath" => c.operator_jwt_path = Some(path_value(path, node)?),
        "systemaccountjwtpath" => c.system_account_jwt_path = Some(path_value(path, node)?),
        "primary" => c.primary = Some(string(path, node)?),
        "replicationtimeout" => c.replication_timeout_ms = unsigned(path, node)?,
        "replicationinterval" => c.replication_interval_ms = unsigned(path, node)?,
        "maxreplicationpack" => c.max_replication_pack = integer(path, node)?,
        "signrequestsubject" => c.sign_request_subject = Some(string(path, node)?),
        "signrequesttimeout" => c.sign_request_timeout_ms = unsigned(path, node)?,
        "maxclockskew" => c.max_clock_skew_secs = seconds(path, node)?,
        // Read before the walk (it decides what unknown keys do).
        "strict" => {}
        _ => return Ok(false),
    }
    Ok(true)
}

/// A key of `logging { }`.
fn logging(l: &mut LoggingConfig, key: &str, p: &str, n: &Node) -> Known {
    match key {
        "time" => l.time = boolean(p, n)?,
        "debug" => l.debug = boolean(p, n)?,
        "trace" => l.trace = boolean(p, n)?,
        "colors" => l.colors = Some(boolean(p, n)?),
        "pid" => l.pid = boolean(p, n)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A key of `nats { }`.
fn nats(cx: &Cx, c: &mut NatsConfig, key: &str, p: &str, n: &Node) -> Known {
    match key {
        "servers" => c.servers = strings(p, n)?,
        "connecttimeout" => c.connect_timeout_ms = unsigned(p, n)?,
        "reconnectwait" => c.reconnect_wait_ms = unsigned(p, n)?,
        "maxreconnects" => c.max_reconnects = integer(p, n)?,
        "tls" => c.tls = cx.tls(p, n)?,
        "usercredentials" => c.user_credentials = Some(path_value(p, n)?),
        "name" => c.name = string(p, n)?,
        "syncinterval" => c.sync_interval_ms = millis(p, n)?.max(1),
        _ => return Ok(false),
    }
    Ok(true)
}

/// A key of `http { }`.
fn http(cx: &Cx, c: &mut HttpConfig, key: &str, p: &str, n: &Node) -> Known {
    match key {
        "host" => c.host = string(p, n)?,
        "port" => c.port = port(p, n)?,
        "readtimeout" => c.read_timeout_ms = unsigned(p, n)?,
        "writetimeout" => c.write_timeout_ms = unsigned(p, n)?,
        "tls" => {
            c.tls = cx.tls(p, n)?;
            if c.tls.handshake_first {
                let why = "handshakefirst is a NATS connection setting (nats.tls)";
                return Err(value_error(p, &n.pos, why.into()));
            }
        }
        "maxbodysize" => c.max_body_bytes = positive(p, n)?,
        "maxconnections" => c.max_connections = positive(p, n)?,
        "maxconnectionrequests" => c.max_connection_requests = unsigned(p, n)?,
        "maxconnectionage" => c.max_connection_age_ms = millis(p, n)?,
        "listenbacklog" => c.listen_backlog = u32::try_from(positive(p, n)?).unwrap_or(u32::MAX),
        "metrics" => c.metrics = boolean(p, n)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A key of `store { }`.
fn store(cx: &Cx, c: &mut StoreConfig, key: &str, p: &str, n: &Node) -> Known {
    match key {
        "dir" => c.dir = Some(path_value(p, n)?),
        "shard" => c.shard = boolean(p, n)?,
        "cleanupinterval" => c.cleanup_interval_ms = integer(p, n)?,
        "nsc" => c.nsc = Some(path_value(p, n)?),
        "readonly" => c.readonly = boolean(p, n)?,
        "cachesize" => c.cache_bytes = unsigned(p, n)? as usize,
        "allowdelete" => c.allow_delete = boolean(p, n)?,
        "filemode" => c.file_mode = Some(mode(p, n, 0o600, "read and write")?),
        "dirmode" => c.dir_mode = Some(mode(p, n, 0o700, "full")?),
        "groupcommit" => c.group_commit = boolean(p, n)?,
        "jetstream" => {
            let mut js = JetStreamConfig::default();
            cx.each(p, n, keys::JETSTREAM, |k, p, n| {
                jetstream(cx, &mut js, k, p, n)
            })?;
            if js.servers.is_empty() {
                let why = "a jetstream store needs servers: [\"nats://host:4222\", ...]";
                return Err(value_error(p, &n.pos, why.into()));
            }
            if js.user.is_some() != js.password.is_some() {
                let why = "user and password go together";
                return Err(value_error(p, &n.pos, why.into()));
            }
            c.jetstream = Some(js);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A key of `store { jetstream { } }`.
fn jetstream(cx: &Cx, c: &mut JetStreamConfig, key: &str, p: &str, n: &Node) -> Known {
    match key {
        "servers" => {
            c.servers = strings(p, n)?;
            if let Some((url, e)) = c.servers.iter().find_map(|url| {
                url.parse::<async_nats::ServerAddr>()
                    .err()
                    .map(|e| (url, e))
            }) {
                return Err(value_error(p, &n.pos, format!("{url:?}: {e}")));
            }
        }
        "usercredentials" => c.user_credentials = Some(path_value(p, n)?),
        "user" => c.user = Some(string(p, n)?),
        "password" => c.password = Some(string(p, n)?),
        "tls" => c.tls = cx.tls(p, n)?,
        "bucket" => {
            let bucket = string(p, n)?;
            let valid = |ch: char| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_';
            if bucket.is_empty() || !bucket.chars().all(valid) {
                let why = format!("{bucket:?} is not a bucket name (letters, digits, - and _)");
                return Err(value_error(p, &n.pos, why));
            }
            c.bucket = bucket;
        }
        "replicas" => {
            let replicas = positive(p, n)?;
            if replicas > 5 {
                return Err(value_error(p, &n.pos, "at most 5 replicas".into()));
            }
            c.replicas = replicas;
        }
        "history" => {
            let history = positive(p, n)?;
            if history > 64 {
                return Err(value_error(p, &n.pos, "history is at most 64".into()));
            }
            c.history = history as i64;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A key of `activations { }`.
fn activations(c: &mut Quota, key: &str, p: &str, n: &Node) -> Known {
    match key {
        "maxperissuer" => c.max_per_issuer = positive(p, n)?,
        "maxbytesperissuer" => c.max_bytes_per_issuer = positive(p, n)?,
        _ => return Ok(false),
    }
    Ok(true)
}
