//! The backup's scan: walks the folder by descriptor, hands files to the workers, and writes
//! each directory's tree as soon as the directory is complete.
//!
//! ```text
//! depth first with an explicit stack, entries sorted by name, by descriptor from the root
//! down (sharekeepd is root in folders members write to):
//!     each directory is opened by name in its parent's descriptor (O_DIRECTORY|O_NOFOLLOW)
//!     and must still be the (device, inode) its parent listed; it never leaves the root's
//!     filesystem; names are bytes end to end
//!     for each entry: fstatat (no follow), symlink target (readlinkat); skip excluded names;
//!     FIFOs, sockets and devices are recorded, never opened
//!     a file whose size, mtime, ctime and inode match the parent snapshot's entry keeps
//!     that entry's content list and is not read again; every other file becomes a job
//! a directory is complete once it is listed, its files' jobs have returned and its
//!     subdirectories are complete: its tree is encoded and stored at once (an unchanged
//!     directory encodes to the same bytes and is not stored again), its nodes are dropped,
//!     and its parent is told
//! ```
//! Memory: the nodes of the directories listed but not complete (the current path, and those
//! whose files are still queued to the workers: the job queue is bounded), one slot per
//! directory waiting on the stack, and one directory of the parent snapshot at a time. Never
//! the whole tree.

use super::excludes::{include, Excludes, Include, Only};
use super::packer::Packer;
use super::read::{Job, JobResult};
use super::{BackupOptions, Warning};
use crate::error::{Error, IoContext, Result};
use crate::id::Id;
use crate::pack::BlobType;
use crate::platform::DirHandle;
use crate::platform::{self, NameCache};
use crate::progress::{CancelToken, Progress};
use crate::repo::Repository;
use crate::snapshot::Summary;
use crate::tree::{Bytes, Node, NodeKind, Tree};
use crossbeam_channel::{Receiver, Sender};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A directory listed (or about to be) whose tree is not written yet.
struct Dir {
    nodes: Vec<Node>,
    /// (slot, node) in the parent that points here; `None` for the root.
    up: Option<(usize, usize)>,
    /// The parent snapshot's subtree for this directory, if it had one.
    parent_subtree: Option<Id>,
    /// Nodes of files that could not be read: left out of the tree.
    removed: Vec<usize>,
    /// File jobs and subdirectories not complete yet.
    waiting: usize,
    /// Listed, or given up on: complete once nothing is waiting.
    listed: bool,
}

/// Directory slots, reused once a directory's tree is written.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Dir>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, dir: Dir) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(dir);
                i
            }
            None => {
                self.slots.push(Some(dir));
                self.slots.len() - 1
            }
        }
    }

    fn get(&mut self, i: usize) -> &mut Dir {
        self.slots[i].as_mut().expect("live directory slot")
    }

    fn peek(&self, i: usize) -> &Dir {
        self.slots[i].as_ref().expect("live directory slot")
    }

    fn take(&mut self, i: usize) -> Dir {
        let d = self.slots[i].take().expect("live directory slot");
        self.free.push(i);
        d
    }
}

/// A directory waiting to be listed.
struct Pending {
    slot: usize,
    /// The directory holding it (`None`: the root, opened by path).
    parent: Option<Arc<DirHandle>>,
    name: OsString,
    abs: PathBuf,
    rel: PathBuf,
    /// (device, inode) its parent listed.
    expect: Option<(u64, u64)>,
}

pub(super) struct Scan<'a, 'r> {
    pub(super) repo: &'a Repository,
    pub(super) root: &'a Path,
    pub(super) excludes: Excludes,
    only: Option<Only>,
    pub(super) names: NameCache,
    pub(super) packer: &'a Packer<'r>,
    pub(super) progress: &'a dyn Progress,
    pub(super) summary: Summary,
    pub(super) warnings: Vec<Warning>,
    pub(super) to_read: (u64, u64),
    dirs: Slots,
    root_tree: Option<Id>,
    /// Directories about to be listed, for the prefetchers (see [`prefetch`]).
    prefetch: Option<Sender<Prefetch>>,
    /// A worker's error (the first one that is not an interruption wins).
    failure: Option<Error>,
}

