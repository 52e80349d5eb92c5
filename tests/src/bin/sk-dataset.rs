//! The repository's own example and benchmark data: a department's service folder, generated
//! deterministically from a seed (see `sharekeep_tests::dataset`). Prints a JSON summary.
//!
//! ```text
//! sk-dataset create DIR [--scale S] [--seed N]      scale 1.0 ≈ 1.2 GiB, 16,000 files
//! sk-dataset small DIR --files N [--seed N]          N files of 1–8 KiB in N/100 folders
//! sk-dataset edit DIR [--seed N] [--round R]         one working day of edits
//! ```

use clap::{Parser, Subcommand};
use sharekeep_tests::dataset;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(about = "Generates a department's service folder (deterministic from a seed)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Creates the department's folder: client documents, accounting, HR, mailboxes, archives.
    Create {
        /// An empty or new folder.
        dir: PathBuf,
        /// 1.0 ≈ 1.2 GiB in 16,000 files; 0.05 ≈ 60 MiB in 800 files.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 91)]
        seed: u64,
    },
    /// Creates N small files (1–8 KiB) in N/100 folders.
    Small {
        dir: PathBuf,
        #[arg(long)]
        files: u64,
        #[arg(long, default_value_t = 91)]
        seed: u64,
    },
    /// One working day of edits: rewrites, edits, new, deleted and touched files.
    Edit {
        dir: PathBuf,
        #[arg(long, default_value_t = 91)]
        seed: u64,
        /// Which day (new files go to commun/jour-ROUND/).
        #[arg(long, default_value_t = 1)]
        round: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (dir, result) = match &cli.command {
        Cmd::Create { dir, scale, seed } => (dir, dataset::create(dir, *scale, *seed)),
        Cmd::Small { dir, files, seed } => (dir, dataset::create_small(dir, *files, *seed)),
        Cmd::Edit { dir, seed, round } => (dir, dataset::edit(dir, *seed, *round)),
    };
    match result {
        Ok(s) => {
            println!(
                "{}",
                serde_json::json!({
                    "root": dir, "files": s.files, "folders": s.folders, "bytes": s.bytes,
                    "overwritten": s.overwritten, "edited": s.edited, "added": s.added,
                    "deleted": s.deleted, "touched": s.touched,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sk-dataset: {e}");
            ExitCode::FAILURE
        }
    }
}
