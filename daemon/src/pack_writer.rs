//! Writing packs: blobs appended to a temporary file in the repository's `tmp/` until the
//! pack reaches the configured size, then sealed (header written, named by its hash) and
//! committed under `data/`. One home for backup (which seals on its workers and commits on a
//! finisher thread) and prune (which repacks the live blobs of mostly-unused packs).
//!
//! A pack is never referenced before it is committed and durable: callers list it in an
//! index file only after [`Repository::backend`]'s `sync`, and a snapshot only after that.

use crate::backend::{FileKind, TempFile};
use crate::error::{Error, IoContext, Result};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::pack::{self, BlobType, Compression, PackBuilder};
use crate::repo::Repository;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

/// A full pack, written and closed but not yet under `data/`.
pub(crate) struct SealedPack {
    temp: TempFile,
    /// The pack's id (its future name).
    pub(crate) id: Id,
    /// Its blobs.
    pub(crate) entries: Vec<pack::PackEntry>,
    /// Its size in bytes.
    pub(crate) size: u64,
}

impl SealedPack {
    /// Moves the pack under `data/`; returns what an index file lists for it.
    pub(crate) fn commit(self, repo: &Repository) -> Result<IndexedPack> {
        repo.backend()
            .commit_temp(self.temp, FileKind::Pack, &self.id.to_hex())?;
        Ok(IndexedPack {
            id: self.id,
            blobs: self.entries,
        })
    }

    /// Removes the temporary file (on error or interruption).
    pub(crate) fn discard(self) {
        let _ = std::fs::remove_file(&self.temp.path);
    }
}

struct OpenPack {
    builder: PackBuilder<BufWriter<File>>,
    path: PathBuf,
}

/// The pack being filled.
pub(crate) struct PackWriter<'r> {
    repo: &'r Repository,
    open: Option<OpenPack>,
}

impl<'r> PackWriter<'r> {
    pub(crate) fn new(repo: &'r Repository) -> PackWriter<'r> {
        PackWriter { repo, open: None }
    }

    /// Compresses `raw` (zstd at the repository's level, raw when that does not pay), seals it
    /// (encrypted repositories) and adds it; returns the pack it filled, if it did.
    pub(crate) fn add(
        &mut self,
        blob_type: BlobType,
        id: Id,
        raw: &[u8],
    ) -> Result<Option<SealedPack>> {
        let (compression, stored) =
            pack::compress_sealed(&id, raw, self.repo.config().zstd_level, self.repo.keys());
        self.add_stored(blob_type, id, compression, &stored, raw.len() as u32)
    }

    /// Adds a blob in its stored form (compressed and sealed as the repository stores it:
    /// prune moves blobs as they are); returns the pack it filled, if it did.
    pub(crate) fn add_stored(
        &mut self,
        blob_type: BlobType,
        id: Id,
        compression: Compression,
        stored: &[u8],
        raw_len: u32,
    ) -> Result<Option<SealedPack>> {
        if self.open.is_none() {
            let TempFile { file, path } = self.repo.backend().create_temp()?;
            self.open = Some(OpenPack {
                builder: PackBuilder::new(
                    BufWriter::with_capacity(1 << 20, file),
                    self.repo.keys().clone(),
                ),
                path,
            });
        }
        let open = self.open.as_mut().expect("just set");
        open.builder
            .add(blob_type, id, compression, stored, raw_len)
            .at(&open.path)?;
        if blob_type == BlobType::Tree {
            self.repo.cache_tree(&id, stored);
        }
        if open.builder.size() >= self.repo.config().pack_size {
            let full = self.open.take().expect("open");
            return seal(full).map(Some);
        }
        Ok(None)
    }

    /// Seals the open pack, if it holds anything.
    pub(crate) fn flush(&mut self) -> Result<Option<SealedPack>> {
        match self.open.take() {
            Some(p) if !p.builder.is_empty() => seal(p).map(Some),
            Some(p) => {
                let _ = std::fs::remove_file(&p.path);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Drops the open pack (on error or interruption).
    pub(crate) fn discard(&mut self) {
        if let Some(p) = self.open.take() {
            let _ = std::fs::remove_file(&p.path);
        }
    }
}

impl Drop for PackWriter<'_> {
    fn drop(&mut self) {
        self.discard();
    }
}

fn seal(open: OpenPack) -> Result<SealedPack> {
    let OpenPack { builder, path } = open;
    let (writer, id, entries) = builder.finish().at(&path)?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::io(&path, e.into_error()))?;
    let size = file.metadata().at(&path)?.len();
    Ok(SealedPack {
        temp: TempFile { file, path },
        id,
        entries,
        size,
    })
}
