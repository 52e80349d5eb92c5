//! Output shared by the offline commands and the same commands through sharekeepd: both
//! produce the protocol's types, rendered here, so they print the same and exit the same.

use crate::output;
use crate::Outcome;
use anyhow::{bail, Result};
use sharekeep::protocol::{DecisionEntry, RestoreResult, SnapshotEntry, VersionEntry};
use sharekeep::{Action, Change, CheckReport, NodeKind};
use std::io::Write;

fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| output::time(&t.with_timezone(&chrono::Local)))
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `versions`.
pub fn versions(
    out: &mut dyn Write,
    path: &str,
    where_: &str,
    versions: &[VersionEntry],
    json: bool,
) -> Result<Outcome> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(versions)?)?;
        return Ok(Outcome::Ok);
    }
    if versions.is_empty() {
        bail!("{path:?} is in no snapshot of {where_}");
    }
    let tag = |s: &SnapshotEntry| {
        if s.tags.iter().any(|t| t == "pre-restore") {
            " (pre-restore)"
        } else {
            ""
        }
    };
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                short(&v.content).to_string(),
                output::size(v.size),
                output::time_ns(v.mtime_ns),
                format!(
                    "{} {}{}",
                    short(&v.first.id),
                    local_time(&v.first.time),
                    tag(&v.first)
                ),
                format!(
                    "{} {}{}",
                    short(&v.last.id),
                    local_time(&v.last.time),
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
        "{} version(s); restore one with: sharekeepctl restore <snapshot> {path:?} [--to DIR]",
        versions.len()
    )?;
    Ok(Outcome::Ok)
}

/// `diff`.
pub fn diff(
    out: &mut dyn Write,
    from: &str,
    to: &str,
    changes: &[Change],
    json: bool,
) -> Result<Outcome> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(changes)?)?;
        return Ok(Outcome::Ok);
    }
    writeln!(out, "comparing snapshot {} to {}:", short(from), short(to))?;
    let mut counts = [0usize; 5];
    for c in changes {
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

/// `restore` (its plan with `--dry-run`, or what it did).
pub fn restore(out: &mut dyn Write, r: &RestoreResult, json: bool, quiet: bool) -> Result<Outcome> {
    for (path, msg) in &r.warnings {
        eprintln!("warning: {path}: {msg}");
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(r)?)?;
    } else if r.dry_run {
        writeln!(
            out,
            "restore of snapshot {} into {} would:",
            short(&r.snapshot),
            r.target
        )?;
        for e in &r.entries {
            let slash = if e.kind == NodeKind::Dir { "/" } else { "" };
            writeln!(out, "  {:<22} {}{}", e.action.word(), e.path, slash)?;
        }
        let count = |a: Action| r.entries.iter().filter(|e| e.action == a).count();
        let bytes: u64 = r
            .entries
            .iter()
            .filter(|e| {
                matches!(e.action, Action::Create | Action::Replace) && e.kind == NodeKind::File
            })
            .map(|e| e.size)
            .sum();
        writeln!(
            out,
            "{} to create, {} to replace, {} metadata only, {} left as they are, {} to write; nothing was changed (dry run)",
            count(Action::Create),
            count(Action::Replace),
            count(Action::Metadata),
            count(Action::Unchanged) + count(Action::SkipExisting),
            output::size(bytes),
        )?;
    } else if !quiet {
        writeln!(
            out,
            "restored from snapshot {} into {}: {} created, {} replaced, {} metadata, {} left as they were, {} written",
            short(&r.snapshot),
            r.target,
            r.created,
            r.replaced,
            r.metadata,
            r.left,
            output::size(r.bytes_written)
        )?;
        if let Some(n) = r.rights_applied {
            writeln!(
                out,
                "today's rights of the share's policy applied to {n} entries"
            )?;
        }
        for (path, kept) in &r.kept_aside {
            writeln!(out, "kept the previous {path} as {kept}")?;
        }
        if let Some(pre) = &r.pre_restore {
            writeln!(out, "what was replaced is saved in snapshot {} (tag pre-restore); `sharekeepctl versions` lists it", short(pre))?;
        }
    }
    Ok(if r.warnings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    })
}

