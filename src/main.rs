//! `nats-account-server`: parses the command line and the config file, then runs the server.

use std::process::ExitCode;

use nats_account_server::config::{self, Config};
use nats_account_server::{cli, logging, server};

fn main() -> ExitCode {
    // One process-wide TLS crypto provider (ring), installed before anything builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = match cli::parse(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let (mut config, warnings) = match &args.config_file {
        Some(path) => match config::load_file(path) {
            Ok(loaded) => (loaded.config, loaded.warnings),
            Err(e) => {
                eprintln!("nats-account-server: {e}");
                return ExitCode::from(1);
            }
        },
        None => (Config::default(), Vec::new()),
    };
    config.apply_flags(&args.overrides);
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
    if args.dump {
        tracing::info!("effective configuration: {config:#?}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(server::run(&config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Completes on SIGINT or SIGTERM. SIGHUP is logged and otherwise ignored for now.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { tracing::info!("received sig-interrupt, shutting down"); return; }
            _ = term.recv() => { tracing::info!("received sig-terminate, shutting down"); return; }
            _ = hup.recv() => tracing::warn!("received sig-hup: reloading the configuration is not yet supported, ignoring"),
        }
    }
}
