//! `sharekeepd`: parses flags, reads the configuration, sets up logging and signals, and runs
//! the service until SIGTERM or SIGINT. Exit status: 0 after a clean stop, 1 on a start-up
//! error (bad configuration, socket in use).

use clap::Parser;
mod service;

use service::config::{RawConfig, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// sharekeepd: keeps each share's rights applied and runs its backup plan.
#[derive(Debug, Parser)]
#[command(name = "sharekeepd", version)]
struct Args {
    /// Configuration file (default /etc/sharekeep/sharekeepd.toml, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Policies directory (default /etc/sharekeep/policies).
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// State directory: last runs, reports (default /var/lib/sharekeep).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Control socket (default /run/sharekeep/ctl.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// error, warn, info, debug or trace (default info).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    sharekeep::raise_open_file_limit();
    let file = match Settings::load(args.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sharekeepd: error: {e}");
            return ExitCode::from(1);
        }
    };
    let flags = RawConfig {
        policies: args.policies,
        state: args.state,
        socket: args.socket,
        log_level: args.log_level,
        ..RawConfig::default()
    };
    let settings = Settings::resolve(file, flags);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&settings.log_level)
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sharekeepd: error: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => { tracing::info!("SIGTERM"); stop.cancel(); }
                    _ = int.recv() => { tracing::info!("SIGINT"); stop.cancel(); }
                    _ = hup.recv() => { let _ = reload_tx.send(()).await; }
                }
            }
        });
        service::run(settings, shutdown, reload_rx).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sharekeepd: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
