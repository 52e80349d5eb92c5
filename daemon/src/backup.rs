//! The backup engine: turns a directory into a snapshot, storing only what the repository
//! does not already have.
//!
//! ```text
//! scan (this thread, depth first with an explicit stack, entries sorted by name), by
//! descriptor from the root down (sharekeepd is root in folders members write to):
//!     each directory is opened by name in its parent's descriptor (O_DIRECTORY|O_NOFOLLOW)
//!     and must still be the (device, inode) its parent listed; it never leaves the root's
//!     filesystem; names are bytes end to end
//!     for each entry: fstatat (no follow), symlink target (readlinkat); skip excluded names;
//!     FIFOs, sockets and devices are recorded, never opened
//!     a file whose size, mtime, ctime and inode match the parent snapshot's entry keeps
//!     that entry's content list and is not read again; every other file becomes a job
//! workers (one per core), for each job:
//!     openat(dir, name, O_NOFOLLOW|O_NONBLOCK), check it is still the scanned regular file
//!     (device, inode), read its xattrs from the descriptor
//!     chunk (FastCDC), sha256 each chunk; a chunk the index lacks and no other worker has
//!     claimed is compressed (zstd, raw when it does not pay) and appended to the open pack
//! packer: a pack reaching the target size is sealed and handed to the finisher thread,
//!     which fsyncs it, renames it into data/, and writes an index file every 4 packs
//! after the scan and all jobs: trees are encoded bottom-up (an unchanged directory encodes
//!     to the same bytes and is not stored again); the last pack is sealed; the directories
//!     are fsynced; the index is written; then the snapshot.
//! ```
//! A file that cannot be read or vanishes is a warning (with its path), left out of the
//! snapshot, and counted in the summary; the snapshot is still written. A repository error
//! (disk full, permission on the repository) aborts the backup with no snapshot written;
//! earlier snapshots are untouched since files are only ever added.

use crate::backend::{FileKind, TempFile};
use crate::chunker::Chunker;
use crate::error::{Error, IoContext, Result};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::lock::{LockKind, RepoLock};
use crate::pack::{self, BlobType, Compression, PackBuilder};
use crate::platform::{self, NameCache};
use crate::progress::{CancelToken, Progress};
use crate::repo::Repository;
use crate::snapshot::{Snapshot, Summary};
use crate::tree::{Bytes, Node, NodeKind, Tree};
use crossbeam_channel::{Receiver, Sender};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rustix::fd::OwnedFd;
use rustix::fs::AtFlags;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::BufWriter;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

/// Index files are written after this many packs, so an interrupted backup's data is reused.
const INDEX_EVERY_PACKS: usize = 4;

/// Which snapshot a backup compares against to skip unchanged files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot of the same root (not a `pre-restore` one).
    #[default]
    Auto,
    /// None: read every file.
    None,
    /// This snapshot.
    Id(Id),
}

/// How to back up.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Glob patterns to leave out: a pattern without `/` matches a name anywhere
    /// (`*.tmp`, `~$*`, `Thumbs.db`); one with `/` matches a path relative to the root.
    pub excludes: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Parent snapshot for change detection.
    pub parent: ParentChoice,
    /// Only these paths (relative to the root) and the directories leading to them.
    pub only: Option<Vec<PathBuf>>,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// The time to record (default: now), e.g. when importing history.
    pub time: Option<chrono::DateTime<chrono::Local>>,
}

/// An entry that could not be backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The entry.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The result of a backup.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The snapshot written.
    pub snapshot: Snapshot,
    /// Entries left out, with why.
    pub warnings: Vec<Warning>,
}

/// Compiled exclude patterns.
#[derive(Debug)]
pub(crate) struct Excludes {
    names: GlobSet,
    paths: GlobSet,
}

