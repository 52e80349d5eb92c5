//! The FUSE filesystem over a repository's snapshots: the inode table, the directory listings
//! and file reads, each answered for the requesting uid through the [`Gate`].
//!
//! ```text
//! inodes:  1 root; browse layout: 2 snapshots/, 3 tags/, 4 latest -> snapshots/<newest>,
//!          tags/<tag>/<name> -> ../../snapshots/<name>; shadow layout: the root lists the
//!          @GMT-… folders. A snapshot's root and everything in it get an inode number hashed
//!          from (parent inode, name): stable while mounted, so `readdir` can name inodes it
//!          never allocated. The table holds only what the kernel references (lookups minus
//!          forgets), and at most MAX_INODES of them: beyond, the oldest entries are
//!          invalidated in the kernel's cache (by a thread of their own, see mod.rs), which
//!          then forgets them unless they are in use (an old folder goes with everything
//!          below it, in one call: oldest first is what a walk has finished with): memory
//!          follows what is in use, not the repository's size or how much of it was walked.
//! trees:   read from the repository on demand, cached by id (bounded by node count)
//! reads:   the file's blobs with their offsets (from the index) are computed at open; reads
//!          are answered by worker threads (reader.rs) from a shared, bounded blob cache
//! rights:  every lookup, getattr, open, listing and access asks the gate with the caller's
//!          uid: Hidden -> ENOENT (it does not exist for them), PassThrough -> may be looked
//!          up but not listed or read (EACCES), Visible -> shown. Nothing is writable (EROFS).
//! refresh: the snapshot list is re-read when the top folders are used and it is older than
//!          a second: new snapshots appear, forgotten ones disappear, without remounting
//! ```

use super::lru::Lru;
use super::names;
use super::reader::{Blobs, OpenFile, Pool};
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::stream::Visibility;
use crate::tree::{Node, NodeKind, Tree};
use fuser::{
    FileAttr, FileType, Filesystem, KernelConfig, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, Request,
};
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What a uid may see of a path (relative to the snapshot's root) in a snapshot.
pub type Gate = Arc<dyn Fn(u32, &str, bool) -> Visibility + Send + Sync>;
/// Which snapshots are shown.
pub type SnapshotFilter = Arc<dyn Fn(&Snapshot) -> bool + Send + Sync>;

/// How the snapshots are laid out at the mount's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `snapshots/<local time>/…`, `latest`, `tags/<tag>/<local time>` (people browsing).
    Browse,
    /// `@GMT-YYYY.MM.DD-HH.MM.SS/…` at the root (Samba's `shadow_copy2`: Previous Versions).
    Shadow,
}

const ROOT: u64 = 1;
const SNAPSHOTS: u64 = 2;
const TAGS: u64 = 3;
const LATEST: u64 = 4;
/// Tree nodes kept in memory.
const TREE_CACHE_NODES: usize = 20_000;
/// Entries kept for the kernel (about 0.3 KiB each) before the oldest are invalidated.
pub const MAX_INODES: usize = 32_768;
/// Invalidations waiting for the notifying thread (more are dropped, and retried later).
const EVICTIONS_QUEUED: usize = 4096;
/// The snapshot folder is listed at most this often (a new or forgotten snapshot shows within
/// this delay); the snapshots themselves are read again only when the listing changed.
const REFRESH: Duration = Duration::from_millis(100);

enum What {
    Root,
    SnapshotsDir,
    TagsDir,
    Tag(String),
    Link(Vec<u8>),
    /// An entry of a snapshot (its root: `rel` empty).
    Entry {
        slot: usize,
        rel: String,
        node: Arc<Meta>,
    },
}

/// What the filesystem keeps of an entry the kernel references (a tree node without its name,
/// owner names, xattrs and change-detection fields: an inode costs little).
struct Meta {
    kind: NodeKind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_ns: i64,
    rdev: u64,
    subtree: Option<Id>,
    target: Option<Box<[u8]>>,
    content: Box<[Id]>,
}

