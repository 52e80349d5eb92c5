//! Repository upkeep commands: forget (retention), prune, check, repair index, unlock.

use crate::args::{self, CheckArgs, ForgetArgs, PruneArgs};
use crate::output;
use crate::render;
use crate::Outcome;
use anyhow::{anyhow, bail, Result};
use sharekeep::protocol::DecisionEntry;
use sharekeep::{KeepRules, PruneOptions, Repository};
use std::io::Write;

fn rules(a: &ForgetArgs) -> Result<KeepRules> {
    if let Some(file) = &a.policy {
        let policy = sharekeep_policies::load_file(file).map_err(|p| anyhow!("{p}"))?;
        let backup = policy
            .backup
            .ok_or_else(|| anyhow!("{}: the policy has no [backup] section", file.display()))?;
        let keep = backup.keep.ok_or_else(|| {
            anyhow!(
                "{}: [backup] has no `keep` rules (it keeps everything)",
                file.display()
            )
        })?;
        return Ok(KeepRules::from_policy(&keep, backup.keep_min_days));
    }
    let within = match &a.keep_within {
        Some(w) => Some(sharekeep_policies::parse_duration(w).ok_or_else(|| {
            anyhow!("--keep-within {w:?}: write a number and a unit (y, m, w, d, h), e.g. 2d")
        })?),
        None => None,
    };
    Ok(KeepRules {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: within.map(|s| chrono::Duration::seconds(s as i64)),
        tags: a.keep_tags.clone(),
        min_days: a.keep_min_days,
    })
}

/// `forget`.
pub fn forget(
    repo: &Repository,
    a: ForgetArgs,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let rules = rules(&a)?;
    let decisions = sharekeep::forget(repo, &rules, a.dry_run)?;
    let entries: Vec<_> = decisions.iter().map(DecisionEntry::from_decision).collect();
    render::forget(out, &entries, a.dry_run, a.json, quiet)?;
    if a.prune && !a.dry_run {
        // The removed snapshots are gone from disk; reopen to see the repository as it is.
        let repo = repo.reopen()?;
        let p = PruneArgs {
            repack_threshold: 30.0,
            dry_run: false,
            json: a.json,
        };
        return prune(&repo, p, quiet, out);
    }
    Ok(Outcome::Ok)
}

/// `prune`.
pub fn prune(repo: &Repository, a: PruneArgs, quiet: bool, out: &mut dyn Write) -> Result<Outcome> {
    if !(0.0..=100.0).contains(&a.repack_threshold) {
        bail!("--repack-threshold takes a percentage from 0 to 100");
    }
    let opts = PruneOptions {
        repack_threshold: a.repack_threshold / 100.0,
        dry_run: a.dry_run,
    };
    let r = sharekeep::prune(repo, &opts)?;
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
    } else if !quiet || a.dry_run {
        writeln!(
            out,
            "{} snapshots; {} packs: {} removed, {} repacked into {}, {} orphan(s) removed; {} unused blobs",
            r.snapshots, r.packs_before, r.packs_removed, r.packs_repacked, r.packs_written, r.orphan_packs_removed, r.unused_blobs
        )?;
        writeln!(
            out,
            "repository data: {} -> {}{}",
            output::size(r.bytes_before),
            output::size(r.bytes_after),
            if a.dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        )?;
    }
    Ok(Outcome::Ok)
}

/// `check`.
pub fn drill(
    repo: &Repository,
    a: crate::args::DrillArgs,
    cancel: &sharekeep::CancelToken,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let snap = repo.find_snapshot(&a.snapshot)?;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let scratch = a.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let r = sharekeep::drill(
        repo,
        &snap,
        &scratch,
        sharekeep::DrillOptions {
            sample: a.sample_given.unwrap_or(50),
            seed,
        },
        cancel,
    )?;
    print_drill(&r, a.json, out)
}

