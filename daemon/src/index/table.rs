//! The in-memory index: every blob the repository holds and where it is, in 48 bytes a blob.
//!
//! A share of a million small files is a million blobs, so this table is most of what a
//! backup or a restore holds in memory, and it must not grow faster than the repository:
//!
//! ```text
//! sorted  Vec<Slot>            every blob loaded or merged, sorted by id (binary search):
//!                              id 32 bytes + pack number with type/compression bits 4
//!                              + offset 4 + stored length 4 + raw length 4 = 48 bytes
//! recent  HashMap<Id, Loc>     blobs added since the last merge (a running backup's packs),
//!                              at most RECENT_MAX; merged into `sorted` in place
//! packs   Vec<Id> + map        pack ids, numbered in the order they were first added
//! ```
//! A hash map of owned entries (what this replaced) cost about 100 bytes a blob. Loading a
//! repository collects every index file's entries and sorts once ([`IndexBuilder`]). A blob
//! listed in several packs keeps the location added first (the lowest pack number).

use super::paged::{PagedBuilder, PagedTable};
use crate::id::Id;
use crate::index::IndexedPack;
use crate::pack::{BlobType, Compression, PackEntry};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Blobs added one pack at a time are merged into the sorted table beyond this many.
const RECENT_MAX: usize = 1 << 15;

/// Prefix buckets (see [`Index::buckets`]), used from this many blobs on.
const BUCKETS: usize = 1 << 16;
const BUCKETS_FROM: usize = 1 << 16;

/// The bucket of an id: its first 16 bits.
fn prefix(id: &Id) -> usize {
    usize::from(u16::from_be_bytes([id.0[0], id.0[1]]))
}

const TREE_BIT: u32 = 1 << 31;
const ZSTD_BIT: u32 = 1 << 30;
const PACK_MASK: u32 = ZSTD_BIT - 1;

/// Where a blob is, packed: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    /// Pack number (low 30 bits), blob type (bit 31) and compression (bit 30).
    pack_flags: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

impl Loc {
    fn new(pack: u32, e: &PackEntry) -> Loc {
        assert!(pack <= PACK_MASK, "more than 2^30 packs");
        let mut pack_flags = pack;
        if e.blob_type == BlobType::Tree {
            pack_flags |= TREE_BIT;
        }
        if e.compression == Compression::Zstd {
            pack_flags |= ZSTD_BIT;
        }
        Loc {
            pack_flags,
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
        }
    }

    fn pack(&self) -> u32 {
        self.pack_flags & PACK_MASK
    }

    fn entry(&self, id: Id) -> PackEntry {
        PackEntry {
            blob_type: if self.pack_flags & TREE_BIT != 0 {
                BlobType::Tree
            } else {
                BlobType::Data
            },
            compression: if self.pack_flags & ZSTD_BIT != 0 {
                Compression::Zstd
            } else {
                Compression::Raw
            },
            id,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
        }
    }
}

/// One blob of the sorted table: 48 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) id: Id,
    loc: Loc,
}

impl Slot {
    pub(super) fn pack(&self) -> u32 {
        self.loc.pack()
    }

    /// The entry as stored in a paged table's file.
    pub(super) fn to_bytes(self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..32].copy_from_slice(&self.id.0);
        b[32..36].copy_from_slice(&self.loc.pack_flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.loc.offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.loc.length.to_le_bytes());
        b[44..48].copy_from_slice(&self.loc.raw_length.to_le_bytes());
        b
    }

    pub(super) fn from_bytes(b: &[u8]) -> Slot {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Slot {
            id: Id(b[..32].try_into().expect("32 bytes")),
            loc: Loc {
                pack_flags: u(32),
                offset: u(36),
                length: u(40),
                raw_length: u(44),
            },
        }
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 48);

/// The in-memory index of a repository: every known blob and its pack.
#[derive(Debug, Clone)]
pub struct Index {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    sorted: Vec<Slot>,
    /// Where each 16-bit id prefix starts in `sorted` (65,537 offsets, 256 KiB), once the
    /// table is large: a lookup then searches a dozen neighbouring entries instead of
    /// wandering through the whole table (one cache miss instead of ~20 per lookup; a
    /// no-change backup of a million files looks up a million blobs).
    buckets: Vec<u32>,
    recent: HashMap<Id, Loc>,
    recent_max: usize,
    /// Buckets are built from this many blobs on ([`BUCKETS_FROM`]; smaller in tests).
    buckets_from: usize,
    /// Data blobs kept on disk (see [`IndexBuilder::paged`]); `sorted` then holds the trees.
    paged: Option<Arc<PagedTable>>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            packs: Vec::new(),
            pack_numbers: HashMap::new(),
            sorted: Vec::new(),
            buckets: Vec::new(),
            recent: HashMap::new(),
            recent_max: RECENT_MAX,
            buckets_from: BUCKETS_FROM,
            paged: None,
        }
    }
}

