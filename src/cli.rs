//! The command line, read as Go's `flag` package reads it (spec §1.1): single- or double-dash
//! flags (`-hp`, `--hp`), `-flag=value` and `-flag value`, booleans as `-D` or `-D=false`,
//! parsing that stops at the first argument that is not a flag. As in Go, the last value of a
//! repeated flag wins and an empty value (`-dir=`) leaves the setting unset. Help and errors
//! spell the flags as they are written: `-c`, `-hp`, `-D`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::{expand_home, FlagOverrides};

pub mod migrate;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cli {
    /// `-c`: the config file.
    pub config_file: Option<PathBuf>,
    /// Everything that overrides the config file.
    pub overrides: FlagOverrides,
    /// `-dump`: print the effective configuration (in the config syntax) after start.
    pub dump: bool,
    /// `-lenient`: unknown config keys are warnings instead of errors.
    pub lenient: bool,
    /// Arguments after the first non-flag argument, which the Go server ignored silently.
    pub ignored: Vec<String>,
}

/// A command-line problem, or a request for help or version text.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `-h`, `-help`: the usage text, on stdout, exit 0.
    #[error("{}", usage())]
    Help,
    /// `-v`, `-version`: the version line, on stdout, exit 0.
    #[error("{}", crate::version::long_version())]
    Version,
    /// A flag that is not defined, lacks its value or has a bad one: the reason, then the
    /// usage, on stderr, exit 2 (as Go's `flag` package).
    #[error("{0}\n{usage}", usage = usage())]
    Usage(String),
    /// `migrate -h`: the usage of `migrate`, on stdout, exit 0.
    #[error("{}", migrate::usage())]
    MigrateHelp,
    /// A `migrate` flag problem: the reason, then the usage of `migrate`, on stderr, exit 2.
    #[error("{0}\n{usage}", usage = migrate::usage())]
    MigrateUsage(String),
}

impl CliError {
    /// Exit code: 0 for help and version, 2 for usage errors (as Go's `flag` package).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Help | CliError::Version | CliError::MigrateHelp => 0,
            CliError::Usage(_) | CliError::MigrateUsage(_) => 2,
        }
    }

    /// Prints the message to the right stream (stdout for help/version, stderr otherwise).
    pub fn print(&self) {
        match self {
            CliError::Help | CliError::Version | CliError::MigrateHelp => println!("{self}"),
            CliError::Usage(_) | CliError::MigrateUsage(_) => eprintln!("{self}"),
        }
    }
}

/// What a flag takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A value: `-c nas.conf`, `-c=nas.conf`.
    Value,
    /// A boolean: `-D`, `-D=false`.
    Bool,
}

