//! `sharekeepctl`: parses arguments, sets up logging and signals, runs the command, and maps
//! the outcome to a documented exit status (see `--help`).

mod access;
mod args;
mod copy;
mod docs;
mod maintenance;
#[cfg(unix)]
mod mount;
mod offline;
mod output;
mod policy;
mod progress;
mod remote;
mod render;
mod report;
#[cfg(windows)]
mod share;
mod signals;

use clap::Parser;
use std::process::ExitCode;

/// How a command ended, beyond plain success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done.
    Ok,
    /// Done, but some entries were left out (listed on stderr).
    Warnings,
    /// `policy plan` found drift.
    Drift,
}

/// The error and its causes, each cause once (library errors already include their source).
fn render(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    sharekeep::raise_open_file_limit();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHAREKEEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
    let cancel = sharekeep::CancelToken::new();
    signals::install(cancel.clone());
    let result = match cli.command {
        args::Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = args::Cli::command();
            // Into memory first: the generator panics on a write error (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "sharekeepctl", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .map(|()| Outcome::Ok)
                .map_err(anyhow::Error::from)
        }
        args::Command::GenerateMan { dir } => docs::man_pages(&dir),
        args::Command::Policy(cmd) => policy::run(cmd, cli.quiet),
        args::Command::Samba(cmd) => policy::samba(cmd),
        #[cfg(windows)]
        args::Command::Share(cmd) => share::run(cmd),
        #[cfg(unix)]
        args::Command::Mount(a) => mount::run(cli.repo, cli.key_file, a, cli.quiet),
        args::Command::Copy(a) => copy::run(cli.repo, cli.key_file.as_deref(), a, cli.quiet, &cancel),
        args::Command::Key(args::KeyCommand::Generate { file }) => {
            sharekeep::Secret::generate_key_file(&file)
                .map(|()| {
                    if !cli.quiet {
                        eprintln!(
                            "wrote a new key file {} (keep a copy apart from the repository: without a key, nothing in it can be read)",
                            file.display()
                        );
                    }
                    Outcome::Ok
                })
                .map_err(anyhow::Error::from)
        }
        args::Command::Report(a) => report::run(a, &cli.socket, &mut std::io::stdout().lock()),
        args::Command::Status { .. }
        | args::Command::Reload
        | args::Command::Guard(_)
        | args::Command::Rollback(_) => {
            remote::run(cli, &cancel)
        }
        args::Command::Backup(_)
        | args::Command::Snapshots(_)
        | args::Command::Versions(_)
        | args::Command::Ls(_)
        | args::Command::Cat(_)
        | args::Command::Diff(_)
        | args::Command::Restore(_)
        | args::Command::Forget(_)
        | args::Command::Check(_)
        | args::Command::Drill(_)
            if cli.repo.is_none() =>
        {
            remote::run(cli, &cancel)
        }
        _ => offline::run(cli, &cancel),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Drift) => ExitCode::from(2),
        Ok(Outcome::Warnings) => ExitCode::from(3),
        Err(err) => {
            if let Some(sharekeep::Error::Interrupted) = err.downcast_ref() {
                eprintln!("sharekeepctl: interrupted; nothing partial was recorded");
                return ExitCode::from(130);
            }
            // A closed stdout (`| head`) is not an error worth a message.
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("sharekeepctl: error: {}", render(&err));
            ExitCode::from(1)
        }
    }
}
