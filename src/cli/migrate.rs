//! `nats-account-server migrate -from <dir|nsc folder> -c nas.conf`: the command line of the
//! migration (flags read as the server's are, see the parent module).

use std::ffi::OsString;
use std::path::PathBuf;

use super::{flag, flag_lines, go_bool, read_flags, CliError, Flag, Kind};
use crate::config::expand_home;

/// The word that selects the migration (the first argument).
pub const COMMAND: &str = "migrate";

const FLAGS: &[Flag] = &[
    flag(
        "c",
        Kind::Value,
        "config file path: its store is the destination, its operator the trust",
    ),
    flag(
        "from",
        Kind::Value,
        "the JWTs to copy: a store directory (flat or sharded) or an nsc operator folder",
    ),
    flag(
        "lenient",
        Kind::Bool,
        "ignore unknown config keys with a warning instead of refusing",
    ),
];

/// What `migrate` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateArgs {
    /// `-from`: the source folder.
    pub from: PathBuf,
    /// `-c`: the config file naming the destination store.
    pub config_file: PathBuf,
    /// `-lenient`: unknown config keys are warnings.
    pub lenient: bool,
}

/// The usage text of `migrate`.
pub fn usage() -> String {
    let mut out = String::from(
        "Usage of nats-account-server migrate:\n\
         Copies every account JWT of a store directory or nsc folder into the store of the\n\
         config file (a JetStream bucket, say), through the rules of a push: each JWT is\n\
         checked against the operator, and a newer stored JWT or a deletion is never undone.\n",
    );
    out.push_str(&flag_lines(FLAGS));
    out.push_str("  -h, -help\n    \tprint this help and exit");
    out
}

/// Parses the arguments after `migrate`.
pub fn parse(args: Vec<OsString>) -> Result<MigrateArgs, CliError> {
    let as_migrate = |e: CliError| match e {
        CliError::Help | CliError::Version => CliError::MigrateHelp,
        CliError::Usage(why) | CliError::MigrateUsage(why) => CliError::MigrateUsage(why),
        other => other,
    };
    let (values, ignored) = read_flags(FLAGS, args).map_err(as_migrate)?;
    if let Some(extra) = ignored.first() {
        return Err(CliError::MigrateUsage(format!(
            "unexpected argument {extra:?}"
        )));
    }
    let path = |i: usize, name: &str| -> Result<PathBuf, CliError> {
        let value = values[i]
            .clone()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CliError::MigrateUsage(format!("-{name} is required")))?;
        expand_home(&PathBuf::from(value)).map_err(CliError::MigrateUsage)
    };
    Ok(MigrateArgs {
        config_file: path(0, "c")?,
        from: path(1, "from")?,
        lenient: values[2]
            .as_ref()
            .and_then(|v| go_bool(&v.to_string_lossy()))
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("migrate")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn from_and_config_are_required_and_read_like_the_server_flags() {
        let parsed = parse(args(&["--from", "/a", "-c=/b.conf", "-lenient"])).unwrap();
        assert_eq!(parsed.from, PathBuf::from("/a"));
        assert_eq!(parsed.config_file, PathBuf::from("/b.conf"));
        assert!(parsed.lenient);
        let missing = parse(args(&["-c", "/b.conf"])).unwrap_err();
        assert!(matches!(&missing, CliError::MigrateUsage(w) if w == "-from is required"));
        assert_eq!(missing.exit_code(), 2);
        assert!(missing
            .to_string()
            .contains("Usage of nats-account-server migrate"));
        let unknown = parse(args(&["-dir", "/x"])).unwrap_err();
        assert!(matches!(&unknown, CliError::MigrateUsage(w) if w.contains("-dir")));
        assert!(matches!(parse(args(&["-h"])), Err(CliError::MigrateHelp)));
        assert!(parse(args(&["-from", "/a", "-c", "/b", "extra"])).is_err());
    }
}
