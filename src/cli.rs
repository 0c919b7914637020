//! The command line, as the Go server accepts it: single-dash long flags (`-hp`, `-dir`, `-DV`),
//! `--flag` as well, `-flag=value` and `-flag value`, booleans as `-D` or `-D=false`, parsing
//! that stops at the first argument that is not a flag. The arguments are first rewritten into
//! the `--flag` form and then handed to clap, which also gives us `--help` and `--version`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::config::{expand_home, FlagOverrides};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cli {
    /// `-c`: the config file.
    pub config_file: Option<PathBuf>,
    /// Everything that overrides the config file.
    pub overrides: FlagOverrides,
    /// `-dump`: log the effective configuration after start.
    pub dump: bool,
    /// Arguments after the first non-flag argument, which the Go server ignored silently.
    pub ignored: Vec<String>,
}

/// A command-line problem, or a request for help/version text.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// clap's own error (unknown flag, missing value) or `--help`/`--version` output.
    #[error("{0}")]
    Clap(#[from] clap::Error),
    /// A flag value that cannot be used.
    #[error("{0}")]
    Invalid(String),
}

impl CliError {
    /// Exit code: 0 for help and version, 2 for usage errors (as Go's `flag` package).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Clap(e) if !e.use_stderr() => 0,
            _ => 2,
        }
    }

    /// Prints the message to the right stream (stdout for help/version, stderr otherwise).
    pub fn print(&self) {
        match self {
            CliError::Clap(e) => {
                let _ = e.print();
            }
            CliError::Invalid(msg) => eprintln!("{msg}"),
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "nats-account-server",
    about = "Serves NATS account JWTs over HTTP for nats-server's URL resolver, stores pushed JWTs and notifies running servers.",
    version,
    disable_version_flag = true,
    after_help = "Single-dash forms work too: -c nas.conf -hp 127.0.0.1:9090 -DV"
)]
struct Args {
    /// Config file path; other flags take precedence over its values
    #[arg(long = "c", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory to store/host account JWTs in
    #[arg(long = "dir", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Operator JWT path (overrides operatorjwtpath)
    #[arg(long = "operator", value_name = "FILE")]
    operator: Option<PathBuf>,
    /// nsc operator folder to serve read-only
    #[arg(long = "nsc", value_name = "DIR")]
    nsc: Option<PathBuf>,
    /// NATS server URL for notifications (replaces nats.servers)
    #[arg(long = "nats", value_name = "URL")]
    nats: Option<String>,
    /// Creds file of a system-account user for the NATS connection
    #[arg(long = "creds", value_name = "FILE")]
    creds: Option<PathBuf>,
    /// URL of the primary account server, http(s)://host:port/
    #[arg(long = "primary", value_name = "URL")]
    primary: Option<String>,
    /// HTTP host:port to listen on (default localhost:9090)
    #[arg(long = "hp", value_name = "HOST:PORT")]
    hp: Option<String>,
    /// Turn on debug logging
    #[arg(long = "D", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          action = ArgAction::Set, value_parser = go_bool, default_value = "false")]
    debug: bool,
    /// Turn on trace logging
    #[arg(long = "V", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          action = ArgAction::Set, value_parser = go_bool, default_value = "false")]
    trace: bool,
    /// Turn on debug and trace logging
    #[arg(long = "DV", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          action = ArgAction::Set, value_parser = go_bool, default_value = "false")]
    debug_trace: bool,
    /// Read-only directory store (with -dir); file changes trigger NATS updates
    #[arg(long = "ro", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          action = ArgAction::Set, value_parser = go_bool, default_value = "false")]
    readonly: bool,
    /// Log the effective configuration after start
    #[arg(long = "dump", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          action = ArgAction::Set, value_parser = go_bool, default_value = "false")]
    dump: bool,
    /// Print the version and exit
    #[arg(long = "version", action = ArgAction::Version)]
    version: Option<bool>,
}

/// Flags that take a value (the next argument when no `=` is given).
const VALUE_FLAGS: &[&str] = &[
    "c", "dir", "operator", "nsc", "nats", "creds", "primary", "hp",
];

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {text:?}")),
    }
}

/// Rewrites Go-style arguments into clap's `--name` form. Returns the rewritten list and the
/// arguments after the first non-flag argument (ignored, as Go's `flag` package does).
fn normalize(args: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(argv0) = iter.next() {
        out.push(argv0);
    }
    let mut ignored = Vec::new();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            ignored.push(arg.to_string_lossy().into_owned());
            ignored.extend(iter.by_ref().map(|a| a.to_string_lossy().into_owned()));
            break;
        };
        if text == "--" || !text.starts_with('-') || text == "-" {
            if text != "--" {
                ignored.push(text);
            }
            ignored.extend(iter.by_ref().map(|a| a.to_string_lossy().into_owned()));
            break;
        }
        let body = text.trim_start_matches('-');
        let (name, has_value) = match body.split_once('=') {
            Some((n, _)) => (n, true),
            None => (body, false),
        };
        let long = match name {
            "h" | "help" => "--help".to_string(),
            _ => format!("--{body}"),
        };
        out.push(OsString::from(long));
        if !has_value && VALUE_FLAGS.contains(&name) {
            // Go takes the next argument as the value whatever it looks like.
            if let Some(value) = iter.next() {
                let mut joined = OsString::from(format!("--{name}="));
                joined.push(value);
                out.pop();
                out.push(joined);
            }
        }
    }
    (out, ignored)
}