impl Index {
    fn pack_number(&mut self, id: Id) -> u32 {
        *self.pack_numbers.entry(id).or_insert_with(|| {
            self.packs.push(id);
            (self.packs.len() - 1) as u32
        })
    }

    fn find(&self, id: &Id) -> Option<Loc> {
        let range = if self.buckets.is_empty() {
            &self.sorted[..]
        } else {
            let b = prefix(id);
            &self.sorted[self.buckets[b] as usize..self.buckets[b + 1] as usize]
        };
        match range.binary_search_by(|s| s.id.cmp(id)) {
            Ok(i) => Some(range[i].loc),
            Err(_) => self.recent.get(id).copied().or_else(|| self.find_paged(id)),
        }
    }

    fn find_paged(&self, id: &Id) -> Option<Loc> {
        match self.paged.as_ref()?.find(id) {
            Ok(s) => s.map(|s| s.loc),
            Err(e) => {
                tracing::error!(error = %e, blob = %id.short(), "cannot read the index cache file");
                None
            }
        }
    }

    /// Rebuilds `buckets` after the sorted table changed (one pass).
    fn index_buckets(&mut self) {
        self.buckets.clear();
        if self.sorted.len() < self.buckets_from {
            self.buckets.shrink_to_fit();
            return;
        }
        self.buckets.resize(BUCKETS + 1, 0);
        for s in &self.sorted {
            self.buckets[prefix(&s.id) + 1] += 1;
        }
        for b in 1..=BUCKETS {
            self.buckets[b] += self.buckets[b - 1];
        }
    }

    /// Adds the packs of one index file (a blob already known keeps its first location).
    pub fn add(&mut self, packs: Vec<IndexedPack>) {
        for p in packs {
            let n = self.pack_number(p.id);
            for entry in p.blobs {
                if self.find(&entry.id).is_none() {
                    self.recent.insert(entry.id, Loc::new(n, &entry));
                }
            }
            if self.recent.len() >= self.recent_max {
                self.merge_recent();
            }
        }
    }

    /// Moves the recent blobs into the sorted table: sorted among themselves, then merged
    /// from the back, in place (the table grows by their number only).
    fn merge_recent(&mut self) {
        let mut new: Vec<Slot> = self
            .recent
            .drain()
            .map(|(id, loc)| Slot { id, loc })
            .collect();
        new.sort_unstable_by_key(|s| s.id);
        let old = self.sorted.len();
        self.sorted.extend_from_slice(&new);
        let s = &mut self.sorted;
        let (mut i, mut j, mut w) = (old, new.len(), old + new.len());
        // `recent` only ever holds ids the table lacks: no equal ids meet here.
        while j > 0 {
            w -= 1;
            if i > 0 && s[i - 1].id > new[j - 1].id {
                s[w] = s[i - 1];
                i -= 1;
            } else {
                s[w] = new[j - 1];
                j -= 1;
            }
        }
        self.index_buckets();
    }

    /// The location of a blob.
    pub fn get(&self, id: &Id) -> Option<(Id, PackEntry)> {
        self.find(id)
            .map(|l| (self.packs[l.pack() as usize], l.entry(*id)))
    }

    /// Whether the blob is known.
    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len() + self.paged.as_ref().map_or(0, |p| p.len())
    }

    /// Whether no blob is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every pack that the index names.
    pub fn packs(&self) -> &[Id] {
        &self.packs
    }

    /// Every blob and where it is.
    pub fn iter(&self) -> impl Iterator<Item = (Id, PackEntry)> + '_ {
        self.sorted
            .iter()
            .map(|s| (s.id, s.loc))
            .chain(self.recent.iter().map(|(id, loc)| (*id, *loc)))
            .chain(
                self.paged
                    .iter()
                    .flat_map(|p| p.iter().map(|s| (s.id, s.loc))),
            )
            .map(|(id, l)| (self.packs[l.pack() as usize], l.entry(id)))
    }

    /// Bytes held by the table (for the memory model and its tests).
    pub fn memory_bytes(&self) -> usize {
        self.sorted.capacity() * std::mem::size_of::<Slot>()
            + self.buckets.capacity() * 4
            + self.recent.capacity() * (std::mem::size_of::<(Id, Loc)>() + 1)
            + self.packs.capacity() * 32
            + self.pack_numbers.capacity() * (32 + 4 + 1)
            + self.paged.as_ref().map_or(0, |p| p.memory_bytes())
    }
}

