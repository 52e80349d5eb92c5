//! Pack files: many blobs in one file, followed by a header that lists them, so a pack alone
//! is enough to rebuild the index. Packs are streamed to a temporary file as blobs arrive and
//! named by the sha256 of their whole content once closed.
//!
//! ```text
//! pack    = blob* header header_len:u32le magic:"SKP1"
//! header  = entry*            (in blob order; a blob's offset is the sum of earlier lengths)
//! entry   = type:u8 compression:u8 id:[u8;32] length:u32le raw_length:u32le   (42 bytes)
//! ```
//! `type` is 0 for file data, 1 for a tree; `compression` 0 for raw, 1 for zstd. `id` is the
//! sha256 of the raw (uncompressed) blob (its HMAC in an encrypted repository).
//!
//! In an encrypted repository each blob is sealed after compression and the header (the
//! entries) is sealed as one ([`crate::crypto`]): `length` and `header_len` count the nonce
//! and tag.

use crate::crypto::{Keys, OVERHEAD};
use crate::error::{Error, Result};
use crate::id::Id;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

/// Magic closing every pack.
pub const PACK_MAGIC: &[u8; 4] = b"SKP1";
/// Size of one header entry.
pub const ENTRY_LEN: usize = 42;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobType {
    /// A chunk of a file's content.
    Data,
    /// An encoded directory tree.
    Tree,
}

impl BlobType {
    /// A word for messages.
    pub fn word(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        }
    }
    fn code(self) -> u8 {
        match self {
            BlobType::Data => 0,
            BlobType::Tree => 1,
        }
    }
    fn from_code(c: u8) -> Option<BlobType> {
        match c {
            0 => Some(BlobType::Data),
            1 => Some(BlobType::Tree),
            _ => None,
        }
    }
}

/// How a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// As is.
    Raw,
    /// zstd frame.
    Zstd,
}

impl Compression {
    /// A word for messages.
    pub fn word(self) -> &'static str {
        match self {
            Compression::Raw => "raw",
            Compression::Zstd => "zstd",
        }
    }
    pub(crate) fn code(self) -> u8 {
        match self {
            Compression::Raw => 0,
            Compression::Zstd => 1,
        }
    }
    pub(crate) fn from_code(c: u8) -> Option<Compression> {
        match c {
            0 => Some(Compression::Raw),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// One blob's place in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// Blob type.
    pub blob_type: BlobType,
    /// Storage form.
    pub compression: Compression,
    /// sha256 of the raw blob.
    pub id: Id,
    /// Offset in the pack.
    pub offset: u32,
    /// Stored length.
    pub length: u32,
    /// Raw length.
    pub raw_length: u32,
}

/// The most a data blob may hold: a chunk is at most the chunker's maximum, which a
/// repository's config may set up to 16 MiB (`config.rs`).
pub const MAX_DATA_BLOB: u32 = 16 << 20;
/// The most a tree blob may hold: a directory of roughly 200,000 entries. A backup refuses to
/// write a larger one.
pub const MAX_TREE_BLOB: u32 = 64 << 20;

impl PackEntry {
    /// What is wrong with the lengths this entry claims, if anything. Lengths read from a pack
    /// header or an index are claims: they are checked before anything is allocated.
    pub fn claim_problem(&self) -> Option<String> {
        let cap = match self.blob_type {
            BlobType::Data => MAX_DATA_BLOB,
            BlobType::Tree => MAX_TREE_BLOB,
        };
        // Sealing adds a nonce and a tag (`OVERHEAD`) in an encrypted repository.
        let stored_cap = OVERHEAD as u32
            + match self.compression {
                Compression::Raw => self.raw_length,
                // zstd's worst case for incompressible input stays far below this.
                Compression::Zstd => cap + cap / 64 + 4096,
            };
        if self.raw_length > cap {
            Some(format!(
                "blob {} claims {} bytes; a {} blob holds at most {cap}: damaged or forged",
                self.id.short(),
                self.raw_length,
                self.blob_type.word()
            ))
        } else if self.length > stored_cap {
            Some(format!(
                "blob {} claims {} stored bytes for {} raw ({}): damaged or forged",
                self.id.short(),
                self.length,
                self.raw_length,
                self.compression.word()
            ))
        } else {
            None
        }
    }
}

thread_local! {
    // zstd contexts are costly to create (a few hundred KiB each): one per thread, reused.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `raw` with zstd at `level`, keeping it raw when that does not save at least 1/32.
pub fn compress(raw: &[u8], level: i32) -> (Compression, Vec<u8>) {
    if raw.len() < 64 {
        return (Compression::Raw, raw.to_vec());
    }
    let compressed = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().map(|(l, _)| *l) != Some(level) {
            *cell = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, c) = cell.as_mut()?;
        c.compress(raw).ok()
    });
    match compressed {
        Some(c) if c.len() < raw.len() - raw.len() / 32 => (Compression::Zstd, c),
        _ => (Compression::Raw, raw.to_vec()),
    }
}