impl<'a, 'r> Scan<'a, 'r> {
    pub(super) fn new(
        repo: &'a Repository,
        root: &'a Path,
        opts: &'a BackupOptions,
        excludes: Excludes,
        packer: &'a Packer<'r>,
        progress: &'a dyn Progress,
    ) -> Scan<'a, 'r> {
        Scan {
            repo,
            root,
            excludes,
            only: opts.only.as_deref().map(Only::new),
            names: NameCache::default(),
            packer,
            progress,
            summary: Summary::default(),
            warnings: Vec::new(),
            to_read: (0, 0),
            dirs: Slots::default(),
            root_tree: None,
            prefetch: None,
            failure: None,
        }
    }

    /// Sends the directories the scan will list next to the prefetchers.
    pub(super) fn prefetch_into(&mut self, tx: Sender<Prefetch>) {
        self.prefetch = Some(tx);
    }

    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(path = %path.display(), "{message}");
        self.warnings.push(Warning {
            path: path.to_path_buf(),
            message,
        });
    }

    /// The path of directory `slot`, for messages (its ancestors are alive: they wait on it).
    fn dir_path(&self, mut slot: usize) -> PathBuf {
        let mut names = Vec::new();
        while let Some((pd, pn)) = self.dirs.peek(slot).up {
            names.push(self.dirs.peek(pd).nodes[pn].name.as_os_str().to_os_string());
            slot = pd;
        }
        let mut p = self.root.to_path_buf();
        for n in names.iter().rev() {
            p.push(n);
        }
        p
    }

    fn parent_tree(&mut self, id: Option<Id>, path: &Path) -> Option<Tree> {
        let id = id?;
        match self.repo.read_tree(&id) {
            Ok(t) => Some(t),
            Err(e) => {
                // Not fatal: the directory is simply read again in full.
                tracing::warn!(path = %path.display(), "parent snapshot tree unreadable: {e}");
                None
            }
        }
    }

    /// Opens a directory to list: every one but the root by name in its parent's descriptor,
    /// never through a symlink, and only if it is still the directory its parent listed (a
    /// member swapping it for a link or another folder gets a warning, never the other
    /// folder's content).
    fn open_dir(&mut self, item: &Pending) -> Option<Arc<DirHandle>> {
        let parent = item.parent.as_ref()?;
        let fd = match platform::enter_dir(parent.as_ref(), &item.name) {
            Ok(fd) => fd,
            Err(e) => {
                self.warn(
                    &item.abs,
                    format!("cannot enter directory without following a link: {e}"),
                );
                return None;
            }
        };
        match platform::identity(&fd) {
            Ok(id) if Some(id) == item.expect => Some(Arc::new(fd)),
            Ok(_) => {
                self.warn(
                    &item.abs,
                    "replaced during the backup; its content is left out",
                );
                None
            }
            Err(e) => {
                self.warn(&item.abs, format!("cannot stat: {e}"));
                None
            }
        }
    }

    /// Walks the folder, sending files to `jobs` and applying the workers' `results` as they
    /// come, until every directory is complete. Returns the root tree's id.
    pub(super) fn run(
        &mut self,
        cancel: &CancelToken,
        parent_root: Option<Id>,
        jobs: Sender<Job>,
        results: &Receiver<Result<JobResult>>,
    ) -> Result<Id> {
        let walked = self.walk(cancel, parent_root, &jobs, results);
        // Closing the queues lets the prefetchers and workers finish; what the workers did is
        // still applied.
        self.prefetch = None;
        drop(jobs);
        for r in results.iter() {
            self.take_result(r)?;
        }
        walked?;
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        self.root_tree
            .ok_or_else(|| Error::Invalid("the backup's scan ended with folders incomplete".into()))
    }

    fn take_result(&mut self, r: Result<JobResult>) -> Result<()> {
        match r {
            Ok(r) => self.apply(r),
            Err(e) => {
                if self.failure.is_none() || matches!(self.failure, Some(Error::Interrupted)) {
                    self.failure = Some(e);
                }
                Ok(())
            }
        }
    }

    fn walk(
        &mut self,
        cancel: &CancelToken,
        parent_root: Option<Id>,
        jobs: &Sender<Job>,
        results: &Receiver<Result<JobResult>>,
    ) -> Result<()> {
        let root_fd = platform::open_backup_root(self.root)?;
        let root_dev = platform::identity(&root_fd).at(self.root)?.0;
        let root_slot = self.dirs.insert(Dir {
            nodes: Vec::new(),
            up: None,
            parent_subtree: parent_root,
            removed: Vec::new(),
            waiting: 0,
            listed: false,
        });
        // Depth costs heap here, never stack: pending directories wait on this explicit stack,
        // each holding its parent's descriptor (siblings share it).
        let mut stack: Vec<Pending> = vec![Pending {
            slot: root_slot,
            parent: None,
            name: OsString::new(),
            abs: self.root.to_path_buf(),
            rel: PathBuf::new(),
            expect: None,
        }];
        let mut root_fd = Some(Arc::new(root_fd));
        while let Some(item) = stack.pop() {
            if cancel.is_cancelled() || self.failure.is_some() {
                return Err(Error::Interrupted);
            }
            // What the workers finished so far: completes directories, frees their nodes.
            while let Ok(r) = results.try_recv() {
                self.take_result(r)?;
            }
            let di = item.slot;
            let fd = match root_fd.take() {
                Some(fd) => fd,
                None => match self.open_dir(&item) {
                    Some(fd) => fd,
                    None => {
                        self.listed(di)?;
                        continue;
                    }
                },
            };
            if let Some((pd, pn)) = self.dirs.peek(di).up {
                match platform::read_xattrs_fd(fd.as_ref()) {
                    Ok(x) => self.dirs.get(pd).nodes[pn].xattrs = x,
                    Err(e) => self.warn(&item.abs, format!("cannot read extended attributes: {e}")),
                }
                self.dirs.get(pd).nodes[pn].security = platform::read_security(fd.as_ref());
            }
            let abs = item.abs;
            let rel = item.rel;
            let ptree = self.parent_tree(self.dirs.peek(di).parent_subtree, &abs);
            let mut entries: Vec<OsString> = match platform::list_names(fd.as_ref()) {
                Ok(names) => names,
                Err(e) if di == root_slot => return Err(Error::io(&abs, e)),
                Err(e) => {
                    self.warn(&abs, format!("cannot list directory: {e}"));
                    self.listed(di)?;
                    continue;
                }
            };
            entries.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
            let mut not_entered = None;
            let pushed = stack.len();
            for name in entries {
                let path = abs.join(&name);
                let rel_child = rel.join(&name);
                if self.excludes.excluded(&name, &rel_child) {
                    continue;
                }
                let inc = include(&rel_child, self.only.as_ref());
                if inc == Include::No {
                    continue;
                }
                let st = match platform::stat_entry(fd.as_ref(), &name) {
                    Ok(st) => st,
                    Err(e) => {
                        self.warn(&path, format!("vanished or unreadable: {e}"));
                        continue;
                    }
                };
                let mut node = platform::node_from_stat(&name, &st, &self.names);
                if inc == Include::Leading && node.kind != NodeKind::Dir {
                    continue;
                }
                let previous = ptree.as_ref().and_then(|t| t.find(name.as_encoded_bytes()));
                let ni = self.dirs.peek(di).nodes.len();
                match node.kind {
                    NodeKind::File => {
                        self.summary.total_files += 1;
                        self.summary.total_bytes += node.size;
                        let unchanged = previous.filter(|p| {
                            p.kind == NodeKind::File
                                && p.size == node.size
                                && p.mtime_ns == node.mtime_ns
                                && p.ctime_ns == node.ctime_ns
                                && p.inode == node.inode
                                && {
                                    let index = self.repo.index();
                                    p.content.iter().all(|id| index.contains(id))
                                }
                        });
                        if let Some(p) = unchanged {
                            // Same ctime: the extended attributes did not change either.
                            node.content = p.content.clone();
                            node.xattrs = p.xattrs.clone();
                            node.security = p.security.clone();
                            self.summary.files_unchanged += 1;
                        } else {
                            if previous.is_some() {
                                self.summary.files_changed += 1;
                            } else {
                                self.summary.files_new += 1;
                            }
                            self.to_read.0 += 1;
                            self.to_read.1 += node.size;
                            let job = Job {
                                dir: di,
                                node: ni,
                                path: path.clone(),
                                parent: fd.clone(),
                                name: name.clone(),
                                inode: node.inode,
                                device: node.device,
                            };
                            self.dirs.get(di).waiting += 1;
                            if jobs.send(job).is_err() {
                                // The workers stopped: their error says why.
                                return Err(Error::Interrupted);
                            }
                        }
                    }
                    NodeKind::Dir => {
                        if previous.is_none() {
                            self.summary.dirs_new += 1;
                        }
                        let child = self.dirs.insert(Dir {
                            nodes: Vec::new(),
                            up: Some((di, ni)),
                            parent_subtree: previous
                                .filter(|p| p.kind == NodeKind::Dir)
                                .and_then(|p| p.subtree),
                            removed: Vec::new(),
                            waiting: 0,
                            listed: false,
                        });
                        self.dirs.get(di).waiting += 1;
                        let (dev, ino) = platform::stat_identity(&st);
                        if dev != root_dev {
                            self.warn(
                                &path,
                                "another filesystem is mounted here; its content is left out (a backup stays on the share's filesystem)",
                            );
                            // Recorded as an empty folder, once its node is in place below.
                            not_entered = Some(child);
                        } else {
                            stack.push(Pending {
                                slot: child,
                                parent: Some(fd.clone()),
                                name: name.clone(),
                                abs: path.clone(),
                                rel: rel_child,
                                expect: Some((dev, ino)),
                            });
                        }
                    }
                    NodeKind::Symlink => {
                        self.summary.others += 1;
                        match platform::read_link_at(fd.as_ref(), &name) {
                            Ok(t) => node.target = Some(Bytes(t)),
                            Err(e) => {
                                self.warn(&path, format!("cannot read symlink: {e}"));
                                continue;
                            }
                        }
                    }
                    // FIFOs, sockets and devices are recorded, never opened.
                    _ => self.summary.others += 1,
                }
                self.dirs.get(di).nodes.push(node);
                if let Some(child) = not_entered.take() {
                    self.listed(child)?;
                }
            }
            if let Some(tx) = &self.prefetch {
                // In the order the scan pops them; a full queue just means no prefetch.
                for p in stack[pushed..].iter().rev() {
                    if let Some(parent) = &p.parent {
                        let tree = self.dirs.peek(p.slot).parent_subtree;
                        let _ = tx.try_send(Prefetch {
                            parent: parent.clone(),
                            name: p.name.clone(),
                            tree,
                            // A folder the parent snapshot lacks: every file in it is read.
                            content: tree.is_none(),
                        });
                    }
                }
            }
            self.listed(di)?;
        }
        Ok(())
    }

    fn apply(&mut self, r: JobResult) -> Result<()> {
        let dir = r.dir();
        match r {
            JobResult::Done {
                dir,
                node,
                content,
                size,
                xattrs,
                security,
            } => {
                let n = &mut self.dirs.get(dir).nodes[node];
                self.summary.total_bytes = self.summary.total_bytes - n.size + size;
                self.summary.bytes_read += size;
                n.content = content;
                n.size = size;
                n.security = security;
                let name = n.name.as_os_str().to_os_string();
                match xattrs {
                    Ok(x) => n.xattrs = x,
                    Err(e) => {
                        let path = self.dir_path(dir).join(name);
                        self.warn(&path, format!("cannot read extended attributes: {e}"));
                    }
                }
            }
            JobResult::Skipped { dir, node, warning } => {
                self.progress.add_file(&warning.path);
                self.summary.total_files -= 1;
                self.summary.total_bytes -= self.dirs.peek(dir).nodes[node].size;
                self.dirs.get(dir).removed.push(node);
                self.warn(&warning.path, warning.message);
            }
        }
        self.dirs.get(dir).waiting -= 1;
        self.complete_from(dir)
    }

    /// Directory `slot` is listed (or given up on).
    fn listed(&mut self, slot: usize) -> Result<()> {
        self.dirs.get(slot).listed = true;
        self.complete_from(slot)
    }

    /// Writes the tree of `slot` if it is complete, then of each ancestor it completes.
    fn complete_from(&mut self, mut slot: usize) -> Result<()> {
        loop {
            let d = self.dirs.peek(slot);
            if !d.listed || d.waiting > 0 {
                return Ok(());
            }
            let dir = self.dirs.take(slot);
            let id = self.store_tree(dir.nodes, &dir.removed)?;
            if dir.up.is_some() {
                match dir.parent_subtree {
                    Some(p) if p == id => self.summary.dirs_unchanged += 1,
                    Some(_) => self.summary.dirs_changed += 1,
                    None => {}
                }
            }
            match dir.up {
                Some((pd, pn)) => {
                    let parent = self.dirs.get(pd);
                    parent.nodes[pn].subtree = Some(id);
                    parent.waiting -= 1;
                    slot = pd;
                }
                None => {
                    self.root_tree = Some(id);
                    return Ok(());
                }
            }
        }
    }

    /// Encodes and stores one directory's tree; returns its id.
    fn store_tree(&mut self, nodes: Vec<Node>, removed: &[usize]) -> Result<Id> {
        let nodes = nodes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !removed.contains(i))
            .map(|(_, n)| n)
            .collect();
        let mut tree = Tree { nodes };
        let bytes = tree.encode();
        if bytes.len() > crate::pack::MAX_TREE_BLOB as usize {
            return Err(Error::Invalid(format!(
                "a folder holds {} entries, more than a snapshot can list ({} MiB of listing at most): split it into subfolders",
                tree.nodes.len(),
                crate::pack::MAX_TREE_BLOB >> 20
            )));
        }
        let id = self.repo.blob_id(&bytes);
        if self.packer.claim(&id) {
            self.packer.add(BlobType::Tree, id, &bytes)?;
        }
        Ok(id)
    }
}