impl Meta {
    fn of(n: &Node) -> Meta {
        Meta {
            kind: n.kind,
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            size: n.size,
            mtime_ns: n.mtime_ns,
            rdev: n.rdev,
            subtree: n.subtree,
            target: n.target.as_ref().map(|t| t.0.clone().into_boxed_slice()),
            content: n.content.clone().into_boxed_slice(),
        }
    }
}

struct Inode {
    what: What,
    parent: u64,
    /// Lookups the kernel holds (entries are dropped when they are all forgotten).
    lookups: u64,
}

struct Slot {
    snap: Snapshot,
    name: String,
    root: u64,
    live: bool,
}

struct Listing {
    entries: Vec<(u64, FileType, Vec<u8>)>,
}

/// The filesystem (see the module documentation).
pub struct SnapshotFs {
    repo: Arc<Repository>,
    layout: Layout,
    filter: Option<SnapshotFilter>,
    gate: Option<Gate>,
    slots: Vec<Slot>,
    by_id: HashMap<Id, usize>,
    loaded: Option<Instant>,
    /// The snapshot files' names at the last reload.
    listed: Vec<String>,
    inodes: HashMap<u64, Inode>,
    trees: Lru<Arc<Tree>>,
    blobs: Arc<Blobs>,
    pool: Pool,
    files: HashMap<u64, Arc<OpenFile>>,
    dirs: HashMap<u64, Listing>,
    next_fh: u64,
    ttl: Duration,
    mounted_at: SystemTime,
    /// Entries in the order they were added, for eviction.
    aged: VecDeque<u64>,
    /// (parent inode, name) of entries for the kernel to drop.
    evict: crossbeam_channel::Sender<(u64, Vec<u8>)>,
    evictions: Option<crossbeam_channel::Receiver<(u64, Vec<u8>)>>,
    max_inodes: usize,
}

impl std::fmt::Debug for SnapshotFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFs")
            .field("layout", &self.layout)
            .field("snapshots", &self.slots.len())
            .field("inodes", &self.inodes.len())
            .finish()
    }
}

fn hash_ino(parent: u64, name: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parent.hash(&mut h);
    name.hash(&mut h);
    // The top bit keeps them clear of the fixed inodes.
    h.finish() | (1 << 63)
}

fn join(rel: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if rel.is_empty() {
        name.into_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::Socket => FileType::Socket,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
    }
}

/// The folder a snapshot's root appears as (its own metadata is not recorded).
fn snapshot_root(snap: &Snapshot) -> Meta {
    Meta {
        kind: NodeKind::Dir,
        mode: 0o555,
        uid: 0,
        gid: 0,
        size: 0,
        mtime_ns: snap.time.timestamp_nanos_opt().unwrap_or(0),
        rdev: 0,
        subtree: Some(snap.tree),
        target: None,
        content: Box::new([]),
    }
}

fn time_of_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

impl SnapshotFs {
    /// A filesystem over `repo`'s snapshots (those `filter` accepts), answering each caller
    /// as `gate` says (`None`: everything visible to whoever may use the mount).
    pub fn new(
        repo: Repository,
        layout: Layout,
        filter: Option<SnapshotFilter>,
        gate: Option<Gate>,
    ) -> SnapshotFs {
        let mut inodes = HashMap::new();
        let fixed = [
            (ROOT, What::Root),
            (SNAPSHOTS, What::SnapshotsDir),
            (TAGS, What::TagsDir),
            (LATEST, What::Link(Vec::new())),
        ];
        for (ino, what) in fixed {
            inodes.insert(
                ino,
                Inode {
                    what,
                    parent: ROOT,
                    lookups: 0,
                },
            );
        }
        // Under a gate, answers differ by caller: the kernel must ask every time.
        let ttl = if gate.is_some() {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        };
        let repo = Arc::new(repo);
        let (evict, evictions) = crossbeam_channel::bounded(EVICTIONS_QUEUED);
        SnapshotFs {
            blobs: Arc::new(Blobs::new(repo.clone())),
            pool: Pool::new(),
            repo,
            layout,
            filter,
            gate,
            slots: Vec::new(),
            by_id: HashMap::new(),
            loaded: None,
            listed: Vec::new(),
            inodes,
            trees: Lru::new(TREE_CACHE_NODES),
            files: HashMap::new(),
            dirs: HashMap::new(),
            next_fh: 1,
            ttl,
            mounted_at: SystemTime::now(),
            aged: VecDeque::new(),
            evict,
            evictions: Some(evictions),
            max_inodes: MAX_INODES,
        }
    }

