//! Maps a parsed config tree onto [`Config`]: keys are matched case-insensitively with `_` and
//! `-` ignored (so `OperatorJWTPath`, `operatorjwtpath` and `operator_jwt_path` are one key),
//! values are converted as the Go server does (`"9090"` is a fine port, `"true"` a fine bool),
//! unknown keys stop the start (or become warnings when asked), and every error names the file,
//! the line and the key.

use std::path::{Path, PathBuf};

use super::blocks::{self, Cx};
use super::keys::{self, normalize};
use super::natsconf::{self, Map, ParseError};
use super::values::boolean;
use super::Config;

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
    /// A key that is not a setting (nats-server refuses unknown fields too): most often a typo,
    /// which would otherwise silently fall back to a default such as the memory store.
    #[error(
        "config error: {}:{line}: unknown key {key:?}{}; start with -lenient or set \"strict: false\" to ignore unknown keys",
        file.display(),
        did_you_mean(suggestion)
    )]
    UnknownKey {
        /// File holding the key.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// Dotted path of the key as written, e.g. `store.dri`.
        key: String,
        /// The known key it is probably meant to be.
        suggestion: Option<String>,
    },
}

/// ` (did you mean "store"?)`, or nothing without a suggestion.
pub(super) fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// What an unknown key does to the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownKeys {
    /// Stop with [`ConfigError::UnknownKey`] (the default, as nats-server).
    #[default]
    Refuse,
    /// Ignore it with a warning (`-lenient`, or `strict: false` in the file).
    Warn,
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
pub fn load_file(path: &Path, unknown: UnknownKeys) -> Result<Loaded, ConfigError> {
    let is_toml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let map = if is_toml {
        natsconf::parse_toml_file(path)?
    } else {
        natsconf::parse_file(path)?
    };
    from_map(&map, unknown)
}