/// `forget`.
pub fn forget(
    out: &mut dyn Write,
    decisions: &[DecisionEntry],
    dry_run: bool,
    json: bool,
    quiet: bool,
) -> Result<Outcome> {
    let removed = decisions.iter().filter(|d| !d.keep).count();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(decisions)?)?;
    } else if dry_run || !quiet {
        for d in decisions {
            let verdict = if d.keep { "keep  " } else { "remove" };
            writeln!(
                out,
                "{verdict} {}  {}  {}",
                short(&d.id),
                local_time(&d.time),
                d.reasons.join(", ")
            )?;
        }
        let verb = if dry_run {
            "would be removed (dry run)"
        } else {
            "removed"
        };
        writeln!(
            out,
            "{} snapshots kept, {removed} {verb}",
            decisions.len() - removed
        )?;
    }
    Ok(Outcome::Ok)
}

/// `check`: fails (exit 1) when anything is damaged.
pub fn check(out: &mut dyn Write, r: &CheckReport, read_data: bool, json: bool) -> Result<Outcome> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(r)?)?;
    } else {
        writeln!(
            out,
            "{} snapshots, {} packs{}",
            r.snapshots,
            r.packs,
            if read_data {
                format!(", {} packs read and verified", r.packs_read)
            } else {
                String::new()
            }
        )?;
        for n in &r.notes {
            writeln!(out, "note: {n}")?;
        }
        for d in &r.damage {
            writeln!(out, "damaged: {}: {}", d.what, d.message)?;
            for x in &d.affects {
                writeln!(out, "    affects {x}")?;
            }
        }
        if r.is_ok() {
            writeln!(out, "no damage found")?;
        }
    }
    if r.is_ok() {
        Ok(Outcome::Ok)
    } else {
        out.flush()?;
        bail!(
            "the repository is damaged ({} problem(s) above)",
            r.damage.len()
        )
    }
}

/// `backup`: the snapshot (as `Snapshot::to_json` gives it) and the entries left out.
pub fn backup(
    out: &mut dyn Write,
    snapshot: &serde_json::Value,
    warnings: &[String],
    json: bool,
    quiet: bool,
) -> Result<Outcome> {
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(snapshot)?)?;
    } else if !quiet {
        let m = &snapshot["summary"];
        let n = |k: &str| m[k].as_u64().unwrap_or(0);
        writeln!(
            out,
            "Files:       {} new, {} changed, {} unchanged",
            n("files_new"),
            n("files_changed"),
            n("files_unchanged")
        )?;
        writeln!(
            out,
            "Dirs:        {} new, {} changed, {} unchanged",
            n("dirs_new"),
            n("dirs_changed"),
            n("dirs_unchanged")
        )?;
        writeln!(
            out,
            "Added:       {} ({} stored after compression)",
            output::size(n("bytes_added")),
            output::size(n("bytes_stored"))
        )?;
        writeln!(
            out,
            "Processed:   {} files, {} in {:.2}s",
            n("total_files"),
            output::size(n("total_bytes")),
            m["seconds"].as_f64().unwrap_or(0.0)
        )?;
        if n("warnings") > 0 {
            writeln!(
                out,
                "Warnings:    {} entries could not be read (listed above)",
                n("warnings")
            )?;
        }
        writeln!(
            out,
            "snapshot {} saved",
            snapshot["short_id"].as_str().unwrap_or_default()
        )?;
    }
    Ok(if warnings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    })
}

/// One entry of `ls` (plain, `-l`, or a JSON line), at `root`/`path`.
pub fn ls_entry(
    out: &mut dyn Write,
    root: &std::path::Path,
    path: &str,
    n: &sharekeep::Node,
    json: bool,
    long: bool,
) -> std::io::Result<()> {
    let full = root.join(path);
    if json {
        let v = serde_json::json!({
            "path": full.to_string_lossy(),
            "type": n.kind,
            "mode": n.mode,
            "uid": n.uid, "gid": n.gid, "user": n.user, "group": n.group,
            "size": n.size,
            "mtime": output::rfc3339_ns(n.mtime_ns),
        });
        writeln!(out, "{v}")
    } else if long {
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
    }
}

