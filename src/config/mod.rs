//! The server configuration: typed settings with the Go server's defaults (spec §2.3), loading
//! from a nats-server style file (or TOML), and the command-line overrides applied on top.

mod blocks;
pub mod dump;
pub mod keys;
pub mod load;
pub mod natsconf;
pub mod restart;
mod values;

use std::path::{Path, PathBuf};

use crate::activations::Quota;

pub use load::{load_file, ConfigError, Loaded, UnknownKeys};

/// Everything the server needs to run, after the config file and flags were applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `logging { ... }`
    pub logging: LoggingConfig,
    /// `nats { ... }`
    pub nats: NatsConfig,
    /// `http { ... }`
    pub http: HttpConfig,
    /// `store { ... }`
    pub store: StoreConfig,
    /// `activations { ... }`: how much each account may store.
    pub activations: Quota,
    /// `operatorjwtpath`: the operator JWT that decides which issuers are trusted.
    pub operator_jwt_path: Option<PathBuf>,
    /// `systemaccountjwtpath`: served for the system account when the store lacks it.
    pub system_account_jwt_path: Option<PathBuf>,
    /// `primary`: URL of a primary account server.
    pub primary: Option<String>,
    /// `replicationtimeout` in milliseconds.
    pub replication_timeout_ms: u64,
    /// `replicationinterval` in milliseconds: how often a replica re-syncs with its primary.
    pub replication_interval_ms: u64,
    /// `maxreplicationpack`: upper bound of JWTs moved in one pack.
    pub max_replication_pack: i64,
    /// `signrequestsubject`: NATS subject of a signing service.
    pub sign_request_subject: Option<String>,
    /// `signrequesttimeout` in milliseconds.
    pub sign_request_timeout_ms: u64,
    /// `maxclockskew` in seconds: JWTs whose `iat` lies further in the future are refused.
    pub max_clock_skew_secs: u64,
}

/// `logging { time, debug, trace, colors, pid }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConfig {
    /// Print a timestamp on every line.
    pub time: bool,
    /// Print debug lines.
    pub debug: bool,
    /// Print trace lines.
    pub trace: bool,
    /// Colour the level labels: `Some` when the config sets `colors` (it forces colours on or
    /// off), `None` to colour only when stderr is a terminal.
    pub colors: Option<bool>,
    /// Prefix every line with `[pid]`.
    pub pid: bool,
}

/// `nats { ... }`: the connection used for notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// NATS URLs; empty means no NATS connection.
    pub servers: Vec<String>,
    /// `connecttimeout` in milliseconds.
    pub connect_timeout_ms: u64,
    /// `reconnectwait` in milliseconds.
    pub reconnect_wait_ms: u64,
    /// `maxreconnects`: -1 for forever.
    pub max_reconnects: i64,
    /// `tls { root, cert, key }`.
    pub tls: TlsConfig,
    /// `usercredentials`: creds file of a system-account user.
    pub user_credentials: Option<PathBuf>,
    /// `name`: the server name in replies to resolver requests (what `nsc push` prints) and the
    /// NATS connection name.
    pub name: String,
    /// `syncinterval` in milliseconds: how often a pack is requested from the nats-servers.
    pub sync_interval_ms: u64,
}

/// `http { ... }`: the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Host or IP to bind (empty binds every interface... of the first resolved address family).
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// `readtimeout` in milliseconds (0 = none).
    pub read_timeout_ms: u64,
    /// `writetimeout` in milliseconds (0 = none).
    pub write_timeout_ms: u64,
    /// `tls { cert, key }`.
    pub tls: TlsConfig,
    /// `maxbodysize`: largest accepted request body in bytes (size suffixes work: `1mb`).
    pub max_body_bytes: usize,
    /// `maxconnections`: most HTTP connections open at once (lowered to fit the process's open
    /// files limit); at the cap the longest-idle keep-alive connections make room.
    pub max_connections: usize,
    /// `maxconnectionrequests`: requests served on one connection before it is closed (0 = no
    /// bound).
    pub max_connection_requests: u64,
    /// `maxconnectionage` in milliseconds (`10m` works): a connection is closed after it, once
    /// its request in flight is answered (0 = no bound).
    pub max_connection_age_ms: u64,
    /// `listenbacklog`: connections the kernel queues before they are accepted (capped by the
    /// kernel's `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// `metrics`: serve Prometheus metrics on `/metrics`.
    pub metrics: bool,
}

