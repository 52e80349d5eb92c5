//! Undoing recorded changes from a snapshot (the guard's rollback): the entries the changes
//! touched are brought back as the snapshot has them, the entries they made (new files,
//! renamed copies) are removed, and whatever changed again since is left alone. Plan, then
//! execute:
//!
//! ```text
//! plan:     each path to bring back looked up in the snapshot (one tree read per folder) and
//!           at the target (by descriptor from the root, never following a symlink):
//!             not in the snapshot      -> left (it was made after the snapshot)
//!             nothing there now        -> restore
//!             there, mtime no later    -> restore (replacing what the changes left)
//!             than the recorded change
//!             there, changed since, or -> left: someone's later work
//!             made again since
//!           each path to remove: removed unless changed since, unless it is the only copy
//!           of an entry that cannot be brought back, unless a restore replaces it anyway
//! save:     what will be replaced or removed, in one snapshot tagged `pre-restore`
//! execute:  the restores (restore.rs: same guarantees, every entry replaced), then each
//!           removal by descriptor: the parent opened from the root with O_NOFOLLOW, the
//!           entry checked again (not a folder, not changed since), unlinkat
//! ```
//! Whoever changed a file after the recorded change last set its mtime later: that is how
//! later work is told from the recorded changes. A change recorded with a forged later mtime
//! is left and listed, never lost; everything replaced or removed is in the pre-restore
//! snapshot.

use crate::error::{Error, Result};
use crate::platform::target::{self as t, Dir, Meta};
use crate::progress::{CancelToken, Progress};
use crate::repo::Repository;
use crate::restore::{plan_restore, restore, save_before_change, Overwrite, RestoreOptions};
use crate::snapshot::Snapshot;
use crate::tree::NodeKind;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// An entry the changes touched, to bring back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    /// When the changes last changed what is at this path now (ms since the Unix epoch);
    /// `None`: they left nothing there (deleted, or renamed away).
    pub last_ms: Option<u64>,
    /// Whether the changes show it existed before them (written, deleted, renamed away);
    /// `false` for a rename's target, which may or may not have.
    pub existed: bool,
}

/// An entry the changes made, to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// When the changes last changed it (ms since the Unix epoch).
    pub last_ms: u64,
    /// The entry it is a renamed copy of, if it is one.
    pub from: Option<String>,
}

/// What recorded changes did, as paths relative to the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo {
    /// Entries to bring back.
    pub restore: BTreeMap<String, Touched>,
    /// Entries to remove.
    pub remove: BTreeMap<String, Made>,
}

/// What will happen to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoAction {
    /// Brought back from the snapshot.
    Restore,
    /// Removed.
    Remove,
    /// Left as it is (see why).
    Leave,
}

/// One step of an [`UndoPlan`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UndoStep {
    /// Relative to the root.
    pub path: String,
    /// What will happen.
    pub action: UndoAction,
    /// Why, in words.
    pub why: String,
    /// For a removal: the last recorded change (checked again before removing).
    #[serde(skip)]
    last_ms: u64,
}

/// What undoing will do.
#[derive(Debug, Clone)]
pub struct UndoPlan {
    /// The snapshot entries are brought back from.
    pub snapshot: Snapshot,
    /// The folder the paths are relative to.
    pub root: PathBuf,
    /// By path.
    pub steps: Vec<UndoStep>,
}

impl UndoPlan {
    /// How many steps do `action`.
    pub fn count(&self, action: UndoAction) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }

    fn paths(&self, action: UndoAction) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.action == action)
            .map(|s| s.path.clone())
            .collect()
    }
}