/// Compresses blob `id`'s bytes `raw` as [`compress`] does, then seals them with `keys`
/// (encrypted repositories): the bytes a pack stores.
pub(crate) fn compress_sealed(
    id: &Id,
    raw: &[u8],
    level: i32,
    keys: &Keys,
) -> (Compression, Vec<u8>) {
    let (compression, stored) = compress(raw, level);
    if keys.is_encrypted() {
        (compression, keys.seal_blob(id, &stored))
    } else {
        (compression, stored)
    }
}

/// What a read checks of a blob besides its seal and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdCheck {
    /// Its id, computed again from its bytes (`check --read-data`, copy, prune, trees).
    Always,
    /// Its id only where the seal does not authenticate it already ([`Keys::binds_ids`]):
    /// a restore then makes one SHA-256 pass fewer over every byte.
    UnlessSealed,
}

/// Where a decoded blob's raw bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// In the `raw` buffer given.
    Raw,
    /// In this range of the stored buffer (opened in place).
    Stored(std::ops::Range<usize>),
}

/// Checks a stored blob: opens it in place (encrypted repositories), decompresses it into
/// `raw` (whose capacity is reused) and checks its length and (as `check` says) its id.
/// `None` when it does not match its entry (sealing, length or id).
pub(crate) fn decode_blob_into(
    keys: &Keys,
    entry: &PackEntry,
    stored: &mut [u8],
    raw: &mut Vec<u8>,
    check: IdCheck,
) -> Option<Decoded> {
    let range = keys.open_blob_in_place(&entry.id, stored)?;
    let plain = &stored[range.clone()];
    let decoded = match entry.compression {
        Compression::Raw => Decoded::Stored(range),
        Compression::Zstd => {
            raw.clear();
            raw.reserve(entry.raw_length as usize);
            DECOMPRESSOR.with(|cell| {
                let mut cell = cell.borrow_mut();
                if cell.is_none() {
                    *cell = Some(zstd::bulk::Decompressor::new().ok()?);
                }
                cell.as_mut()?.decompress_to_buffer(plain, raw).ok()
            })?;
            Decoded::Raw
        }
    };
    let data = match &decoded {
        Decoded::Raw => &raw[..],
        Decoded::Stored(r) => &stored[r.clone()],
    };
    let id_known = check == IdCheck::UnlessSealed && keys.binds_ids();
    (data.len() == entry.raw_length as usize && (id_known || keys.id(data) == entry.id))
        .then_some(decoded)
}

/// Turns a stored blob back into its raw bytes, checking its sealing, length and id.
pub fn decode_blob(
    keys: &Keys,
    entry: &PackEntry,
    mut stored: Vec<u8>,
    pack: &Path,
) -> Result<Vec<u8>> {
    if let Some(why) = entry.claim_problem() {
        return Err(corrupt(pack, &why));
    }
    let mut raw = Vec::new();
    match decode_blob_into(keys, entry, &mut stored, &mut raw, IdCheck::Always) {
        Some(Decoded::Raw) => Ok(raw),
        Some(Decoded::Stored(r)) => {
            stored.truncate(r.end);
            stored.drain(..r.start);
            Ok(stored)
        }
        None => Err(Error::BlobMismatch {
            id: entry.id,
            pack: pack.to_path_buf(),
            files: Vec::new(),
        }),
    }
}

/// Encodes a pack header (entries, sealed when encrypted; length; magic).
pub fn encode_header(entries: &[PackEntry], keys: &Keys) -> Vec<u8> {
    let mut plain = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        plain.push(e.blob_type.code());
        plain.push(e.compression.code());
        plain.extend_from_slice(&e.id.0);
        plain.extend_from_slice(&e.length.to_le_bytes());
        plain.extend_from_slice(&e.raw_length.to_le_bytes());
    }
    let mut out = Vec::with_capacity(plain.len() + OVERHEAD + 8);
    keys.seal_into(&plain, &mut out);
    let len = out.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(PACK_MAGIC);
    out
}