/// A `tls { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// CA file.
    pub root: Option<PathBuf>,
    /// Certificate file.
    pub cert: Option<PathBuf>,
    /// Private key file.
    pub key: Option<PathBuf>,
    /// `handshakefirst`: start TLS before reading the server's INFO (nats-server's
    /// `tls { handshake_first: true }`); NATS connections only.
    pub handshake_first: bool,
}

impl TlsConfig {
    /// `true` when any file is set.
    pub fn is_set(&self) -> bool {
        self.root.is_some() || self.cert.is_some() || self.key.is_some() || self.handshake_first
    }
}

/// `store { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreConfig {
    /// Directory holding `<pubkey>.jwt` files.
    pub dir: Option<PathBuf>,
    /// Put each file in a folder named by the key's last two characters.
    pub shard: bool,
    /// `cleanupinterval` in milliseconds (Go v1.0 deleted expired JWTs; parsed, never used).
    pub cleanup_interval_ms: i64,
    /// An nsc operator folder to serve read-only.
    pub nsc: Option<PathBuf>,
    /// Serve the directory read-only.
    pub readonly: bool,
    /// `cachesize`: bytes of hot JWTs kept in memory for GETs (0 = none).
    pub cache_bytes: usize,
    /// `allowdelete`: accept operator-signed account deletes (nats-server's `allow_delete`).
    pub allow_delete: bool,
    /// `filemode`: permission bits of the JWT files the store creates (`None`: 0640).
    pub file_mode: Option<u32>,
    /// `dirmode`: permission bits of the folders the store creates (`None`: 0750).
    pub dir_mode: Option<u32>,
    /// `groupcommit`: concurrent writes to the directory share their syncs (one `syncfs` of
    /// the file system for many writes); off, each write fsyncs its own file and folder.
    pub group_commit: bool,
    /// `jetstream { ... }`: keep the account JWTs in a JetStream KV bucket instead.
    pub jetstream: Option<JetStreamConfig>,
}

/// `store { jetstream { ... } }`: the KV bucket account JWTs are kept in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// NATS URLs of the JetStream servers.
    pub servers: Vec<String>,
    /// `usercredentials`: creds file of a user of the account that holds the bucket.
    pub user_credentials: Option<PathBuf>,
    /// `user` (with `password`).
    pub user: Option<String>,
    /// `password` (with `user`).
    pub password: Option<String>,
    /// `tls { root, cert, key }`.
    pub tls: TlsConfig,
    /// `bucket`: the KV bucket's name.
    pub bucket: String,
    /// `replicas`: the bucket's replicas when it is created.
    pub replicas: usize,
    /// `history`: values kept per key when the bucket is created.
    pub history: i64,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            servers: Vec::new(),
            user_credentials: None,
            user: None,
            password: None,
            tls: TlsConfig::default(),
            bucket: "nats-account-jwts".into(),
            replicas: 1,
            history: 5,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            logging: LoggingConfig {
                time: true,
                debug: false,
                trace: false,
                colors: None,
                pid: false,
            },
            nats: NatsConfig {
                servers: Vec::new(),
                connect_timeout_ms: 5000,
                reconnect_wait_ms: 1000,
                max_reconnects: -1,
                tls: TlsConfig::default(),
                user_credentials: None,
                name: "nats-account-server".into(),
                sync_interval_ms: 60_000,
            },
            http: HttpConfig {
                host: "localhost".into(),
                port: 9090,
                read_timeout_ms: 5000,
                write_timeout_ms: 5000,
                tls: TlsConfig::default(),
                max_body_bytes: 1024 * 1024,
                max_connections: 10_000,
                max_connection_requests: 1000,
                max_connection_age_ms: 600_000,
                listen_backlog: 1024,
                metrics: false,
            },
            store: StoreConfig {
                cache_bytes: 12 * 1024 * 1024,
                group_commit: true,
                ..StoreConfig::default()
            },
            activations: Quota::default(),
            operator_jwt_path: None,
            system_account_jwt_path: None,
            primary: None,
            replication_timeout_ms: 5000,
            replication_interval_ms: 60_000,
            max_replication_pack: 10000,
            sign_request_subject: None,
            sign_request_timeout_ms: 1000,
            max_clock_skew_secs: crate::trust::DEFAULT_MAX_CLOCK_SKEW_SECS as u64,
        }
    }
}

