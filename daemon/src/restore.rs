//! Restore: plan, then execute. The plan says, for every entry of the selection, what will
//! happen at the target (create, replace, update metadata, leave as is, skip); `--dry-run`
//! prints it and stops. Executing never destroys data and never leaves the target:
//!
//! ```text
//! plan:   resolve each selected path in the snapshot; walk the target with directory
//!         descriptors (openat, O_NOFOLLOW) comparing what is there with the snapshot:
//!           nothing there               -> Create
//!           same kind, same size+mtime  -> Unchanged (Always: Replace), or Metadata when
//!                                          mode/owner/group differ
//!           different                   -> Replace (Never: SkipExisting)
//!           an existing directory       -> Merge (recurse)
//!         entry names are checked: `..`, `/`, NUL or empty names are Refused
//! save:   everything Replace or Metadata would change is first backed up into a new
//!         snapshot tagged `pre-restore` (same root as the target), so it can be restored back
//! apply:  the plan's directories in order, each read back from the snapshot's tree: its
//!         subdirectories and other non-file entries made on this thread (mkdirat), then its
//!         files handed to the worker threads (groups of 256, bounded queue): written to a
//!         temporary name (O_CREAT|O_EXCL|O_NOFOLLOW; the final name when nothing was there),
//!         holes for zero blocks, owner/xattrs/mode/mtime on the descriptor, then renameat
//!         over the final name (from a remote store, the files of a batch are created
//!         first and written pack by pack, each pack asked for once: `by_pack`); hard links
//!         (same inode in the snapshot) are linked to the first restored copy; directory
//!         metadata last, deepest first
//! ```
//! The plan holds 8 bytes per entry (its position in its directory's tree and its action)
//! and one path per directory: a restore's memory does not follow the number of files.
//! Every directory is reached from the target root by `openat` with `O_NOFOLLOW`, so a
//! symlink found in the target (planted, or swapped in during the restore) is never followed.

use crate::backup::{backup, BackupOptions, ParentChoice};
use crate::error::{Error, IoContext, Result};
use crate::id::Id;
use crate::lock::{LockKind, RepoLock};
use crate::platform::target::{self as t, Dir};
use crate::progress::{CancelToken, NoProgress, Progress};
use crate::repo::{BlobBuf, Repository};
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod by_pack;

/// What the file workers report: bytes written, failures (path, why), the actions of the
/// files restored.
type Results = (u64, Vec<(String, String)>, Vec<Action>);

/// What to do with entries that already exist at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Leave every existing entry as it is.
    Never,
    /// Replace entries that differ from the snapshot (size, mtime or kind), after saving them.
    #[default]
    IfChanged,
    /// Replace every existing entry, after saving it.
    Always,
}

/// Where to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// At the snapshot's original location.
    InPlace,
    /// Under this directory (created if missing), at the same relative paths.
    Dir(PathBuf),
}

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Paths inside the snapshot (relative or original absolute); empty for everything.
    pub paths: Vec<String>,
    /// Where.
    pub target: Target,
    /// What to do with existing entries.
    pub overwrite: Overwrite,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

/// The planned fate of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing there: created.
    Create,
    /// Something different there: saved in the pre-restore snapshot, then replaced.
    Replace,
    /// Same content, different mode/owner: saved, then metadata restored.
    Metadata,
    /// Already identical: left.
    Unchanged,
    /// Exists and `--overwrite never`: left.
    SkipExisting,
    /// An existing directory: kept, its entries restored into it.
    Merge,
    /// A leading directory that exists: left as is.
    Leading,
    /// An unsafe name in the snapshot (`..`, `/`…): refused.
    Refuse,
    /// Cannot be restored (a socket).
    Unsupported,
}

impl Action {
    /// A word for listings.
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Metadata => "metadata",
            Action::Unchanged => "unchanged",
            Action::SkipExisting => "skip (exists)",
            Action::Merge => "merge",
            Action::Leading => "exists",
            Action::Refuse => "refused (unsafe name)",
            Action::Unsupported => "unsupported",
        }
    }

    fn changes_existing(self) -> bool {
        matches!(self, Action::Replace | Action::Metadata)
    }

    fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Replace | Action::Metadata)
    }
}

/// One entry of a plan, as read back from the snapshot's tree (see [`RestorePlan::for_each_dir`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedEntry {
    /// Path relative to the target root (lossy text for display).
    pub path: String,
    /// What the snapshot has there.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// What will happen.
    pub action: Action,
    /// Size of the content to write (files).
    pub size: u64,
    #[serde(skip)]
    rel: PathBuf,
    #[serde(skip)]
    node: Node,
    /// (device, inode) of what was at the target when planning: metadata is only ever changed
    /// through a descriptor on that very entry.
    #[serde(skip)]
    existing: Option<(u64, u64)>,
}

/// A planned entry as the plan holds it: 8 bytes; the rest is in the snapshot's tree.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Its position in the directory's tree.
    node: u32,
    action: Action,
    /// Still in the plan ([`RestorePlan::retain`] may drop it).
    kept: bool,
}

/// Planned entries of one directory of the snapshot.
#[derive(Debug, Clone)]
struct PlanDir {
    /// The directory holding them, relative to the target root.
    rel: PathBuf,
    /// The snapshot's tree listing them.
    tree: Id,
    slots: Vec<Slot>,
    /// Bytes of file content the kept slots write.
    bytes: u64,
}

/// What a restore will do.
///
/// Memory: 8 bytes a planned entry and one path per directory (plus the (device, inode) of
/// entries already at the target); everything else is read back from the snapshot's trees,
/// one directory at a time, when the plan is listed or executed.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// The snapshot restored from.
    pub snapshot: Snapshot,
    /// The directory entries are restored under.
    pub target_root: PathBuf,
    /// Parents before children.
    dirs: Vec<PlanDir>,
    /// (directory, slot) -> (device, inode) of what is at the target.
    existing: HashMap<(u32, u32), (u64, u64)>,
    /// Owner and group for a restore into a managed share ([`RestorePlan::for_share`]).
    share_owner: Option<(u32, u32)>,
    /// Paths saved in the pre-restore snapshot besides those the plan replaces
    /// ([`RestorePlan::also_save`]).
    also_save: Vec<PathBuf>,
}

