//! Forget (remove snapshots a retention plan does not keep) and prune (free the space of data
//! no snapshot references). Both hold the exclusive lock, so no backup can be adding data that
//! a prune would consider unused.
//!
//! ```text
//! prune:
//!   refuse if any snapshot or index file is unreadable (its data would look unused)
//!   used = every tree and data blob reachable from every snapshot
//!   for each indexed pack: used and unused bytes
//!     nothing used                    -> remove
//!     unused share > repack threshold -> repack: copy its used blobs (checked) into new packs
//!   packs on disk that no index lists (left by an interrupted backup) -> remove
//!   write order: new packs -> one new index of everything kept -> remove old index files
//!                -> remove packs; a crash at any point leaves every snapshot restorable
//! ```
//! Memory is bounded by the index (one entry per blob), never by the data.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::lock::{LockKind, RepoLock};
use crate::pack::{self, PackEntry};
use crate::pack_writer::PackWriter;
use crate::repo::Repository;
use crate::retention::{apply_rules, Decision, KeepRules};
use crate::tree::NodeKind;
use std::collections::{HashMap, HashSet};

/// Applies retention: removes the snapshots `rules` do not keep (all of them listed in the
/// result, with the rules that keep the others). With `dry_run`, removes nothing.
pub fn forget(repo: &Repository, rules: &KeepRules, dry_run: bool) -> Result<Vec<Decision>> {
    let _lock = if dry_run {
        None
    } else {
        Some(RepoLock::acquire(
            repo.backend().clone(),
            LockKind::Exclusive,
            "forget",
        )?)
    };
    let snapshots = repo.snapshots()?;
    let decisions = apply_rules(&snapshots, rules, chrono::Local::now())?;
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            repo.backend().remove(FileKind::Snapshot, &d.id.to_hex())?;
        }
        repo.backend().sync()?;
    }
    Ok(decisions)
}

/// How to prune.
#[derive(Debug, Clone, Copy)]
pub struct PruneOptions {
    /// Repack a pack when more than this fraction of its bytes is unused (0.0..=1.0).
    pub repack_threshold: f64,
    /// Compute and report, change nothing.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            repack_threshold: 0.3,
            dry_run: false,
        }
    }
}

/// What a prune found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Snapshots considered.
    pub snapshots: usize,
    /// Packs before.
    pub packs_before: usize,
    /// Packs removed whole (nothing used).
    pub packs_removed: usize,
    /// Packs repacked.
    pub packs_repacked: usize,
    /// New packs written by repacking.
    pub packs_written: usize,
    /// Packs on disk that no index listed, removed.
    pub orphan_packs_removed: usize,
    /// Blobs no snapshot uses.
    pub unused_blobs: usize,
    /// Repository data size before (packs).
    pub bytes_before: u64,
    /// After.
    pub bytes_after: u64,
}

/// Every blob reachable from every snapshot (trees and data).
pub(crate) fn used_blobs(
    repo: &Repository,
    snapshots: &[crate::snapshot::Snapshot],
) -> Result<HashSet<Id>> {
    let mut used = HashSet::new();
    let mut stack: Vec<Id> = snapshots.iter().map(|s| s.tree).collect();
    while let Some(t) = stack.pop() {
        if !used.insert(t) {
            continue;
        }
        let tree = repo.read_tree(&t)?;
        for n in tree.nodes {
            used.extend(n.content);
            if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
                stack.push(sub);
            }
        }
    }
    Ok(used)
}