/// Values given on the command line; each one set replaces the config file's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOverrides {
    /// `-dir`
    pub dir: Option<PathBuf>,
    /// `-operator`
    pub operator: Option<PathBuf>,
    /// `-nats`
    pub nats: Option<String>,
    /// `-creds`
    pub creds: Option<PathBuf>,
    /// `-primary`
    pub primary: Option<String>,
    /// `-hp host:port`
    pub host_port: Option<(String, u16)>,
    /// `-D` / `-DV`
    pub debug: bool,
    /// `-V` / `-DV`
    pub trace: bool,
    /// `-nsc`
    pub nsc: Option<PathBuf>,
    /// `-ro`
    pub readonly: bool,
}

impl Config {
    /// Applies command-line flags on top of the file's settings (spec §1.2). Unlike the Go
    /// server, `-dir` keeps `store.shard` from the file.
    pub fn apply_flags(&mut self, flags: &FlagOverrides) {
        if let Some(dir) = &flags.dir {
            self.store.dir = Some(dir.clone());
        }
        if let Some(nsc) = &flags.nsc {
            self.store.nsc = Some(nsc.clone());
        }
        if flags.readonly {
            self.store.readonly = true;
        }
        if let Some(url) = &flags.nats {
            self.nats.servers = vec![url.clone()];
        }
        if let Some(creds) = &flags.creds {
            self.nats.user_credentials = Some(creds.clone());
        }
        if flags.debug {
            self.logging.debug = true;
        }
        if flags.trace {
            self.logging.trace = true;
        }
        if let Some(op) = &flags.operator {
            self.operator_jwt_path = Some(op.clone());
        }
        if let Some((host, port)) = &flags.host_port {
            self.http.host = host.clone();
            self.http.port = *port;
        }
        if let Some(primary) = &flags.primary {
            self.primary = Some(primary.clone());
        }
    }
}

/// Expands a leading `~` or `~/` to the home directory. `~user` forms are refused with an error
/// instead of the Go server's panic.
pub fn expand_home(path: &Path) -> Result<PathBuf, String> {
    let Some(text) = path.to_str() else {
        return Ok(path.to_path_buf());
    };
    if text == "~" || text.starts_with("~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("cannot expand {text:?}: HOME is not set"))?;
        let mut out = PathBuf::from(home);
        if let Some(rest) = text.strip_prefix("~/") {
            out.push(rest);
        }
        Ok(out)
    } else if text.starts_with('~') {
        Err(format!(
            "cannot expand {text:?}: only ~ and ~/ are supported, not ~user"
        ))
    } else {
        Ok(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_go_server() {
        let c = Config::default();
        assert_eq!(c.http.host, "localhost");
        assert_eq!(c.http.port, 9090);
        assert_eq!(c.http.read_timeout_ms, 5000);
        assert_eq!(c.nats.reconnect_wait_ms, 1000);
        assert_eq!(c.nats.max_reconnects, -1);
        assert_eq!(c.max_replication_pack, 10000);
        assert!(c.logging.time && c.logging.colors.is_none() && !c.logging.pid);
    }

    #[test]
    fn flags_override_file_values_but_keep_shard() {
        let mut c = Config::default();
        c.store.dir = Some("/from/file".into());
        c.store.shard = true;
        c.apply_flags(&FlagOverrides {
            dir: Some("/from/flag".into()),
            host_port: Some(("127.0.0.1".into(), 0)),
            nats: Some("nats://127.0.0.1:4222".into()),
            debug: true,
            ..Default::default()
        });
        assert_eq!(c.store.dir.as_deref(), Some(Path::new("/from/flag")));
        assert!(c.store.shard);
        assert_eq!(c.http.host, "127.0.0.1");
        assert_eq!(c.http.port, 0);
        assert_eq!(c.nats.servers, vec!["nats://127.0.0.1:4222".to_string()]);
        assert!(c.logging.debug && !c.logging.trace);
    }

    #[test]
    fn home_expansion() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_home(Path::new("~/x/y")).unwrap(),
            PathBuf::from(&home).join("x/y")
        );
        assert_eq!(expand_home(Path::new("~")).unwrap(), PathBuf::from(&home));
        assert_eq!(
            expand_home(Path::new("/abs/~x")).unwrap(),
            PathBuf::from("/abs/~x")
        );
        assert!(expand_home(Path::new("~bob/x")).is_err());
    }
}
