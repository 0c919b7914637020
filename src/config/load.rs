//! Maps a parsed config tree onto [`Config`]: keys are matched case-insensitively with `_` and
//! `-` ignored (so `OperatorJWTPath`, `operatorjwtpath` and `operator_jwt_path` are one key),
//! values are converted as the Go server does (`"9090"` is a fine port, `"true"` a fine bool),
//! unknown keys become warnings, and every error names the file, the line and the key.

use std::path::{Path, PathBuf};

use super::natsconf::{self, Map, Node, ParseError, Position, Value};
use super::{expand_home, Config, TlsConfig};

/// Why a config file could not be turned into a [`Config`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or its syntax is wrong.
    #[error("config error: {0}")]
    Parse(#[from] ParseError),
    /// A key has a value of the wrong type or out of range.
    #[error("config error: {}:{line}: key {key:?}: {message}", file.display())]
    Value {
        /// File holding the key.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// Dotted path of the key, e.g. `http.port`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A loaded configuration and the warnings found on the way (unknown keys...).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration (defaults for everything the file does not set).
    pub config: Config,
    /// One line per problem that does not stop the start, e.g. an unknown key.
    pub warnings: Vec<String>,
}

/// Reads a config file: TOML when the name ends in `.toml`, otherwise the nats-server format.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let is_toml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let map = if is_toml {
        natsconf::parse_toml_file(path)?
    } else {
        natsconf::parse_file(path)?
    };
    from_map(&map)
}

/// Builds a [`Config`] from an already parsed tree.
pub fn from_map(map: &Map) -> Result<Loaded, ConfigError> {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    let mut cx = Cx {
        warnings: &mut warnings,
    };
    for (key, node) in map {
        let path = key.clone();
        match normalize(key).as_str() {
            "logging" => {
                for (k, n) in cx.block(&path, node)? {
                    let p = format!("{path}.{k}");
                    let l = &mut config.logging;
                    match normalize(k).as_str() {
                        "time" => l.time = boolean(&p, n)?,
                        "debug" => l.debug = boolean(&p, n)?,
                        "trace" => l.trace = boolean(&p, n)?,
                        "colors" => l.colors = Some(boolean(&p, n)?),
                        "pid" => l.pid = boolean(&p, n)?,
                        _ => cx.unknown(&p, n),
                    }
                }
            }
            "nats" => {
                for (k, n) in cx.block(&path, node)? {
                    let p = format!("{path}.{k}");
                    let c = &mut config.nats;
                    match normalize(k).as_str() {
                        "servers" => c.servers = strings(&p, n)?,
                        "connecttimeout" => c.connect_timeout_ms = unsigned(&p, n)?,
                        "reconnectwait" => c.reconnect_wait_ms = unsigned(&p, n)?,
                        "maxreconnects" => c.max_reconnects = integer(&p, n)?,
                        "tls" => c.tls = cx.tls(&p, n)?,
                        "usercredentials" => c.user_credentials = Some(path_value(&p, n)?),
                        "name" => c.name = string(&p, n)?,
                        "syncinterval" => c.sync_interval_ms = millis(&p, n)?.max(1),
                        _ => cx.unknown(&p, n),
                    }
                }
            }
            "http" => {
                for (k, n) in cx.block(&path, node)? {
                    let p = format!("{path}.{k}");
                    let c = &mut config.http;
                    match normalize(k).as_str() {
                        "host" => c.host = string(&p, n)?,
                        "port" => c.port = port(&p, n)?,
                        "readtimeout" => c.read_timeout_ms = unsigned(&p, n)?,
                        "writetimeout" => c.write_timeout_ms = unsigned(&p, n)?,
                        "tls" => {
                            c.tls = cx.tls(&p, n)?;
                            if c.tls.handshake_first {
                                return Err(value_error(
                                    &p,
                                    &n.pos,
                                    "handshakefirst is a NATS connection setting (nats.tls)".into(),
                                ));
                            }
                        }
                        "maxbodysize" => c.max_body_bytes = positive(&p, n)?,
                        "maxconnections" => c.max_connections = positive(&p, n)?,
                        "maxconnectionrequests" => c.max_connection_requests = unsigned(&p, n)?,
                        "maxconnectionage" => c.max_connection_age_ms = millis(&p, n)?,
                        "listenbacklog" => {
                            c.listen_backlog = u32::try_from(positive(&p, n)?).unwrap_or(u32::MAX)
                        }
                        "metrics" => c.metrics = boolean(&p, n)?,
                        _ => cx.unknown(&p, n),
                    }
                }
            }
            "store" => {
                for (k, n) in cx.block(&path, node)? {
                    let p = format!("{path}.{k}");
                    let c = &mut config.store;
                    match normalize(k).as_str() {
                        "dir" => c.dir = Some(path_value(&p, n)?),
                        "shard" => c.shard = boolean(&p, n)?,
                        "cleanupinterval" => c.cleanup_interval_ms = integer(&p, n)?,
                        "nsc" => c.nsc = Some(path_value(&p, n)?),
                        "readonly" => c.readonly = boolean(&p, n)?,
                        "cachesize" => c.cache_bytes = unsigned(&p, n)? as usize,
                        "allowdelete" => c.allow_delete = boolean(&p, n)?,
                        "filemode" => c.file_mode = Some(mode(&p, n, 0o600, "read and write")?),
                        "dirmode" => c.dir_mode = Some(mode(&p, n, 0o700, "full")?),
                        _ => cx.unknown(&p, n),
                    }
                }
            }
            "activations" => {
                for (k, n) in cx.block(&path, node)? {
                    let p = format!("{path}.{k}");
                    let c = &mut config.activations;
                    match normalize(k).as_str() {
                        "maxperissuer" => c.max_per_issuer = positive(&p, n)?,
                        "maxbytesperissuer" => c.max_bytes_per_issuer = positive(&p, n)?,
                        _ => cx.unknown(&p, n),
                    }
                }
            }
            "operatorjwtpath" => config.operator_jwt_path = Some(path_value(&path, node)?),
            "systemaccountjwtpath" => {
                config.system_account_jwt_path = Some(path_value(&path, node)?)
            }
            "primary" => config.primary = Some(string(&path, node)?),
            "replicationtimeout" => config.replication_timeout_ms = unsigned(&path, node)?,
            "replicationinterval" => config.replication_interval_ms = unsigned(&path, node)?,
            "maxreplicationpack" => config.max_replication_pack = integer(&path, node)?,
            "signrequestsubject" => config.sign_request_subject = Some(string(&path, node)?),
            "signrequesttimeout" => config.sign_request_timeout_ms = unsigned(&path, node)?,
            "maxclockskew" => config.max_clock_skew_secs = seconds(&path, node)?,
            _ => cx.unknown(&path, node),
        }
    }
    Ok(Loaded { config, warnings })
}

