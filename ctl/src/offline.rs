//! The commands that work directly on a repository (no daemon needed): what an admin uses,
//! even with the service stopped.

use crate::args::{self, Cli, Command, OverwriteArg};
use crate::maintenance;
use crate::output;
use crate::progress::Bar;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use serde_json::json;
use sharekeep::{
    BackupOptions, CancelToken, NodeKind, Overwrite, ParentChoice, Repository, RestoreOptions,
    Snapshot, Target,
};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Runs one command.
pub fn run(cli: Cli, cancel: &CancelToken) -> Result<Outcome> {
    let Some(repo_path) = cli.repo.clone() else {
        bail!("no repository given: pass --repo DIR (or set SHAREKEEP_REPO)");
    };
    let quiet = cli.quiet;
    if let Command::Init = cli.command {
        let repo = Repository::init_local(&repo_path)?;
        if !quiet {
            println!(
                "created sharekeep repository {} at {}",
                &repo.config().id[..8],
                repo.location()
            );
        }
        return Ok(Outcome::Ok);
    }
    let repo = Repository::open_local(&repo_path)?;
    for d in repo.damaged_index_files() {
        tracing::warn!("{}; run `sharekeepctl check`", d.error);
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let outcome = match cli.command {
        Command::Init | Command::Policy(_) | Command::Status { .. } | Command::Reload => {
            unreachable!("handled elsewhere")
        }
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
        Command::Repair(args::RepairCommand::Index) => maintenance::repair_index(&repo, &mut out)?,
        Command::Unlock { remove_all } => maintenance::unlock(&repo, remove_all, &mut out)?,
    };
    out.flush()?;
    Ok(outcome)
}

fn snapshot_json(s: &Snapshot) -> serde_json::Value {
    json!({
        "id": s.id.to_hex(),
        "short_id": s.id.short(),
        "time": s.time.to_rfc3339(),
        "host": s.host,
        "username": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "tree": s.tree.to_hex(),
        "parent": s.parent.map(|p| p.to_hex()),
        "summary": s.summary,
    })
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
    let s = &res.snapshot;
    for w in &res.warnings {
        eprintln!("warning: {}: {}", w.path.display(), w.message);
    }
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&snapshot_json(s))?)?;
    } else if !quiet {
        let m = &s.summary;
        writeln!(
            out,
            "Files:       {} new, {} changed, {} unchanged",
            m.files_new, m.files_changed, m.files_unchanged
        )?;
        writeln!(
            out,
            "Dirs:        {} new, {} changed, {} unchanged",
            m.dirs_new, m.dirs_changed, m.dirs_unchanged
        )?;
        writeln!(
            out,
            "Added:       {} ({} stored after compression)",
            output::size(m.bytes_added),
            output::size(m.bytes_stored)
        )?;
        writeln!(
            out,
            "Processed:   {} files, {} in {:.2}s",
            m.total_files,
            output::size(m.total_bytes),
            m.seconds
        )?;
        if m.warnings > 0 {
            writeln!(
                out,
                "Warnings:    {} entries could not be read (listed above)",
                m.warnings
            )?;
        }
        writeln!(out, "snapshot {} saved", s.id.short())?;
    }
    Ok(if res.warnings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    })
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
        let v: Vec<_> = list.iter().map(snapshot_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|s| {
                vec![
                    s.id.short(),
                    output::time(&s.time),
                    s.host.clone(),
                    s.tags.join(","),
                    output::size(s.summary.total_bytes),
                    s.paths.join(" "),
                ]
            })
            .collect();
        write!(
            out,
            "{}",
            output::table(&["ID", "Time", "Host", "Tags", "Size", "Path"], &rows)
        )?;
        writeln!(out, "{} snapshots", list.len())?;
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
        let full = root.join(&e.path);
        let n = &e.node;
        let r = if a.json {
            let v = json!({
                "path": full.to_string_lossy(),
                "type": n.kind,
                "mode": n.mode,
                "uid": n.uid, "gid": n.gid, "user": n.user, "group": n.group,
                "size": n.size,
                "mtime": output::rfc3339_ns(n.mtime_ns),
            });
            writeln!(out, "{v}")
        } else if a.long {
            let link = n
                .target
                .as_ref()
                .map(|t| format!(" -> {}", t.to_string_lossy()))
                .unwrap_or_default();
            writeln!(
                out,
                "{} {:>8} {:>8} {:>10} {} {}{}",
                output::mode(n.kind.letter(), n.mode),
                n.user.clone().unwrap_or_else(|| n.uid.to_string()),
                n.group.clone().unwrap_or_else(|| n.gid.to_string()),
                n.size,
                output::time_ns(n.mtime_ns),
                full.display(),
                link
            )
        } else {
            writeln!(out, "{}", full.display())
        };
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
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&changes)?)?;
        return Ok(Outcome::Ok);
    }
    writeln!(
        out,
        "comparing snapshot {} to {}:",
        from.id.short(),
        to.id.short()
    )?;
    let mut counts = [0usize; 5];
    for c in &changes {
        let slash = if c.dir { "/" } else { "" };
        writeln!(out, "{}    {}{}", c.kind.mark(), c.path, slash)?;
        counts[c.kind as usize] += 1;
    }
    writeln!(
        out,
        "{} added, {} removed, {} modified, {} metadata only, {} type changed",
        counts[0], counts[1], counts[2], counts[3], counts[4]
    )?;
    Ok(Outcome::Ok)
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
    if a.json {
        let v: Vec<_> = versions
            .iter()
            .map(|v| {
                json!({
                    "content": v.content.to_hex(),
                    "short": v.content.short(),
                    "size": v.size,
                    "mtime": output::rfc3339_ns(v.mtime_ns),
                    "first": {"id": v.first.id.to_hex(), "time": v.first.time.to_rfc3339(), "tags": v.first.tags},
                    "last": {"id": v.last.id.to_hex(), "time": v.last.time.to_rfc3339(), "tags": v.last.tags},
                    "snapshots": v.snapshots,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(Outcome::Ok);
    }
    if versions.is_empty() {
        bail!("{:?} is in no snapshot of {}", a.path, repo.location());
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let tag = |s: &Snapshot| {
                if s.has_tag("pre-restore") {
                    " (pre-restore)"
                } else {
                    ""
                }
            };
            vec![
                v.content.short(),
                output::size(v.size),
                output::time_ns(v.mtime_ns),
                format!(
                    "{} {}{}",
                    v.first.id.short(),
                    output::time(&v.first.time),
                    tag(&v.first)
                ),
                format!(
                    "{} {}{}",
                    v.last.id.short(),
                    output::time(&v.last.time),
                    tag(&v.last)
                ),
                v.snapshots.to_string(),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        output::table(
            &[
                "Version",
                "Size",
                "Modified",
                "First seen in",
                "Last seen in",
                "Snapshots"
            ],
            &rows
        )
    )?;
    writeln!(
        out,
        "{} version(s); restore one with: sharekeepctl restore <snapshot> {:?} [--to DIR]",
        versions.len(),
        a.path
    )?;
    Ok(Outcome::Ok)
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
        if a.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&json!({
                    "snapshot": snap.id.to_hex(),
                    "target": plan.target_root.to_string_lossy(),
                    "entries": plan.entries,
                }))?
            )?;
            return Ok(Outcome::Ok);
        }
        writeln!(
            out,
            "restore of snapshot {} into {} would:",
            snap.id.short(),
            plan.target_root.display()
        )?;
        for e in &plan.entries {
            let slash = if e.kind == NodeKind::Dir { "/" } else { "" };
            writeln!(out, "  {:<22} {}{}", e.action.word(), e.path, slash)?;
        }
        writeln!(
            out,
            "{} to create, {} to replace, {} metadata only, {} left as they are, {} to write; nothing was changed (dry run)",
            plan.count(sharekeep::Action::Create),
            plan.count(sharekeep::Action::Replace),
            plan.count(sharekeep::Action::Metadata),
            plan.count(sharekeep::Action::Unchanged) + plan.count(sharekeep::Action::SkipExisting),
            output::size(plan.bytes_to_write()),
        )?;
        return Ok(Outcome::Ok);
    }
    let bar = Bar::new("restore", quiet);
    let report = sharekeep::restore(repo, &plan, 0, &bar, cancel)?;
    for (path, msg) in &report.warnings {
        eprintln!("warning: {path}: {msg}");
    }
    if a.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({
                "snapshot": snap.id.to_hex(),
                "target": plan.target_root.to_string_lossy(),
                "created": report.created,
                "replaced": report.replaced,
                "metadata": report.metadata,
                "left": report.left,
                "bytes_written": report.bytes_written,
                "pre_restore": report.pre_restore.as_ref().map(|s| s.id.to_hex()),
                "warnings": report.warnings.iter().map(|(p, m)| json!({"path": p, "message": m})).collect::<Vec<_>>(),
            }))?
        )?;
    } else if !quiet {
        writeln!(
            out,
            "restored from snapshot {} into {}: {} created, {} replaced, {} metadata, {} left as they were, {} written",
            snap.id.short(),
            plan.target_root.display(),
            report.created,
            report.replaced,
            report.metadata,
            report.left,
            output::size(report.bytes_written)
        )?;
        if let Some(pre) = &report.pre_restore {
            writeln!(
                out,
                "what was replaced is saved in snapshot {} (tag pre-restore); `sharekeepctl versions` lists it",
                pre.id.short()
            )?;
        }
    }
    Ok(if report.warnings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    })
}
