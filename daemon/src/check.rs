//! `check`: is every snapshot restorable? Structure first (config, index files, packs listed vs
//! present and their headers, every tree and blob every snapshot references), then with
//! `read_data` every blob (or a random share of the packs) read and verified against its hash.
//! The report names each damaged file of the repository, and the snapshots and paths it
//! affects. `repair_index` rebuilds the index from the packs' own headers.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::lock::{LockKind, RepoLock};
use crate::pack;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::tree::NodeKind;
use std::collections::{HashMap, HashSet};

/// How deep to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Read and verify blob data: `None` structure only, `Some(100.0)` every pack, `Some(p)` a
    /// random p percent of the packs.
    pub read_data: Option<f64>,
}

/// One piece of damage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damage {
    /// The damaged repository file (or blob).
    pub what: String,
    /// What is wrong.
    pub message: String,
    /// `snapshot-id: path` of what it affects.
    pub affects: Vec<String>,
}

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Packs whose data was read.
    pub packs_read: usize,
    /// Damage (non-empty: the repository is damaged).
    pub damage: Vec<Damage>,
    /// Not damage, but worth knowing (packs no index lists, stale locks).
    pub notes: Vec<String>,
}

impl CheckReport {
    /// Whether nothing is damaged.
    pub fn is_ok(&self) -> bool {
        self.damage.is_empty()
    }
}

fn read_pack_header(repo: &Repository, name: &str, size: u64) -> Result<Vec<pack::PackEntry>> {
    let backend = repo.backend();
    let location = backend.file_location(FileKind::Pack, name);
    if size < 8 {
        return Err(Error::Corrupt {
            path: location,
            reason: "too short to be a pack".into(),
        });
    }
    let trailer: [u8; 8] = backend
        .read_at(FileKind::Pack, name, size - 8, 8)?
        .try_into()
        .expect("8 bytes");
    let (start, len) = pack::header_position(&trailer, size, &location, repo.keys())?;
    let header = backend.read_at(FileKind::Pack, name, start, len)?;
    pack::parse_header(header, start, &location, repo.keys())
}

