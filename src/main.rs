//! `nats-account-server`: parses the command line and the config file, runs the server, and
//! turns signals into reloads (SIGHUP) or a graceful stop (SIGINT, SIGTERM).

use std::process::ExitCode;

use nats_account_server::cli::{self, Cli};
use nats_account_server::config::{self, Config};
use nats_account_server::{logging, server, tls};

/// mimalloc: the GET path allocates and frees small buffers per request; glibc's malloc spent
/// about 8 % of the CPU time on them (consolidation, fragmentation under cache churn).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The effective configuration: the file (if any) with the flags applied, and its warnings.
fn effective_config(args: &Cli) -> Result<(Config, Vec<String>), config::ConfigError> {
    let (mut config, warnings) = match &args.config_file {
        Some(path) => {
            let loaded = load_file(path, args.lenient)?;
            (loaded.config, loaded.warnings)
        }
        None => (Config::default(), Vec::new()),
    };
    config.apply_flags(&args.overrides);
    Ok((config, warnings))
}

/// Reads the config file `path`; `lenient`: unknown keys are warnings instead of errors.
fn load_file(path: &std::path::Path, lenient: bool) -> Result<config::Loaded, config::ConfigError> {
    let unknown = if lenient {
        config::UnknownKeys::Warn
    } else {
        config::UnknownKeys::Refuse
    };
    config::load_file(path, unknown)
}

fn main() -> ExitCode {
    // One process-wide TLS crypto provider (ring), installed before anything builds a TLS config.
    tls::install_crypto_provider();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == cli::migrate::COMMAND) {
        return migrate_main(argv[1..].to_vec());
    }
    let args = match cli::parse(argv) {
        Ok(args) => args,
        Err(e) => {
            e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let (config, warnings) = match effective_config(&args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("nats-account-server: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = logging::init(&config.logging) {
        eprintln!("nats-account-server: cannot set up logging: {e}");
        return ExitCode::from(1);
    }
    if let Some(path) = &args.config_file {
        tracing::info!("loaded configuration from {:?}", path.display().to_string());
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if !args.ignored.is_empty() {
        tracing::warn!("ignoring arguments after the flags: {:?}", args.ignored);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(&args, &config));
    // Stop every task before the fatal error is logged, so that it is the last line.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Runs until SIGINT or SIGTERM; SIGHUP re-reads the config file and reloads.
async fn run(args: &Cli, config: &Config) -> Result<(), server::StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut running = server::start(config).await?;
    if args.dump {
        // On stdout, apart from the log: `-dump > effective.conf` gives a loadable file.
        print!("{}", config::dump::to_conf(config));
    }
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return running.shutdown().await;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { tracing::info!("received sig-interrupt, shutting down"); break; }
            _ = term.recv() => { tracing::info!("received sig-terminate, shutting down"); break; }
            _ = hup.recv() => {
                tracing::info!("received sig-hup, reloading the configuration");
                match effective_config(args) {
                    Ok((next, warnings)) => {
                        for warning in warnings {
                            tracing::warn!("{warning}");
                        }
                        if let Err(e) = running.reload(&next).await {
                            tracing::error!("reload failed, keeping the running configuration: {e}");
                        }
                    }
                    Err(e) => tracing::error!("reload failed, keeping the running configuration: {e}"),
                }
            }
            result = running.wait() => return result,
        }
    }
    running.shutdown().await
}

/// `nats-account-server migrate ...`: progress on a terminal (stderr), the summary on stdout;
/// exit 1 when a copy failed or the migration could not run.
fn migrate_main(argv: Vec<std::ffi::OsString>) -> ExitCode {
    use std::io::{IsTerminal, Write};
    let args = match cli::migrate::parse(argv) {
        Ok(args) => args,
        Err(e) => {
            e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let loaded = match load_file(&args.config_file, args.lenient) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("nats-account-server: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = logging::init(&loaded.config.logging) {
        eprintln!("nats-account-server: cannot set up logging: {e}");
        return ExitCode::from(1);
    }
    for warning in loaded.warnings {
        tracing::warn!("{warning}");
    }
    let terminal = std::io::stderr().is_terminal();
    let progress = move |s: &nats_account_server::migrate::Summary| {
        if let Some(line) = nats_account_server::migrate::progress_line(s).filter(|_| terminal) {
            let mut err = std::io::stderr();
            let _ = err.write_all(line.as_bytes());
            let _ = err.flush();
        }
    };
    let result = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(nats_account_server::migrate::run(
            &args.from,
            &loaded.config,
            progress,
        )),
        Err(e) => {
            eprintln!("nats-account-server: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if terminal {
        eprintln!();
    }
    match result {
        Ok((summary, into)) => {
            print!("{}", summary.report(&args.from, &into));
            if summary.failed_count() > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            tracing::error!("migration failed: {e}");
            ExitCode::from(1)
        }
    }
}