/// Where the header of a pack of `pack_len` bytes starts, from its last 8 bytes (`keys`: the
/// header is sealed in an encrypted repository).
pub fn header_position(
    trailer: &[u8; 8],
    pack_len: u64,
    pack: &Path,
    keys: &Keys,
) -> Result<(u64, usize)> {
    if &trailer[4..] != PACK_MAGIC {
        return Err(corrupt(
            pack,
            "no pack magic at the end (truncated or not a pack)",
        ));
    }
    let hlen = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as u64;
    let overhead = keys.overhead() as u64;
    if hlen < overhead || !(hlen - overhead).is_multiple_of(ENTRY_LEN as u64) || hlen + 8 > pack_len
    {
        return Err(corrupt(pack, "header length does not fit the pack"));
    }
    Ok((pack_len - 8 - hlen, hlen as usize))
}

/// Parses a pack header (without trailer; opened first in an encrypted repository); checks
/// offsets stay within `header_start`.
pub fn parse_header(
    header: Vec<u8>,
    header_start: u64,
    pack: &Path,
    keys: &Keys,
) -> Result<Vec<PackEntry>> {
    let header = keys.open(header).ok_or_else(|| {
        corrupt(
            pack,
            "the pack's header does not open with this repository's key: damaged or tampered with",
        )
    })?;
    let mut entries = Vec::with_capacity(header.len() / ENTRY_LEN);
    let mut offset: u64 = 0;
    for raw in header.chunks_exact(ENTRY_LEN) {
        let blob_type =
            BlobType::from_code(raw[0]).ok_or_else(|| corrupt(pack, "unknown blob type"))?;
        let compression =
            Compression::from_code(raw[1]).ok_or_else(|| corrupt(pack, "unknown compression"))?;
        let id = Id(raw[2..34].try_into().expect("32 bytes"));
        let length = u32::from_le_bytes(raw[34..38].try_into().expect("4 bytes"));
        let raw_length = u32::from_le_bytes(raw[38..42].try_into().expect("4 bytes"));
        let entry = PackEntry {
            blob_type,
            compression,
            id,
            offset: offset as u32,
            length,
            raw_length,
        };
        if let Some(why) = entry.claim_problem() {
            return Err(corrupt(pack, &why));
        }
        entries.push(entry);
        offset += length as u64;
    }
    if offset != header_start {
        return Err(corrupt(
            pack,
            "blob lengths do not add up to the header's position",
        ));
    }
    Ok(entries)
}

fn corrupt(pack: &Path, reason: &str) -> Error {
    Error::Corrupt {
        path: pack.to_path_buf(),
        reason: reason.into(),
    }
}

/// Builds one pack by streaming blobs into a writer while hashing them.
#[derive(Debug)]
pub struct PackBuilder<W: Write> {
    out: W,
    hasher: Sha256,
    entries: Vec<PackEntry>,
    size: u64,
    keys: Keys,
}