/// A directory the scan will list soon.
pub(super) struct Prefetch {
    parent: Arc<DirHandle>,
    name: OsString,
    /// Its tree in the parent snapshot, which the scan will read.
    tree: Option<Id>,
    /// Whether its files will be read (new folder): their content is prefetched too.
    content: bool,
}

/// Files up to this size have their content prefetched in new folders.
const PREFETCH_CONTENT_MAX: u64 = 1 << 20;

/// A prefetcher: reads the directory's tree in the parent snapshot, lists the directory and
/// stats its entries (and, in a folder the parent snapshot lacks, asks the kernel to read
/// small files ahead), so that the kernel has
/// them cached when the scan and the workers get there. On a cold cache (a nightly backup)
/// the scan is bound by the disk's latency, one inode table block at a time; several
/// prefetchers keep several reads in flight. They only read, by descriptor, never following
/// a link; a file is opened without blocking and only if it is a regular file.
pub(super) fn prefetch(repo: &Repository, rx: Receiver<Prefetch>) {
    for p in rx {
        if let Some(tree) = p.tree {
            repo.warm_blob(&tree);
        }
        let Ok(dir) = platform::enter_dir(p.parent.as_ref(), &p.name) else {
            continue;
        };
        drop(p.parent);
        let Ok(names) = platform::list_names(&dir) else {
            continue;
        };
        let content_max = p.content.then_some(PREFETCH_CONTENT_MAX);
        for n in names {
            platform::prefetch_entry(&dir, &n, content_max);
        }
    }
}