impl Excludes {
    pub(crate) fn new(patterns: &[String]) -> Result<Excludes> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            let glob = GlobBuilder::new(p.trim_start_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Invalid(format!("exclude pattern {p:?}: {e}")))?;
            if p.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Invalid(format!("exclude patterns: {e}")))
        };
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    pub(crate) fn excluded(&self, name: &std::ffi::OsStr, rel: &Path) -> bool {
        self.names.is_match(name) || self.paths.is_match(rel)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Include {
    All,
    Leading,
    No,
}

fn include(rel: &Path, only: Option<&[PathBuf]>) -> Include {
    let Some(only) = only else {
        return Include::All;
    };
    if only.iter().any(|p| rel.starts_with(p)) {
        Include::All
    } else if only.iter().any(|p| p.starts_with(rel)) {
        Include::Leading
    } else {
        Include::No
    }
}

struct Dir {
    nodes: Vec<Node>,
    /// (directory, node) in the parent that points here; `None` for the root.
    up: Option<(usize, usize)>,
    /// The parent snapshot's subtree for this directory, if it had one.
    parent_subtree: Option<Id>,
    removed: HashSet<usize>,
}

struct Job {
    dir: usize,
    node: usize,
    /// For messages only: files are opened by `name` in `parent`, never by path.
    path: PathBuf,
    parent: Arc<OwnedFd>,
    name: OsString,
    inode: u64,
    device: u64,
}

enum JobResult {
    Done {
        dir: usize,
        node: usize,
        content: Vec<Id>,
        size: u64,
        /// Read from the open file (or why they could not be).
        xattrs: std::result::Result<Vec<crate::tree::Xattr>, String>,
    },
    Skipped {
        dir: usize,
        node: usize,
        warning: Warning,
    },
}

struct Sealed {
    temp: TempFile,
    id: Id,
    entries: Vec<pack::PackEntry>,
    size: u64,
}

struct OpenPack {
    builder: PackBuilder<BufWriter<File>>,
    path: PathBuf,
}

/// Accumulates blobs into packs shared by all workers.
struct Packer<'r> {
    repo: &'r Repository,
    current: Mutex<Option<OpenPack>>,
    sealed: Mutex<Option<Sender<Sealed>>>,
    claimed: Mutex<HashSet<Id>>,
    blobs_added: AtomicU64,
    bytes_added: AtomicU64,
}