impl RestorePlan {
    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.dirs
            .iter()
            .flat_map(|d| d.slots.iter())
            .filter(|s| s.kept)
    }

    /// How many entries get `action`.
    pub fn count(&self, action: Action) -> usize {
        self.slots().filter(|s| s.action == action).count()
    }

    /// How many entries the plan has.
    pub fn len(&self) -> usize {
        self.slots().count()
    }

    /// Whether the plan has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each directory's entries in plan order (parents before children), read
    /// from the snapshot's trees one directory at a time.
    pub fn for_each_dir(
        &self,
        repo: &Repository,
        mut f: impl FnMut(Vec<PlannedEntry>) -> Result<()>,
    ) -> Result<()> {
        for (di, _) in self.dirs.iter().enumerate() {
            let entries = self.dir_entries(repo, di)?;
            if !entries.is_empty() {
                f(entries)?;
            }
        }
        Ok(())
    }

    /// Every entry (all in memory: for listings of a plan).
    pub fn entries(&self, repo: &Repository) -> Result<Vec<PlannedEntry>> {
        let mut out = Vec::new();
        self.for_each_dir(repo, |mut e| {
            out.append(&mut e);
            Ok(())
        })?;
        Ok(out)
    }

    fn dir_entries(&self, repo: &Repository, di: usize) -> Result<Vec<PlannedEntry>> {
        let d = &self.dirs[di];
        if !d.slots.iter().any(|s| s.kept) {
            return Ok(Vec::new());
        }
        let mut nodes: Vec<Option<Node>> = repo
            .read_tree(&d.tree)?
            .nodes
            .into_iter()
            .map(Some)
            .collect();
        let mut out = Vec::with_capacity(d.slots.len());
        for (si, s) in d.slots.iter().enumerate() {
            if !s.kept {
                continue;
            }
            let Some(mut node) = nodes.get_mut(s.node as usize).and_then(Option::take) else {
                return Err(Error::Invalid(format!(
                    "the snapshot's tree {} changed since the restore was planned",
                    d.tree.short()
                )));
            };
            let rel = match node.checked_name() {
                Some(name) => d.rel.join(name),
                None => d
                    .rel
                    .join(node.name.to_string_lossy().replace('/', "\u{2215}")),
            };
            if let Some((uid, gid)) = self.share_owner {
                owned_by_share(&mut node, uid, gid);
            }
            out.push(PlannedEntry {
                path: rel.to_string_lossy().into_owned(),
                kind: node.kind,
                action: s.action,
                size: node.size,
                existing: self.existing.get(&(di as u32, si as u32)).copied(),
                rel,
                node,
            });
        }
        Ok(out)
    }

    /// Keeps only the entries `keep(path, kind)` accepts (path relative to the target root),
    /// with everything below a dropped directory: a member's restore never touches, nor names,
    /// what they may not read.
    pub fn retain(
        &mut self,
        repo: &Repository,
        keep: impl Fn(&str, NodeKind) -> bool,
    ) -> Result<()> {
        let mut dropped: Vec<PathBuf> = Vec::new();
        for di in 0..self.dirs.len() {
            if dropped.iter().any(|d| self.dirs[di].rel.starts_with(d)) {
                for s in &mut self.dirs[di].slots {
                    s.kept = false;
                }
                self.dirs[di].bytes = 0;
                continue;
            }
            let entries = self.dir_entries(repo, di)?;
            let kept: Vec<usize> = self.dirs[di]
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kept)
                .map(|(i, _)| i)
                .collect();
            for (si, e) in kept.into_iter().zip(entries) {
                if dropped.iter().any(|d| e.rel.starts_with(d)) || !keep(&e.path, e.kind) {
                    self.dirs[di].slots[si].kept = false;
                    if e.action.writes() && e.kind == NodeKind::File {
                        self.dirs[di].bytes -= e.size;
                    }
                    if e.kind == NodeKind::Dir {
                        dropped.push(e.rel);
                    }
                }
            }
        }
        Ok(())
    }

    /// The first entry the restore would write or change (create, replace, metadata, or a
    /// merged directory's metadata) that `may_write(path, kind)` refuses.
    pub fn first_unwritable(
        &self,
        repo: &Repository,
        may_write: impl Fn(&str, NodeKind) -> bool,
    ) -> Result<Option<String>> {
        let mut found = None;
        for di in 0..self.dirs.len() {
            if !self.dirs[di]
                .slots
                .iter()
                .any(|s| s.kept && (s.action.writes() || s.action == Action::Merge))
            {
                continue;
            }
            found = self
                .dir_entries(repo, di)?
                .into_iter()
                .filter(|e| e.action.writes() || e.action == Action::Merge)
                .find(|e| !may_write(&e.path, e.kind))
                .map(|e| e.path);
            if found.is_some() {
                break;
            }
        }
        Ok(found)
    }

    /// For a restore into a managed share: entries are written owned by the share's owner and
    /// group, without setuid/setgid bits on files and without the snapshot's ACLs (the policy's
    /// rights of today are applied right after). No restored file is ever, even for a moment,
    /// owned by someone the policy does not name, or privileged.
    pub fn for_share(&mut self, uid: u32, gid: u32) {
        self.share_owner = Some((uid, gid));
    }

    /// Saves `paths` (relative to the target root) in the pre-restore snapshot too: what the
    /// caller will remove once the restore is done (a rollback's renamed copies).
    pub fn also_save(&mut self, paths: Vec<PathBuf>) {
        self.also_save = paths;
    }

    /// Bytes of file content to write.
    pub fn bytes_to_write(&self) -> u64 {
        self.dirs.iter().map(|d| d.bytes).sum()
    }
}

/// What a restore did. An entry that could not be restored counts only among `warnings`.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Entries created.
    pub created: usize,
    /// Entries replaced.
    pub replaced: usize,
    /// Entries whose metadata was restored.
    pub metadata: usize,
    /// Entries left as they were (identical, or existing with `never`).
    pub left: usize,
    /// Bytes of file content written.
    pub bytes_written: u64,
    /// The snapshot holding what was replaced, if anything was.
    pub pre_restore: Option<Snapshot>,
    /// Entries that could not be restored, with why.
    pub warnings: Vec<(String, String)>,
}

impl RestoreReport {
    /// Counts an entry restored by `action`.
    fn count(&mut self, action: Action) {
        match action {
            Action::Create => self.created += 1,
            Action::Replace => self.replaced += 1,
            Action::Metadata => self.metadata += 1,
            _ => {}
        }
    }
}

/// Computes what restoring `opts` from `snap` would do, changing nothing.
pub fn plan_restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    let target_root = match &opts.target {
        Target::InPlace => PathBuf::from(snap.root()),
        Target::Dir(d) => std::path::absolute(d).at(d)?,
    };
    let root_fd = match t::open_root(&target_root) {
        Ok(fd) => Some(fd),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let selections: Vec<String> = if opts.paths.is_empty() {
        vec![String::new()]
    } else {
        opts.paths.clone()
    };
    let mut planner = Planner {
        repo,
        overwrite: opts.overwrite,
        dirs: Vec::new(),
        existing: HashMap::new(),
        // Only selections can overlap: one selection never plans a path twice.
        seen: (selections.len() > 1).then(HashSet::new),
        leading: HashMap::new(),
        trees: HashMap::new(),
    };
    for sel in &selections {
        let comps = repo.relative_components(snap, sel)?;
        if comps.is_empty() {
            planner.plan_children(root_fd.as_ref(), Path::new(""), &snap.tree)?;
            continue;
        }
        // Leading directories: created if missing, left alone if present.
        let mut dir_fd = root_fd.as_ref().map(t::dup).transpose().at(&target_root)?;
        let mut tree_id = snap.tree;
        let mut rel = PathBuf::new();
        let missing = || Error::PathNotInSnapshot {
            path: sel.clone(),
            snapshot: snap.id.short(),
            root: snap.root().to_string(),
        };
        for (i, c) in comps.iter().enumerate() {
            let tree = planner.selection_tree(&tree_id)?;
            let pos = tree
                .nodes
                .binary_search_by(|n| n.name.0.as_slice().cmp(c.as_bytes()))
                .map_err(|_| missing())?;
            let node = tree.nodes[pos].clone();
            let pd = planner.leading_dir(&rel, tree_id);
            if i + 1 == comps.len() {
                if let Some(level) = planner.plan_one(dir_fd.as_ref(), pd, &rel, pos, node)? {
                    planner.drain(vec![level])?;
                }
                break;
            }
            let name = OsString::from(c);
            rel.push(&name);
            let next = match &dir_fd {
                Some(fd) => match t::enter(fd, &name) {
                    Ok(child) => Some(child),
                    Err(e) if e.kind() == ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(Error::io(
                            target_root.join(&rel),
                            std::io::Error::other(format!(
                                "not a directory one can restore into ({e}); move it away or restore with --to"
                            )),
                        ))
                    }
                },
                None => None,
            };
            if planner.first_time(&rel) {
                let action = if next.is_some() {
                    Action::Leading
                } else {
                    Action::Create
                };
                planner.push(pd, pos, &node, action, None);
            }
            tree_id = match (node.kind, node.subtree) {
                (NodeKind::Dir, Some(t)) => t,
                _ => return Err(missing()),
            };
            dir_fd = next;
        }
    }
    Ok(RestorePlan {
        snapshot: snap.clone(),
        target_root,
        dirs: planner.dirs,
        existing: planner.existing,
        share_owner: None,
        also_save: Vec::new(),
    })
}