    /// Keeps at most `n` entries for the kernel (see [`MAX_INODES`]).
    pub(crate) fn set_max_inodes(&mut self, n: usize) {
        self.max_inodes = n;
    }

    /// The entries the kernel should drop from its cache, (parent inode, name): taken once,
    /// by the thread that sends the invalidations (never the FUSE loop's: the kernel may wait
    /// for the loop to answer a request on that folder before it takes them).
    pub(crate) fn evictions(&mut self) -> Option<crossbeam_channel::Receiver<(u64, Vec<u8>)>> {
        self.evictions.take()
    }

    /// Asks the kernel to forget the oldest entries while there are more than `max_inodes`.
    fn trim(&mut self) {
        // A few per new entry: the table shrinks as fast as it grows, never in a burst.
        for _ in 0..4 {
            if self.inodes.len() <= self.max_inodes {
                return;
            }
            let Some(ino) = self.aged.pop_front() else {
                return;
            };
            let Some(inode) = self.inodes.get(&ino) else {
                continue;
            };
            let What::Entry { rel, .. } = &inode.what else {
                continue;
            };
            if rel.is_empty() {
                continue;
            }
            if inode.lookups == 0 {
                // Unknown to the kernel (its lookup failed): nothing to invalidate, and it is
                // made again if it is looked up.
                self.inodes.remove(&ino);
                continue;
            }

            let name = rel.rsplit('/').next().unwrap_or(rel).as_bytes().to_vec();
            if self.evict.try_send((inode.parent, name)).is_err() {
                // The notifier is behind (or gone): try again later.
                self.aged.push_back(ino);
                return;
            }
        }
    }