impl Packer<'_> {
    /// Whether this caller should store blob `id` (nobody has it or is storing it).
    fn claim(&self, id: &Id) -> bool {
        !self.repo.index().contains(id) && self.claimed.lock().expect("lock").insert(*id)
    }

    fn add(&self, blob_type: BlobType, id: Id, raw: &[u8]) -> Result<()> {
        let (compression, stored) = pack::compress(raw, self.repo.config().zstd_level);
        self.add_stored(blob_type, id, compression, &stored, raw.len())
    }

    fn add_stored(
        &self,
        blob_type: BlobType,
        id: Id,
        compression: Compression,
        stored: &[u8],
        raw_len: usize,
    ) -> Result<()> {
        let mut current = self.current.lock().expect("lock");
        if current.is_none() {
            let TempFile { file, path } = self.repo.backend().create_temp()?;
            *current = Some(OpenPack {
                builder: PackBuilder::new(BufWriter::with_capacity(1 << 20, file)),
                path,
            });
        }
        let open = current.as_mut().expect("just set");
        open.builder
            .add(blob_type, id, compression, stored, raw_len as u32)
            .at(&open.path)?;
        self.blobs_added.fetch_add(1, Ordering::Relaxed);
        self.bytes_added
            .fetch_add(raw_len as u64, Ordering::Relaxed);
        if open.builder.size() >= self.repo.config().pack_size {
            let full = current.take().expect("open");
            drop(current);
            self.seal(full)?;
        }
        Ok(())
    }

    fn seal(&self, open: OpenPack) -> Result<()> {
        let OpenPack { builder, path } = open;
        let (writer, id, entries) = builder.finish().at(&path)?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        let size = file.metadata().at(&path)?.len();
        let sealed = self.sealed.lock().expect("lock").clone();
        sealed
            .ok_or_else(|| Error::Invalid("the pack finisher stopped".into()))?
            .send(Sealed {
                temp: TempFile { file, path },
                id,
                entries,
                size,
            })
            .map_err(|_| Error::Invalid("the pack finisher stopped".into()))
    }

    /// Seals the open pack, if any.
    fn flush(&self) -> Result<()> {
        let open = self.current.lock().expect("lock").take();
        match open {
            Some(p) if !p.builder.is_empty() => self.seal(p),
            Some(p) => {
                let _ = std::fs::remove_file(&p.path);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Drops the open pack (on error or interruption).
    fn discard(&self) {
        if let Some(p) = self.current.lock().expect("lock").take() {
            let _ = std::fs::remove_file(&p.path);
        }
    }
}

/// Commits sealed packs; writes an index file every [`INDEX_EVERY_PACKS`] packs.
/// Returns (packs already indexed, packs committed but not yet indexed, bytes stored).
fn finisher(
    repo: &Repository,
    rx: Receiver<Sealed>,
) -> Result<(Vec<IndexedPack>, Vec<IndexedPack>, u64)> {
    let mut indexed = Vec::new();
    let mut pending: Vec<IndexedPack> = Vec::new();
    let mut stored = 0u64;
    let mut failure = None;
    for s in rx {
        if failure.is_some() {
            let _ = std::fs::remove_file(&s.temp.path);
            continue;
        }
        match repo
            .backend()
            .commit_temp(s.temp, FileKind::Pack, &s.id.to_hex())
        {
            Ok(()) => {
                stored += s.size;
                pending.push(IndexedPack {
                    id: s.id,
                    blobs: s.entries,
                });
                if pending.len() >= INDEX_EVERY_PACKS {
                    match repo
                        .backend()
                        .sync()
                        .and_then(|_| repo.write_index(&pending))
                    {
                        Ok(_) => indexed.append(&mut pending),
                        Err(e) => failure = Some(e),
                    }
                }
            }
            Err(e) => failure = Some(e),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok((indexed, pending, stored)),
    }
}

struct Scan<'a> {
    repo: &'a Repository,
    root: &'a Path,
    opts: &'a BackupOptions,
    excludes: Excludes,
    names: NameCache,
    dirs: Vec<Dir>,
    summary: Summary,
    warnings: Vec<Warning>,
    jobs: Option<Sender<Job>>,
    to_read: (u64, u64),
}

impl Scan<'_> {
    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(path = %path.display(), "{message}");
        self.warnings.push(Warning {
            path: path.to_path_buf(),
            message,
        });
    }

    /// The path of directory `di`, for messages.
    fn dir_path(&self, mut di: usize) -> PathBuf {
        let mut names = Vec::new();
        while let Some((pd, pn)) = self.dirs[di].up {
            names.push(self.dirs[pd].nodes[pn].name.as_os_str().to_os_string());
            di = pd;
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

    /// Opens a directory to list: the root by path (the admin's own setting), every other
    /// one by name in its parent's descriptor, never through a symlink, and only if it is still
    /// the directory its parent listed (a member swapping it for a link or another folder gets
    /// a warning, never the other folder's content).
    fn open_dir(&mut self, item: &Pending) -> Option<Arc<OwnedFd>> {
        let Some(parent) = &item.parent else {
            return None;
        };
        let fd = match platform::open_dir_at(parent.as_ref(), &item.name) {
            Ok(fd) => fd,
            Err(e) => {
                self.warn(
                    &item.abs,
                    format!("cannot enter directory without following a link: {e}"),
                );
                return None;
            }
        };
        match rustix::fs::fstat(&fd) {
            Ok(st) if Some((st.st_dev, st.st_ino)) == item.expect => Some(Arc::new(fd)),
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

    fn run(&mut self, cancel: &CancelToken, parent_root: Option<Id>) -> Result<()> {
        let root_fd = platform::open_dir(self.root).map_err(|e| match e {
            Error::Io { source, .. }
                if source.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
                    || source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
            {
                Error::Invalid(format!(
                    "{}: not a directory; give the folder to back up",
                    self.root.display()
                ))
            }
            other => other,
        })?;
        let root_dev = rustix::fs::fstat(&root_fd).at(self.root)?.st_dev;
        self.dirs.push(Dir {
            nodes: Vec::new(),
            up: None,
            parent_subtree: parent_root,
            removed: HashSet::new(),
        });
        // Depth costs heap here, never stack: pending directories wait on this explicit stack,
        // each holding its parent's descriptor (siblings share it).
        let mut stack: Vec<Pending> = vec![Pending {
            di: 0,
            parent: None,
            name: OsString::new(),
            abs: self.root.to_path_buf(),
            rel: PathBuf::new(),
            expect: None,
        }];
        let mut root_fd = Some(Arc::new(root_fd));
        while let Some(item) = stack.pop() {
            if cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let di = item.di;
            let fd = match root_fd.take() {
                Some(fd) => fd,
                None => match self.open_dir(&item) {
                    Some(fd) => fd,
                    None => continue,
                },
            };
            if let Some((pd, pn)) = self.dirs[di].up {
                match platform::read_xattrs_fd(fd.as_ref()) {
                    Ok(x) => self.dirs[pd].nodes[pn].xattrs = x,
                    Err(e) => self.warn(&item.abs, format!("cannot read extended attributes: {e}")),
                }
            }
            let abs = item.abs;
            let rel = item.rel;
            let ptree = self.parent_tree(self.dirs[di].parent_subtree, &abs);
            let mut entries: Vec<OsString> = match list_dir(fd.as_ref()) {
                Ok(names) => names,
                Err(e) if di == 0 => return Err(Error::io(&abs, e)),
                Err(e) => {
                    self.warn(&abs, format!("cannot list directory: {e}"));
                    continue;
                }
            };
            entries.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in entries {
                let path = abs.join(&name);
                let rel_child = rel.join(&name);
                if self.excludes.excluded(&name, &rel_child) {
                    continue;
                }
                let inc = include(&rel_child, self.opts.only.as_deref());
                if inc == Include::No {
                    continue;
                }
                let st = match rustix::fs::statat(fd.as_ref(), &name, AtFlags::SYMLINK_NOFOLLOW) {
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
                let previous = ptree.as_ref().and_then(|t| t.find(name.as_bytes()));
                let ni = self.dirs[di].nodes.len();
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
                                && p.content.iter().all(|id| self.repo.index().contains(id))
                        });
                        if let Some(p) = unchanged {
                            // Same ctime: the extended attributes did not change either.
                            node.content = p.content.clone();
                            node.xattrs = p.xattrs.clone();
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
                            let sent = self.jobs.as_ref().map(|j| j.send(job));
                            if !matches!(sent, Some(Ok(()))) {
                                return Err(Error::Interrupted);
                            }
                        }
                    }
                    NodeKind::Dir => {
                        if previous.is_none() {
                            self.summary.dirs_new += 1;
                        }
                        let parent_subtree = previous
                            .filter(|p| p.kind == NodeKind::Dir)
                            .and_then(|p| p.subtree);
                        let child = self.dirs.len();
                        self.dirs.push(Dir {
                            nodes: Vec::new(),
                            up: Some((di, ni)),
                            parent_subtree,
                            removed: HashSet::new(),
                        });
                        if st.st_dev != root_dev {
                            self.warn(
                                &path,
                                "another filesystem is mounted here; its content is left out (a backup stays on the share's filesystem)",
                            );
                        } else {
                            stack.push(Pending {
                                di: child,
                                parent: Some(fd.clone()),
                                name: name.clone(),
                                abs: path.clone(),
                                rel: rel_child,
                                expect: Some((st.st_dev, st.st_ino)),
                            });
                        }
                    }
                    NodeKind::Symlink => {
                        self.summary.others += 1;
                        match rustix::fs::readlinkat(fd.as_ref(), &name, Vec::new()) {
                            Ok(t) => node.target = Some(Bytes(t.into_bytes())),
                            Err(e) => {
                                self.warn(&path, format!("cannot read symlink: {e}"));
                                continue;
                            }
                        }
                    }
                    // FIFOs, sockets and devices are recorded, never opened.
                    _ => self.summary.others += 1,
                }
                self.dirs[di].nodes.push(node);
            }
        }
        Ok(())
    }

    fn apply(&mut self, r: JobResult, progress: &dyn Progress) {
        match r {
            JobResult::Done {
                dir,
                node,
                content,
                size,
                xattrs,
            } => {
                let n = &mut self.dirs[dir].nodes[node];
                self.summary.total_bytes = self.summary.total_bytes - n.size + size;
                self.summary.bytes_read += size;
                n.content = content;
                n.size = size;
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
                progress.add_file(&warning.path);
                self.summary.total_files -= 1;
                self.summary.total_bytes -= self.dirs[dir].nodes[node].size;
                self.dirs[dir].removed.insert(node);
                self.warn(&warning.path, warning.message);
            }
        }
    }

    /// Encodes and stores the trees bottom-up; returns the root tree's id.
    fn build_trees(&mut self, packer: &Packer<'_>) -> Result<Id> {
        let mut root = Id::default();
        for di in (0..self.dirs.len()).rev() {
            let dir = &mut self.dirs[di];
            let nodes = std::mem::take(&mut dir.nodes);
            let removed = std::mem::take(&mut dir.removed);
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
            let id = Id::hash(&bytes);
            if packer.claim(&id) {
                packer.add(BlobType::Tree, id, &bytes)?;
            }
            if di > 0 {
                match dir.parent_subtree {
                    Some(p) if p == id => self.summary.dirs_unchanged += 1,
                    Some(_) => self.summary.dirs_changed += 1,
                    None => {}
                }
            }
            match dir.up {
                Some((pd, pn)) => self.dirs[pd].nodes[pn].subtree = Some(id),
                None => root = id,
            }
        }
        Ok(root)
    }
}

/// Opens a file to read it: by name in its directory's descriptor, never through a symlink,
/// never blocking (a FIFO swapped in opens at once and is then refused by the type check).
fn open_for_backup(dir: &OwnedFd, name: &OsStr) -> std::io::Result<File> {
    Ok(File::from(sharekeep_policies::walk::open_file(dir, name)?))
}

/// The names in a directory (without `.` and `..`), read from its descriptor.
fn list_dir(dir: &OwnedFd) -> std::io::Result<Vec<OsString>> {
    Ok(sharekeep_policies::walk::list(dir)?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// A directory waiting to be listed.
struct Pending {
    di: usize,
    /// The directory holding it (`None`: the root, opened by path).
    parent: Option<Arc<OwnedFd>>,
    name: OsString,
    abs: PathBuf,
    rel: PathBuf,
    /// (device, inode) its parent listed.
    expect: Option<(u64, u64)>,
}

fn read_job(
    job: &Job,
    repo: &Repository,
    packer: &Packer<'_>,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<JobResult> {
    let skipped = |message: String| JobResult::Skipped {
        dir: job.dir,
        node: job.node,
        warning: Warning {
            path: job.path.clone(),
            message,
        },
    };
    let file = match open_for_backup(&job.parent, &job.name) {
        Ok(f) => f,
        Err(e) => return Ok(skipped(format!("cannot open: {e}"))),
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.ino() == job.inode && m.dev() == job.device => {}
        Ok(_) => return Ok(skipped("replaced during the backup; left out".into())),
        Err(e) => return Ok(skipped(format!("cannot stat: {e}"))),
    }
    let xattrs = platform::read_xattrs_fd(&file).map_err(|e| e.to_string());
    let mut chunker = Chunker::with_buffer(file, repo.config().chunker, std::mem::take(buf));
    let mut content = Vec::new();
    let mut size = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let chunk = match chunker.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                *buf = chunker.into_buffer();
                return Ok(skipped(format!("read error: {e}")));
            }
        };
        let id = Id::hash(chunk);
        if packer.claim(&id) {
            packer.add(BlobType::Data, id, chunk)?;
        }
        content.push(id);
        size += chunk.len() as u64;
        progress.add_bytes(chunk.len() as u64);
    }
    *buf = chunker.into_buffer();
    progress.add_file(&job.path);
    Ok(JobResult::Done {
        dir: job.dir,
        node: job.node,
        content,
        size,
        xattrs,
    })
}