/// A directory being planned: its target descriptor (when it exists), its path, its entries
/// in the plan, and the snapshot's entries still to plan in it.
struct PlanLevel {
    fd: Option<Dir>,
    rel: PathBuf,
    dir: usize,
    nodes: std::iter::Enumerate<std::vec::IntoIter<Node>>,
    /// Names planned here: a (crafted) tree listing a name twice gets it planned once.
    names: HashSet<Vec<u8>>,
}

struct Planner<'r> {
    repo: &'r Repository,
    overwrite: Overwrite,
    dirs: Vec<PlanDir>,
    existing: HashMap<(u32, u32), (u64, u64)>,
    /// Paths planned, as bytes, when several selections could overlap.
    seen: Option<HashSet<Vec<u8>>>,
    /// With several selections: the directories on their way, planned once (a rollback's
    /// 10,000 files in 100 folders make 100 directories of the plan, not 30,000)...
    leading: HashMap<PathBuf, usize>,
    /// ...and their trees, read once.
    trees: HashMap<Id, std::rc::Rc<crate::tree::Tree>>,
}

impl Planner<'_> {
    fn new_dir(&mut self, rel: &Path, tree: Id) -> usize {
        self.dirs.push(PlanDir {
            rel: rel.to_path_buf(),
            tree,
            slots: Vec::new(),
            bytes: 0,
        });
        self.dirs.len() - 1
    }

    /// The plan's directory for `rel`, on the way to a selected path.
    fn leading_dir(&mut self, rel: &Path, tree: Id) -> usize {
        if self.seen.is_none() {
            return self.new_dir(rel, tree);
        }
        if let Some(d) = self.leading.get(rel) {
            if self.dirs[*d].tree == tree {
                return *d;
            }
        }
        let d = self.new_dir(rel, tree);
        self.leading.insert(rel.to_path_buf(), d);
        d
    }

    /// A tree on the way to a selected path.
    fn selection_tree(&mut self, id: &Id) -> Result<std::rc::Rc<crate::tree::Tree>> {
        if self.seen.is_none() {
            return Ok(std::rc::Rc::new(self.repo.read_tree(id)?));
        }
        if let Some(t) = self.trees.get(id) {
            return Ok(t.clone());
        }
        let t = std::rc::Rc::new(self.repo.read_tree(id)?);
        self.trees.insert(*id, t.clone());
        Ok(t)
    }

    fn first_time(&mut self, rel: &Path) -> bool {
        match &mut self.seen {
            Some(seen) => seen.insert(rel.as_os_str().as_encoded_bytes().to_vec()),
            None => true,
        }
    }

    fn push(
        &mut self,
        dir: usize,
        pos: usize,
        node: &Node,
        action: Action,
        existing: Option<(u64, u64)>,
    ) {
        let d = &mut self.dirs[dir];
        let slot = d.slots.len() as u32;
        d.slots.push(Slot {
            node: pos as u32,
            action,
            kept: true,
        });
        if action.writes() && node.kind == NodeKind::File {
            d.bytes += node.size;
        }
        if let Some(x) = existing {
            self.existing.insert((dir as u32, slot), x);
        }
    }

    fn level(&mut self, fd: Option<Dir>, rel: PathBuf, tree: &Id) -> Result<PlanLevel> {
        let nodes = self.repo.read_tree(tree)?.nodes;
        let dir = self.new_dir(&rel, *tree);
        // One slot per node at most: allocated once, exactly.
        self.dirs[dir].slots.reserve_exact(nodes.len());
        Ok(PlanLevel {
            fd,
            dir,
            rel,
            nodes: nodes.into_iter().enumerate(),
            names: HashSet::new(),
        })
    }

    fn plan_children(&mut self, dir: Option<&Dir>, rel: &Path, tree: &Id) -> Result<()> {
        let fd = dir.map(t::dup).transpose().at(rel)?;
        let level = self.level(fd, rel.to_path_buf(), tree)?;
        self.drain(vec![level])
    }

    /// Plans every level on `stack` and below, depth first, without recursion (a 10,000-level
    /// tree costs heap and one descriptor per merged level, never stack).
    fn drain(&mut self, mut stack: Vec<PlanLevel>) -> Result<()> {
        while let Some(top) = stack.last_mut() {
            let Some((pos, node)) = top.nodes.next() else {
                stack.pop();
                continue;
            };
            if !top.names.insert(node.name.0.clone()) {
                continue;
            }
            let rel = top.rel.clone();
            let dir = top.dir;
            if let Some(level) = self.plan_one(top.fd.as_ref(), dir, &rel, pos, node)? {
                stack.push(level);
            }
        }
        Ok(())
    }

    /// Plans one node (at `pos` in the tree of plan directory `pd`); returns the level to plan
    /// below it, if any.
    fn plan_one(
        &mut self,
        dir: Option<&Dir>,
        pd: usize,
        parent_rel: &Path,
        pos: usize,
        node: Node,
    ) -> Result<Option<PlanLevel>> {
        let Some(name) = node.checked_name().map(OsStr::to_os_string) else {
            self.push(pd, pos, &node, Action::Refuse, None);
            return Ok(None);
        };
        let rel = parent_rel.join(&name);
        if !self.first_time(&rel) {
            return Ok(None);
        }
        let existing = match dir {
            Some(fd) => t::stat(fd, &name).at(&rel)?,
            None => None,
        };
        let action = match (&existing, node.kind) {
            (_, kind) if !t::supported(kind) => Action::Unsupported,
            (None, _) => Action::Create,
            (Some(st), kind) => {
                let ekind = st.kind;
                let differs = ekind != kind
                    || self.overwrite == Overwrite::Always
                    || (kind == NodeKind::File
                        && (st.size != node.size || st.mtime_ns != node.mtime_ns))
                    || (kind == NodeKind::Symlink
                        && !dir.is_some_and(|d| t::same_link(d, &name, &node)));
                let metadata_differs = st.metadata_differs(&node, t::can_chown());
                if kind == NodeKind::Dir && ekind == NodeKind::Dir {
                    Action::Merge
                } else if self.overwrite == Overwrite::Never {
                    Action::SkipExisting
                } else if differs {
                    Action::Replace
                } else if metadata_differs {
                    Action::Metadata
                } else {
                    Action::Unchanged
                }
            }
        };
        let subtree = node.subtree.filter(|_| node.kind == NodeKind::Dir);
        let id = existing.as_ref().map(|st| st.id);
        self.push(pd, pos, &node, action, id);
        let Some(sub) = subtree else {
            return Ok(None);
        };
        let fd = match action {
            Action::Merge => dir.map(|fd| t::enter(fd, &name)).transpose().at(&rel)?,
            Action::Create | Action::Replace => None,
            _ => return Ok(None),
        };
        self.level(fd, rel, &sub).map(Some)
    }
}

/// A node as restored into a managed share (see [`RestorePlan::for_share`]).
fn owned_by_share(node: &mut Node, uid: u32, gid: u32) {
    node.uid = uid;
    node.gid = gid;
    if node.kind != NodeKind::Dir {
        node.mode &= !0o6000;
    }
    node.xattrs
        .retain(|x| !x.name.0.starts_with(b"system.posix_acl_"));
    // Windows: the share's inherited rights, not the snapshot's.
    node.security = None;
}

/// A directory whose metadata is set at the end of a restore (one per directory restored:
/// kept small).
struct DirMeta {
    rel: PathBuf,
    /// Mode, owner, times and extended attributes to set (name and content dropped).
    node: Node,
    /// (device, inode) it must still be: the one merged into, or the one just made.
    expect: Option<(u64, u64)>,
}

impl DirMeta {
    fn of(e: PlannedEntry, expect: Option<(u64, u64)>) -> DirMeta {
        let mut node = e.node;
        node.name = crate::tree::Bytes(Vec::new());
        node.user = None;
        node.group = None;
        DirMeta {
            rel: e.rel,
            node,
            expect,
        }
    }
}

