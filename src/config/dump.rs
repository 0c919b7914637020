//! `-dump`: the effective configuration written back in the nats-server config syntax, every
//! setting spelled out, so that loading the output gives the same [`Config`].

use std::fmt::Write;
use std::path::Path;

use super::{Config, TlsConfig};

/// The configuration as a config file: every key with its effective value (defaults included),
/// unset optional keys left out.
pub fn to_conf(config: &Config) -> String {
    let mut out = Out::default();
    out.line("# the effective configuration of nats-account-server (config file + flags)");
    let c = config;
    out.path("operatorjwtpath", c.operator_jwt_path.as_deref());
    out.path("systemaccountjwtpath", c.system_account_jwt_path.as_deref());
    out.string_opt("primary", c.primary.as_deref());
    out.int("replicationtimeout", c.replication_timeout_ms);
    out.int("replicationinterval", c.replication_interval_ms);
    out.int("maxreplicationpack", c.max_replication_pack);
    out.string_opt("signrequestsubject", c.sign_request_subject.as_deref());
    out.int("signrequesttimeout", c.sign_request_timeout_ms);
    out.int("maxclockskew", c.max_clock_skew_secs);

    let l = &c.logging;
    out.open("logging");
    out.bool("time", l.time);
    out.bool("debug", l.debug);
    out.bool("trace", l.trace);
    if let Some(colors) = l.colors {
        out.bool("colors", colors);
    }
    out.bool("pid", l.pid);
    out.close();

    let h = &c.http;
    out.open("http");
    out.string("host", &h.host);
    out.int("port", h.port);
    out.int("readtimeout", h.read_timeout_ms);
    out.int("writetimeout", h.write_timeout_ms);
    out.int("maxbodysize", h.max_body_bytes);
    out.int("maxconnections", h.max_connections);
    out.int("maxconnectionrequests", h.max_connection_requests);
    out.int("maxconnectionage", h.max_connection_age_ms);
    out.int("listenbacklog", h.listen_backlog);
    out.bool("metrics", h.metrics);
    out.tls(&h.tls);
    out.close();

    let s = &c.store;
    out.open("store");
    out.path("dir", s.dir.as_deref());
    out.bool("shard", s.shard);
    out.int("cleanupinterval", s.cleanup_interval_ms);
    out.path("nsc", s.nsc.as_deref());
    out.bool("readonly", s.readonly);
    out.int("cachesize", s.cache_bytes);
    out.bool("allowdelete", s.allow_delete);
    out.mode("filemode", s.file_mode);
    out.mode("dirmode", s.dir_mode);
    out.bool("groupcommit", s.group_commit);
    if let Some(js) = &s.jetstream {
        out.open("jetstream");
        out.strings("servers", &js.servers);
        out.path("usercredentials", js.user_credentials.as_deref());
        out.string_opt("user", js.user.as_deref());
        out.string_opt("password", js.password.as_deref());
        out.string("bucket", &js.bucket);
        out.int("replicas", js.replicas);
        out.int("history", js.history);
        out.tls(&js.tls);
        out.close();
    }
    out.close();

    out.open("activations");
    out.int("maxperissuer", c.activations.max_per_issuer);
    out.int("maxbytesperissuer", c.activations.max_bytes_per_issuer);
    out.close();

    let n = &c.nats;
    out.open("nats");
    out.strings("servers", &n.servers);
    out.int("connecttimeout", n.connect_timeout_ms);
    out.int("reconnectwait", n.reconnect_wait_ms);
    out.int("maxreconnects", n.max_reconnects);
    out.path("usercredentials", n.user_credentials.as_deref());
    out.string("name", &n.name);
    out.int("syncinterval", n.sync_interval_ms);
    out.tls(&n.tls);
    out.close();
    out.text
}

/// The text being written and the current indentation.
#[derive(Default)]
struct Out {
    text: String,
    indent: usize,
}

impl Out {
    fn line(&mut self, line: &str) {
        let _ = writeln!(self.text, "{:width$}{line}", "", width = self.indent * 2);
    }

    fn open(&mut self, block: &str) {
        self.line(&format!("{block} {{"));
        self.indent += 1;
    }

    fn close(&mut self) {
        self.indent = self.indent.saturating_sub(1);
        self.line("}");
    }

    fn int(&mut self, key: &str, value: impl std::fmt::Display) {
        self.line(&format!("{key}: {value}"));
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.line(&format!("{key}: {value}"));
    }

    fn string(&mut self, key: &str, value: &str) {
        self.line(&format!("{key}: {}", quote(value)));
    }