fn choose_parent(repo: &Repository, root: &str, choice: &ParentChoice) -> Result<Option<Snapshot>> {
    Ok(match choice {
        ParentChoice::None => None,
        ParentChoice::Id(id) => repo.snapshots()?.into_iter().find(|s| s.id == *id),
        ParentChoice::Auto => repo
            .snapshots()?
            .into_iter()
            .filter(|s| s.root() == root && !s.has_tag(crate::snapshot::PRE_RESTORE_TAG))
            .max_by_key(|s| s.time),
    })
}

/// Backs up the directory `root` into `repo` and writes a snapshot.
pub fn backup(
    repo: &Repository,
    root: &Path,
    opts: &BackupOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<BackupOutcome> {
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Shared, "backup")?;
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(chrono::Local::now);
    let root = std::path::absolute(root).at(root)?;
    let root_text = root
        .to_str()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the folder to back up must have a UTF-8 path",
                root.display()
            ))
        })?
        .to_string();
    let excludes = Excludes::new(&opts.excludes)?;
    let parent = choose_parent(repo, &root_text, &opts.parent)?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };

    // Bounded: each waiting job holds its directory's descriptor.
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(256);
    let (res_tx, res_rx) = crossbeam_channel::unbounded::<Result<JobResult>>();
    let (sealed_tx, sealed_rx) = crossbeam_channel::bounded::<Sealed>(4);
    let packer = Packer {
        repo,
        current: Mutex::new(None),
        sealed: Mutex::new(Some(sealed_tx)),
        claimed: Mutex::new(HashSet::new()),
        blobs_added: AtomicU64::new(0),
        bytes_added: AtomicU64::new(0),
    };
    let inner_cancel = CancelToken::new();
    let mut scan = Scan {
        repo,
        root: &root,
        opts,
        excludes,
        names: NameCache::default(),
        dirs: Vec::new(),
        summary: Summary::default(),
        warnings: Vec::new(),
        jobs: Some(job_tx),
        to_read: (0, 0),
    };

    let outcome = std::thread::scope(|s| -> Result<(Id, u64, Vec<IndexedPack>)> {
        let finisher_handle = s.spawn(|| finisher(repo, sealed_rx));
        for _ in 0..threads {
            let job_rx = job_rx.clone();
            let res_tx = res_tx.clone();
            let (packer, inner_cancel) = (&packer, &inner_cancel);
            s.spawn(move || {
                let mut buf = Vec::new();
                for job in job_rx {
                    if inner_cancel.is_cancelled() || cancel.is_cancelled() {
                        break;
                    }
                    let r = read_job(&job, repo, packer, &mut buf, progress, cancel);
                    if r.is_err() {
                        inner_cancel.cancel();
                    }
                    if res_tx.send(r).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        drop(job_rx);

        let scanned = scan.run(cancel, parent.as_ref().map(|p| p.tree));
        // Closing the job channel lets the workers finish.
        scan.jobs = None;
        if scanned.is_ok() {
            progress.set_total(scan.to_read.0, scan.to_read.1);
        }
        let mut failure = scanned.err();
        if failure.is_some() {
            inner_cancel.cancel();
        }
        for r in res_rx {
            match r {
                Ok(r) => scan.apply(r, progress),
                Err(e) => {
                    inner_cancel.cancel();
                    if failure.is_none() || matches!(failure, Some(Error::Interrupted)) {
                        failure = Some(e);
                    }
                }
            }
        }
        if failure.is_none() && cancel.is_cancelled() {
            failure = Some(Error::Interrupted);
        }
        let tree = match failure {
            None => scan
                .build_trees(&packer)
                .and_then(|t| packer.flush().map(|_| t)),
            Some(e) => Err(e),
        };
        if tree.is_err() {
            packer.discard();
        }
        // Closing the sealed channel lets the finisher end.
        packer.sealed.lock().expect("lock").take();
        let finished = finisher_handle.join().expect("finisher thread");
        let (mut indexed, pending, stored) = finished?;
        let tree = match tree {
            Ok(t) => t,
            Err(e) => {
                // Index what was committed, so the next backup reuses it.
                if !pending.is_empty() {
                    let _ = repo
                        .backend()
                        .sync()
                        .and_then(|_| repo.write_index(&pending));
                    repo.add_to_index(pending);
                }
                repo.add_to_index(indexed);
                return Err(e);
            }
        };
        let mut stored = stored;
        if !pending.is_empty() {
            repo.backend().sync()?;
            let bytes = crate::index::encode(&pending).len() as u64;
            repo.write_index(&pending)?;
            stored += bytes;
        }
        indexed.extend(pending);
        Ok((tree, stored, indexed))
    });
    progress.finish();
    let (tree, stored, new_packs) = outcome?;
    repo.add_to_index(new_packs);

    let mut summary = scan.summary;
    summary.blobs_added = packer.blobs_added.load(Ordering::Relaxed);
    summary.bytes_added = packer.bytes_added.load(Ordering::Relaxed);
    summary.bytes_stored = stored;
    summary.warnings = scan.warnings.len() as u64;
    summary.started = Some(time);
    summary.seconds = started.elapsed().as_secs_f64();
    let names = NameCache::default();
    let uid = rustix::process::geteuid().as_raw();
    let mut snapshot = Snapshot {
        id: Id::default(),
        time,
        host: opts.host.clone().unwrap_or_else(hostname),
        username: names.user(uid).unwrap_or_else(|| uid.to_string()),
        paths: vec![root_text],
        tags: opts.tags.clone(),
        tree,
        parent: parent.map(|p| p.id),
        summary,
        program_version: format!("sharekeep {}", env!("CARGO_PKG_VERSION")),
    };
    repo.save_snapshot(&mut snapshot)?;
    Ok(BackupOutcome {
        snapshot,
        warnings: scan.warnings,
    })
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_names_anywhere_and_paths_from_the_root() {
        let ex = Excludes::new(&[
            "~$*".into(),
            "*.tmp".into(),
            "Thumbs.db".into(),
            "archives/*.img".into(),
        ])
        .unwrap();
        let cases = [
            ("a/b/~$devis.docx", true),
            ("x.tmp", true),
            ("deep/er/Thumbs.db", true),
            ("archives/disk.img", true),
            ("other/archives/disk.img", false),
            ("devis.docx", false),
            ("tmp", false),
        ];
        for (rel, want) in cases {
            let p = Path::new(rel);
            assert_eq!(ex.excluded(p.file_name().unwrap(), p), want, "{rel}");
        }
    }

    #[test]
    fn bad_exclude_pattern_is_named() {
        let err = Excludes::new(&["[oops".into()]).unwrap_err();
        assert!(err.to_string().contains("[oops"), "{err}");
    }

    #[test]
    fn only_filter_includes_the_path_its_contents_and_leading_dirs() {
        let only = vec![PathBuf::from("a/b")];
        let o = Some(only.as_slice());
        assert_eq!(include(Path::new("a"), o), Include::Leading);
        assert_eq!(include(Path::new("a/b"), o), Include::All);
        assert_eq!(include(Path::new("a/b/c"), o), Include::All);
        assert_eq!(include(Path::new("a/c"), o), Include::No);
        assert_eq!(include(Path::new("z"), None), Include::All);
    }
}
