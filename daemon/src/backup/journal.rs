//! The packs a backup committed to a remote store and has not listed in an index file yet,
//! noted in a local file beside the store's cache. Each object sent to a store is a billed
//! request, so a backup to one writes an index file every [`REMOTE_INDEX_EVERY_PACKS`] packs
//! (about 1 GiB) rather than every 4; this journal is what keeps an interrupted backup's
//! uploads from being sent again all the same.
//!
//! ```text
//! <cache>/remote-<store>/unindexed/<pid>-<nanos>   one per running backup, locked (flock) for
//!                                                  its life; a record per committed pack (its
//!                                                  index entry, length-prefixed), fsynced
//! index file written  -> the journal emptied; the backup's end -> removed
//! a backup starts     -> every journal no backup holds (its backup died, or lost the store):
//!                        its packs still on the store indexed at once (one index file), the
//!                        journal removed; a pack gone from the store (a prune) is skipped
//! ```

use crate::error::{Error, IoContext, Result};
use crate::index::IndexedPack;
use crate::repo::Repository;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Index files of a backup to a remote store: one every this many packs (16 MiB each).
pub(super) const REMOTE_INDEX_EVERY_PACKS: usize = 64;

/// One backup's journal.
pub(super) struct Journal {
    file: File,
    path: PathBuf,
    empty: bool,
}

fn record(pack: &IndexedPack) -> Vec<u8> {
    let body = crate::index::encode(std::slice::from_ref(pack));
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The packs a journal names (a record cut short by a crash ends it).
fn read_records(file: &mut File, path: &Path) -> Result<Vec<IndexedPack>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).at(path)?;
    let mut packs = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let Some(body) = rest.get(4..4 + len) else {
            break;
        };
        match crate::index::decode(body, path) {
            Ok(mut p) => packs.append(&mut p),
            Err(_) => break,
        }
        rest = &rest[4 + len..];
    }
    Ok(packs)
}

/// Indexes the packs of journals whose backup is gone; how many packs.
fn recover(repo: &Repository, dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut found: Vec<IndexedPack> = Vec::new();
    let mut done: Vec<(PathBuf, File)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(mut file) = File::options().read(true).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // a running backup's
        }
        found.extend(read_records(&mut file, &path)?);
        done.push((path, file));
    }
    let mut packs = Vec::new();
    for p in found {
        let indexed = p.blobs.iter().all(|b| repo.index().contains(&b.id));
        if !indexed
            && !p.blobs.is_empty()
            && repo
                .backend()
                .exists(crate::backend::FileKind::Pack, &p.id.to_hex())?
        {
            packs.push(p);
        }
    }
    let n = packs.len();
    if n > 0 {
        repo.write_index(&packs)?;
        repo.add_to_index(packs);
    }
    for (path, _file) in done {
        let _ = std::fs::remove_file(&path);
    }
    Ok(n)
}

impl Journal {
    /// Recovers what earlier backups left in `dir`, then opens this backup's journal there.
    pub(super) fn open(repo: &Repository, dir: &Path) -> Result<Journal> {
        crate::platform::private_dirs(dir).at(dir)?;
        recover(repo, dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = dir.join(format!("{}-{nanos}", std::process::id()));
        let file = crate::platform::create_new_private(&path).at(&path)?;
        file.lock().at(&path)?;
        Ok(Journal {
            file,
            path,
            empty: true,
        })
    }

    /// Notes a committed pack, durably.
    pub(super) fn note(&mut self, pack: &IndexedPack) -> Result<()> {
        self.file.write_all(&record(pack)).at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        self.empty = false;
        Ok(())
    }

    /// Every pack noted is listed in an index file now.
    pub(super) fn clear(&mut self) -> Result<()> {
        use std::io::Seek;
        self.file.set_len(0).at(&self.path)?;
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Error::io(self.path.clone(), e))?;
        self.empty = true;
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Left (and unlocked) when it still names packs: the next backup indexes them.
        if self.empty {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