/// One flag: its name, what it takes and its help sentence. Kept in Go's order for the usage
/// text (sorted by name, upper case first).
struct Flag {
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

const FLAGS: &[Flag] = &[
    flag("D", Kind::Bool, "turn on debug logging"),
    flag("DV", Kind::Bool, "turn on debug and trace logging"),
    flag("V", Kind::Bool, "turn on trace logging"),
    flag(
        "c",
        Kind::Value,
        "config file path; the other flags take precedence over its values",
    ),
    flag(
        "creds",
        Kind::Value,
        "creds file of a system-account user for the NATS connection",
    ),
    flag(
        "dir",
        Kind::Value,
        "directory to store and serve account JWTs in",
    ),
    flag(
        "dump",
        Kind::Bool,
        "print the effective configuration (in the config file syntax) on stdout after start",
    ),
    flag(
        "hp",
        Kind::Value,
        "HTTP host:port to listen on (default localhost:9090)",
    ),
    flag(
        "lenient",
        Kind::Bool,
        "ignore unknown config keys with a warning instead of refusing to start",
    ),
    flag(
        "nats",
        Kind::Value,
        "NATS server URL for notifications (replaces nats.servers)",
    ),
    flag("nsc", Kind::Value, "nsc operator folder to serve read-only"),
    flag(
        "operator",
        Kind::Value,
        "operator JWT path (overrides operatorjwtpath)",
    ),
    flag(
        "primary",
        Kind::Value,
        "URL of the primary account server, http(s)://host:port/",
    ),
    flag(
        "ro",
        Kind::Bool,
        "with -dir: serve it read-only; file changes trigger NATS updates",
    ),
];

const fn flag(name: &'static str, kind: Kind, help: &'static str) -> Flag {
    Flag { name, kind, help }
}

/// The usage text, in the layout of Go's `flag.PrintDefaults`.
pub fn usage() -> String {
    let mut out = String::from(
        "Usage of nats-account-server:\n\
         Serves NATS account JWTs over HTTP for nats-server's URL resolver, stores pushed JWTs\n\
         and notifies running servers. Flags take one or two dashes; values as -c nas.conf or\n\
         -c=nas.conf; booleans as -D or -D=false.\n",
    );
    out.push_str(&flag_lines(FLAGS));
    out.push_str("  -h, -help\n    \tprint this help and exit\n");
    out.push_str("  -v, -version\n    \tprint the version, commit and build date and exit");
    out
}

/// The flag lines of a usage text, in the layout of Go's `flag.PrintDefaults`.
fn flag_lines(table: &[Flag]) -> String {
    let mut out = String::new();
    for f in table {
        match f.kind {
            Kind::Bool => out.push_str(&format!("  -{}\n    \t{}\n", f.name, f.help)),
            Kind::Value => out.push_str(&format!("  -{} string\n    \t{}\n", f.name, f.help)),
        }
    }
    out
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The last value given for each flag, by flag index.
type Values = Vec<Option<OsString>>;

/// Reads the flags of `table` as Go's `flag.Parse` does. Returns the values and the arguments
/// after the first non-flag argument.
fn read_flags(table: &[Flag], args: Vec<OsString>) -> Result<(Values, Vec<String>), CliError> {
    let mut values: Values = vec![None; table.len()];
    let mut iter = args.into_iter().skip(1);
    let mut ignored = Vec::new();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "--" || !text.starts_with('-') || text == "-" {
            if text != "--" {
                ignored.push(text);
            }
            ignored.extend(iter.by_ref().map(|a| a.to_string_lossy().into_owned()));
            break;
        }
        let body = text.strip_prefix("--").unwrap_or(&text[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(CliError::Usage(format!("bad flag syntax: {text}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(index) = table.iter().position(|f| f.name == name) else {
            return match name {
                "h" | "help" => Err(CliError::Help),
                "v" | "version" => Err(CliError::Version),
                _ => Err(CliError::Usage(format!(
                    "flag provided but not defined: -{name}"
                ))),
            };
        };
        let value = match (table[index].kind, inline) {
            (Kind::Bool, None) => OsString::from("true"),
            (Kind::Bool, Some(v)) => {
                go_bool(v).ok_or_else(|| {
                    CliError::Usage(format!(
                        "invalid boolean value {v:?} for -{name}: parse error"
                    ))
                })?;
                OsString::from(v)
            }
            (Kind::Value, Some(_)) => value_after_equals(&arg),
            // Go takes the next argument as the value whatever it looks like.
            (Kind::Value, None) => iter
                .next()
                .ok_or_else(|| CliError::Usage(format!("flag needs an argument: -{name}")))?,
        };
        values[index] = Some(value);
    }
    Ok((values, ignored))
}

/// The bytes after the first `=` of an argument, kept as an OS string (paths need not be UTF-8).
fn value_after_equals(arg: &OsString) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = arg.as_bytes();
    let at = bytes
        .iter()
        .position(|b| *b == b'=')
        .map_or(bytes.len(), |i| i + 1);
    OsString::from_vec(bytes[at..].to_vec())
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
    let (values, ignored) = read_flags(FLAGS, args.into_iter().map(Into::into).collect())?;
    let get = |name: &str| {
        FLAGS
            .iter()
            .position(|f| f.name == name)
            .and_then(|i| values[i].clone())
            .filter(|v| !v.is_empty())
    };
    let text = |name: &str| get(name).map(|v| v.to_string_lossy().into_owned());
    let on = |name: &str| text(name).and_then(|v| go_bool(&v)).unwrap_or(false);
    let path = |name: &str| -> Result<Option<PathBuf>, CliError> {
        get(name)
            .map(|p| expand_home(&PathBuf::from(p)).map_err(CliError::Usage))
            .transpose()
    };
    let host_port = text("hp")
        .map(|hp| split_host_port(&hp))
        .transpose()
        .map_err(CliError::Usage)?;
    Ok(Cli {
        config_file: path("c")?,
        overrides: FlagOverrides {
            dir: path("dir")?,
            operator: path("operator")?,
            nats: text("nats"),
            creds: path("creds")?,
            primary: text("primary"),
            host_port,
            debug: on("D") || on("DV"),
            trace: on("V") || on("DV"),
            nsc: path("nsc")?,
            readonly: on("ro"),
        },
        dump: on("dump"),
        lenient: on("lenient"),
        ignored,
    })
}

#[cfg(test)]
mod tests;