/// Lower-cases a key and drops `_` and `-`, the spelling-insensitive form keys are matched in.
fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Collects warnings while walking the tree.
struct Cx<'a> {
    warnings: &'a mut Vec<String>,
}

impl Cx<'_> {
    fn unknown(&mut self, key: &str, node: &Node) {
        self.warnings.push(format!(
            "{}:{}: unknown config key {key:?} is ignored",
            node.pos.file.display(),
            node.pos.line
        ));
    }

    fn block<'n>(&mut self, key: &str, node: &'n Node) -> Result<&'n Map, ConfigError> {
        match &node.value {
            Value::Map(m) => Ok(m),
            other => Err(value_error(
                key,
                &node.pos,
                format!("expected a block {{ ... }}, found {}", describe(other)),
            )),
        }
    }

    fn tls(&mut self, key: &str, node: &Node) -> Result<TlsConfig, ConfigError> {
        let mut tls = TlsConfig::default();
        for (k, n) in self.block(key, node)? {
            let p = format!("{key}.{k}");
            match normalize(k).as_str() {
                "root" | "cafile" | "ca" => tls.root = Some(path_value(&p, n)?),
                "cert" | "certfile" => tls.cert = Some(path_value(&p, n)?),
                "key" | "keyfile" => tls.key = Some(path_value(&p, n)?),
                "handshakefirst" => tls.handshake_first = boolean(&p, n)?,
                _ => self.unknown(&p, n),
            }
        }
        Ok(tls)
    }
}

fn value_error(key: &str, pos: &Position, message: String) -> ConfigError {
    ConfigError::Value {
        file: pos.file.as_ref().clone(),
        line: pos.line,
        key: key.to_string(),
        message,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("number {f}"),
        Value::Bool(b) => format!("boolean {b}"),
        Value::DateTime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".into(),
        Value::Map(_) => "a block".into(),
    }
}