/// What undoing did.
#[derive(Debug, Clone, Default)]
pub struct UndoReport {
    /// Entries brought back.
    pub restored: usize,
    /// Entries removed.
    pub removed: usize,
    /// Bytes written.
    pub bytes_written: u64,
    /// The snapshot holding what was replaced or removed.
    pub pre_restore: Option<Snapshot>,
    /// (path, why) of what could not be done.
    pub warnings: Vec<(String, String)>,
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Opens folders below a root by descriptor, the last one kept (paths come sorted, so
/// entries of one folder follow each other).
struct Folders<'a> {
    root: &'a Dir,
    last: Option<(String, Option<Dir>)>,
}

impl Folders<'_> {
    fn open(&mut self, rel: &str) -> Option<&Dir> {
        if self.last.as_ref().map(|(p, _)| p.as_str()) != Some(rel) {
            let mut fd = t::dup(self.root).ok();
            for c in rel.split('/').filter(|c| !c.is_empty()) {
                fd = fd.and_then(|d| t::enter(&d, OsStr::new(c)).ok());
            }
            self.last = Some((rel.to_string(), fd));
        }
        self.last.as_ref().and_then(|(_, fd)| fd.as_ref())
    }

    /// What is at `path` now (not following a symlink).
    fn stat(&mut self, path: &str) -> Option<Meta> {
        let (dir, name) = split(path);
        let fd = self.open(dir)?;
        t::stat(fd, OsStr::new(name)).ok().flatten()
    }
}

fn mtime_ms(st: &Meta) -> u64 {
    (st.mtime_ns.max(0) / 1_000_000) as u64
}

