//! The commands that work directly on a repository (no daemon needed): what an admin uses,
//! even with the service stopped.

use crate::access;
use crate::args::{self, Cli, Command, OverwriteArg};
use crate::maintenance;
use crate::progress::Bar;
use crate::render;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use sharekeep::protocol::{RestoreResult, SnapshotEntry, VersionEntry};
use sharekeep::{
    BackupOptions, CancelToken, NodeKind, Overwrite, ParentChoice, Repository, RestoreOptions,
    Snapshot, Target,
};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Runs one command.
pub fn run(cli: Cli, cancel: &CancelToken) -> Result<Outcome> {
    let Some(repo_url) = cli.repo.clone() else {
        bail!("no repository given: pass --repo REPO (or set SHAREKEEP_REPO)");
    };
    let quiet = cli.quiet;
    if let Command::Init { encrypt } = cli.command {
        let location = access::location(&repo_url)?;
        let mut access = access::access(cli.key_file.as_deref())?;
        if !encrypt {
            // A key given without --encrypt is a mistake worth stopping on.
            if access.secret.is_some() && std::env::var_os("SHAREKEEP_PASSWORD").is_none() {
                bail!("--key-file given without --encrypt: add --encrypt to create an encrypted repository");
            }
            access.secret = None;
        } else if access.secret.is_none() {
            bail!("--encrypt needs the first key: --key-file FILE (make one with `sharekeepctl key generate FILE`) or a passphrase in SHAREKEEP_PASSWORD");
        }
        let repo = Repository::init_at(&location, &access)?;
        if !quiet {
            println!(
                "created {}sharekeep repository {} at {}",
                if repo.is_encrypted() {
                    "encrypted "
                } else {
                    ""
                },
                &repo.config().id[..8],
                repo.location()
            );
        }
        return Ok(Outcome::Ok);
    }
    // Browsing reads trees only: a repository of a million files opens without loading a
    // million data blobs' locations.
    let scope = match cli.command {
        Command::Snapshots(_) | Command::Ls(_) | Command::Diff(_) | Command::Versions(_) => {
            sharekeep::IndexScope::Trees
        }
        _ => sharekeep::IndexScope::All,
    };
    let repo = access::open(&repo_url, cli.key_file.as_deref(), scope)?;
    if let Some(why) = repo.exposure() {
        tracing::warn!("repository not private: {why}");
    }
    for d in repo.damaged_index_files() {
        tracing::warn!("{}; run `sharekeepctl check`", d.error);
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let outcome = match cli.command {
        Command::Init { .. }
        | Command::Copy(_)
        | Command::Policy(_)
        | Command::Samba(_)
        | Command::Report(_)
        | Command::Status { .. }
        | Command::Completions { .. }
        | Command::GenerateMan { .. }
        | Command::Guard(_)
        | Command::Rollback(_)
        | Command::Reload => {
            unreachable!("handled elsewhere")
        }
        #[cfg(unix)]
        Command::Mount(_) => unreachable!("handled elsewhere"),
        #[cfg(windows)]
        Command::Share(_) => unreachable!("handled elsewhere"),
        Command::Backup(a) => backup(&repo, a, quiet, cancel, &mut out)?,
        Command::Snapshots(a) => snapshots(&repo, a, &mut out)?,
        Command::Ls(a) => ls(&repo, a, &mut out)?,
        Command::Diff(a) => diff(&repo, a, &mut out)?,
        Command::Cat(a) => cat(&repo, a, &mut out)?,
        Command::Versions(a) => versions(&repo, a, &mut out)?,
        Command::Restore(a) => restore(&repo, a, quiet, cancel, &mut out)?,
        Command::Forget(a) => maintenance::forget(&repo, a, quiet, &mut out)?,
        Command::Prune(a) => maintenance::prune(&repo, a, quiet, &mut out)?,
        Command::Check(a) => maintenance::check(&repo, a, &mut out)?,
        Command::Drill(a) => maintenance::drill(&repo, a, cancel, &mut out)?,
        Command::Repair(args::RepairCommand::Index) => maintenance::repair_index(&repo, &mut out)?,
        Command::Unlock { remove_all } => maintenance::unlock(&repo, remove_all, &mut out)?,
        Command::Key(k) => maintenance::key(&repo, k, quiet, &mut out)?,
    };
    out.flush()?;
    Ok(outcome)
}

fn backup(
    repo: &Repository,
    a: args::BackupArgs,
    quiet: bool,
    cancel: &CancelToken,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let opts = BackupOptions {
        tags: a.tags,
        excludes: a.excludes,
        host: a.host,
        parent: if a.force {
            ParentChoice::None
        } else {
            ParentChoice::Auto
        },
        time: a.time.as_deref().map(parse_time).transpose()?,
        ..BackupOptions::default()
    };
    let Some(dir) = a.dir.as_deref() else {
        bail!("give the folder to back up (or --share NAME, without --repo, to ask sharekeepd)");
    };
    let bar = Bar::new("backup", quiet);
    let res = sharekeep::backup(repo, dir, &opts, &bar, cancel)?;
    let warnings: Vec<String> = res
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.path.display(), w.message))
        .collect();
    render::backup(out, &res.snapshot.to_json(), &warnings, a.json, quiet)
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Local>> {
    use chrono::TimeZone;
    let t = text.trim().replacen(' ', "T", 1);
    let naive = chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            anyhow::anyhow!("--time {text:?}: give a local time such as 2026-11-28 18:30:00")
        })?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| anyhow::anyhow!("--time {text:?} does not exist in local time (DST change)"))
}