/// Builds an [`Index`] from many index files at once: entries are collected and sorted once.
#[derive(Default)]
pub struct IndexBuilder {
    index: Index,
    paged: Option<PagedBuilder>,
    error: Option<std::io::Error>,
}

impl std::fmt::Debug for IndexBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuilder")
            .field("blobs", &self.index.sorted.len())
            .field("paged", &self.paged.is_some())
            .finish()
    }
}

impl IndexBuilder {
    /// A builder with room for `blobs` entries: the table is allocated once, never copied
    /// while it grows (a copy would briefly hold it twice). The count is an estimate from file
    /// sizes: if that much cannot be reserved, the table grows as needed instead.
    pub fn with_capacity(blobs: usize) -> IndexBuilder {
        let mut b = IndexBuilder::default();
        let _ = b.index.sorted.try_reserve_exact(blobs);
        b
    }

    /// A builder that keeps data blobs' locations on disk, in anonymous files in `dir`
    /// (about `estimate` of them), and only trees in memory: the index of a process whose
    /// memory must not grow with the repository. Lookups of data blobs then read a page.
    pub fn paged(dir: &Path, estimate: usize) -> std::io::Result<IndexBuilder> {
        Ok(IndexBuilder {
            paged: Some(PagedBuilder::new(dir, estimate)?),
            ..IndexBuilder::default()
        })
    }

    /// Adds the packs of one index file.
    pub fn add(&mut self, packs: Vec<IndexedPack>) {
        let extra: usize = packs
            .iter()
            .flat_map(|p| &p.blobs)
            .filter(|e| self.paged.is_none() || e.blob_type == BlobType::Tree)
            .count();
        self.index.sorted.reserve(extra);
        for p in packs {
            let n = self.index.pack_number(p.id);
            for e in &p.blobs {
                let slot = Slot {
                    id: e.id,
                    loc: Loc::new(n, e),
                };
                match &mut self.paged {
                    Some(paged) if e.blob_type == BlobType::Data => {
                        if let Err(err) = paged.push(&slot) {
                            self.error.get_or_insert(err);
                        }
                    }
                    _ => self.index.sorted.push(slot),
                }
            }
        }
    }