/// Checks the repository (see the module documentation).
pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    repo.require_full_index("check")?;
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Shared, "check")?;
    let backend = repo.backend();
    let mut report = CheckReport::default();
    // Each damaged or missing blob, and the damage entry that explains it.
    let mut bad_blobs: HashMap<Id, usize> = HashMap::new();

    for d in repo.damaged_index_files() {
        report.damage.push(Damage {
            what: d.path.display().to_string(),
            message: format!("{} (the blobs it listed are unknown: `sharekeepctl repair index` rebuilds it from the packs)", d.error),
            affects: Vec::new(),
        });
    }

    // Packs: listed vs present, headers vs index.
    let on_disk: HashMap<String, u64> = backend.list_sizes(FileKind::Pack)?.into_iter().collect();
    let mut by_pack: HashMap<Id, Vec<pack::PackEntry>> = HashMap::new();
    for (p, e) in repo.index().iter() {
        by_pack.entry(p).or_default().push(e);
    }
    report.packs = by_pack.len();
    let mut pack_names: Vec<Id> = by_pack.keys().copied().collect();
    pack_names.sort();
    for pack_id in &pack_names {
        let name = pack_id.to_hex();
        let location = backend
            .file_location(FileKind::Pack, &name)
            .display()
            .to_string();
        let entries = &by_pack[pack_id];
        let Some(&size) = on_disk.get(&name) else {
            report.damage.push(Damage {
                what: location,
                message: "pack is missing".into(),
                affects: Vec::new(),
            });
            for e in entries {
                bad_blobs.insert(e.id, report.damage.len() - 1);
            }
            continue;
        };
        match read_pack_header(repo, &name, size) {
            Ok(header) => {
                let listed: HashSet<(Id, u32, u32)> =
                    header.iter().map(|e| (e.id, e.offset, e.length)).collect();
                let wrong: Vec<_> = entries
                    .iter()
                    .filter(|e| !listed.contains(&(e.id, e.offset, e.length)))
                    .collect();
                if !wrong.is_empty() {
                    report.damage.push(Damage {
                        what: location,
                        message: format!(
                            "{} blobs the index places in this pack are not in its header",
                            wrong.len()
                        ),
                        affects: Vec::new(),
                    });
                    for e in wrong {
                        bad_blobs.insert(e.id, report.damage.len() - 1);
                    }
                }
            }
            Err(e) => {
                report.damage.push(Damage {
                    what: location,
                    message: format!("unreadable pack header: {e}"),
                    affects: Vec::new(),
                });
                for e in entries {
                    bad_blobs.insert(e.id, report.damage.len() - 1);
                }
            }
        }
    }
    if let Some(why) = repo.exposure() {
        report.notes.push(format!("not private: {why}"));
    }
    let indexed: HashSet<String> = pack_names.iter().map(|p| p.to_hex()).collect();
    let orphans = on_disk.keys().filter(|n| !indexed.contains(*n)).count();
    if orphans > 0 {
        report.notes.push(format!("{orphans} pack(s) are in no index (left by an interrupted backup, or an index was lost): `sharekeepctl prune` removes them, `sharekeepctl repair index` indexes them"));
    }

    // Data: read packs and verify every blob.
    if let Some(percent) = opts.read_data {
        let selected: Vec<&Id> = pack_names
            .iter()
            .filter(|p| on_disk.contains_key(&p.to_hex()))
            .filter(|p| percent >= 100.0 || sample(p, percent))
            .collect();
        for pack_id in selected {
            report.packs_read += 1;
            let name = pack_id.to_hex();
            let location = backend.file_location(FileKind::Pack, &name);
            let bytes = backend.read(FileKind::Pack, &name)?;
            let content_ok = Id::hash(&bytes) == *pack_id;
            let damaged: Vec<Id> = by_pack[pack_id]
                .iter()
                .filter(|e| {
                    let stored =
                        bytes.get(e.offset as usize..e.offset as usize + e.length as usize);
                    stored.is_none_or(|s| {
                        pack::decode_blob(repo.keys(), e, s.to_vec(), &location).is_err()
                    })
                })
                .map(|e| e.id)
                .collect();
            if !damaged.is_empty() || !content_ok {
                report.damage.push(Damage {
                    what: location.display().to_string(),
                    message: format!(
                        "{} damaged blob(s); the file's content does not match its name",
                        damaged.len()
                    ),
                    affects: Vec::new(),
                });
                for id in damaged {
                    bad_blobs.insert(id, report.damage.len() - 1);
                }
            }
        }
    }

    // Snapshots: every tree readable, every blob indexed.
    let (snapshots, damaged) = repo.snapshots_with_damage()?;
    for d in damaged {
        report.damage.push(Damage {
            what: d.path.display().to_string(),
            message: format!(
                "{} (this snapshot cannot be listed or restored; the others are not affected)",
                d.error
            ),
            affects: Vec::new(),
        });
    }
    report.snapshots = snapshots.len();
    let mut seen_trees: HashSet<Id> = HashSet::new();
    for s in &snapshots {
        walk_snapshot(repo, s, &mut seen_trees, &mut bad_blobs, &mut report);
    }
    // Name what the damaged blobs affect.
    if !bad_blobs.is_empty() {
        let mut affects: HashMap<Id, Vec<String>> = HashMap::new();
        for s in &snapshots {
            affected_paths(repo, s, &bad_blobs, &mut affects);
        }
        for (blob, paths) in affects {
            report.damage[bad_blobs[&blob]].affects.extend(paths);
        }
        for d in report.damage.iter_mut() {
            d.affects.sort();
            d.affects.dedup();
        }
    }
    Ok(report)
}

/// Deterministic sampling by pack id, so a PERCENT check spreads over runs differently only
/// when the repository changes.
fn sample(pack: &Id, percent: f64) -> bool {
    let mut seed = [0u8; 8];
    let _ = getrandom::getrandom(&mut seed);
    let v = u64::from_le_bytes(pack.0[..8].try_into().expect("8")) ^ u64::from_le_bytes(seed);
    (v % 10_000) as f64 / 100.0 < percent
}