    fn string_opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.string(key, value);
        }
    }

    fn path(&mut self, key: &str, value: Option<&Path>) {
        if let Some(path) = value {
            self.string(key, &path.to_string_lossy());
        }
    }

    fn strings(&mut self, key: &str, values: &[String]) {
        let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
        self.line(&format!("{key}: [{}]", items.join(", ")));
    }

    fn mode(&mut self, key: &str, value: Option<u32>) {
        if let Some(bits) = value {
            self.line(&format!("{key}: \"{bits:04o}\""));
        }
    }

    fn tls(&mut self, tls: &TlsConfig) {
        if !tls.is_set() {
            return;
        }
        self.open("tls");
        self.path("root", tls.root.as_deref());
        self.path("cert", tls.cert.as_deref());
        self.path("key", tls.key.as_deref());
        if tls.handshake_first {
            self.bool("handshakefirst", true);
        }
        self.close();
    }
}

/// A double-quoted string of the config syntax: `"` and `\` escaped, control characters as
/// `\t`, `\n`, `\r` or `\xNN`; `$` needs nothing (quoted strings are not expanded).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::{from_map, UnknownKeys};
    use crate::config::{natsconf, Config};
    use std::path::PathBuf;

    /// Loads config text strictly (an unknown key in the dump fails the test).
    fn load(text: &str) -> Config {
        let map = natsconf::parse_str(text, Path::new("dump.conf"), &|_| None).unwrap();
        let loaded = from_map(&map, UnknownKeys::Refuse).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        loaded.config
    }

    #[test]
    fn the_default_config_loads_back_the_same() {
        let config = Config::default();
        assert_eq!(load(&to_conf(&config)), config);
    }

    #[test]
    #[allow(clippy::field_reassign_with_default)] // one field per line reads best here
    fn every_field_set_loads_back_the_same() {
        let mut c = Config::default();
        c.operator_jwt_path = Some(PathBuf::from("/etc/nats/op \"quoted\" $HOME.jwt"));
        c.system_account_jwt_path = Some(PathBuf::from("/etc/nats/sys\\back\tslash.jwt"));
        c.primary = Some("http://primary:9090/".into());
        c.replication_timeout_ms = 1;
        c.replication_interval_ms = 2;
        c.max_replication_pack = -1;
        c.sign_request_subject = Some("sign.here".into());
        c.sign_request_timeout_ms = 3;
        c.max_clock_skew_secs = 4;
        c.logging.time = false;
        c.logging.debug = true;
        c.logging.trace = true;
        c.logging.colors = Some(false);
        c.logging.pid = true;
        c.http.host = String::new();
        c.http.port = 0;
        c.http.read_timeout_ms = 0;
        c.http.write_timeout_ms = 7;
        c.http.max_body_bytes = 8;
        c.http.max_connections = 9;
        c.http.max_connection_requests = 0;
        c.http.max_connection_age_ms = 11;
        c.http.listen_backlog = 12;
        c.http.metrics = true;
        c.http.tls.cert = Some(PathBuf::from("/c.pem"));
        c.http.tls.key = Some(PathBuf::from("/k.pem"));
        c.store.dir = Some(PathBuf::from("/var/lib/naïve"));
        c.store.shard = true;
        c.store.cleanup_interval_ms = -5;
        c.store.nsc = Some(PathBuf::from("/nsc"));
        c.store.readonly = true;
        c.store.cache_bytes = 0;
        c.store.allow_delete = true;
        c.store.file_mode = Some(0o600);
        c.store.dir_mode = Some(0o700);
        c.store.group_commit = false;
        c.store.jetstream = Some(crate::config::JetStreamConfig {
            servers: vec!["nats://js1:4222".into(), "nats://js2:4222".into()],
            user_credentials: Some(PathBuf::from("/kv.creds")),
            user: Some("kv user".into()),
            password: Some("p\"w".into()),
            tls: crate::config::TlsConfig {
                root: Some(PathBuf::from("/js-ca.pem")),
                ..Default::default()
            },
            bucket: "jwts_1".into(),
            replicas: 3,
            history: 7,
        });
        c.activations.max_per_issuer = 13;
        c.activations.max_bytes_per_issuer = 14;
        c.nats.servers = vec!["nats://a:4222".into(), "tls://b:4222".into()];
        c.nats.connect_timeout_ms = 15;
        c.nats.reconnect_wait_ms = 16;
        c.nats.max_reconnects = 17;
        c.nats.tls.root = Some(PathBuf::from("/ca.pem"));
        c.nats.tls.handshake_first = true;
        c.nats.user_credentials = Some(PathBuf::from("/sys.creds"));
        c.nats.name = "nas \u{1} one".into();
        c.nats.sync_interval_ms = 18;
        let text = to_conf(&c);
        assert_eq!(load(&text), c, "{text}");
        // It is plain config syntax, not a Rust struct.
        assert!(
            !text.contains("Config {") && !text.contains("Some("),
            "{text}"
        );
    }
}