    /// Re-reads the snapshot list when the repository's snapshot files changed.
    fn refresh(&mut self) {
        if self.loaded.is_some_and(|t| t.elapsed() < REFRESH) {
            return;
        }
        self.loaded = Some(Instant::now());
        match self.repo.backend().list(crate::backend::FileKind::Snapshot) {
            Ok(mut names) => {
                names.sort();
                if names == self.listed && !self.slots.is_empty() {
                    return;
                }
                self.listed = names;
            }
            Err(e) => {
                tracing::warn!(error = %e, "mount: cannot list snapshots; keeping the last list");
                return;
            }
        }
        let snaps = match self.repo.snapshots() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "mount: cannot list snapshots; keeping the last list");
                return;
            }
        };
        let snaps: Vec<Snapshot> = snaps
            .into_iter()
            .filter(|s| match &self.filter {
                Some(f) => f(s),
                None => true,
            })
            .collect();
        if snaps.iter().any(|s| !self.by_id.contains_key(&s.id)) {
            // New snapshots come with new index files: open the repository again.
            match self.repo.reopen() {
                Ok(r) => {
                    self.repo = Arc::new(r);
                    self.blobs.set_repo(self.repo.clone());
                }
                Err(e) => tracing::warn!(error = %e, "mount: cannot reload the index"),
            }
        }
        let names = names::assign(&snaps, self.layout == Layout::Shadow);
        for s in &mut self.slots {
            s.live = false;
        }
        for (snap, name) in snaps.into_iter().zip(names) {
            let Some(name) = name else { continue };
            match self.by_id.get(&snap.id) {
                Some(&i) => {
                    self.slots[i].live = true;
                    self.slots[i].name = name;
                }
                None => {
                    let i = self.slots.len();
                    let root = hash_ino(0, &snap.id.0);
                    let node = snapshot_root(&snap);
                    self.inodes.insert(
                        root,
                        Inode {
                            what: What::Entry {
                                slot: i,
                                rel: String::new(),
                                node: Arc::new(node),
                            },
                            parent: if self.layout == Layout::Shadow {
                                ROOT
                            } else {
                                SNAPSHOTS
                            },
                            lookups: 0,
                        },
                    );
                    self.by_id.insert(snap.id, i);
                    self.slots.push(Slot {
                        snap,
                        name,
                        root,
                        live: true,
                    });
                }
            }
        }
        let newest = self.live().last().map(|s| s.name.clone());
        if let Some(latest) = self.inodes.get_mut(&LATEST) {
            latest.what = What::Link(
                newest
                    .map(|n| format!("snapshots/{n}").into_bytes())
                    .unwrap_or_default(),
            );
        }
    }

    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.live)
    }

    fn slot_named(&self, name: &[u8]) -> Option<&Slot> {
        self.live().find(|s| s.name.as_bytes() == name)
    }

    fn see(&self, uid: u32, rel: &str, is_dir: bool) -> Visibility {
        match &self.gate {
            None => Visibility::Visible,
            Some(g) => g(uid, rel, is_dir),
        }
    }

    fn tree(&mut self, id: &Id) -> Result<Arc<Tree>, i32> {
        if let Some(t) = self.trees.get(id) {
            return Ok(t);
        }
        let t = Arc::new(self.repo.read_tree(id).map_err(|e| {
            tracing::warn!(error = %e, "mount: cannot read a tree");
            libc::EIO
        })?);
        self.trees.put(*id, t.clone(), t.nodes.len().max(1));
        Ok(t)
    }

    fn virtual_dir_attr(&self, ino: u64) -> FileAttr {
        let newest = self
            .live()
            .last()
            .map(|s| SystemTime::from(s.snap.time))
            .unwrap_or(self.mounted_at);
        FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: newest,
            mtime: newest,
            ctime: newest,
            crtime: newest,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let inode = self.inodes.get(&ino)?;
        Some(match &inode.what {
            What::Root | What::SnapshotsDir | What::TagsDir | What::Tag(_) => {
                self.virtual_dir_attr(ino)
            }
            What::Link(target) => FileAttr {
                size: target.len() as u64,
                kind: FileType::Symlink,
                perm: 0o777,
                nlink: 1,
                ..self.virtual_dir_attr(ino)
            },
            What::Entry { rel, node, .. } => {
                let t = time_of_ns(node.mtime_ns);
                let is_root = rel.is_empty();
                FileAttr {
                    ino,
                    size: if node.kind == NodeKind::Dir {
                        4096
                    } else {
                        node.size
                    },
                    blocks: node.size.div_ceil(512),
                    atime: t,
                    mtime: t,
                    ctime: t,
                    crtime: t,
                    kind: file_type(node.kind),
                    perm: if is_root {
                        0o555
                    } else {
                        (node.mode & 0o7777) as u16
                    },
                    nlink: if node.kind == NodeKind::Dir { 2 } else { 1 },
                    uid: node.uid,
                    gid: node.gid,
                    rdev: node.rdev as u32,
                    blksize: 4096,
                    flags: 0,
                }
            }
        })
    }

    /// Whether `uid` may know `ino` exists (Hidden entries do not, for them).
    fn exists_for(&self, uid: u32, ino: u64) -> Result<Visibility, i32> {
        let inode = self.inodes.get(&ino).ok_or(libc::ENOENT)?;
        match &inode.what {
            What::Entry { rel, node, slot } => {
                if !self.slots[*slot].live && rel.is_empty() {
                    return Err(libc::ENOENT);
                }
                match self.see(uid, rel, node.kind == NodeKind::Dir) {
                    Visibility::Hidden => Err(libc::ENOENT),
                    v => Ok(v),
                }
            }
            _ => Ok(Visibility::Visible),
        }
    }

    fn insert_entry(&mut self, parent: u64, slot: usize, rel: String, node: &Node) -> u64 {
        let ino = hash_ino(parent, &node.name.0);
        if !self.inodes.contains_key(&ino) {
            // Trimmed first: the new entry is not counted by the kernel until the lookup
            // answers, and must not be taken for one it already forgot (it would then never
            // be trimmed: under load, when the invalidations lag, hundreds were held so).
            self.trim();
            self.inodes.insert(
                ino,
                Inode {
                    what: What::Entry {
                        slot,
                        rel,
                        node: Arc::new(Meta::of(node)),
                    },
                    parent,
                    lookups: 0,
                },
            );
            self.aged.push_back(ino);
        }
        ino
    }

    /// The inode of `name` in `parent`, as `uid` sees it.
    fn child(&mut self, parent: u64, name: &[u8], uid: u32) -> Result<u64, i32> {
        let (slot, rel, node) = match &self.inodes.get(&parent).ok_or(libc::ENOENT)?.what {
            What::Root => {
                return match self.layout {
                    Layout::Browse => match name {
                        b"snapshots" => Ok(SNAPSHOTS),
                        b"tags" => Ok(TAGS),
                        b"latest" if self.live().next().is_some() => Ok(LATEST),
                        _ => Err(libc::ENOENT),
                    },
                    Layout::Shadow => {
                        let root = self.slot_named(name).ok_or(libc::ENOENT)?.root;
                        self.exists_for(uid, root).map(|_| root)
                    }
                };
            }
            What::SnapshotsDir => return self.slot_named(name).map(|s| s.root).ok_or(libc::ENOENT),
            What::TagsDir => {
                let tag = String::from_utf8_lossy(name).into_owned();
                if !self.live().any(|s| s.snap.has_tag(&tag)) {
                    return Err(libc::ENOENT);
                }
                let ino = hash_ino(TAGS, name);
                self.inodes.entry(ino).or_insert(Inode {
                    what: What::Tag(tag),
                    parent: TAGS,
                    lookups: 0,
                });
                return Ok(ino);
            }
            What::Tag(tag) => {
                let s = self.slot_named(name).ok_or(libc::ENOENT)?;
                if !s.snap.has_tag(tag) {
                    return Err(libc::ENOENT);
                }
                let target = format!("../../snapshots/{}", s.name).into_bytes();
                let ino = hash_ino(parent, name);
                self.inodes.insert(
                    ino,
                    Inode {
                        what: What::Link(target),
                        parent,
                        lookups: 0,
                    },
                );
                return Ok(ino);
            }
            What::Link(_) => return Err(libc::ENOTDIR),
            What::Entry { slot, rel, node } => (*slot, rel.clone(), node.clone()),
        };
        let Some(subtree) = node.subtree.filter(|_| node.kind == NodeKind::Dir) else {
            return Err(libc::ENOTDIR);
        };
        if self.exists_for(uid, parent)? == Visibility::Hidden {
            return Err(libc::ENOENT);
        }
        let tree = self.tree(&subtree)?;
        let child = tree.find(name).ok_or(libc::ENOENT)?;
        if child.checked_name().is_none() {
            return Err(libc::ENOENT);
        }
        let child_rel = join(&rel, name);
        if self.see(uid, &child_rel, child.kind == NodeKind::Dir) == Visibility::Hidden {
            tracing::debug!(uid, path = %child_rel, "mount: hidden from this user");
            return Err(libc::ENOENT);
        }
        tracing::debug!(uid, path = %child_rel, "mount: lookup");
        Ok(self.insert_entry(parent, slot, child_rel, child))
    }

    /// Everything `uid` may list in `ino`.
    fn listing(&mut self, ino: u64, uid: u32) -> Result<Listing, i32> {
        self.refresh();
        let inode = self.inodes.get(&ino).ok_or(libc::ENOENT)?;
        let parent = inode.parent;
        let mut entries = vec![
            (ino, FileType::Directory, b".".to_vec()),
            (parent, FileType::Directory, b"..".to_vec()),
        ];
        match &inode.what {
            What::Root => match self.layout {
                Layout::Browse => {
                    entries.push((SNAPSHOTS, FileType::Directory, b"snapshots".to_vec()));
                    entries.push((TAGS, FileType::Directory, b"tags".to_vec()));
                    if self.live().next().is_some() {
                        entries.push((LATEST, FileType::Symlink, b"latest".to_vec()));
                    }
                }
                Layout::Shadow => {
                    for s in self.live() {
                        if self.see(uid, "", true) != Visibility::Hidden {
                            entries.push((
                                s.root,
                                FileType::Directory,
                                s.name.clone().into_bytes(),
                            ));
                        }
                    }
                }
            },
            What::SnapshotsDir => {
                for s in self.live() {
                    entries.push((s.root, FileType::Directory, s.name.clone().into_bytes()));
                }
            }
            What::TagsDir => {
                let mut tags: Vec<&String> = self.live().flat_map(|s| s.snap.tags.iter()).collect();
                tags.sort();
                tags.dedup();
                for t in tags {
                    entries.push((
                        hash_ino(TAGS, t.as_bytes()),
                        FileType::Directory,
                        t.clone().into_bytes(),
                    ));
                }
            }
            What::Tag(tag) => {
                for s in self.live().filter(|s| s.snap.has_tag(tag)) {
                    entries.push((
                        hash_ino(ino, s.name.as_bytes()),
                        FileType::Symlink,
                        s.name.clone().into_bytes(),
                    ));
                }
            }
            What::Link(_) => return Err(libc::ENOTDIR),
            What::Entry { rel, node, .. } => {
                let (rel, node) = (rel.clone(), node.clone());
                if node.kind != NodeKind::Dir {
                    return Err(libc::ENOTDIR);
                }
                match self.exists_for(uid, ino)? {
                    Visibility::Visible => {}
                    _ => return Err(libc::EACCES),
                }
                let Some(subtree) = node.subtree else {
                    return Ok(Listing { entries });
                };
                let tree = self.tree(&subtree)?;
                for child in &tree.nodes {
                    if child.checked_name().is_none() {
                        continue;
                    }
                    let is_dir = child.kind == NodeKind::Dir;
                    if self.gate.is_some()
                        && self.see(uid, &join(&rel, &child.name.0), is_dir) == Visibility::Hidden
                    {
                        continue;
                    }
                    entries.push((
                        hash_ino(ino, &child.name.0),
                        file_type(child.kind),
                        child.name.0.clone(),
                    ));
                }
            }
        }
        Ok(Listing { entries })
    }

    fn open_file(&mut self, ino: u64, uid: u32) -> Result<OpenFile, i32> {
        match self.exists_for(uid, ino)? {
            Visibility::Visible => {}
            _ => return Err(libc::EACCES),
        }
        let Some(Inode {
            what: What::Entry { rel, node, .. },
            ..
        }) = self.inodes.get(&ino)
        else {
            return Err(libc::EISDIR);
        };
        if node.kind != NodeKind::File {
            return Err(libc::EISDIR);
        }
        let index = self.repo.index();
        let mut blobs = Vec::with_capacity(node.content.len());
        let mut at = 0u64;
        for id in node.content.iter() {
            let (_, entry) = index.get(id).ok_or_else(|| {
                tracing::warn!(path = %rel, blob = %id.short(), "mount: a blob of this file is missing from the index");
                libc::EIO
            })?;
            blobs.push((at, *id));
            at += u64::from(entry.raw_length);
        }
        Ok(OpenFile {
            blobs,
            size: node.size.min(at),
            rel: rel.clone(),
        })
    }
}