/// Frees unused space (see the module documentation).
pub fn prune(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    repo.require_full_index("prune")?;
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Exclusive, "prune")?;
    if let Some(d) = repo.damaged_index_files().first() {
        return Err(Error::Invalid(format!(
            "{}; prune would remove data it cannot see: run `sharekeepctl repair index` first",
            d.error
        )));
    }
    let (snapshots, damaged) = repo.snapshots_with_damage()?;
    if let Some(d) = damaged.first() {
        return Err(Error::Invalid(format!(
            "{}; prune would remove its data: remove or restore that file first (`sharekeepctl check` lists the damage)",
            d.error
        )));
    }
    let used = used_blobs(repo, &snapshots)?;
    let backend = repo.backend();

    // Per pack: its indexed entries, used or not.
    let mut packs: HashMap<Id, Vec<PackEntry>> = HashMap::new();
    for (pack_id, entry) in repo.index().iter() {
        packs.entry(pack_id).or_default().push(entry);
    }
    let on_disk: HashMap<String, u64> = backend.list_sizes(FileKind::Pack)?.into_iter().collect();
    let mut report = PruneReport {
        snapshots: snapshots.len(),
        packs_before: on_disk.len(),
        bytes_before: on_disk.values().sum(),
        ..PruneReport::default()
    };
    let mut keep: Vec<IndexedPack> = Vec::new();
    let mut remove: Vec<Id> = Vec::new();
    let mut repack: Vec<(Id, Vec<PackEntry>)> = Vec::new();
    for (pack_id, mut entries) in packs {
        entries.sort_by_key(|e| e.offset);
        let total: u64 = entries.iter().map(|e| e.length as u64).sum();
        let (live, dead): (Vec<PackEntry>, Vec<PackEntry>) =
            entries.into_iter().partition(|e| used.contains(&e.id));
        report.unused_blobs += dead.len();
        let dead_bytes: u64 = dead.iter().map(|e| e.length as u64).sum();
        if !on_disk.contains_key(&pack_id.to_hex()) {
            // Indexed but missing: nothing to free; `check` reports it.
            keep.push(IndexedPack {
                id: pack_id,
                blobs: live,
            });
        } else if live.is_empty() {
            remove.push(pack_id);
        } else if total > 0 && dead_bytes as f64 / total as f64 > opts.repack_threshold {
            repack.push((pack_id, live));
        } else {
            keep.push(IndexedPack {
                id: pack_id,
                blobs: live,
            });
        }
    }
    let indexed: HashSet<String> = keep
        .iter()
        .map(|p| p.id)
        .chain(remove.iter().copied())
        .chain(repack.iter().map(|(p, _)| *p))
        .map(|p| p.to_hex())
        .collect();
    let orphans: Vec<String> = on_disk
        .keys()
        .filter(|n| !indexed.contains(*n))
        .cloned()
        .collect();
    report.packs_removed = remove.len();
    report.packs_repacked = repack.len();
    report.orphan_packs_removed = orphans.len();
    let freed: u64 = remove
        .iter()
        .map(|p| p.to_hex())
        .chain(orphans.iter().cloned())
        .chain(repack.iter().map(|(p, _)| p.to_hex()))
        .filter_map(|n| on_disk.get(&n))
        .sum();
    if opts.dry_run {
        let repacked_live: u64 = repack
            .iter()
            .flat_map(|(_, l)| l)
            .map(|e| e.length as u64)
            .sum();
        report.bytes_after = report.bytes_before - freed + repacked_live;
        return Ok(report);
    }

    // 1. New packs with the live blobs of the packs being repacked.
    let mut written: Vec<IndexedPack> = Vec::new();
    let mut writer = PackWriter::new(repo);
    for (pack_id, live) in &repack {
        let name = pack_id.to_hex();
        let location = backend.file_location(FileKind::Pack, &name);
        for e in live {
            let stored =
                backend.read_at(FileKind::Pack, &name, e.offset as u64, e.length as usize)?;
            // Never copy damage: check the blob before it moves.
            pack::decode_blob(repo.keys(), e, stored.clone(), &location)?;
            if let Some(full) =
                writer.add_stored(e.blob_type, e.id, e.compression, &stored, e.raw_length)?
            {
                written.push(full.commit(repo)?);
            }
        }
    }
    if let Some(last) = writer.flush()? {
        written.push(last.commit(repo)?);
    }
    report.packs_written = written.len();
    backend.sync()?;

    // 2. One index of everything kept, then the old index files go.
    let old_indexes = backend.list(FileKind::Index)?;
    keep.extend(written);
    let new_index = repo.write_index(&keep)?.to_hex();
    for name in old_indexes.iter().filter(|n| **n != new_index) {
        backend.remove(FileKind::Index, name)?;
    }
    backend.sync()?;

    // 3. Packs nothing refers to any more. Never one the new index lists: a repacked pack can
    //    have the very name of a pack seen here as an orphan (the same one written by an
    //    earlier prune killed before it removed the old index files).
    let referenced: HashSet<String> = keep.iter().map(|p| p.id.to_hex()).collect();
    for name in remove
        .iter()
        .map(|p| p.to_hex())
        .chain(repack.iter().map(|(p, _)| p.to_hex()))
        .chain(orphans)
        .filter(|n| !referenced.contains(n))
    {
        backend.remove(FileKind::Pack, &name)?;
    }
    // Files left in tmp/ by interrupted operations (nothing else runs: exclusive lock).
    backend.clean_temp()?;
    report.bytes_after = backend
        .list_sizes(FileKind::Pack)?
        .iter()
        .map(|(_, s)| s)
        .sum();
    Ok(report)
}