/// Visits every entry below `root`, depth first, with its path (`a/b/c`). Trees already in
/// `seen` are skipped (and each visited one is added); an unreadable tree goes to `unreadable`
/// with its path.
fn walk_entries(
    repo: &Repository,
    root: Id,
    seen: &mut HashSet<Id>,
    unreadable: &mut dyn FnMut(Id, &str, Error),
    visit: &mut dyn FnMut(&str, &crate::tree::Node),
) {
    let mut stack = vec![(root, String::new())];
    while let Some((tree_id, path)) = stack.pop() {
        if !seen.insert(tree_id) {
            continue;
        }
        let tree = match repo.read_tree(&tree_id) {
            Ok(t) => t,
            Err(e) => {
                unreadable(tree_id, &path, e);
                continue;
            }
        };
        for n in tree.nodes {
            let child = if path.is_empty() {
                n.name.to_string_lossy()
            } else {
                format!("{path}/{}", n.name.to_string_lossy())
            };
            visit(&child, &n);
            if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
                stack.push((sub, child));
            }
        }
    }
}

/// Every tree of `s` readable, every blob indexed (trees seen in earlier snapshots skipped).
fn walk_snapshot(
    repo: &Repository,
    s: &Snapshot,
    seen: &mut HashSet<Id>,
    bad: &mut HashMap<Id, usize>,
    report: &mut CheckReport,
) {
    let mut unreadable = Vec::new();
    let mut missing: Vec<Id> = Vec::new();
    walk_entries(
        repo,
        s.tree,
        seen,
        &mut |tree_id, path, e| {
            unreadable.push(Damage {
                what: format!("tree {}", tree_id.short()),
                message: e.to_string(),
                affects: vec![format!(
                    "{}: {}/",
                    s.id.short(),
                    if path.is_empty() { "." } else { path }
                )],
            });
        },
        &mut |_, n| {
            for id in &n.content {
                if !repo.index().contains(id) && !bad.contains_key(id) && !missing.contains(id) {
                    missing.push(*id);
                }
            }
        },
    );
    report.damage.extend(unreadable);
    for id in missing {
        report.damage.push(Damage {
            what: format!("blob {}", id.short()),
            message: "in no index: its data is lost or its index file is damaged".into(),
            affects: Vec::new(),
        });
        bad.insert(id, report.damage.len() - 1);
    }
}

/// The paths (`snapshot: path`) of the files of `s` whose content uses a blob of `bad`.
fn affected_paths(
    repo: &Repository,
    s: &Snapshot,
    bad: &HashMap<Id, usize>,
    out: &mut HashMap<Id, Vec<String>>,
) {
    walk_entries(
        repo,
        s.tree,
        &mut HashSet::new(),
        &mut |_, _, _| {},
        &mut |path, n| {
            for id in n.content.iter().filter(|id| bad.contains_key(id)) {
                out.entry(*id)
                    .or_default()
                    .push(format!("{}: {path}", s.id.short()));
            }
        },
    );
}

/// What `repair index` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// Packs indexed.
    pub packs: usize,
    /// Blobs indexed.
    pub blobs: usize,
    /// Packs whose header could not be read (left out), with why.
    pub unreadable: Vec<String>,
    /// Old index files removed.
    pub old_index_files: usize,
}

/// Rebuilds the index from the headers of the packs on disk, then removes the old index files.
pub fn repair_index(repo: &Repository) -> Result<RepairReport> {
    repo.require_full_index("repair index")?;
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Exclusive, "repair index")?;
    let backend = repo.backend();
    let mut report = RepairReport::default();
    let mut packs = Vec::new();
    for (name, size) in backend.list_sizes(FileKind::Pack)? {
        let Ok(id) = name.parse::<Id>() else { continue };
        match read_pack_header(repo, &name, size) {
            Ok(blobs) => {
                report.blobs += blobs.len();
                packs.push(IndexedPack { id, blobs });
            }
            Err(e) => report.unreadable.push(e.to_string()),
        }
    }
    report.packs = packs.len();
    let old = backend.list(FileKind::Index)?;
    let new = repo.write_index(&packs)?.to_hex();
    for name in old.iter().filter(|n| **n != new) {
        backend.remove(FileKind::Index, name)?;
        report.old_index_files += 1;
    }
    backend.sync()?;
    Ok(report)
}