impl Filesystem for SnapshotFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), libc::c_int> {
        let _ = config.set_max_readahead(1 << 20);
        self.refresh();
        Ok(())
    }

    fn lookup(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        if matches!(parent, ROOT | SNAPSHOTS | TAGS) {
            self.refresh();
        }
        match self.child(parent, name.as_bytes(), req.uid()) {
            Ok(ino) => match self.attr(ino) {
                Some(attr) => {
                    if let Some(i) = self.inodes.get_mut(&ino) {
                        i.lookups += 1;
                    }
                    reply.entry(&self.ttl, &attr, 0);
                }
                None => reply.error(libc::ENOENT),
            },
            Err(e) => reply.error(e),
        }
    }

    fn forget(&mut self, _req: &Request<'_>, ino: u64, nlookup: u64) {
        let gone = match self.inodes.get_mut(&ino) {
            Some(i) => {
                i.lookups = i.lookups.saturating_sub(nlookup);
                // Fixed inodes, tags and snapshot roots stay; entries go when forgotten.
                i.lookups == 0 && matches!(&i.what, What::Entry { rel, .. } if !rel.is_empty())
            }
            None => false,
        };
        if gone {
            self.inodes.remove(&ino);
        }
        // Each forget makes room in the invalidation queue: trimming goes on after a burst of
        // new entries stopped (it would otherwise wait for the next new entry, over the cap).
        self.trim();
    }

    fn getattr(&mut self, req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if ino == ROOT {
            self.refresh();
        }
        if let Err(e) = self.exists_for(req.uid(), ino) {
            return reply.error(e);
        }
        match self.attr(ino) {
            Some(a) => reply.attr(&self.ttl, &a),
            None => reply.error(libc::ENOENT),
        }
    }

    fn readlink(&mut self, req: &Request<'_>, ino: u64, reply: ReplyData) {
        if let Err(e) = self.exists_for(req.uid(), ino) {
            return reply.error(e);
        }
        match self.inodes.get(&ino).map(|i| &i.what) {
            Some(What::Link(t)) => reply.data(t),
            Some(What::Entry { node, .. }) if node.kind == NodeKind::Symlink => {
                reply.data(node.target.as_deref().unwrap_or(b""))
            }
            _ => reply.error(libc::EINVAL),
        }
    }

    fn open(&mut self, req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return reply.error(libc::EROFS);
        }
        match self.open_file(ino, req.uid()) {
            Ok(file) => {
                let fh = self.next_fh;
                self.next_fh += 1;
                self.files.insert(fh, Arc::new(file));
                // Snapshots never change: the kernel may keep what it read.
                reply.opened(fh, fuser::consts::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        match self.files.get(&fh) {
            Some(file) => self
                .pool
                .read(&self.blobs, file, offset.max(0) as u64, size, reply),
            None => reply.error(libc::EBADF),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.remove(&fh);
        reply.ok();
    }

    fn opendir(&mut self, req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        match self.listing(ino, req.uid()) {
            Ok(l) => {
                let fh = self.next_fh;
                self.next_fh += 1;
                self.dirs.insert(fh, l);
                reply.opened(fh, 0);
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let Some(l) = self.dirs.get(&fh) else {
            return reply.error(libc::EBADF);
        };
        for (i, (ino, kind, name)) in l.entries.iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(*ino, (i + 1) as i64, *kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        reply: ReplyEmpty,
    ) {
        self.dirs.remove(&fh);
        reply.ok();
    }

    fn access(&mut self, req: &Request<'_>, ino: u64, mask: i32, reply: ReplyEmpty) {
        if mask & libc::W_OK != 0 {
            return reply.error(libc::EROFS);
        }
        match self.exists_for(req.uid(), ino) {
            Ok(Visibility::Visible) => reply.ok(),
            // A folder one may only pass through: X yes, R no.
            Ok(_) if mask & libc::R_OK == 0 => reply.ok(),
            Ok(_) => reply.error(libc::EACCES),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: fuser::ReplyStatfs) {
        self.trim();
        // Files: the entries held for the kernel now (`df -i` shows what the mount holds).
        reply.statfs(0, 0, 0, self.inodes.len() as u64, 0, 4096, 255, 4096);
    }
}