impl<W: Write> PackBuilder<W> {
    /// A pack written to `out`, its header sealed with `keys` (blobs come sealed).
    pub fn new(out: W, keys: Keys) -> Self {
        PackBuilder {
            out,
            hasher: Sha256::new(),
            entries: Vec::new(),
            size: 0,
            keys,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a stored blob (compressed, then sealed in an encrypted repository).
    pub fn add(
        &mut self,
        blob_type: BlobType,
        id: Id,
        compression: Compression,
        stored: &[u8],
        raw_length: u32,
    ) -> std::io::Result<()> {
        self.out.write_all(stored)?;
        self.hasher.update(stored);
        self.entries.push(PackEntry {
            blob_type,
            compression,
            id,
            offset: self.size as u32,
            length: stored.len() as u32,
            raw_length,
        });
        self.size += stored.len() as u64;
        Ok(())
    }

    /// Writes the header; returns the writer, the pack's id and its entries.
    pub fn finish(mut self) -> std::io::Result<(W, Id, Vec<PackEntry>)> {
        let header = encode_header(&self.entries, &self.keys);
        self.out.write_all(&header)?;
        self.hasher.update(&header);
        self.out.flush()?;
        Ok((self.out, Id(self.hasher.finalize().into()), self.entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip() {
        let blobs: Vec<Vec<u8>> = vec![b"hello".to_vec(), vec![7u8; 10_000], b"tree".to_vec()];
        let mut b = PackBuilder::new(Vec::new(), Keys::default());
        for (i, raw) in blobs.iter().enumerate() {
            let (c, stored) = compress(raw, 3);
            let t = if i == 2 {
                BlobType::Tree
            } else {
                BlobType::Data
            };
            b.add(t, Id::hash(raw), c, &stored, raw.len() as u32)
                .unwrap();
        }
        let (bytes, id, entries) = b.finish().unwrap();
        assert_eq!(id, Id::hash(&bytes));
        assert_eq!(entries[1].compression, Compression::Zstd, "zeros compress");
        assert_eq!(
            entries[0].compression,
            Compression::Raw,
            "tiny blobs stay raw"
        );

        let p = Path::new("pack");
        let trailer: [u8; 8] = bytes[bytes.len() - 8..].try_into().unwrap();
        let k = Keys::default();
        let (start, hlen) = header_position(&trailer, bytes.len() as u64, p, &k).unwrap();
        let parsed = parse_header(
            bytes[start as usize..start as usize + hlen].to_vec(),
            start,
            p,
            &k,
        )
        .unwrap();
        assert_eq!(parsed, entries);
        for (e, raw) in parsed.iter().zip(&blobs) {
            let stored = bytes[e.offset as usize..(e.offset + e.length) as usize].to_vec();
            assert_eq!(&decode_blob(&k, e, stored, p).unwrap(), raw);
        }
    }

    #[test]
    fn flipped_byte_is_detected() {
        let raw = b"some content that matters".to_vec();
        let e = PackEntry {
            blob_type: BlobType::Data,
            compression: Compression::Raw,
            id: Id::hash(&raw),
            offset: 0,
            length: raw.len() as u32,
            raw_length: raw.len() as u32,
        };
        let mut bad = raw.clone();
        bad[3] ^= 1;
        let err = decode_blob(&Keys::default(), &e, bad, Path::new("data/ab/abc")).unwrap_err();
        assert!(err.to_string().contains("data/ab/abc"), "{err}");
    }

    /// Format 2 binds each blob's seal to its id: another blob of the same length, sealed
    /// by the same key, does not open in its place, and a restore (`UnlessSealed`) trusts a
    /// seal that opens instead of hashing the bytes again. Format 1 relies on the id check.
    #[test]
    fn a_blob_opens_only_as_itself() {
        let keys = Keys::generate();
        let (a, b) = (vec![1u8; 200], vec![2u8; 200]);
        let entry = |keys: &Keys, raw: &[u8]| PackEntry {
            blob_type: BlobType::Data,
            compression: Compression::Raw,
            id: keys.id(raw),
            offset: 0,
            length: (raw.len() + keys.overhead()) as u32,
            raw_length: raw.len() as u32,
        };
        use IdCheck::{Always, UnlessSealed};
        // (format, check, opened: a's entry with a's bytes, with b's bytes)
        let table = [
            (1, Always, true, false),
            (1, UnlessSealed, true, false),
            (2, Always, true, false),
            (2, UnlessSealed, true, false),
        ];
        for (format, check, own, swapped) in table {
            let k = keys.clone().for_format(format);
            assert_eq!(k.binds_ids(), format == 2);
            let ea = entry(&k, &a);
            let sealed_a = k.seal_blob(&ea.id, &a);
            let sealed_b = k.seal_blob(&k.id(&b), &b);
            assert_eq!(sealed_a.len(), sealed_b.len());
            let mut raw = Vec::new();
            let open = |mut s: Vec<u8>, raw: &mut Vec<u8>| {
                decode_blob_into(&k, &ea, &mut s, raw, check).is_some()
            };
            assert_eq!(open(sealed_a.clone(), &mut raw), own, "{format} {check:?}");
            assert_eq!(open(sealed_b, &mut raw), swapped, "{format} {check:?}");
            // Sealed by a key holder under a's id, but other bytes (a writer's bug): only a
            // hash finds it; `check --read-data` always hashes.
            let wrong = k.seal_blob(&ea.id, &b);
            let trusted = format == 2 && check == UnlessSealed;
            assert_eq!(open(wrong, &mut raw), trusted, "{format} {check:?}");
        }
        // Unencrypted: nothing is sealed, the id is always checked.
        let k = Keys::default().for_format(2);
        assert!(!k.binds_ids());
        let ea = entry(&k, &a);
        let mut raw = Vec::new();
        assert!(decode_blob_into(&k, &ea, &mut b.clone(), &mut raw, UnlessSealed).is_none());
        assert!(decode_blob_into(&k, &ea, &mut a.clone(), &mut raw, UnlessSealed).is_some());
    }

    #[test]
    fn truncated_pack_is_reported() {
        let trailer = *b"\0\0\0\0XXXX";
        assert!(header_position(&trailer, 100, Path::new("p"), &Keys::default()).is_err());
    }
}
