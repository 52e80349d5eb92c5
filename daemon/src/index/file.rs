//! Index files: which blob is in which pack, at what offset. An index file is written only
//! after the packs it lists are durable, and a snapshot only after the index that lists its
//! blobs: so whatever a snapshot references can be found.
//!
//! ```text
//! index file = magic:"SKI1" pack_count:u32le pack*
//! pack       = pack_id:[u8;32] blob_count:u32le entry*
//! entry      = type:u8 compression:u8 id:[u8;32] offset:u32le length:u32le raw_length:u32le
//! ```
//! The file is named by the sha256 of its content, checked when it is read.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::{BlobType, Compression, PackEntry};
use std::path::Path;

const INDEX_MAGIC: &[u8; 4] = b"SKI1";
const ENTRY: usize = 46;

/// A pack and the blobs it holds, as listed in an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    /// The pack's id (its file name).
    pub id: Id,
    /// Its blobs.
    pub blobs: Vec<PackEntry>,
}

/// Encodes an index file.
pub fn encode(packs: &[IndexedPack]) -> Vec<u8> {
    let n: usize = packs.iter().map(|p| 36 + p.blobs.len() * ENTRY).sum();
    let mut out = Vec::with_capacity(8 + n);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for p in packs {
        out.extend_from_slice(&p.id.0);
        out.extend_from_slice(&(p.blobs.len() as u32).to_le_bytes());
        for b in &p.blobs {
            out.push(match b.blob_type {
                BlobType::Data => 0,
                BlobType::Tree => 1,
            });
            out.push(b.compression.code());
            out.extend_from_slice(&b.id.0);
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.length.to_le_bytes());
            out.extend_from_slice(&b.raw_length.to_le_bytes());
        }
    }
    out
}

/// Decodes an index file read from `path` (named in errors).
pub fn decode(bytes: &[u8], path: &Path) -> Result<Vec<IndexedPack>> {
    decode_filtered(bytes, path, false)
}

/// Decodes only the tree blobs of an index file (packs listing none are left out); the file
/// is checked as fully as by [`decode`].
pub fn decode_trees(bytes: &[u8], path: &Path) -> Result<Vec<IndexedPack>> {
    decode_filtered(bytes, path, true)
}

fn decode_filtered(bytes: &[u8], path: &Path, only_trees: bool) -> Result<Vec<IndexedPack>> {
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4).ok_or_else(|| corrupt("too short"))? != INDEX_MAGIC {
        return Err(corrupt("not an index file (bad magic)"));
    }
    let truncated = || corrupt("truncated index file");
    let count = r.u32().ok_or_else(truncated)?;
    // Counts are claims: capacity never exceeds what the remaining bytes can hold.
    let left = |r: &Reader<'_>| r.bytes.len() - r.pos;
    let mut packs = Vec::with_capacity((count as usize).min(left(&r) / 36));
    for _ in 0..count {
        let id = Id(r.take(32).ok_or_else(truncated)?.try_into().expect("32"));
        let n = r.u32().ok_or_else(truncated)?;
        let cap = if only_trees { 0 } else { n as usize };
        let mut blobs = Vec::with_capacity(cap.min(left(&r) / ENTRY));
        for _ in 0..n {
            let e = r.take(ENTRY).ok_or_else(truncated)?;
            let blob_type = match e[0] {
                0 => BlobType::Data,
                1 => BlobType::Tree,
                _ => return Err(corrupt("unknown blob type")),
            };
            if only_trees && blob_type == BlobType::Data {
                // Not kept: not decoded either (browsing a million-file repository skips a
                // million entries here).
                continue;
            }
            let compression =
                Compression::from_code(e[1]).ok_or_else(|| corrupt("unknown compression"))?;
            let u = |at: usize| u32::from_le_bytes(e[at..at + 4].try_into().expect("4"));
            let entry = PackEntry {
                blob_type,
                compression,
                id: Id(e[2..34].try_into().expect("32")),
                offset: u(34),
                length: u(38),
                raw_length: u(42),
            };
            if let Some(why) = entry.claim_problem() {
                return Err(corrupt(&why));
            }
            blobs.push(entry);
        }
        if !only_trees || !blobs.is_empty() {
            packs.push(IndexedPack { id, blobs });
        }
    }
    if r.pos != bytes.len() {
        return Err(corrupt("trailing bytes after the last pack"));
    }
    Ok(packs)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, offset: u32) -> PackEntry {
        PackEntry {
            blob_type: if n.is_multiple_of(2) {
                BlobType::Data
            } else {
                BlobType::Tree
            },
            compression: Compression::Zstd,
            id: Id::hash(&[n]),
            offset,
            length: 10 + n as u32,
            raw_length: 20,
        }
    }

    #[test]
    fn index_round_trip() {
        let packs = vec![
            IndexedPack {
                id: Id::hash(b"p1"),
                blobs: vec![entry(1, 0), entry(2, 11)],
            },
            IndexedPack {
                id: Id::hash(b"p2"),
                blobs: vec![entry(3, 0)],
            },
        ];
        let bytes = encode(&packs);
        assert_eq!(decode(&bytes, Path::new("i")).unwrap(), packs);
    }

    #[test]
    fn truncated_index_is_an_error_naming_the_file() {
        let bytes = encode(&[IndexedPack {
            id: Id::hash(b"p1"),
            blobs: vec![entry(1, 0)],
        }]);
        let err = decode(&bytes[..bytes.len() - 3], Path::new("index/abc")).unwrap_err();
        assert!(err.to_string().contains("index/abc"), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