/// A drill's result, as text or JSON; an error when it failed.
pub fn print_drill(r: &sharekeep::DrillReport, json: bool, out: &mut dyn Write) -> Result<Outcome> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        writeln!(
            out,
            "drill of snapshot {}: {} of {} files restored and checked ({}) in {:.1} s",
            &r.snapshot[..8],
            r.files_checked,
            r.files_in_snapshot,
            crate::output::size(r.bytes_checked),
            r.seconds
        )?;
        for p in &r.problems {
            writeln!(out, "DAMAGED {}: {}", p.path, p.problem)?;
        }
        writeln!(
            out,
            "{}",
            if r.ok() {
                "ok: every sampled file restored identical to the snapshot".to_string()
            } else {
                format!(
                    "FAILED: {} file(s) do not restore; run `sharekeepctl check --read-data`",
                    r.problems.len()
                )
            }
        )?;
    }
    if r.ok() {
        Ok(Outcome::Ok)
    } else {
        out.flush()?;
        anyhow::bail!(
            "restore drill failed: {} of the sampled files do not restore identical",
            r.problems.len()
        )
    }
}

pub fn check(repo: &Repository, a: CheckArgs, out: &mut dyn Write) -> Result<Outcome> {
    let r = sharekeep::check(
        repo,
        &sharekeep::CheckOptions {
            read_data: a.read_data,
        },
    )?;
    render::check(out, &r, a.read_data.is_some(), a.json)
}

/// `repair index`.
pub fn repair_index(repo: &Repository, out: &mut dyn Write) -> Result<Outcome> {
    let r = sharekeep::repair_index(repo)?;
    for u in &r.unreadable {
        eprintln!("warning: left out: {u}");
    }
    writeln!(
        out,
        "index rebuilt: {} packs, {} blobs; {} old index file(s) removed",
        r.packs, r.blobs, r.old_index_files
    )?;
    Ok(if r.unreadable.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    })
}

/// `unlock`.
pub fn unlock(repo: &Repository, all: bool, out: &mut dyn Write) -> Result<Outcome> {
    let n = sharekeep::remove_stale_locks(repo.backend().as_ref(), all)?;
    let left = sharekeep::list_locks(repo.backend().as_ref())?;
    writeln!(out, "{n} lock(s) removed, {} left", left.len())?;
    for (_, l) in left {
        writeln!(
            out,
            "  {:?} lock: `{}` pid {} on {} since {}",
            l.kind,
            l.purpose,
            l.pid,
            l.host,
            output::time(&l.time)
        )?;
    }
    Ok(Outcome::Ok)
}

/// `key list | add | remove` (`generate` needs no repository: `main.rs`).
pub fn key(
    repo: &Repository,
    cmd: args::KeyCommand,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match cmd {
        args::KeyCommand::List => {
            writeln!(out, "{:<10} {:<11} {:<20} host", "key", "kind", "created")?;
            for k in repo.list_keys()? {
                writeln!(
                    out,
                    "{}{:<9} {:<11} {:<20} {}",
                    if k.current { "*" } else { " " },
                    &k.name[..8],
                    match k.kind {
                        sharekeep::SecretKind::Passphrase => "passphrase",
                        sharekeep::SecretKind::KeyFile => "key file",
                    },
                    k.created.format("%Y-%m-%d %H:%M:%S"),
                    k.host
                )?;
            }
        }
        args::KeyCommand::Add { new_key_file } => {
            let secret = match new_key_file {
                Some(f) => sharekeep::Secret::key_file(&f)?,
                None => match std::env::var("SHAREKEEP_NEW_PASSWORD") {
                    Ok(p) if !p.is_empty() => sharekeep::Secret::passphrase(p)?,
                    _ => anyhow::bail!(
                        "give the new key: --new-key-file FILE, or a passphrase in SHAREKEEP_NEW_PASSWORD"
                    ),
                },
            };
            let name = repo.add_key(&secret)?;
            if !quiet {
                writeln!(out, "added key {} ({})", &name[..8], secret.describe())?;
            }
        }
        args::KeyCommand::Remove { name } => {
            let removed = repo.remove_key(&name)?;
            if !quiet {
                writeln!(out, "removed key {}", &removed[..8])?;
            }
        }
        args::KeyCommand::Generate { .. } => unreachable!("handled in main"),
    }
    Ok(Outcome::Ok)
}