/// Saves `paths` (relative to `root`) in a new snapshot tagged `pre-restore`, before they are
/// replaced or removed; refuses when any of them could not be saved.
pub(crate) fn save_before_change(
    repo: &Repository,
    root: &Path,
    paths: Vec<PathBuf>,
    cancel: &CancelToken,
) -> Result<Snapshot> {
    let opts = BackupOptions {
        tags: vec![crate::snapshot::PRE_RESTORE_TAG.into()],
        parent: ParentChoice::Auto,
        only: Some(paths),
        ..BackupOptions::default()
    };
    let saved = backup(repo, root, &opts, &NoProgress, cancel)?;
    if let Some(w) = saved.warnings.first() {
        // Refuse to replace what could not be saved.
        return Err(Error::Invalid(format!(
            "{}: could not be saved before being replaced ({}); nothing was restored",
            w.path.display(),
            w.message
        )));
    }
    Ok(saved.snapshot)
}

/// Files of at least this many blobs (16 MiB on average) are read on a second thread while
/// they are written.
const PIPELINE_FROM_BLOBS: usize = 16;

/// Files of one directory handed to a worker at a time, at most this many.
const FILES_PER_GROUP: usize = 256;

/// Restores according to `plan` (see the module documentation for the guarantees).
pub fn restore(
    repo: &Repository,
    plan: &RestorePlan,
    threads: usize,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<RestoreReport> {
    repo.require_full_index("restore")?;
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Shared, "restore")?;
    let mut report = RestoreReport::default();
    // 1. Save whatever would be changed.
    let mut changed: Vec<PathBuf> = Vec::new();
    if plan.slots().any(|s| s.action.changes_existing()) {
        plan.for_each_dir(repo, |entries| {
            changed.extend(
                entries
                    .into_iter()
                    .filter(|e| e.action.changes_existing())
                    .map(|e| e.rel),
            );
            Ok(())
        })?;
    }
    changed.extend(plan.also_save.iter().cloned());
    if !changed.is_empty() {
        report.pre_restore = Some(save_before_change(
            repo,
            &plan.target_root,
            changed,
            cancel,
        )?);
    }
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }

    // 2. Directories and non-file entries in plan order on this thread; each directory's files
    //    to the workers as soon as the directory exists.
    std::fs::create_dir_all(&plan.target_root).at(&plan.target_root)?;
    let root = t::open_root(&plan.target_root)?;
    let chown = t::can_chown();
    // From a remote store, files are written pack by pack (see `by_pack`), by this many
    // requests at once.
    let remote = repo.backend().is_remote();
    let threads = match threads {
        0 if remote => by_pack::STREAMS,
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    progress.set_total(plan.len() as u64, plan.bytes_to_write());
    let mut links: Vec<(PlannedEntry, PathBuf)> = Vec::new();
    let mut first_of_inode: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut dirs_meta: Vec<DirMeta> = Vec::new();
    let results: Mutex<Results> = Mutex::new((0, Vec::new(), Vec::new()));
    let walked = std::thread::scope(|s| -> Result<()> {
        // Bounded: the plan's directories are read back from the snapshot only as fast as
        // the workers write their files.
        let (group_tx, group_rx) =
            crossbeam_channel::bounded::<(PathBuf, Vec<PlannedEntry>)>(threads * 2);
        if remote {
            let group_rx = group_rx.clone();
            let shared = by_pack::Shared {
                repo,
                root: &root,
                chown,
                streams: threads,
                results: &results,
                progress,
                cancel,
            };
            s.spawn(move || by_pack::run(&shared, group_rx));
        }
        for _ in 0..if remote { 0 } else { threads } {
            let group_rx = group_rx.clone();
            let (root, results) = (&root, &results);
            s.spawn(move || {
                let mut zero_blobs: HashSet<Id> = HashSet::new();
                let mut buf = BlobBuf::default();
                for (dir_rel, entries) in group_rx {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let dir = match open_beneath(root, &dir_rel) {
                        Ok(d) => d,
                        Err(err) => {
                            let mut r = results.lock().expect("lock");
                            for e in entries {
                                r.1.push((e.path.clone(), err.to_string()));
                            }
                            continue;
                        }
                    };
                    for e in entries {
                        if cancel.is_cancelled() {
                            return;
                        }
                        // A failure (a damaged blob, a full disk) names the file; the others
                        // are still restored.
                        match restore_file(
                            repo,
                            &dir,
                            &e,
                            chown,
                            &mut zero_blobs,
                            &mut buf,
                            progress,
                        ) {
                            Ok(n) => {
                                let mut r = results.lock().expect("lock");
                                r.0 += n;
                                r.2.push(e.action);
                            }
                            Err(err) => results
                                .lock()
                                .expect("lock")
                                .1
                                .push((e.path.clone(), err.to_string())),
                        }
                        progress.add_file(&e.rel);
                    }
                }
            });
        }
        drop(group_rx);
        let mut walk = DirWalk::new(&root);
        let send = |files: Vec<PlannedEntry>| -> Result<()> {
            let dir = parent_of(&files[0].rel);
            group_tx.send((dir, files)).map_err(|_| Error::Interrupted)
        };
        let walked = plan.for_each_dir(repo, |entries| {
            if cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let mut files: Vec<PlannedEntry> = Vec::new();
            for e in entries {
                match e.action {
                    Action::Unchanged | Action::SkipExisting | Action::Leading => {
                        report.left += 1;
                        continue;
                    }
                    Action::Refuse => {
                        report.warnings.push((
                            e.path.clone(),
                            "unsafe name in the snapshot; refused".into(),
                        ));
                        continue;
                    }
                    Action::Unsupported => {
                        report.warnings.push((
                            e.path.clone(),
                            format!("a {} cannot be restored", e.kind.word()),
                        ));
                        continue;
                    }
                    Action::Merge => {
                        let expect = e.existing;
                        dirs_meta.push(DirMeta::of(e, expect));
                        continue;
                    }
                    Action::Create | Action::Replace | Action::Metadata => {}
                }
                if e.kind == NodeKind::File {
                    if e.node.links > 1 && e.action != Action::Metadata {
                        let key = (e.node.device, e.node.inode);
                        if let Some(first) = first_of_inode.get(&key) {
                            let first = first.clone();
                            links.push((e, first));
                            continue;
                        }
                        first_of_inode.insert(key, e.rel.clone());
                    }
                    files.push(e);
                    if files.len() >= FILES_PER_GROUP {
                        send(std::mem::take(&mut files))?;
                    }
                    continue;
                }
                let result = walk
                    .dir(&parent_of(&e.rel))
                    .and_then(|dir| restore_non_file(dir, &e, chown));
                if let Err(err) = result {
                    report.warnings.push((e.path.clone(), err.to_string()));
                    continue;
                }
                report.count(e.action);
                if e.kind == NodeKind::Dir {
                    // The directory just made: its metadata goes to it, not to one swapped in
                    // later.
                    let made = walk
                        .dir(&parent_of(&e.rel))
                        .and_then(|d| t::stat(d, file_name(&e.rel)).at(&e.rel));
                    let expect = made.ok().flatten().map(|st| st.id);
                    dirs_meta.push(DirMeta::of(e, expect));
                }
            }
            if !files.is_empty() {
                send(files)?;
            }
            Ok(())
        });
        // Closing the queue lets the workers finish what was sent.
        drop(group_tx);
        walked
    });
    let (bytes, warnings, restored) = results.into_inner().expect("lock");
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    walked?;
    report.bytes_written = bytes;
    report.warnings.extend(warnings);
    for action in restored {
        report.count(action);
    }

    // 3. Hard links to the first restored copy.
    for (e, first) in &links {
        match restore_link(&root, e, first) {
            Ok(()) => report.count(e.action),
            Err(err) => report.warnings.push((e.path.clone(), err.to_string())),
        }
    }
    // 4. Directory metadata, deepest first (creating entries changed their mtime).
    let mut walk = DirWalk::new(&root);
    for d in dirs_meta.iter().rev() {
        let r = walk.dir(&d.rel).and_then(|fd| {
            same_entry(t::meta_of(fd), d.expect, &d.rel)?;
            t::apply_meta(fd, &d.node, chown).at(&d.rel)
        });
        if let Err(err) = r {
            report
                .warnings
                .push((d.rel.to_string_lossy().into_owned(), err.to_string()));
        }
    }
    progress.finish();
    Ok(report)
}