fn snapshots(repo: &Repository, a: args::SnapshotsArgs, out: &mut dyn Write) -> Result<Outcome> {
    let (mut list, damaged) = repo.snapshots_with_damage()?;
    for d in &damaged {
        tracing::warn!("{}", d.error);
    }
    list.retain(|s| a.tags.iter().all(|t| s.has_tag(t)));
    if a.json {
        let v: Vec<_> = list.iter().map(Snapshot::to_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let entries: Vec<_> = list.iter().map(SnapshotEntry::from_snapshot).collect();
        render::snapshots_table(out, &entries)?;
    }
    Ok(if damaged.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    })
}

fn ls(repo: &Repository, a: args::LsArgs, out: &mut dyn Write) -> Result<Outcome> {
    let snap = repo.find_snapshot(&a.snapshot)?;
    let root = Path::new(snap.root()).to_path_buf();
    let mut failure = None;
    sharekeep::list(repo, &snap, a.path.as_deref().unwrap_or(""), &mut |e| {
        if failure.is_some() {
            return;
        }
        let r = render::ls_entry(out, &root, &e.path, &e.node, a.json, a.long);
        if let Err(e) = r {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(Outcome::Ok)
}

fn diff(repo: &Repository, a: args::DiffArgs, out: &mut dyn Write) -> Result<Outcome> {
    let from = repo.find_snapshot(&a.from)?;
    let to = repo.find_snapshot(&a.to)?;
    let changes = sharekeep::diff(repo, &from, &to)?;
    render::diff(out, &from.id.to_hex(), &to.id.to_hex(), &changes, a.json)
}

fn cat(repo: &Repository, a: args::CatArgs, out: &mut dyn Write) -> Result<Outcome> {
    let snap = repo.find_snapshot(&a.snapshot)?;
    let node = repo
        .find_node(&snap, &a.path)?
        .context("the snapshot's root is a directory; give a file")?;
    if node.kind != NodeKind::File {
        return Err(sharekeep::Error::WrongKind {
            path: a.path,
            snapshot: snap.id.short(),
            found: node.kind.word(),
            expected: "file",
        }
        .into());
    }
    repo.write_content(&node, out)?;
    Ok(Outcome::Ok)
}

fn versions(repo: &Repository, a: args::VersionsArgs, out: &mut dyn Write) -> Result<Outcome> {
    let snaps = repo.snapshots()?;
    let versions = sharekeep::versions(repo, &snaps, &a.path)?;
    let entries: Vec<_> = versions.iter().map(VersionEntry::from_version).collect();
    render::versions(out, &a.path, &repo.location(), &entries, a.json)
}

fn restore(
    repo: &Repository,
    a: args::RestoreArgs,
    quiet: bool,
    cancel: &CancelToken,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let snap = repo.find_snapshot(&a.snapshot)?;
    let opts = RestoreOptions {
        paths: a.paths,
        target: match a.to {
            Some(d) => Target::Dir(d),
            None => Target::InPlace,
        },
        overwrite: match a.overwrite {
            OverwriteArg::Never => Overwrite::Never,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::Always => Overwrite::Always,
        },
        threads: 0,
    };
    let plan = sharekeep::plan_restore(repo, &snap, &opts)?;
    if a.dry_run {
        return render::restore(out, &RestoreResult::from_plan(&plan, repo)?, a.json, quiet);
    }
    let bar = Bar::new("restore", quiet);
    let report = sharekeep::restore(repo, &plan, 0, &bar, cancel)?;
    render::restore(
        out,
        &RestoreResult::from_report(&plan, &report),
        a.json,
        quiet,
    )
}
