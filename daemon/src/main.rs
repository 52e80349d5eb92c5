//! `sharekeepd`: parses flags, reads the configuration, sets up logging and signals, and runs
//! the service until SIGTERM or SIGINT. Exit status: 0 after a clean stop, 1 on a start-up
//! error (bad configuration, socket in use). `--check-config` validates the configuration and
//! every policy without starting anything: 0 when all is usable, 1 otherwise.

use clap::Parser;
mod service;
mod signals;
#[cfg(windows)]
mod winsvc;

use service::config::{RawConfig, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// sharekeepd: keeps each share's rights applied and runs its backup plan.
#[derive(Debug, Parser)]
#[command(name = "sharekeepd", version)]
struct Args {
    /// Configuration file (default /etc/sharekeep/sharekeepd.toml, if present; on Windows
    /// C:\ProgramData\sharekeep\sharekeepd.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Policies directory (default /etc/sharekeep/policies; on Windows
    /// C:\ProgramData\sharekeep\policies).
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// State directory: last runs, reports (default /var/lib/sharekeep; on Windows
    /// C:\ProgramData\sharekeep\state).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Control socket (default /run/sharekeep/ctl.sock; on Windows the named pipe
    /// \\.\pipe\sharekeepd).
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
    /// As a Windows service: install, uninstall, or run under the service control manager.
    #[cfg(windows)]
    #[command(subcommand)]
    service: Option<winsvc::Command>,
}

#[cfg(windows)]
impl Args {
    /// The flags given, as the installed service is to be started with them.
    fn forwarded(&self) -> Vec<std::ffi::OsString> {
        let mut out = Vec::new();
        let paths = [
            ("--config", &self.config),
            ("--policies", &self.policies),
            ("--state", &self.state),
            ("--socket", &self.socket),
        ];
        for (flag, value) in paths {
            if let Some(v) = value {
                let v = std::path::absolute(v).unwrap_or_else(|_| v.clone());
                out.extend([flag.into(), v.into_os_string()]);
            }
        }
        if let Some(level) = &self.log_level {
            out.extend(["--log-level".into(), level.into()]);
        }
        out
    }
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
    #[cfg(windows)]
    match &args.service {
        Some(winsvc::Command::Install) => return winsvc::exit(winsvc::install(&args.forwarded())),
        Some(winsvc::Command::Uninstall) => return winsvc::exit(winsvc::uninstall()),
        Some(winsvc::Command::RunService) | None => {}
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
    #[cfg(windows)]
    if matches!(args.service, Some(winsvc::Command::RunService)) {
        return winsvc::exit(winsvc::run_service(settings));
    }
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
    match serve(settings, signals::wire) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sharekeepd: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs the service until its shutdown token is cancelled: `wire` connects what stops it
/// (signals, a console's Ctrl-C, the service control manager) and what reloads it, from
/// inside the runtime.
fn serve(
    settings: Settings,
    wire: impl FnOnce(CancellationToken, tokio::sync::mpsc::Sender<()>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
        wire(shutdown.clone(), reload_tx)?;
        service::run(settings, shutdown, reload_rx).await
    })
}