    /// The index: sorted by id, a blob listed twice keeping its first pack. Fails only when
    /// a paged index's files cannot be written or read.
    pub fn try_finish(mut self) -> std::io::Result<Index> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let paged = match self.paged.take() {
            Some(p) => Some(Arc::new(p.finish()?)),
            None => None,
        };
        let mut index = self.finish();
        index.paged = paged;
        Ok(index)
    }

    /// The index: sorted by id, a blob listed twice keeping its first pack.
    pub fn finish(self) -> Index {
        assert!(
            self.paged.is_none(),
            "a paged index is finished by try_finish"
        );
        let mut index = self.index;
        index
            .sorted
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.loc.pack().cmp(&b.loc.pack())));
        index.sorted.dedup_by(|later, first| later.id == first.id);
        index.sorted.shrink_to_fit();
        index.index_buckets();
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: Id, n: u32) -> PackEntry {
        PackEntry {
            blob_type: if n.is_multiple_of(2) {
                BlobType::Data
            } else {
                BlobType::Tree
            },
            compression: if n.is_multiple_of(3) {
                Compression::Raw
            } else {
                Compression::Zstd
            },
            id,
            offset: n * 7,
            length: n + 1,
            raw_length: n * 3 + 2,
        }
    }

    /// The model: a hash map where a blob keeps the first location it was given.
    fn model_add(model: &mut HashMap<Id, (Id, PackEntry)>, packs: &[IndexedPack]) {
        for p in packs {
            for b in &p.blobs {
                model.entry(b.id).or_insert((p.id, *b));
            }
        }
    }

    fn check(index: &Index, model: &HashMap<Id, (Id, PackEntry)>, probes: &[Id]) {
        assert_eq!(index.len(), model.len());
        for id in probes {
            assert_eq!(index.get(id), model.get(id).copied(), "{id:?}");
            assert_eq!(index.contains(id), model.contains_key(id));
        }
        let mut listed: Vec<(Id, PackEntry)> = index.iter().collect();
        listed.sort_by_key(|(_, e)| e.id);
        let mut want: Vec<(Id, PackEntry)> = model.values().copied().collect();
        want.sort_by_key(|(_, e)| e.id);
        assert_eq!(listed, want);
    }

    /// Packs from (pack number, blob numbers): blob numbers drawn from a small space, so the
    /// same blob often appears in several packs. A pack is named by its content, as in a
    /// repository: the same pack listed twice lists the same blobs.
    fn packs_of(spec: &[(u8, Vec<u16>)]) -> Vec<IndexedPack> {
        spec.iter()
            .map(|(p, blobs)| IndexedPack {
                id: Id::hash(format!("{p} {blobs:?}").as_bytes()),
                blobs: blobs
                    .iter()
                    .map(|b| entry(Id::hash(&b.to_le_bytes()), u32::from(*b) + u32::from(*p)))
                    .collect(),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn behaves_like_a_hash_map_keeping_first_locations(
            loaded in prop::collection::vec((0u8..20, prop::collection::vec(0u16..300, 0..40)), 0..8),
            added in prop::collection::vec(
                prop::collection::vec((0u8..30, prop::collection::vec(0u16..300, 0..40)), 0..4),
                0..10,
            ),
            recent_max in 1usize..64,
            buckets_from in prop_oneof![Just(usize::MAX), 0usize..200],
        ) {
            let mut model = HashMap::new();
            let mut builder = IndexBuilder::default();
            builder.index.recent_max = recent_max;
            builder.index.buckets_from = buckets_from;
            let packs = packs_of(&loaded);
            model_add(&mut model, &packs);
            builder.add(packs);
            let mut index = builder.finish();
            let probes: Vec<Id> = (0u16..310).map(|b| Id::hash(&b.to_le_bytes())).collect();
            check(&index, &model, &probes);
            for batch in &added {
                let packs = packs_of(batch);
                model_add(&mut model, &packs);
                index.add(packs);
                check(&index, &model, &probes);
            }
            // The sorted table stays sorted and without duplicates through every merge.
            prop_assert!(index.sorted.windows(2).all(|w| w[0].id < w[1].id));
        }
    }

    #[test]
    fn index_files_round_trip_into_the_table() {
        let packs = vec![
            IndexedPack {
                id: Id::hash(b"p1"),
                blobs: vec![entry(Id::hash(b"a"), 1), entry(Id::hash(b"b"), 2)],
            },
            IndexedPack {
                id: Id::hash(b"p2"),
                blobs: vec![entry(Id::hash(b"c"), 3), entry(Id::hash(b"a"), 4)],
            },
        ];
        let bytes = crate::index::encode(&packs);
        let decoded = crate::index::decode(&bytes, std::path::Path::new("i")).unwrap();
        let mut b = IndexBuilder::default();
        b.add(decoded);
        let index = b.finish();
        assert_eq!(index.len(), 3);
        assert_eq!(index.packs(), &[Id::hash(b"p1"), Id::hash(b"p2")]);
        // "a" is in both packs: the first one listed keeps it.
        assert_eq!(
            index.get(&Id::hash(b"a")),
            Some((Id::hash(b"p1"), entry(Id::hash(b"a"), 1)))
        );
        assert_eq!(
            index.get(&Id::hash(b"c")),
            Some((Id::hash(b"p2"), entry(Id::hash(b"c"), 3)))
        );
        assert!(!index.contains(&Id::hash(b"z")));
    }

    #[test]
    fn a_million_blobs_fit_in_48_bytes_each() {
        let mut b = IndexBuilder::default();
        let blobs: Vec<PackEntry> = (0u32..1_000_000)
            .map(|i| entry(Id::hash(&i.to_le_bytes()), i % 1000))
            .collect();
        b.add(vec![IndexedPack {
            id: Id::hash(b"p"),
            blobs,
        }]);
        let mut index = b.finish();
        assert!(
            index.memory_bytes() <= 48 * 1_000_000 + (257 << 10),
            "{}",
            index.memory_bytes()
        );
        // A backup's packs, one at a time: merges keep the table within twice its size.
        for p in 0u32..40 {
            let blobs = (0u32..1000)
                .map(|i| entry(Id::hash(&(2_000_000 + p * 1000 + i).to_le_bytes()), i))
                .collect();
            index.add(vec![IndexedPack {
                id: Id::hash(&p.to_le_bytes()),
                blobs,
            }]);
        }
        assert_eq!(index.len(), 1_040_000);
        assert!(index.contains(&Id::hash(&2_039_999u32.to_le_bytes())));
        assert!(index.memory_bytes() <= 2 * 48 * 1_040_000 + (4 << 20));
    }

    /// Packs whose blobs' types follow their numbers (odd: trees), as in a repository where
    /// a blob's id names its content.
    fn typed_packs(spec: &[(u8, Vec<u16>)]) -> Vec<IndexedPack> {
        let mut packs = packs_of(spec);
        for p in &mut packs {
            for e in &mut p.blobs {
                let b = spec
                    .iter()
                    .flat_map(|(_, bs)| bs)
                    .find(|b| Id::hash(&b.to_le_bytes()) == e.id)
                    .expect("listed");
                e.blob_type = if b % 2 == 1 {
                    BlobType::Tree
                } else {
                    BlobType::Data
                };
            }
        }
        packs
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn a_paged_index_finds_what_the_table_finds(
            spec in prop::collection::vec((0u8..20, prop::collection::vec(0u16..2000, 0..300)), 0..10),
            split in 0usize..10,
            // 1, 8 and 256 bucket files.
            estimate in prop_oneof![Just(0usize), Just(1usize << 20), Just(1usize << 26)],
        ) {
            let packs = typed_packs(&spec);
            let (first, second) = packs.split_at(split.min(packs.len()));
            let mut table = IndexBuilder::default();
            table.add(first.to_vec());
            table.add(second.to_vec());
            let table = table.finish();
            let dir = tempfile::tempdir().unwrap();
            let mut paged = IndexBuilder::paged(dir.path(), estimate).unwrap();
            paged.add(first.to_vec());
            paged.add(second.to_vec());
            let paged = paged.try_finish().unwrap();
            prop_assert_eq!(paged.len(), table.len());
            for b in 0u16..2000 {
                let id = Id::hash(&b.to_le_bytes());
                prop_assert_eq!(paged.get(&id), table.get(&id), "blob {}", b);
            }
            let mut listed: Vec<(Id, PackEntry)> = paged.iter().collect();
            listed.sort_by_key(|(_, e)| e.id);
            let mut want: Vec<(Id, PackEntry)> = table.iter().collect();
            want.sort_by_key(|(_, e)| e.id);
            prop_assert_eq!(listed, want);
            // Nothing of the data blobs stays in memory but a fence per page.
            let trees = table.iter().filter(|(_, e)| e.blob_type == BlobType::Tree).count();
            prop_assert_eq!(paged.sorted.len(), trees);
            // No file is left behind: on Unix they are anonymous even while open; on Windows
            // deleted when closed.
            #[cfg(unix)]
            prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            drop(paged);
            prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_paged_index_of_a_million_blobs_holds_under_half_a_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = IndexBuilder::paged(dir.path(), 1_000_000).unwrap();
        for p in 0..1000u32 {
            let blobs = (0..1000u32)
                .map(|i| {
                    let mut e = entry(Id::hash(&(p * 1000 + i).to_le_bytes()), 2 * i);
                    e.blob_type = BlobType::Data;
                    e
                })
                .collect();
            b.add(vec![IndexedPack {
                id: Id::hash(&p.to_le_bytes()),
                blobs,
            }]);
        }
        let index = b.try_finish().unwrap();
        assert_eq!(index.len(), 1_000_000);
        let probe = Id::hash(&777_777u32.to_le_bytes());
        assert_eq!(
            index.get(&probe).map(|(pack, _)| pack),
            Some(Id::hash(&777u32.to_le_bytes()))
        );
        assert!(!index.contains(&Id::hash(&1_000_000u32.to_le_bytes())));
        // 1,000 pack ids and their numbers, and 11,765 fences.
        assert!(index.memory_bytes() < 512 << 10, "{}", index.memory_bytes());
    }
}