fn boolean(key: &str, node: &Node) -> Result<bool, ConfigError> {
    match &node.value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(value_error(
                key,
                &node.pos,
                format!("expected true or false, found string {s:?}"),
            )),
        },
        other => Err(value_error(
            key,
            &node.pos,
            format!("expected true or false, found {}", describe(other)),
        )),
    }
}

fn integer(key: &str, node: &Node) -> Result<i64, ConfigError> {
    match &node.value {
        Value::Integer(i) => Ok(*i),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            value_error(
                key,
                &node.pos,
                format!("expected an integer, found string {s:?}"),
            )
        }),
        other => Err(value_error(
            key,
            &node.pos,
            format!("expected an integer, found {}", describe(other)),
        )),
    }
}

fn unsigned(key: &str, node: &Node) -> Result<u64, ConfigError> {
    let i = integer(key, node)?;
    u64::try_from(i).map_err(|_| {
        value_error(
            key,
            &node.pos,
            format!("expected a number of 0 or more, found {i}"),
        )
    })
}

/// Seconds: an integer, or a string of digits with a unit `s`, `m` or `h` (`"5m"`).
fn seconds(key: &str, node: &Node) -> Result<u64, ConfigError> {
    let units = [("", 1), ("s", 1), ("m", 60), ("h", 3600)];
    duration(key, node, &units, "seconds or a duration like \"5m\"")
}

/// Milliseconds: an integer, or a string of digits with a unit `ms`, `s`, `m` or `h` (`"2m"`).
fn millis(key: &str, node: &Node) -> Result<u64, ConfigError> {
    let units = [
        ("", 1),
        ("ms", 1),
        ("s", 1000),
        ("m", 60_000),
        ("h", 3_600_000),
    ];
    duration(key, node, &units, "milliseconds or a duration like \"2m\"")
}

/// A count of some unit: an integer, or a string of digits followed by one of `units` (the
/// suffix and how many units it stands for); `expected` names the forms in the error.
fn duration(
    key: &str,
    node: &Node,
    units: &[(&str, u64)],
    expected: &str,
) -> Result<u64, ConfigError> {
    let Value::String(s) = &node.value else {
        return unsigned(key, node);
    };
    let text = s.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = units.iter().find(|(u, _)| *u == unit).map(|(_, n)| *n);
    match (scale, digits.parse::<u64>()) {
        (Some(scale), Ok(n)) => Ok(n.saturating_mul(scale)),
        _ => Err(value_error(
            key,
            &node.pos,
            format!("expected {expected}, found string {s:?}"),
        )),
    }
}

fn positive(key: &str, node: &Node) -> Result<usize, ConfigError> {
    let i = integer(key, node)?;
    usize::try_from(i).ok().filter(|v| *v > 0).ok_or_else(|| {
        value_error(
            key,
            &node.pos,
            format!("expected a number above 0, found {i}"),
        )
    })
}

fn port(key: &str, node: &Node) -> Result<u16, ConfigError> {
    let i = integer(key, node)?;
    u16::try_from(i).map_err(|_| {
        value_error(
            key,
            &node.pos,
            format!("expected a port between 0 and 65535, found {i}"),
        )
    })
}

/// Permission bits in octal digits, at most `0777`: a string (`"0640"`) or an integer written
/// in octal digits (`0640` or `640`; the syntax reads either as the integer 640). The bits of
/// `owner_needs` must be set: the server must be able to use what it creates (`owner_access`
/// says what they are in the error).
fn mode(key: &str, node: &Node, owner_needs: u32, owner_access: &str) -> Result<u32, ConfigError> {
    let text = match &node.value {
        Value::String(s) => s.trim().to_string(),
        Value::Integer(i) => i.to_string(),
        _ => String::new(),
    };
    let octal = !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let Some(bits) = u32::from_str_radix(&text, 8)
        .ok()
        .filter(|m| octal && *m <= 0o777)
    else {
        return Err(value_error(
            key,
            &node.pos,
            format!(
                "expected a mode in octal digits from 0 to 0777, like \"0640\", found {}",
                describe(&node.value)
            ),
        ));
    };
    if bits & owner_needs != owner_needs {
        return Err(value_error(
            key,
            &node.pos,
            format!(
                "mode {bits:04o} must give the owner {owner_access} access ({owner_needs:04o})"
            ),
        ));
    }
    Ok(bits)
}

fn string(key: &str, node: &Node) -> Result<String, ConfigError> {
    match &node.value {
        Value::String(s) => Ok(s.clone()),
        other => Err(value_error(
            key,
            &node.pos,
            format!(
                "expected a string, found {} (quote it if it is meant as text)",
                describe(other)
            ),
        )),
    }
}