/// Splits `host:port` as Go's `net.SplitHostPort` does (IPv6 hosts in brackets).
pub fn split_host_port(text: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("error parsing hostport {text:?}: {why}");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' in address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing port in address"))?;
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| bad("missing port in address"))?;
        if host.contains(':') {
            return Err(bad("too many colons in address (use [ipv6]:port)"));
        }
        (host, port)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad(&format!("invalid port {port:?}")))?;
    Ok((host.to_string(), port))
}

/// Parses the process arguments (including argv[0]).
pub fn parse<I, T>(args: I) -> Result<Cli, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let (argv, ignored) = normalize(args.into_iter().map(Into::into).collect());
    let args = Args::try_parse_from(argv)?;
    let expand = |p: Option<PathBuf>| -> Result<Option<PathBuf>, CliError> {
        p.filter(|p| !p.as_os_str().is_empty())
            .map(|p| expand_home(&p).map_err(CliError::Invalid))
            .transpose()
    };
    let host_port = args
        .hp
        .as_deref()
        .map(split_host_port)
        .transpose()
        .map_err(CliError::Invalid)?;
    Ok(Cli {
        config_file: expand(args.config)?,
        overrides: FlagOverrides {
            dir: expand(args.dir)?,
            operator: expand(args.operator)?,
            nats: args.nats.filter(|s| !s.is_empty()),
            creds: expand(args.creds)?,
            primary: args.primary.filter(|s| !s.is_empty()),
            host_port,
            debug: args.debug || args.debug_trace,
            trace: args.trace || args.debug_trace,
            nsc: expand(args.nsc)?,
            readonly: args.readonly,
        },
        dump: args.dump,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        parse(std::iter::once("nas").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn go_style_single_dash_flags() {
        let c = cli(&[
            "-c",
            "nas.conf",
            "-hp",
            "127.0.0.1:9090",
            "-DV",
            "-dir",
            "/d",
        ]);
        assert_eq!(c.config_file, Some(PathBuf::from("nas.conf")));
        assert_eq!(c.overrides.host_port, Some(("127.0.0.1".into(), 9090)));
        assert!(c.overrides.debug && c.overrides.trace);
        assert_eq!(c.overrides.dir, Some(PathBuf::from("/d")));
    }

    #[test]
    fn double_dash_and_equals_forms() {
        let c = cli(&[
            "--hp=[::1]:80",
            "--c=x.conf",
            "-D",
            "-operator=/op.jwt",
            "--nats",
            "nats://h:1",
        ]);
        assert_eq!(c.overrides.host_port, Some(("::1".into(), 80)));
        assert_eq!(c.config_file, Some(PathBuf::from("x.conf")));
        assert!(c.overrides.debug && !c.overrides.trace);
        assert_eq!(c.overrides.operator, Some(PathBuf::from("/op.jwt")));
        assert_eq!(c.overrides.nats.as_deref(), Some("nats://h:1"));
    }

    #[test]
    fn booleans_take_only_equals_values() {
        let c = cli(&["-V=true", "-D=false", "-ro", "-dump=1"]);
        assert!(c.overrides.trace && !c.overrides.debug && c.overrides.readonly && c.dump);
        // `-D true`: "true" is the first non-flag argument, so parsing stops there.
        let c = cli(&["-D", "true", "-V"]);
        assert!(c.overrides.debug && !c.overrides.trace);
        assert_eq!(c.ignored, ["true", "-V"]);
    }

    #[test]
    fn value_flags_take_the_next_argument_verbatim() {
        let c = cli(&["-creds", "-weird-name"]);
        assert_eq!(c.overrides.creds, Some(PathBuf::from("-weird-name")));
    }

    #[test]
    fn home_is_expanded_in_path_flags() {
        let home = std::env::var("HOME").unwrap();
        let c = cli(&[
            "-c",
            "~/nas.conf",
            "-dir",
            "~/jwt",
            "-operator",
            "~/op.jwt",
            "-creds",
            "~/s.creds",
        ]);
        assert_eq!(c.config_file, Some(PathBuf::from(&home).join("nas.conf")));
        assert_eq!(c.overrides.dir, Some(PathBuf::from(&home).join("jwt")));
        assert_eq!(
            c.overrides.operator,
            Some(PathBuf::from(&home).join("op.jwt"))
        );
        assert_eq!(
            c.overrides.creds,
            Some(PathBuf::from(&home).join("s.creds"))
        );
    }

    #[test]
    fn errors() {
        let p = |a: &[&str]| parse(std::iter::once("nas").chain(a.iter().copied()));
        assert_eq!(p(&["-nope"]).unwrap_err().exit_code(), 2);
        assert_eq!(p(&["--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(p(&["-h"]).unwrap_err().exit_code(), 0);
        assert_eq!(p(&["--version"]).unwrap_err().exit_code(), 0);
        assert_eq!(p(&["-version"]).unwrap_err().exit_code(), 0);
        for bad in ["localhost", "localhost:blam", "::1:80", "h:70000"] {
            let e = p(&["-hp", bad]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("hostport"), "{e}");
        }
        assert!(p(&["-D=maybe"]).is_err());
        assert!(p(&["-dir", "~bob/x"]).is_err());
    }

    #[test]
    fn empty_host_is_allowed() {
        assert_eq!(split_host_port(":9090").unwrap(), (String::new(), 9090));
    }
}
