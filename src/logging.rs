//! Log lines that look like nats-server's: `[pid] 2006/01/02 15:04:05.000000 [INF] message`,
//! written to stderr, with the `logging { time, debug, trace, colors, pid }` options. Level
//! labels are coloured when `colors` says so, or, when it is not set, when stderr is a terminal
//! (never in a log file or a pipe).

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use crate::config::LoggingConfig;

/// Formats one event in nats-server's style.
#[derive(Debug, Clone)]
pub struct NatsStyle {
    time: bool,
    colors: bool,
    pid: Option<u32>,
}

impl NatsStyle {
    /// A formatter for the given options, colouring when `colors` is on (see [`use_colors`]).
    pub fn new(options: &LoggingConfig, colors: bool) -> Self {
        NatsStyle {
            time: options.time,
            colors,
            pid: options.pid.then(std::process::id),
        }
    }
}

/// Whether level labels are coloured: as `logging.colors` forces it, else only when the log
/// goes to a terminal (`terminal`: whether stderr is one).
pub fn use_colors(options: &LoggingConfig, terminal: bool) -> bool {
    options.colors.unwrap_or(terminal)
}

/// The three-letter label nats-server prints for a level, and its colour code.
fn label(level: &Level) -> (&'static str, &'static str) {
    match *level {
        Level::ERROR => ("ERR", "31"),
        Level::WARN => ("WRN", "0;93"),
        Level::INFO => ("INF", "32"),
        Level::DEBUG => ("DBG", "36"),
        Level::TRACE => ("TRC", "33"),
    }
}

impl<S, N> FormatEvent<S, N> for NatsStyle
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(pid) = self.pid {
            write!(writer, "[{pid}] ")?;
        }
        if self.time {
            write!(
                writer,
                "{} ",
                chrono::Local::now().format("%Y/%m/%d %H:%M:%S%.6f")
            )?;
        }
        let (text, color) = label(event.metadata().level());
        if self.colors {
            write!(writer, "[\x1b[{color}m{text}\x1b[0m] ")?;
        } else {
            write!(writer, "[{text}] ")?;
        }
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        writeln!(writer, "{}", Untrusted(&message))
    }
}

/// Longest message written, in bytes; the rest is cut and counted.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// A message as it is logged: control characters (newlines included) escaped, so that text
/// from a request (a JWT's `sub`, a name) cannot forge log lines or terminal sequences, and cut
/// after [`MAX_MESSAGE_BYTES`].
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let mut written = 0;
        for (at, c) in self.0.char_indices() {
            if written >= MAX_MESSAGE_BYTES {
                return write!(f, "... ({} more bytes)", self.0.len() - at);
            }
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_char('\t')?,
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    write!(f, "\\u{{{:x}}}", c as u32)?
                }
                c => f.write_char(c)?,
            }
            written += c.len_utf8();
        }
        Ok(())
    }
}

/// The most verbose level the options allow.
pub fn level_for(options: &LoggingConfig) -> LevelFilter {
    if options.trace {
        LevelFilter::TRACE
    } else if options.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    }
}

/// Installs the global logger. Our own events honour debug/trace; libraries only report
/// warnings and errors. Returns an error when a logger is already installed.
pub fn init(options: &LoggingConfig) -> Result<(), String> {
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target(env!("CARGO_CRATE_NAME"), level_for(options));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(NatsStyle::new(
            options,
            use_colors(options, std::io::stderr().is_terminal()),
        ));
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(options: LoggingConfig, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || out.clone())
            .event_format(NatsStyle::new(&options, options.colors == Some(true)))
            .with_filter(level_for(&options));
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn opts(time: bool, colors: bool, pid: bool, debug: bool, trace: bool) -> LoggingConfig {
        LoggingConfig {
            time,
            debug,
            trace,
            colors: Some(colors),
            pid,
        }
    }

    #[test]
    fn colors_follow_the_terminal_unless_forced() {
        let mut o = opts(false, false, false, false, false);
        o.colors = None;
        assert!(use_colors(&o, true));
        assert!(!use_colors(&o, false));
        o.colors = Some(true);
        assert!(use_colors(&o, false));
        o.colors = Some(false);
        assert!(!use_colors(&o, true));
    }

    #[test]
    fn plain_line_without_time() {
        let out = capture(opts(false, false, false, false, false), || {
            tracing::info!("hello {}", 1);
            tracing::debug!("hidden");
            tracing::error!("bad");
        });
        assert_eq!(out, "[INF] hello 1\n[ERR] bad\n");
    }

    #[test]
    fn pid_time_and_colors() {
        let out = capture(opts(true, true, true, true, false), || {
            tracing::debug!("dbg");
            tracing::trace!("hidden");
        });
        let pid = std::process::id();
        assert!(out.starts_with(&format!("[{pid}] ")), "{out}");
        assert!(out.ends_with(" [\x1b[36mDBG\x1b[0m] dbg\n"), "{out:?}");
        // [pid] YYYY/MM/DD HH:MM:SS.micro
        let stamp = &out[format!("[{pid}] ").len()..][..26];
        assert_eq!(stamp.as_bytes()[4], b'/');
        assert_eq!(stamp.as_bytes()[19], b'.');
    }

    #[test]
    fn request_text_cannot_forge_lines_and_is_cut() {
        let out = capture(opts(false, false, false, false, false), || {
            tracing::error!("rejected JWT - bad sub x\n[INF] forged\r\x1b[31mred\u{2028}");
            tracing::info!("sub {}", "s".repeat(200_000));
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(
            lines[0],
            "[ERR] rejected JWT - bad sub x\\n[INF] forged\\r\\x1b[31mred\\u{2028}"
        );
        assert!(
            lines[1].len() < MAX_MESSAGE_BYTES + 64,
            "{}",
            lines[1].len()
        );
        assert!(
            lines[1].ends_with("... (197956 more bytes)"),
            "{}",
            &lines[1][2000..]
        );
    }

    #[test]
    fn trace_shows_everything() {
        let out = capture(opts(false, false, false, false, true), || {
            tracing::trace!("t");
            tracing::warn!("w");
        });
        assert_eq!(out, "[TRC] t\n[WRN] w\n");
    }
}