fn path_value(key: &str, node: &Node) -> Result<PathBuf, ConfigError> {
    let text = string(key, node)?;
    if text.is_empty() {
        return Err(value_error(
            key,
            &node.pos,
            "expected a path, found \"\"".into(),
        ));
    }
    expand_home(Path::new(&text)).map_err(|e| value_error(key, &node.pos, e))
}

fn strings(key: &str, node: &Node) -> Result<Vec<String>, ConfigError> {
    match &node.value {
        Value::Array(items) => items.iter().map(|n| string(key, n)).collect(),
        _ => Ok(vec![string(key, node)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Loaded, ConfigError> {
        let map = natsconf::parse_str(text, Path::new("/cfg/nas.conf"), &|_| None)?;
        from_map(&map)
    }

    #[test]
    fn the_seed_example_maps_onto_every_field() {
        let loaded = load(
            r#"
operatorjwtpath: "/etc/nats/op.jwt"
http { host: 0.0.0.0, port: 9090 }
store = { dir: /var/lib/nas, shard: true }
nats: { servers: ["nats://n1:4222", "nats://n2:4222"], usercredentials: "/etc/nats/sys.creds" }
logging { colors: false, pid: yes }
"#,
        )
        .unwrap();
        let c = loaded.config;
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(c.operator_jwt_path, Some(PathBuf::from("/etc/nats/op.jwt")));
        assert_eq!(c.http.host, "0.0.0.0");
        assert_eq!(c.http.port, 9090);
        assert_eq!(c.store.dir, Some(PathBuf::from("/var/lib/nas")));
        assert!(c.store.shard);
        assert_eq!(c.nats.servers, ["nats://n1:4222", "nats://n2:4222"]);
        assert_eq!(
            c.nats.user_credentials,
            Some(PathBuf::from("/etc/nats/sys.creds"))
        );
        assert!(c.logging.colors == Some(false) && c.logging.pid && c.logging.time);
    }

    #[test]
    fn go_sample_with_mixed_case_keys() {
        let c = load(
            r#"{
  "Store": { "Dir": "/tmp/x", "Shard": "true" },
  "HTTP": { "ReadTimeout": 2000, "Port": "80", "Host": "nats.io" },
  OperatorJWTPath: /op.jwt
  SystemAccountJWTPath = /sys.jwt
  NATS { Servers: nats://one:4222, MaxReconnects: 3, ConnectTimeout: 10, ReconnectWait: 20,
         TLS { Root: /ca.pem, Cert: /c.pem, Key: /k.pem } }
  Logging { Time: false, Debug: true, Trace: true, Colors: false, PID: true }
  Primary: "http://primary:9090"
  ReplicationTimeout: 100
  MaxReplicationPack: 5
  SignRequestSubject: sign.me
  SignRequestTimeout: 250
}"#,
        )
        .unwrap()
        .config;
        assert_eq!(c.store.dir, Some(PathBuf::from("/tmp/x")));
        assert!(c.store.shard);
        assert_eq!(c.http.read_timeout_ms, 2000);
        assert_eq!(c.http.port, 80);
        assert_eq!(c.http.host, "nats.io");
        assert_eq!(c.operator_jwt_path, Some(PathBuf::from("/op.jwt")));
        assert_eq!(c.system_account_jwt_path, Some(PathBuf::from("/sys.jwt")));
        assert_eq!(c.nats.servers, ["nats://one:4222"]);
        assert_eq!(c.nats.max_reconnects, 3);
        assert_eq!(c.nats.connect_timeout_ms, 10);
        assert_eq!(c.nats.reconnect_wait_ms, 20);
        assert_eq!(c.nats.tls.root, Some(PathBuf::from("/ca.pem")));
        assert_eq!(c.nats.tls.key, Some(PathBuf::from("/k.pem")));
        assert!(!c.logging.time && c.logging.debug && c.logging.trace && c.logging.pid);
        assert_eq!(c.primary.as_deref(), Some("http://primary:9090"));
        assert_eq!(c.replication_timeout_ms, 100);
        assert_eq!(c.max_replication_pack, 5);
        assert_eq!(c.sign_request_subject.as_deref(), Some("sign.me"));
        assert_eq!(c.sign_request_timeout_ms, 250);
    }

    #[test]
    fn snake_case_and_kebab_keys_are_accepted() {
        let c = load("operator_jwt_path: /op.jwt\nsystem-account-jwt-path: /s.jwt\nhttp { read_timeout: 7 }\nstore { cleanup_interval: 9 }")
            .unwrap()
            .config;
        assert_eq!(c.operator_jwt_path, Some(PathBuf::from("/op.jwt")));
        assert_eq!(c.system_account_jwt_path, Some(PathBuf::from("/s.jwt")));
        assert_eq!(c.http.read_timeout_ms, 7);
        assert_eq!(c.store.cleanup_interval_ms, 9);
    }

    #[test]
    fn store_modes_are_octal_and_checked() {
        let d = load("").unwrap().config;
        assert_eq!((d.store.file_mode, d.store.dir_mode), (None, None));
        for (src, file, dir) in [
            ("filemode: \"0600\", dirmode: \"0700\"", 0o600, 0o700),
            ("filemode: 0644, dirmode: 755", 0o644, 0o755),
            ("file_mode: \" 666 \", dir-mode: 0777", 0o666, 0o777),
        ] {
            let c = load(&format!("store {{ {src} }}")).unwrap().config;
            assert_eq!(
                (c.store.file_mode, c.store.dir_mode),
                (Some(file), Some(dir)),
                "{src}"
            );
        }
        for (src, key, why) in [
            ("filemode: \"0648\"", "store.filemode", "octal digits"),
            ("filemode: 0x1a4", "store.filemode", "octal digits"),
            ("filemode: \"\"", "store.filemode", "octal digits"),
            ("filemode: -640", "store.filemode", "octal digits"),
            ("filemode: true", "store.filemode", "octal digits"),
            ("filemode: \"rw-r-----\"", "store.filemode", "octal digits"),
            ("filemode: 1640", "store.filemode", "from 0 to 0777"),
            ("filemode: \"4750\"", "store.filemode", "from 0 to 0777"),
            (
                "filemode: 0440",
                "store.filemode",
                "read and write access (0600)",
            ),
            (
                "filemode: 0240",
                "store.filemode",
                "read and write access (0600)",
            ),
            ("dirmode: 0650", "store.dirmode", "full access (0700)"),
            ("dirmode: 2750", "store.dirmode", "from 0 to 0777"),
            ("dirmode: 0759", "store.dirmode", "octal digits"),
        ] {
            let text = load(&format!("store {{\n {src} }}"))
                .unwrap_err()
                .to_string();
            assert!(text.contains(&format!("{key:?}")), "{src} → {text}");
            assert!(
                text.contains(why) && text.contains("nas.conf:2"),
                "{src} → {text}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_warnings_naming_the_key_and_line() {
        let loaded = load("http {\n  port: 1\n  prot: 2\n}\nfoo: bar\n").unwrap();
        assert_eq!(loaded.warnings.len(), 2);
        assert!(
            loaded.warnings[0].contains("/cfg/nas.conf:3"),
            "{:?}",
            loaded.warnings
        );
        assert!(loaded.warnings[0].contains("\"http.prot\""));
        assert!(loaded.warnings[1].contains(":5:") && loaded.warnings[1].contains("\"foo\""));
    }

    #[test]
    fn value_errors_name_file_line_and_key() {
        let err = load("\n\nhttp {\n  port: \"abc\"\n}").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/cfg/nas.conf:4"), "{text}");
        assert!(text.contains("\"http.port\""), "{text}");
        assert!(text.contains("integer"), "{text}");

        for (src, key) in [
            ("http { port: 70000 }", "http.port"),
            ("http { host: 1234 }", "http.host"),
            ("logging { debug: maybe }", "logging.debug"),
            ("store: 5", "store"),
            ("nats { servers: [1, 2] }", "nats.servers"),
            ("http { readtimeout: -1 }", "http.readtimeout"),
            ("operatorjwtpath: \"\"", "operatorjwtpath"),
            ("store { dir: \"~bob/x\" }", "store.dir"),
            ("maxclockskew: \"soon\"", "maxclockskew"),
            ("maxclockskew: -5", "maxclockskew"),
            (
                "http { maxconnectionrequests: -1 }",
                "http.maxconnectionrequests",
            ),
            (
                "http { maxconnectionage: \"forever\" }",
                "http.maxconnectionage",
            ),
            ("http { listenbacklog: 0 }", "http.listenbacklog"),
            ("activations: 3", "activations"),
            (
                "activations { maxperissuer: 0 }",
                "activations.maxperissuer",
            ),
            (
                "activations { maxbytesperissuer: \"lots\" }",
                "activations.maxbytesperissuer",
            ),
        ] {
            let text = load(src).unwrap_err().to_string();
            assert!(text.contains(&format!("{key:?}")), "{src} → {text}");
            assert!(text.contains("nas.conf:1"), "{src} → {text}");
        }
    }

    #[test]
    fn maxclockskew_takes_seconds_or_a_unit() {
        for (src, secs) in [
            ("maxclockskew: 90", 90),
            ("maxclockskew: \"30s\"", 30),
            ("maxclockskew: \"5m\"", 300),
            ("max_clock_skew: \"2h\"", 7200),
        ] {
            assert_eq!(load(src).unwrap().config.max_clock_skew_secs, secs, "{src}");
        }
        assert_eq!(load("").unwrap().config.max_clock_skew_secs, 300);
    }

    #[test]
    fn home_is_expanded_in_file_paths() {
        let home = std::env::var("HOME").unwrap();
        let c = load("store { dir: ~/jwts }").unwrap().config;
        assert_eq!(c.store.dir, Some(PathBuf::from(home).join("jwts")));
    }

    #[test]
    fn later_keys_win_whatever_their_case() {
        let c = load("http { Port: 1, port: 2, PORT: 3 }").unwrap().config;
        assert_eq!(c.http.port, 3);
    }

    #[test]
    fn colors_are_unset_unless_the_file_forces_them() {
        let colors = |text: &str| load(text).unwrap().config.logging.colors;
        assert_eq!(colors("http { port: 1 }"), None);
        assert_eq!(colors("logging { time: false }"), None);
        assert_eq!(colors("logging { colors: on }"), Some(true));
        assert_eq!(colors("logging { Colors: \"false\" }"), Some(false));
    }

    #[test]
    fn single_server_string_becomes_a_list() {
        let c = load("nats { servers: \"nats://a:1\" }").unwrap().config;
        assert_eq!(c.nats.servers, ["nats://a:1"]);
    }

    #[test]
    fn resolver_protocol_keys() {
        let c = load(
            "nats { servers: [\"nats://a:1\", \"nats://b:2\"], name: nas-1, syncinterval: \"2m\",\n\
             tls { handshake_first: true } }\nstore { dir: /x, allow_delete: true }",
        )
        .unwrap()
        .config;
        assert_eq!(c.nats.servers, ["nats://a:1", "nats://b:2"]);
        assert_eq!(c.nats.name, "nas-1");
        assert_eq!(c.nats.sync_interval_ms, 120_000);
        assert!(c.nats.tls.handshake_first);
        assert!(c.store.allow_delete);
        let d = load("").unwrap().config;
        assert_eq!(
            (
                d.nats.name.as_str(),
                d.nats.sync_interval_ms,
                d.store.allow_delete
            ),
            ("nats-account-server", 60_000, false)
        );
        for (src, ms) in [("500", 500), ("\"500ms\"", 500), ("\"3s\"", 3000), ("1", 1)] {
            let c = load(&format!("nats {{ syncinterval: {src} }}"))
                .unwrap()
                .config;
            assert_eq!(c.nats.sync_interval_ms, ms, "{src}");
        }
        let e = load("nats {\n syncinterval: \"soon\" }")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nas.conf:2") && e.contains("syncinterval"),
            "{e}"
        );
        let e = load("http { tls { handshakefirst: true } }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nats.tls"), "{e}");
    }

    #[test]
    fn connection_bounds_and_activation_quota_are_read() {
        let c = load(
            "http { maxconnectionrequests: 5, maxconnectionage: \"2m\", listenbacklog: 4096 }\n\
             activations { maxperissuer: 7, maxbytesperissuer: 1kb }",
        )
        .unwrap()
        .config;
        assert_eq!(c.http.max_connection_requests, 5);
        assert_eq!(c.http.max_connection_age_ms, 120_000);
        assert_eq!(c.http.listen_backlog, 4096);
        assert_eq!(c.activations.max_per_issuer, 7);
        assert_eq!(c.activations.max_bytes_per_issuer, 1024);
        let d = Config::default();
        assert_eq!(
            (
                d.http.max_connection_requests,
                d.http.max_connection_age_ms,
                d.http.listen_backlog
            ),
            (1000, 600_000, 1024)
        );
    }
}