/// The kinds the snapshot has at `paths` (absent: not in it), one tree read per folder.
fn in_snapshot<'p>(
    repo: &Repository,
    snap: &Snapshot,
    paths: impl Iterator<Item = &'p String>,
) -> Result<HashMap<&'p str, NodeKind>> {
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in paths {
        let (dir, _) = split(p);
        by_dir.entry(dir).or_default().push(p);
    }
    let mut out = HashMap::new();
    for (dir, paths) in by_dir {
        let tree = if dir.is_empty() {
            Some(snap.tree)
        } else {
            match repo.find_node(snap, dir) {
                Ok(Some(n)) if n.kind == NodeKind::Dir => n.subtree,
                Ok(_) | Err(Error::PathNotInSnapshot { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let Some(tree) = tree else { continue };
        let tree = repo.read_tree(&tree)?;
        for p in paths {
            let name = split(p).1.as_bytes();
            if let Ok(i) = tree
                .nodes
                .binary_search_by(|n| n.name.0.as_slice().cmp(name))
            {
                out.insert(p, tree.nodes[i].kind);
            }
        }
    }
    Ok(out)
}

/// Works out what undoing `undo` from `snap` into `root` does, changing nothing.
pub fn plan_undo(repo: &Repository, snap: &Snapshot, root: &Path, undo: &Undo) -> Result<UndoPlan> {
    let root_fd = t::open_root(root)?;
    let mut folders = Folders {
        root: &root_fd,
        last: None,
    };
    let short = snap.id.short();
    let kinds = in_snapshot(repo, snap, undo.restore.keys())?;
    let mut steps: BTreeMap<&str, UndoStep> = BTreeMap::new();
    let step = |path: &str, action, why: String, last_ms| UndoStep {
        path: path.to_string(),
        action,
        why,
        last_ms,
    };
    for (path, t) in &undo.restore {
        let s = match (kinds.get(path.as_str()), folders.stat(path)) {
            (None, _) if !t.existed => continue,
            (None, _) => step(
                path,
                UndoAction::Leave,
                format!("not in snapshot {short} (made after it): left as it is"),
                0,
            ),
            (Some(NodeKind::Dir), _) => step(
                path,
                UndoAction::Leave,
                format!("a folder in snapshot {short}: restore it by hand if needed"),
                0,
            ),
            (Some(_), None) => step(
                path,
                UndoAction::Restore,
                format!("brought back from snapshot {short}"),
                0,
            ),
            (Some(_), Some(st)) if st.kind == NodeKind::Dir => step(
                path,
                UndoAction::Leave,
                "a folder is there now: left as it is".into(),
                0,
            ),
            (Some(_), Some(st)) => match t.last_ms {
                None => step(
                    path,
                    UndoAction::Leave,
                    "made again since: left as it is".into(),
                    0,
                ),
                Some(last) if mtime_ms(&st) > last => step(
                    path,
                    UndoAction::Leave,
                    "changed again since: left as it is".into(),
                    0,
                ),
                Some(_) => step(
                    path,
                    UndoAction::Restore,
                    format!("replaced by its version in snapshot {short}"),
                    0,
                ),
            },
        };
        steps.insert(path, s);
    }
    for (path, m) in &undo.remove {
        if steps
            .get(path.as_str())
            .is_some_and(|s| s.action == UndoAction::Restore)
        {
            continue; // the restore replaces it
        }
        if let Some(from) = &m.from {
            let back = steps
                .get(from.as_str())
                .is_some_and(|s| s.action == UndoAction::Restore);
            if !back && folders.stat(from).is_none() {
                steps.insert(
                    path,
                    step(
                        path,
                        UndoAction::Leave,
                        format!("the only copy of {from}, which cannot be brought back: kept"),
                        0,
                    ),
                );
                continue;
            }
        }
        let Some(st) = folders.stat(path) else {
            continue; // gone already
        };
        let s = if st.kind == NodeKind::Dir {
            step(
                path,
                UndoAction::Leave,
                "a folder is there now: left as it is".into(),
                0,
            )
        } else if mtime_ms(&st) > m.last_ms {
            step(
                path,
                UndoAction::Leave,
                "changed again since: left as it is".into(),
                0,
            )
        } else {
            let why = match &m.from {
                Some(from) => format!("renamed copy of {from}"),
                None => "made by the recorded changes".into(),
            };
            step(path, UndoAction::Remove, why, m.last_ms)
        };
        steps.insert(path, s);
    }
    Ok(UndoPlan {
        snapshot: snap.clone(),
        root: root.to_path_buf(),
        steps: steps.into_values().collect(),
    })
}

/// Undoes according to `plan`: what it replaces or removes saved first in a `pre-restore`
/// snapshot; entries written owned by `share_owner` when given (see
/// [`crate::RestorePlan::for_share`]).
pub fn undo(
    repo: &Repository,
    plan: &UndoPlan,
    share_owner: Option<(u32, u32)>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<UndoReport> {
    let mut report = UndoReport::default();
    let restores = plan.paths(UndoAction::Restore);
    let removes: Vec<PathBuf> = plan
        .paths(UndoAction::Remove)
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if !restores.is_empty() {
        let opts = RestoreOptions {
            paths: restores,
            target: crate::restore::Target::Dir(plan.root.clone()),
            overwrite: Overwrite::Always,
            threads: 0,
        };
        let mut rplan = plan_restore(repo, &plan.snapshot, &opts)?;
        if let Some((uid, gid)) = share_owner {
            rplan.for_share(uid, gid);
        }
        rplan.also_save(removes);
        let r = restore(repo, &rplan, 0, progress, cancel)?;
        report.restored = r.created + r.replaced + r.metadata;
        report.bytes_written = r.bytes_written;
        report.pre_restore = r.pre_restore;
        report.warnings = r.warnings;
    } else if !removes.is_empty() {
        report.pre_restore = Some(save_before_change(repo, &plan.root, removes, cancel)?);
    }
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    let root_fd = t::open_root(&plan.root)?;
    let mut folders = Folders {
        root: &root_fd,
        last: None,
    };
    for s in plan.steps.iter().filter(|s| s.action == UndoAction::Remove) {
        let (dir, name) = split(&s.path);
        let Some(fd) = folders.open(dir) else {
            continue; // its folder is gone: so is it
        };
        let name = OsStr::new(name);
        // Checked again on the very entry about to go: not a folder, not changed since.
        match t::stat(fd, name) {
            Ok(Some(st)) if st.kind != NodeKind::Dir && mtime_ms(&st) <= s.last_ms => {}
            Ok(Some(_)) => {
                report
                    .warnings
                    .push((s.path.clone(), "changed during the rollback: kept".into()));
                continue;
            }
            Ok(None) => continue,
            Err(e) => {
                report.warnings.push((s.path.clone(), e.to_string()));
                continue;
            }
        }
        match t::remove_file(fd, name) {
            Ok(true) => report.removed += 1,
            Ok(false) => report.warnings.push((
                s.path.clone(),
                "a folder is there now: left as it is".into(),
            )),
            Err(e) => report.warnings.push((s.path.clone(), e.to_string())),
        }
    }
    Ok(report)
}