/// The directories of the target along the current path, kept open: entries visited in plan
/// order (or its reverse) reach their directory in amortised O(1) opens, whatever the depth,
/// each directory entered by name from its parent, never through a link.
struct DirWalk<'a> {
    root: &'a Dir,
    /// (path, handle), each entry a child of the one before.
    stack: Vec<(PathBuf, Dir)>,
}

/// Whether `dir` (a relative path) is `rel` or one of its ancestors, component by component.
fn is_ancestor(dir: &Path, rel: &Path) -> bool {
    rel.starts_with(dir)
}

impl<'a> DirWalk<'a> {
    fn new(root: &'a Dir) -> DirWalk<'a> {
        DirWalk {
            root,
            stack: Vec::new(),
        }
    }

    /// The directory `rel` (relative to the root; empty for the root itself).
    fn dir(&mut self, rel: &Path) -> Result<&Dir> {
        while let Some((p, _)) = self.stack.last() {
            if is_ancestor(p, rel) {
                break;
            }
            self.stack.pop();
        }
        let done = self.stack.last().map_or(0, |(p, _)| p.components().count());
        for c in rel.components().skip(done) {
            let name = c.as_os_str();
            let parent = self.stack.last().map(|(_, fd)| fd).unwrap_or(self.root);
            let fd = t::enter(parent, name).map_err(|e| {
                Error::io(
                    rel,
                    std::io::Error::other(format!(
                        "cannot enter {name:?} without following a link ({e})"
                    )),
                )
            })?;
            let p = match self.stack.last() {
                Some((p, _)) => p.join(name),
                None => PathBuf::from(name),
            };
            self.stack.push((p, fd));
        }
        Ok(self.stack.last().map(|(_, fd)| fd).unwrap_or(self.root))
    }
}

fn parent_of(rel: &Path) -> PathBuf {
    rel.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn file_name(rel: &Path) -> &OsStr {
    rel.file_name().expect("planned entries have a name")
}

/// Opens `rel` below `root`, one component at a time, never following a symlink.
fn open_beneath(root: &Dir, rel: &Path) -> Result<Dir> {
    let mut fd = t::dup(root).at(rel)?;
    for c in rel.components() {
        fd = t::enter(&fd, c.as_os_str()).map_err(|e| {
            Error::io(
                rel,
                std::io::Error::other(format!(
                    "cannot enter {:?} without following a link ({e})",
                    c.as_os_str()
                )),
            )
        })?;
    }
    Ok(fd)
}

pub(crate) fn temp_name(name: &OsStr) -> OsString {
    let mut raw = [0u8; 6];
    getrandom::getrandom(&mut raw).expect("random");
    let mut t = OsString::from(".sk-restore-");
    t.push(hex::encode(raw));
    t.push("-");
    // Keep temp names short enough for NAME_MAX.
    let n = name.to_string_lossy();
    t.push(n.chars().take(100).collect::<String>());
    t
}

/// Removes whatever is at `name` in `dir` (a directory with everything in it), never following
/// links, with an explicit stack (no recursion per level).
pub(crate) fn remove_at(dir: &Dir, name: &OsStr) -> std::io::Result<()> {
    if t::remove_file(dir, name)? {
        return Ok(());
    }
    let top = t::enter(dir, name)?;
    let names = t::names(&top)?;
    // (directory, names left in it, its own name in its parent)
    let mut stack: Vec<(Dir, Vec<OsString>, OsString)> = vec![(top, names, name.to_os_string())];
    while let Some((fd, names, _)) = stack.last_mut() {
        match names.pop() {
            Some(n) => {
                if !t::remove_file(&*fd, &n)? {
                    let sub = t::enter(&*fd, &n)?;
                    let inner = t::names(&sub)?;
                    stack.push((sub, inner, n));
                }
            }
            None => {
                // Its handle closed first (Windows deletes a folder once no handle is open).
                let (_, _, own) = stack.pop().expect("non-empty");
                let parent = stack.last().map(|(fd, _, _)| fd).unwrap_or(dir);
                t::remove_empty_dir(parent, &own)?;
            }
        }
    }
    Ok(())
}

/// Refuses to change an entry unless `meta` (what its open descriptor or handle says) is the
/// entry planned (`expect`: its device and inode, or volume and file index).
fn same_entry(
    meta: std::io::Result<t::Meta>,
    expect: Option<(u64, u64)>,
    rel: &Path,
) -> Result<()> {
    let Some(expect) = expect else {
        return Ok(());
    };
    if meta.at(rel)?.id == expect {
        Ok(())
    } else {
        Err(Error::io(
            rel,
            std::io::Error::other("replaced since the restore was planned; left as is"),
        ))
    }
}

/// Restores a directory, symlink, FIFO or device entry into `dir`, its parent.
fn restore_non_file(dir: &Dir, e: &PlannedEntry, chown: bool) -> Result<()> {
    let name = file_name(&e.rel);
    let node = &e.node;
    if e.action == Action::Metadata {
        return match node.kind {
            NodeKind::Dir => {
                let fd = t::enter(dir, name).at(&e.rel)?;
                same_entry(t::meta_of(&fd), e.existing, &e.rel)?;
                t::apply_meta(&fd, node, chown).at(&e.rel)
            }
            _ => t::apply_meta_special(dir, name, node, chown, e.existing).at(&e.rel),
        };
    }
    match node.kind {
        NodeKind::Dir => {
            if e.action == Action::Replace {
                remove_at(dir, name).at(&e.rel)?;
            }
            t::make_dir(dir, name).at(&e.rel)
        }
        NodeKind::Symlink | NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
            let tmp = temp_name(name);
            t::make_special(dir, &tmp, node, chown).at(&e.rel)?;
            replace_with(dir, &tmp, name, e)
        }
        NodeKind::File | NodeKind::Socket => Ok(()),
    }
}

/// Renames `tmp` over `name`; an existing directory there (kind changed) is removed first:
/// it was saved in the pre-restore snapshot.
fn replace_with(dir: &Dir, tmp: &OsStr, name: &OsStr, e: &PlannedEntry) -> Result<()> {
    match t::rename(dir, tmp, name) {
        Ok(()) => Ok(()),
        Err(err)
            if e.action == Action::Replace
                && matches!(
                    err.kind(),
                    ErrorKind::IsADirectory
                        | ErrorKind::DirectoryNotEmpty
                        | ErrorKind::AlreadyExists
                ) =>
        {
            remove_at(dir, name).at(&e.rel)?;
            t::rename(dir, tmp, name).at(&e.rel)
        }
        Err(err) => {
            let _ = t::remove_file(dir, tmp);
            Err(Error::io(&e.rel, err))
        }
    }
}

fn restore_file(
    repo: &Repository,
    dir: &Dir,
    e: &PlannedEntry,
    chown: bool,
    zero_blobs: &mut HashSet<Id>,
    buf: &mut BlobBuf,
    progress: &dyn Progress,
) -> Result<u64> {
    let name = file_name(&e.rel);
    let node = &e.node;
    if e.action == Action::Metadata {
        let file = t::open_to_change(dir, name).at(&e.rel)?;
        same_entry(t::meta_of(&file), e.existing, &e.rel)?;
        t::apply_meta(&file, node, chown).at(&e.rel)?;
        return Ok(0);
    }
    // Nothing was there when planning: write the final name directly (O_EXCL: if something
    // appeared since, it is not touched). Otherwise write aside and rename over it.
    let tmp = if e.action == Action::Create {
        name.to_os_string()
    } else {
        temp_name(name)
    };
    let file = t::create_file(dir, &tmp).at(&e.rel)?;
    let written = (|| -> Result<u64> {
        let mut offset = 0u64;
        let pipelined = node.content.len() >= PIPELINE_FROM_BLOBS;
        let zeros = if pipelined {
            zero_blobs.clone()
        } else {
            HashSet::new()
        };
        // A blob known to be zeros: a hole of its length.
        let skip_zeros = |id: &Id, zero_blobs: &HashSet<Id>, offset: &mut u64| -> bool {
            match zero_len(zero_blobs, id, repo) {
                Some(len) => {
                    *offset += len;
                    progress.add_bytes(len);
                    true
                }
                None => false,
            }
        };
        let put = |id: &Id, data: &[u8], zero_blobs: &mut HashSet<Id>, offset: &mut u64| {
            let len = data.len() as u64;
            if !write_sparse(&file, data, *offset).at(&e.rel)? {
                zero_blobs.insert(*id);
            }
            *offset += len;
            progress.add_bytes(len);
            Ok::<(), Error>(())
        };
        if !pipelined {
            for id in &node.content {
                if !skip_zeros(id, zero_blobs, &mut offset) {
                    repo.read_blob_into(id, buf)?;
                    put(id, buf.data(), zero_blobs, &mut offset)?;
                }
            }
        } else {
            // A large file: its blobs are read, decompressed and verified on a second thread
            // while this one writes (the last large file of a restore would otherwise keep one
            // core busy and the other idle). Blobs known to be zeros are not read. Buffers go
            // back to the reader once written: four at most.
            std::thread::scope(|s| -> Result<()> {
                let (tx, rx) = crossbeam_channel::bounded::<Result<(Id, Option<BlobBuf>)>>(2);
                let (free_tx, free_rx) = crossbeam_channel::unbounded::<BlobBuf>();
                s.spawn(move || {
                    for id in &node.content {
                        let r = if zeros.contains(id) {
                            Ok((*id, None))
                        } else {
                            let mut b = free_rx.try_recv().unwrap_or_default();
                            repo.read_blob_into(id, &mut b).map(|()| (*id, Some(b)))
                        };
                        let failed = r.is_err();
                        if tx.send(r).is_err() || failed {
                            return;
                        }
                    }
                });
                for r in rx {
                    match r? {
                        (id, Some(b)) => {
                            put(&id, b.data(), zero_blobs, &mut offset)?;
                            let _ = free_tx.send(b);
                        }
                        (id, None) => {
                            if !skip_zeros(&id, zero_blobs, &mut offset) {
                                repo.read_blob_into(&id, buf)?;
                                put(&id, buf.data(), zero_blobs, &mut offset)?;
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }
        // Trailing holes (and an empty file) get their size here.
        set_len_if_short(&file, offset).at(&e.rel)?;
        t::apply_meta(&file, node, chown).at(&e.rel)?;
        Ok(offset)
    })();
    match written {
        Ok(n) => {
            drop(file);
            if e.action != Action::Create {
                replace_with(dir, &tmp, name, e)?;
            }
            Ok(n)
        }
        Err(err) => {
            drop(file);
            let _ = t::remove_file(dir, &tmp);
            Err(err)
        }
    }
}

/// Writes `data` at `offset`, leaving holes for 4 KiB blocks of zeros (the file's length is
/// set at the end). Returns whether anything was written.
/// Gives a file this restore made and wrote up to `len` at most its length `len`, where its
/// last blocks were holes (skipped by [`write_sparse`]); a file written to its end is left
/// alone (a truncation to the same length still costs the filesystem a journalled update).
pub(crate) fn set_len_if_short(file: &std::fs::File, len: u64) -> std::io::Result<()> {
    if file.metadata()?.len() != len {
        file.set_len(len)?;
    }
    Ok(())
}

pub(crate) fn write_sparse(
    file: &std::fs::File,
    data: &[u8],
    offset: u64,
) -> std::io::Result<bool> {
    const BLOCK: usize = 4096;
    let mut wrote = false;
    let mut run_start: Option<usize> = None;
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + BLOCK).min(data.len());
        let zero = all_zero(&data[pos..end]);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                crate::platform::write_all_at(file, &data[start..pos], offset + start as u64)?;
                wrote = true;
                run_start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run_start {
        crate::platform::write_all_at(file, &data[start..], offset + start as u64)?;
        wrote = true;
    }
    Ok(wrote)
}

/// Whether `block` holds only zeros: 64 bytes at a time (a loop the compiler turns into vector
/// instructions), stopping at the first chunk that is not, which in most data is the first.
fn all_zero(block: &[u8]) -> bool {
    let mut chunks = block.chunks_exact(64);
    chunks.all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0)
        && chunks.remainder().iter().all(|&b| b == 0)
}

/// The length of a blob known to be all zeros (restored as a hole, not read again).
fn zero_len(zero_blobs: &HashSet<Id>, id: &Id, repo: &Repository) -> Option<u64> {
    if !zero_blobs.contains(id) {
        return None;
    }
    repo.index().get(id).map(|(_, e)| e.raw_length as u64)
}

fn restore_link(root: &Dir, e: &PlannedEntry, first: &Path) -> Result<()> {
    let from_dir = open_beneath(root, &parent_of(first))?;
    let to_dir = open_beneath(root, &parent_of(&e.rel))?;
    let name = file_name(&e.rel);
    let tmp = temp_name(name);
    t::link(&from_dir, file_name(first), &to_dir, &tmp).at(&e.rel)?;
    replace_with(&to_dir, &tmp, name, e)
}

#[cfg(all(test, windows))]
mod windows_tests;

#[cfg(all(test, unix))]
mod tests {
    //! The planner, by tables: a snapshot of a small folder, restored into targets in various
    //! states, and the action planned for each entry.

    use super::*;
    use crate::tree::Tree;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    struct Fixture {
        tmp: tempfile::TempDir,
        repo: Repository,
        src: PathBuf,
        snap: Snapshot,
    }

    /// `src/`: a.txt, b.txt, dir/c.txt, dir/sub/d.txt, lien -> a.txt, vide/, backed up.
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("dir/sub")).unwrap();
        fs::create_dir_all(src.join("vide")).unwrap();
        fs::write(src.join("a.txt"), "alpha").unwrap();
        fs::write(src.join("b.txt"), "beta").unwrap();
        fs::write(src.join("dir/c.txt"), "gamma").unwrap();
        fs::write(src.join("dir/sub/d.txt"), "delta").unwrap();
        symlink("a.txt", src.join("lien")).unwrap();
        let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
        let snap = backup(
            &repo,
            &src,
            &BackupOptions::default(),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap()
        .snapshot;
        Fixture {
            tmp,
            repo,
            src,
            snap,
        }
    }

    impl Fixture {
        fn snap_gid(&self, name: &str) -> u32 {
            self.repo
                .read_tree(&self.snap.tree)
                .unwrap()
                .find(name.as_bytes())
                .unwrap()
                .gid
        }
    }

    fn try_plan(
        f: &Fixture,
        snap: &Snapshot,
        paths: &[&str],
        target: Target,
        overwrite: Overwrite,
    ) -> Result<RestorePlan> {
        plan_restore(
            &f.repo,
            snap,
            &RestoreOptions {
                paths: paths.iter().map(|p| p.to_string()).collect(),
                target,
                overwrite,
                threads: 1,
            },
        )
    }

    fn plan(f: &Fixture, paths: &[&str], target: Target, overwrite: Overwrite) -> RestorePlan {
        try_plan(f, &f.snap, paths, target, overwrite).unwrap()
    }

    fn actions(repo: &Repository, p: &RestorePlan) -> Vec<(String, Action)> {
        p.entries(repo)
            .unwrap()
            .iter()
            .map(|e| (e.path.clone(), e.action))
            .collect()
    }

    fn table(rows: &[(&str, Action)]) -> Vec<(String, Action)> {
        rows.iter().map(|(p, a)| (p.to_string(), *a)).collect()
    }

    use Action::*;

    #[test]
    fn into_a_new_folder_everything_is_created_parents_first() {
        let f = fixture();
        let p = plan(
            &f,
            &[],
            Target::Dir(f.tmp.path().join("out")),
            Overwrite::IfChanged,
        );
        let mut got = actions(&f.repo, &p);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            table(&[
                ("a.txt", Create),
                ("b.txt", Create),
                ("dir", Create),
                ("dir/c.txt", Create),
                ("dir/sub", Create),
                ("dir/sub/d.txt", Create),
                ("lien", Create),
                ("vide", Create),
            ])
        );
        let pos = |x: &str| {
            p.entries(&f.repo)
                .unwrap()
                .iter()
                .position(|e| e.path == x)
                .unwrap()
        };
        assert!(pos("dir") < pos("dir/sub") && pos("dir/sub") < pos("dir/sub/d.txt"));
        assert_eq!(p.count(Create), 8);
        assert_eq!(p.count(Replace), 0);
        assert_eq!(p.bytes_to_write(), 5 + 4 + 5 + 5);
        assert_eq!(p.target_root, f.tmp.path().join("out"));
    }

    #[test]
    fn in_place_each_difference_gets_its_action() {
        let f = fixture();
        let s = &f.src;
        // Identical: nothing to do.
        let p = plan(&f, &[], Target::InPlace, Overwrite::IfChanged);
        assert_eq!(p.count(Unchanged), 5, "{:?}", actions(&f.repo, &p));
        assert_eq!(p.count(Merge), 3, "{:?}", actions(&f.repo, &p));
        assert_eq!(p.bytes_to_write(), 0);
        // Only the group differs: metadata.
        std::os::unix::fs::lchown(s.join("b.txt"), None, Some(65534)).unwrap();
        let p = plan(&f, &["b.txt"], Target::InPlace, Overwrite::IfChanged);
        assert_eq!(actions(&f.repo, &p), table(&[("b.txt", Metadata)]));
        std::os::unix::fs::lchown(s.join("b.txt"), None, Some(f.snap_gid("b.txt"))).unwrap();
        // Always: every non-directory is replaced.
        let p = plan(&f, &[], Target::InPlace, Overwrite::Always);
        assert_eq!(
            (p.count(Replace), p.count(Merge)),
            (5, 3),
            "{:?}",
            actions(&f.repo, &p)
        );
        // Now change things.
        fs::write(s.join("a.txt"), "ALPHA").unwrap(); // same size, new mtime
        fs::set_permissions(s.join("b.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(s.join("dir/c.txt")).unwrap();
        fs::remove_file(s.join("lien")).unwrap();
        symlink("b.txt", s.join("lien")).unwrap();
        fs::remove_dir_all(s.join("dir/sub")).unwrap();
        fs::write(s.join("dir/sub"), "a file where a folder was").unwrap();
        fs::remove_dir(s.join("vide")).unwrap();
        symlink("dir", s.join("vide")).unwrap();
        let p = plan(&f, &[], Target::InPlace, Overwrite::IfChanged);
        let mut got = actions(&f.repo, &p);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            table(&[
                ("", Merge),
                ("a.txt", Replace),
                ("b.txt", Metadata),
                ("dir", Merge),
                ("dir/c.txt", Create),
                ("dir/sub", Replace),
                ("dir/sub/d.txt", Create),
                ("lien", Replace),
                ("vide", Replace),
            ])
            .into_iter()
            .filter(|(p, _)| !p.is_empty())
            .collect::<Vec<_>>()
        );
        assert_eq!(
            p.bytes_to_write(),
            5 + 4 + 5 + 5,
            "a.txt, b.txt, c.txt, d.txt"
        );
        // Never: what exists is left, what is missing is created.
        let p = plan(&f, &[], Target::InPlace, Overwrite::Never);
        let mut got = actions(&f.repo, &p);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            table(&[
                ("a.txt", SkipExisting),
                ("b.txt", SkipExisting),
                ("dir", Merge),
                ("dir/c.txt", Create),
                ("dir/sub", SkipExisting),
                ("lien", SkipExisting),
                ("vide", SkipExisting),
            ])
        );
        assert_eq!(p.bytes_to_write(), 5);
    }

    #[test]
    fn selections_plan_their_leading_folders_once() {
        let f = fixture();
        let out = f.tmp.path().join("out");
        let p = plan(
            &f,
            &["dir/sub/d.txt"],
            Target::Dir(out.clone()),
            Overwrite::IfChanged,
        );
        assert_eq!(
            actions(&f.repo, &p),
            table(&[
                ("dir", Create),
                ("dir/sub", Create),
                ("dir/sub/d.txt", Create)
            ])
        );
        let p = plan(
            &f,
            &["dir/sub/d.txt"],
            Target::InPlace,
            Overwrite::IfChanged,
        );
        assert_eq!(
            actions(&f.repo, &p),
            table(&[
                ("dir", Leading),
                ("dir/sub", Leading),
                ("dir/sub/d.txt", Unchanged)
            ])
        );
        // Overlapping selections: each entry once. Absolute (original) paths work too.
        let abs = f.src.join("dir/c.txt").display().to_string();
        let p = plan(
            &f,
            &["dir", &abs, "dir/sub"],
            Target::Dir(out),
            Overwrite::IfChanged,
        );
        let mut got = actions(&f.repo, &p);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            table(&[
                ("dir", Create),
                ("dir/c.txt", Create),
                ("dir/sub", Create),
                ("dir/sub/d.txt", Create),
            ])
        );
        for bad in ["absent.txt", "a.txt/x", "dir/absent/x"] {
            let e = try_plan(
                &f,
                &f.snap,
                &[bad],
                Target::Dir(f.tmp.path().join("elsewhere")),
                Overwrite::IfChanged,
            )
            .unwrap_err();
            assert!(matches!(e, Error::PathNotInSnapshot { .. }), "{bad}: {e}");
        }
        // A target that is a file: an error, not a folder taken as missing.
        let e = try_plan(
            &f,
            &f.snap,
            &[],
            Target::Dir(f.src.join("a.txt")),
            Overwrite::IfChanged,
        )
        .unwrap_err();
        assert!(!matches!(e, Error::PathNotInSnapshot { .. }), "{e}");
        // A file where a leading folder should be: a clear error, nothing planned through it.
        fs::remove_dir_all(f.src.join("dir")).unwrap();
        fs::write(f.src.join("dir"), "x").unwrap();
        let e = try_plan(
            &f,
            &f.snap,
            &["dir/c.txt"],
            Target::InPlace,
            Overwrite::IfChanged,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("not a directory one can restore into"),
            "{e}"
        );
    }

    #[test]
    fn unsafe_names_are_refused_and_sockets_unsupported() {
        let f = fixture();
        let ok = f.snap.tree;
        let node = |name: &[u8], kind: NodeKind| {
            let mut n = f
                .repo
                .read_tree(&ok)
                .unwrap()
                .find(b"a.txt")
                .unwrap()
                .clone();
            n.name = crate::tree::Bytes(name.to_vec());
            n.kind = kind;
            n
        };
        let mut tree = Tree {
            nodes: vec![
                node(b"..", NodeKind::File),
                node(b"a/b", NodeKind::File),
                node(b"", NodeKind::File),
                node(b"ok.txt", NodeKind::File),
                node(b"sock", NodeKind::Socket),
            ],
        };
        let bytes = tree.encode();
        let id = f
            .repo
            .store_blobs(&[(crate::pack::BlobType::Tree, &bytes)])
            .unwrap()[0];
        let mut snap = f.snap.clone();
        snap.tree = id;
        f.repo.save_snapshot(&mut snap).unwrap();
        let p = try_plan(
            &f,
            &snap,
            &[],
            Target::Dir(f.tmp.path().join("out")),
            Overwrite::IfChanged,
        )
        .unwrap();
        assert_eq!(
            actions(&f.repo, &p),
            table(&[
                ("", Refuse),
                ("..", Refuse),
                ("a\u{2215}b", Refuse),
                ("ok.txt", Create),
                ("sock", Unsupported),
            ])
        );
        assert_eq!(
            p.bytes_to_write(),
            5,
            "refused and unsupported entries write nothing"
        );
    }

    #[test]
    fn retain_drops_folders_with_everything_below() {
        let f = fixture();
        let mut p = plan(
            &f,
            &[],
            Target::Dir(f.tmp.path().join("out")),
            Overwrite::IfChanged,
        );
        p.retain(&f.repo, |path, _| path != "dir/sub" && path != "b.txt")
            .unwrap();
        let mut got: Vec<String> = p
            .entries(&f.repo)
            .unwrap()
            .iter()
            .map(|e| e.path.clone())
            .collect();
        got.sort();
        assert_eq!(got, ["a.txt", "dir", "dir/c.txt", "lien", "vide"]);
        // The bytes to write are those of the files kept.
        let file_bytes = |p: &RestorePlan| -> u64 {
            p.entries(&f.repo)
                .unwrap()
                .iter()
                .filter(|e| e.kind == NodeKind::File && e.action.writes())
                .map(|e| e.size)
                .sum()
        };
        assert!(file_bytes(&p) > 0);
        assert_eq!(p.bytes_to_write(), file_bytes(&p));
        assert_eq!(p.len(), 5);
        assert!(!p.is_empty());
        // Dropping a file keeps its siblings and the folder.
        p.retain(&f.repo, |path, kind| {
            !(path == "dir/c.txt" && kind == NodeKind::File)
        })
        .unwrap();
        assert!(p.entries(&f.repo).unwrap().iter().any(|e| e.path == "dir"));
        assert!(!p
            .entries(&f.repo)
            .unwrap()
            .iter()
            .any(|e| e.path == "dir/c.txt"));
        assert_eq!(p.len(), 4);
        assert_eq!(p.bytes_to_write(), file_bytes(&p));
        // Dropping everything leaves an empty plan.
        p.retain(&f.repo, |_, _| false).unwrap();
        assert_eq!(p.len(), 0);
        assert!(p.is_empty());
        assert!(p.entries(&f.repo).unwrap().is_empty());
        assert_eq!(p.bytes_to_write(), 0);
        // In place over the original, nothing is written: dropping an unchanged file leaves
        // nothing to count down.
        let mut same = plan(&f, &[], Target::InPlace, Overwrite::IfChanged);
        assert_eq!(same.bytes_to_write(), 0);
        same.retain(&f.repo, |path, _| path != "a.txt").unwrap();
        assert_eq!(same.bytes_to_write(), 0);
    }

    #[test]
    fn first_unwritable_looks_at_what_the_restore_changes() {
        let f = fixture();
        let p = plan(&f, &[], Target::InPlace, Overwrite::IfChanged);
        // Everything identical: unchanged entries are not written; merged folders are.
        assert_eq!(
            p.first_unwritable(&f.repo, |path, _| path != "a.txt")
                .unwrap()
                .as_deref(),
            None
        );
        assert_eq!(
            p.first_unwritable(&f.repo, |path, _| path != "dir")
                .unwrap()
                .as_deref(),
            Some("dir")
        );
        assert_eq!(
            p.first_unwritable(&f.repo, |_, _| true).unwrap().as_deref(),
            None
        );
        fs::write(f.src.join("a.txt"), "ALPHA").unwrap();
        let p = plan(&f, &[], Target::InPlace, Overwrite::IfChanged);
        assert_eq!(
            p.first_unwritable(&f.repo, |path, _| path != "a.txt")
                .unwrap()
                .as_deref(),
            Some("a.txt")
        );
        assert_eq!(
            p.first_unwritable(&f.repo, |_, kind| kind != NodeKind::File)
                .unwrap()
                .as_deref(),
            Some("a.txt")
        );
    }

    #[test]
    fn for_share_takes_ownership_privileges_and_old_acls_away() {
        let f = fixture();
        let mut p = plan(
            &f,
            &[],
            Target::Dir(f.tmp.path().join("out")),
            Overwrite::IfChanged,
        );
        p.for_share(4242, 4343);
        let entries = p.entries(&f.repo).unwrap();
        assert!(entries.len() >= 8);
        for mut e in entries {
            assert_eq!((e.node.uid, e.node.gid), (4242, 4343), "{}", e.path);
            // As if the snapshot had privileges and ACLs: the same function takes them away.
            e.node.mode |= 0o6000;
            e.node.xattrs.push(crate::tree::Xattr {
                name: crate::tree::Bytes(b"system.posix_acl_access".to_vec()),
                value: vec![2, 0, 0, 0],
            });
            e.node.xattrs.push(crate::tree::Xattr {
                name: crate::tree::Bytes(b"user.note".to_vec()),
                value: b"kept".to_vec(),
            });
            owned_by_share(&mut e.node, 4242, 4343);
            let names: Vec<&[u8]> = e.node.xattrs.iter().map(|x| x.name.0.as_slice()).collect();
            assert_eq!(names, [b"user.note".as_slice()], "{}", e.path);
            if e.kind == NodeKind::Dir {
                assert_eq!(
                    e.node.mode & 0o6000,
                    0o6000,
                    "folders keep setgid: {}",
                    e.path
                );
            } else {
                assert_eq!(e.node.mode & 0o6000, 0, "{}", e.path);
                assert_ne!(e.node.mode & 0o777, 0, "permission bits stay: {}", e.path);
            }
        }
    }

    #[test]
    fn action_words_and_classes() {
        let rows: &[(Action, &str, bool, bool)] = &[
            (Create, "create", false, true),
            (Replace, "replace", true, true),
            (Metadata, "metadata", true, true),
            (Unchanged, "unchanged", false, false),
            (SkipExisting, "skip (exists)", false, false),
            (Merge, "merge", false, false),
            (Leading, "exists", false, false),
            (Refuse, "refused (unsafe name)", false, false),
            (Unsupported, "unsupported", false, false),
        ];
        for (a, word, changes, writes) in rows {
            assert_eq!(a.word(), *word);
            assert_eq!(a.changes_existing(), *changes, "{word}");
            assert_eq!(a.writes(), *writes, "{word}");
        }
    }

    #[test]
    fn ancestors_by_components() {
        let rows: &[(&str, &str, bool)] = &[
            ("", "a/b", true),
            ("a", "a/b", true),
            ("a/b", "a/b", true),
            ("a", "ab/c", false),
            ("a/b", "a", false),
            ("b", "a/b", false),
        ];
        for (dir, rel, want) in rows {
            assert_eq!(
                is_ancestor(Path::new(dir), Path::new(rel)),
                *want,
                "{dir} {rel}"
            );
        }
    }

    #[test]
    fn a_block_is_zero_only_when_every_byte_is() {
        let zeros = vec![0u8; 4096 + 37];
        // (length, where a 1 is put, expected)
        let cases: &[(usize, Option<usize>, bool)] = &[
            (0, None, true),
            (1, None, true),
            (63, None, true),
            (64, None, true),
            (4096, None, true),
            (4096 + 37, None, true),
            (1, Some(0), false),
            (4096, Some(0), false),
            (4096, Some(63), false),
            (4096, Some(64), false),
            (4096, Some(4095), false),
            (4096 + 37, Some(4096), false),
            (4096 + 37, Some(4096 + 36), false),
        ];
        for &(len, one, want) in cases {
            let mut block = zeros[..len].to_vec();
            if let Some(i) = one {
                block[i] = 1;
            }
            assert_eq!(all_zero(&block), want, "length {len}, a 1 at {one:?}");
        }
    }
}