/// The `snapshots` table.
pub fn snapshots_table(out: &mut dyn Write, list: &[SnapshotEntry]) -> Result<()> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                short(&s.id).to_string(),
                local_time(&s.time),
                s.host.clone(),
                s.tags.join(","),
                s.total_bytes.map_or("-".to_string(), output::size),
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
    Ok(())
}

/// `rollback`: the summary (every step with `--dry-run`), what was left and why.
pub fn rollback(out: &mut dyn Write, r: &sharekeep::protocol::RollbackResult) -> Result<()> {
    use sharekeep::UndoAction;
    let snap = &r.snapshot[..r.snapshot.len().min(8)];
    if r.dry_run {
        for s in &r.steps {
            let word = match s.action {
                UndoAction::Restore => "restore",
                UndoAction::Remove => "remove ",
                UndoAction::Leave => "leave  ",
            };
            writeln!(out, "{word} {}  ({})", s.path, s.why)?;
        }
        writeln!(
            out,
            "dry run: incident {} of share {}: {} entries to bring back from snapshot {snap}, {} to remove, {} left as they are; nothing changed",
            r.incident,
            r.share,
            r.restore,
            r.remove,
            r.left.len()
        )?;
        return Ok(());
    }
    for s in &r.left {
        writeln!(out, "left {}: {}", s.path, s.why)?;
    }
    for (path, why) in &r.warnings {
        writeln!(out, "warning: {path}: {why}")?;
    }
    writeln!(
        out,
        "incident {} of share {} rolled back: {} entries brought back from snapshot {snap} ({}), {} removed, {} left as they are",
        r.incident,
        r.share,
        r.restore,
        output::size(r.bytes_written),
        r.remove,
        r.left.len()
    )?;
    if let Some(p) = &r.pre_restore {
        writeln!(
            out,
            "what was replaced or removed is in snapshot {} (tag pre-restore)",
            &p[..p.len().min(8)]
        )?;
    }
    Ok(())
}

/// `guard status`.
pub fn guard(out: &mut dyn Write, r: &sharekeep::protocol::GuardReport) -> Result<()> {
    writeln!(
        out,
        "share {}: guard {}",
        r.share,
        if r.enabled { "on" } else { "off" }
    )?;
    writeln!(out, "    watching: {}", r.watching)?;
    if r.locks.is_empty() {
        writeln!(out, "    no lock: the policy's rights apply")?;
    }
    for l in &r.locks {
        writeln!(
            out,
            "    LOCKED: write taken away from {} since {} (incident {})",
            l.user.as_deref().unwrap_or("EVERYONE"),
            output::spoken_rfc3339(&l.since),
            l.incident
        )?;
    }
    for i in &r.incidents {
        writeln!(
            out,
            "incident {}: {} by {}",
            i.id,
            i.reason,
            i.user.as_deref().unwrap_or("an unknown process")
        )?;
        writeln!(
            out,
            "    started {}, detected {}; {} entries changed{}; {}",
            output::spoken_rfc3339(&i.started),
            output::spoken_rfc3339(&i.detected),
            i.changes,
            if i.locked { ", write taken away" } else { "" },
            match &i.released {
                Some(t) => format!("released {}", output::spoken_rfc3339(t)),
                None if i.locked => "not released".to_string(),
                None => "alert only".to_string(),
            }
        )?;
        if let Some(t) = &i.rolled_back {
            writeln!(out, "    rolled back {}", output::spoken_rfc3339(t))?;
        }
        match &i.pinned {
            Some(p) => writeln!(
                out,
                "    last good snapshot {} pinned (tag guard: retention keeps it)",
                &p[..p.len().min(8)]
            )?,
            None => writeln!(out, "    no snapshot before the attack to pin")?,
        }
        for e in &i.examples {
            writeln!(out, "    e.g. {e}")?;
        }
    }
    Ok(())
}
