//! The keys the config file may hold, block by block, and the "did you mean" suggestion for a
//! key that is not one of them. Keys are compared in their normalised form (lower case, `_` and
//! `-` dropped), the form [`super::load`] matches them in.

/// Keys of the top level of the file.
pub const TOP: &[&str] = &[
    "logging",
    "nats",
    "http",
    "store",
    "activations",
    "operatorjwtpath",
    "systemaccountjwtpath",
    "primary",
    "replicationtimeout",
    "replicationinterval",
    "maxreplicationpack",
    "signrequestsubject",
    "signrequesttimeout",
    "maxclockskew",
    "strict",
];
/// Keys of `logging { }`.
pub const LOGGING: &[&str] = &["time", "debug", "trace", "colors", "pid"];
/// Keys of `nats { }`.
pub const NATS: &[&str] = &[
    "servers",
    "connecttimeout",
    "reconnectwait",
    "maxreconnects",
    "tls",
    "usercredentials",
    "name",
    "syncinterval",
];
/// Keys of `http { }`.
pub const HTTP: &[&str] = &[
    "host",
    "port",
    "readtimeout",
    "writetimeout",
    "tls",
    "maxbodysize",
    "maxconnections",
    "maxconnectionrequests",
    "maxconnectionage",
    "listenbacklog",
    "metrics",
];
/// Keys of `store { }`.
pub const STORE: &[&str] = &[
    "dir",
    "shard",
    "cleanupinterval",
    "nsc",
    "readonly",
    "cachesize",
    "allowdelete",
    "filemode",
    "dirmode",
    "groupcommit",
    "jetstream",
];
/// Keys of `store { jetstream { } }`.
pub const JETSTREAM: &[&str] = &[
    "servers",
    "usercredentials",
    "user",
    "password",
    "tls",
    "bucket",
    "replicas",
    "history",
];
/// Keys of `activations { }`.
pub const ACTIVATIONS: &[&str] = &["maxperissuer", "maxbytesperissuer"];
/// Keys of a `tls { }` block (the aliases nats-server accepts included).
pub const TLS: &[&str] = &[
    "root",
    "cafile",
    "ca",
    "cert",
    "certfile",
    "key",
    "keyfile",
    "handshakefirst",
];

/// Every block and its keys, to suggest `store.dir` for a `dir` written at the top level.
const BLOCKS: &[(&str, &[&str])] = &[
    ("logging", LOGGING),
    ("nats", NATS),
    ("http", HTTP),
    ("store", STORE),
    ("activations", ACTIVATIONS),
];

/// Lower-cases a key and drops `_` and `-`, the spelling-insensitive form keys are matched in.
pub fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A suggestion for the unknown key `key` (written in the block whose known keys are `known`):
/// the closest known key when it is a small typo away, or the block a top-level key belongs in.
pub fn suggest(key: &str, known: &[&str], top_level: bool) -> Option<String> {
    let wanted = normalize(key);
    let allowed = if wanted.chars().count() <= 4 { 1 } else { 2 };
    let close = known
        .iter()
        .map(|k| (distance(&wanted, k), *k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d);
    if let Some((_, k)) = close {
        return Some(k.to_string());
    }
    if top_level {
        return BLOCKS
            .iter()
            .find(|(_, keys)| keys.contains(&wanted.as_str()))
            .map(|(block, _)| format!("{block} {{ {wanted}: ... }}"));
    }
    None
}

/// Edit distance with adjacent transpositions (optimal string alignment): `dri` is one edit
/// from `dir`, `stor` one from `store`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key() {
        assert_eq!(suggest("stor", TOP, true).as_deref(), Some("store"));
        assert_eq!(suggest("dri", STORE, false).as_deref(), Some("dir"));
        assert_eq!(
            suggest("Operator_JWT_Pth", TOP, true).as_deref(),
            Some("operatorjwtpath")
        );
        assert_eq!(suggest("prot", HTTP, false).as_deref(), Some("port"));
        assert_eq!(suggest("usercreds", NATS, false), None);
        assert_eq!(suggest("zzzz", TOP, true), None);
    }

    #[test]
    fn a_block_key_at_the_top_level_names_its_block() {
        assert_eq!(
            suggest("dir", TOP, true).as_deref(),
            Some("store { dir: ... }")
        );
        assert_eq!(suggest("dir", HTTP, false), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("abc", "acb"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
