//! The backup's side of pack writing: blobs from every worker into one open pack, each blob
//! stored once, full packs committed and indexed by a finisher thread.
//!
//! ```text
//! claim(id)   the repository's index lacks it and no one in this backup is storing it
//! add         compress outside the lock, append to the open pack ([`PackWriter`])
//! finisher    commits sealed packs under data/; every INDEX_EVERY_PACKS packs (64 to a remote store, the
//!             packs in between in a local journal: journal.rs; and at the end) syncs, writes an index file, then moves their blobs from `in_flight` to
//!             the repository's in-memory index
//! ```
//! `in_flight` holds only the blobs of packs not yet listed in an index file (the open pack,
//! the packs queued to the finisher, up to INDEX_EVERY_PACKS committed ones): its size is
//! bounded whatever the size of the backup, and the in-memory index only ever names blobs
//! an index file lists.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::pack::BlobType;
use crate::pack_writer::{PackWriter, SealedPack};
use crate::repo::Repository;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Index files are written after this many packs, so an interrupted backup's data is reused
/// (to a remote store: every [`super::journal::REMOTE_INDEX_EVERY_PACKS`], the packs in
/// between noted in a local journal).
const INDEX_EVERY_PACKS: usize = 4;

/// Accumulates blobs into packs shared by all workers.
pub(super) struct Packer<'r> {
    repo: &'r Repository,
    writer: Mutex<PackWriter<'r>>,
    sealed: Mutex<Option<Sender<SealedPack>>>,
    in_flight: Mutex<HashSet<Id>>,
    /// Committed packs not indexed yet, noted locally (remote stores).
    journal: Mutex<Option<super::journal::Journal>>,
    index_every: usize,
    pub(super) blobs_added: AtomicU64,
    pub(super) bytes_added: AtomicU64,
}

impl<'r> Packer<'r> {
    pub(super) fn new(
        repo: &'r Repository,
        sealed: Sender<SealedPack>,
        journal: Option<super::journal::Journal>,
    ) -> Packer<'r> {
        let index_every = if journal.is_some() {
            super::journal::REMOTE_INDEX_EVERY_PACKS
        } else {
            INDEX_EVERY_PACKS
        };
        Packer {
            repo,
            writer: Mutex::new(PackWriter::new(repo)),
            sealed: Mutex::new(Some(sealed)),
            in_flight: Mutex::new(HashSet::new()),
            journal: Mutex::new(journal),
            index_every,
            blobs_added: AtomicU64::new(0),
            bytes_added: AtomicU64::new(0),
        }
    }

    /// Whether this caller should store blob `id` (nobody has it or is storing it).
    pub(super) fn claim(&self, id: &Id) -> bool {
        // Same lock order as the finisher's `publish`: in_flight, then the index.
        let mut in_flight = self.in_flight.lock().expect("lock");
        !in_flight.contains(id) && !self.repo.index().contains(id) && in_flight.insert(*id)
    }

    /// Stores a blob this caller claimed.
    pub(super) fn add(&self, blob_type: BlobType, id: Id, raw: &[u8]) -> Result<()> {
        // Compression (and sealing) is the costly part: outside the lock, on the caller's core.
        let (compression, stored) =
            crate::pack::compress_sealed(&id, raw, self.repo.config().zstd_level, self.repo.keys());
        let full = self.writer.lock().expect("lock").add_stored(
            blob_type,
            id,
            compression,
            &stored,
            raw.len() as u32,
        )?;
        self.blobs_added.fetch_add(1, Ordering::Relaxed);
        self.bytes_added
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        match full {
            Some(pack) => self.send(pack),
            None => Ok(()),
        }
    }

    fn send(&self, pack: SealedPack) -> Result<()> {
        let sealed = self.sealed.lock().expect("lock").clone();
        let stopped = || Error::Invalid("the pack finisher stopped".into());
        match sealed {
            Some(tx) => tx.send(pack).map_err(|e| {
                e.into_inner().discard();
                stopped()
            }),
            None => {
                pack.discard();
                Err(stopped())
            }
        }
    }

    /// Seals the open pack, if any, and lets the finisher end.
    pub(super) fn finish(&self) -> Result<()> {
        let last = self.writer.lock().expect("lock").flush();
        let sent = match last {
            Ok(Some(pack)) => self.send(pack),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.sealed.lock().expect("lock").take();
        sent
    }

    /// Drops the open pack (on error or interruption) and lets the finisher end.
    pub(super) fn abandon(&self) {
        self.writer.lock().expect("lock").discard();
        self.sealed.lock().expect("lock").take();
    }

    /// Writes an index file for `packs` (already committed) and moves their blobs from
    /// `in_flight` to the repository's index. Returns the index file's size.
    fn publish(&self, packs: &mut Vec<IndexedPack>) -> Result<u64> {
        self.repo.backend().sync()?;
        let bytes = crate::index::encode(packs).len() as u64;
        self.repo.write_index(packs)?;
        let mut in_flight = self.in_flight.lock().expect("lock");
        for p in packs.iter() {
            for b in &p.blobs {
                in_flight.remove(&b.id);
            }
        }
        self.repo.add_to_index(std::mem::take(packs));
        if let Some(j) = self.journal.lock().expect("lock").as_mut() {
            j.clear()?;
        }
        Ok(bytes)
    }

    /// Notes a committed pack in the journal, if there is one; `false` when it could not be
    /// (the pack is then indexed at once).
    fn note(&self, pack: &IndexedPack) -> bool {
        let mut journal = self.journal.lock().expect("lock");
        match journal.as_mut() {
            Some(j) => j.note(pack).is_ok(),
            None => true,
        }
    }

    /// The finisher thread: commits sealed packs and indexes them, every
    /// [`INDEX_EVERY_PACKS`] packs and at the end, whether the backup succeeded or not (its
    /// data is then reused by the next one). Returns the bytes added to the repository.
    pub(super) fn finisher(&self, rx: Receiver<SealedPack>) -> Result<u64> {
        let mut pending: Vec<IndexedPack> = Vec::new();
        let mut stored = 0u64;
        let mut failure = None;
        for s in rx {
            if failure.is_some() {
                s.discard();
                continue;
            }
            let size = s.size;
            match s.commit(self.repo) {
                Ok(p) => {
                    stored += size;
                    let noted = self.note(&p);
                    pending.push(p);
                    if !noted || pending.len() >= self.index_every {
                        match self.publish(&mut pending) {
                            Ok(n) => stored += n,
                            Err(e) => failure = Some(e),
                        }
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        if failure.is_none() && !pending.is_empty() {
            match self.publish(&mut pending) {
                Ok(n) => stored += n,
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(stored),
        }
    }
}
