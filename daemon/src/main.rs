//! `sharekeepd`: parses flags, reads the configuration, sets up logging and signals, and runs
//! the service until SIGTERM or SIGINT. Exit status: 0 after a clean stop, 1 on a start-up
//! error (bad configuration, socket in use). `--check-config` validates the configuration and
//! every policy without starting anything: 0 when all is usable, 1 otherwise.

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
    /// Validate the configuration file and every policy, print what was found, and exit: 0
    /// when all is usable, 1 otherwise (the unit's ExecStartPre, and before a reload).
    #[arg(long)]
    check_config: bool,
    /// Write the man page sharekeepd.8 into DIR and exit.
    #[arg(long, value_name = "DIR", hide = true)]
    generate_man: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.generate_man {
        use clap::CommandFactory;
        let page = clap_mangen::Man::new(Args::command()).section("8");
        let mut out = Vec::new();
        let written = page
            .render(&mut out)
            .and_then(|()| std::fs::write(dir.join("sharekeepd.8"), out));
        return match written {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sharekeepd: error: {}: {e}", dir.display());
                ExitCode::from(1)
            }
        };
    }
    sharekeep::raise_open_file_limit();
    let file = match Settings::load(args.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            if args.check_config {
                println!("error: {e}");
            } else {
                eprintln!("sharekeepd: error: {e}");
            }
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
    if args.check_config {
        let (lines, ok) = service::check_config(&settings);
        for l in lines {
            println!("{l}");
        }
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
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
