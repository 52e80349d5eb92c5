//! Copying snapshots from one repository to another (the off-site copy of the 3-2-1 rule):
//! only the blobs the destination lacks are sent, each checked against its id on the way.
//!
//! ```text
//! for each selected snapshot the destination has no copy of (same `original`):
//!     walk its trees (each once per run), children first:
//!         a data blob the destination lacks: read (verified), stored
//!         a tree: its nodes' ids mapped, re-encoded, stored if lacking
//!     packs → index → the snapshot, `original` naming the first snapshot of the chain
//! ```
//! When both repositories compute the same content ids (both unencrypted, or the same id
//! key), ids are kept and a blob the destination has is never read. When they differ (an
//! unencrypted local repository copied to an encrypted remote one), every id is computed
//! anew for the destination: data blobs are read to know their new ids (once per run), and
//! trees are rewritten. Either way, what is sent is sealed with the destination's key.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::lock::{LockKind, RepoLock};
use crate::pack::BlobType;
use crate::pack_writer::PackWriter;
use crate::progress::{CancelToken, Progress};
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{NodeKind, Tree};
use std::collections::{HashMap, HashSet};

/// What `copy` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Snapshots copied: (source id, new id in the destination).
    pub copied: Vec<(Id, Id)>,
    /// Selected snapshots the destination already had.
    pub already: usize,
    /// Blobs sent.
    pub blobs_sent: u64,
    /// Their raw bytes.
    pub bytes_sent: u64,
    /// Packs written in the destination.
    pub packs: u64,
}

/// The identity of a snapshot across copies: the snapshot it was first copied from.
fn origin(s: &Snapshot) -> Id {
    s.original.unwrap_or(s.id)
}

struct Copier<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    same_ids: bool,
    writer: PackWriter<'a>,
    written: Vec<IndexedPack>,
    /// Blobs stored in this run (not yet indexed).
    pending: HashSet<Id>,
    /// Source id → destination id, for what this run has already handled.
    trees: HashMap<Id, Id>,
    data: HashMap<Id, Id>,
    report: CopyReport,
    progress: &'a dyn Progress,
    cancel: &'a CancelToken,
}

impl Copier<'_> {
    fn has(&self, id: &Id) -> bool {
        self.pending.contains(id) || self.dst.index().contains(id)
    }

    fn store(&mut self, t: BlobType, id: Id, raw: &[u8]) -> Result<()> {
        if self.has(&id) {
            return Ok(());
        }
        if let Some(full) = self.writer.add(t, id, raw)? {
            self.written.push(full.commit(self.dst)?);
            self.report.packs += 1;
            // An index every four packs: an interrupted copy keeps what it sent.
            if self.written.len() >= 4 {
                self.flush_index()?;
            }
        }
        self.pending.insert(id);
        self.report.blobs_sent += 1;
        self.report.bytes_sent += raw.len() as u64;
        self.progress.add_bytes(raw.len() as u64);
        Ok(())
    }

    fn flush_index(&mut self) -> Result<()> {
        if self.written.is_empty() {
            return Ok(());
        }
        self.dst.backend().sync()?;
        let packs = std::mem::take(&mut self.written);
        self.dst.write_index(&packs)?;
        self.dst.add_to_index(packs);
        self.pending.clear();
        Ok(())
    }

    fn data_blob(&mut self, id: Id) -> Result<Id> {
        if self.cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        if let Some(d) = self.data.get(&id) {
            return Ok(*d);
        }
        let new = if self.same_ids && self.has(&id) {
            id
        } else {
            let raw = self.src.read_blob(&id)?;
            let new = self.dst.blob_id(&raw);
            self.store(BlobType::Data, new, &raw)?;
            new
        };
        self.data.insert(id, new);
        Ok(new)
    }

    fn tree(&mut self, id: Id) -> Result<Id> {
        if let Some(t) = self.trees.get(&id) {
            return Ok(*t);
        }
        let raw = self.src.read_blob(&id)?;
        let mut tree = Tree::decode(&raw).map_err(|e| Error::Corrupt {
            path: std::path::PathBuf::from(format!("tree {}", id.short())),
            reason: e.to_string(),
        })?;
        for node in &mut tree.nodes {
            if let Some(sub) = node.subtree {
                node.subtree = Some(self.tree(sub)?);
            }
            if node.kind == NodeKind::File {
                let content = std::mem::take(&mut node.content);
                node.content = content
                    .into_iter()
                    .map(|c| self.data_blob(c))
                    .collect::<Result<_>>()?;
            }
        }
        // Same ids: the children kept theirs, the tree is sent as it is.
        let new = if self.same_ids {
            self.store(BlobType::Tree, id, &raw)?;
            id
        } else {
            let bytes = tree.encode();
            let new = self.dst.blob_id(&bytes);
            self.store(BlobType::Tree, new, &bytes)?;
            new
        };
        self.trees.insert(id, new);
        Ok(new)
    }
}

/// Copies the snapshots `selected` (all when empty) from `src` to `dst`, skipping those `dst`
/// already has a copy of.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    selected: &[Snapshot],
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<CopyReport> {
    dst.require_full_index("copy")?;
    if src.config().id == dst.config().id && src.location() == dst.location() {
        return Err(Error::Invalid(
            "the source and destination are the same repository".into(),
        ));
    }
    let _src_lock = RepoLock::acquire(src.backend().clone(), LockKind::Shared, "copy (source)")?;
    let _dst_lock = RepoLock::acquire(dst.backend().clone(), LockKind::Shared, "copy")?;
    let have: HashSet<Id> = dst.snapshots()?.iter().map(origin).collect();
    let all;
    let selected = if selected.is_empty() {
        all = src.snapshots()?;
        &all[..]
    } else {
        selected
    };
    let mut c = Copier {
        src,
        dst,
        same_ids: src.keys().same_ids(dst.keys()),
        writer: PackWriter::new(dst),
        written: Vec::new(),
        pending: HashSet::new(),
        trees: HashMap::new(),
        data: HashMap::new(),
        report: CopyReport::default(),
        progress,
        cancel,
    };
    for snap in selected {
        if have.contains(&origin(snap)) {
            c.report.already += 1;
            continue;
        }
        let tree = c.tree(snap.tree)?;
        if let Some(last) = c.writer.flush()? {
            c.written.push(last.commit(dst)?);
            c.report.packs += 1;
        }
        c.flush_index()?;
        let mut copy = snap.clone();
        copy.tree = tree;
        copy.original = Some(origin(snap));
        // The parent names a snapshot of the source.
        copy.parent = None;
        let new = dst.save_snapshot(&mut copy)?;
        c.report.copied.push((snap.id, new));
    }
    Ok(c.report)
}