/// Builds a [`Config`] from an already parsed tree. A top-level `strict: false` turns unknown
/// keys into warnings whatever `unknown` says.
pub fn from_map(map: &Map, unknown: UnknownKeys) -> Result<Loaded, ConfigError> {
    let mut unknown = unknown;
    for (key, node) in map {
        if normalize(key) == "strict" && !boolean(key, node)? {
            unknown = UnknownKeys::Warn;
        }
    }
    let cx = Cx::new(unknown);
    let mut config = Config::default();
    for (key, node) in map {
        if !blocks::top(&cx, &mut config, &normalize(key), key, node)? {
            cx.unknown(key, node, keys::TOP)?;
        }
    }
    Ok(Loaded {
        config,
        warnings: cx.into_warnings(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Loaded, ConfigError> {
        let map = natsconf::parse_str(text, Path::new("/cfg/nas.conf"), &|_| None)?;
        from_map(&map, UnknownKeys::Refuse)
    }

    fn load_lenient(text: &str) -> Result<Loaded, ConfigError> {
        let map = natsconf::parse_str(text, Path::new("/cfg/nas.conf"), &|_| None)?;
        from_map(&map, UnknownKeys::Warn)
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
    fn unknown_keys_stop_the_load_naming_file_line_key_and_suggestion() {
        for (src, key, line, hint) in [
            (
                "http {\n  port: 1\n  prot: 2\n}\n",
                "http.prot",
                3,
                Some("port"),
            ),
            ("stor { dir: /x }", "stor", 1, Some("store")),
            ("store {\n dri: /x }", "store.dri", 2, Some("dir")),
            ("dir: /x", "dir", 1, Some("store { dir: ... }")),
            ("nats { tls { kye: /k } }", "nats.tls.kye", 1, Some("key")),
            ("colour: blue", "colour", 1, None),
        ] {
            let err = load(src).unwrap_err();
            let ConfigError::UnknownKey {
                file,
                line: l,
                key: k,
                suggestion,
            } = &err
            else {
                panic!("{src}: {err}");
            };
            assert_eq!(
                (file.to_str(), *l, k.as_str()),
                (Some("/cfg/nas.conf"), line, key)
            );
            assert_eq!(suggestion.as_deref(), hint, "{src}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("/cfg/nas.conf:{line}: unknown key {key:?}")),
                "{text}"
            );
            assert!(
                text.contains("-lenient") && text.contains("strict: false"),
                "{text}"
            );
            if let Some(hint) = hint {
                assert!(
                    text.contains(&format!("(did you mean {hint:?}?)")),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn lenient_loads_and_strict_false_turn_unknown_keys_into_warnings() {
        let src = "http {\n  port: 1\n  prot: 2\n}\nfoo: bar\n";
        let loaded = load_lenient(src).unwrap();
        assert_eq!(loaded.config.http.port, 1);
        assert_eq!(loaded.warnings.len(), 2);
        assert!(
            loaded.warnings[0].contains("/cfg/nas.conf:3"),
            "{:?}",
            loaded.warnings
        );
        assert!(loaded.warnings[0].contains("\"http.prot\" (did you mean \"port\"?) is ignored"));
        assert!(loaded.warnings[1].contains(":5:") && loaded.warnings[1].contains("\"foo\""));
        // The file can say it itself, before or after the unknown keys.
        for src in ["strict: false\nfoo: bar\n", "foo: bar\nStrict = no\n"] {
            assert_eq!(load(src).unwrap().warnings.len(), 1, "{src}");
        }
        assert!(load("strict: true\nfoo: bar\n").is_err());
        assert!(load("strict: maybe\n").is_err());
    }

    #[test]
    fn keys_used_as_variables_are_not_unknown() {
        let loaded = load("STORE_DIR: /var/lib/nas\nstore { dir: $STORE_DIR }\n").unwrap();
        assert_eq!(loaded.config.store.dir, Some(PathBuf::from("/var/lib/nas")));
        assert!(loaded.warnings.is_empty());
        // Defined but never used: a typo as any other.
        assert!(load("STORE_DIR: /var/lib/nas\n").is_err());
    }

    #[test]
    fn every_listed_key_is_read() {
        let blocks = [
            ("logging", keys::LOGGING, "true"),
            ("activations", keys::ACTIVATIONS, "1"),
        ];
        for (block, names, value) in blocks {
            for name in names {
                let src = format!("{block} {{ {name}: {value} }}");
                load(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            }
        }
        for name in keys::TLS {
            let value = if *name == "handshakefirst" {
                "true"
            } else {
                "/f"
            };
            load(&format!("nats {{ tls {{ {name}: {value} }} }}")).unwrap();
        }
        // Keys of the other blocks take values of several kinds: an unknown key is the one error
        // that names "unknown key", so any other outcome shows the key is read.
        for (block, names) in [
            ("nats", keys::NATS),
            ("http", keys::HTTP),
            ("store", keys::STORE),
        ] {
            for name in names {
                let src = format!("{block} {{ {name}: 1 }}");
                if let Err(ConfigError::UnknownKey { .. }) = load(&src) {
                    panic!("{src} is listed but not read");
                }
            }
        }
        for name in keys::TOP {
            if let Err(ConfigError::UnknownKey { .. }) = load(&format!("{name}: 1")) {
                panic!("{name} is listed but not read");
            }
        }
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
            ("store { jetstream { bucket: b } }", "store.jetstream"),
            (
                "store { jetstream { servers: [\"nats://a:x\"] } }",
                "store.jetstream.servers",
            ),
            (
                "store { jetstream { servers: [\"nats://a:4222\"], user: u } }",
                "store.jetstream",
            ),
            (
                "store { jetstream { servers: [\"nats://a:4222\"], bucket: \"a.b\" } }",
                "store.jetstream.bucket",
            ),
            (
                "store { jetstream { servers: [\"nats://a:4222\"], replicas: 6 } }",
                "store.jetstream.replicas",
            ),
            (
                "store { jetstream { servers: [\"nats://a:4222\"], history: 0 } }",
                "store.jetstream.history",
            ),
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
