//! Data blobs' locations kept on disk, for processes whose memory must not grow with the
//! repository (a mount serving Previous Versions for months): the table of [`super::table`]
//! written sorted into an anonymous file, 4 KiB pages of 85 entries, with the first id of each
//! page in memory.
//!
//! ```text
//! build:  every data entry of every index file -> one of up to 256 bucket files by id prefix
//!         (one pass; buckets of about 8 MiB) -> each bucket sorted in memory, a blob listed
//!         twice keeping its first pack -> appended page by page to the table file
//! memory: 32 bytes a page (fences) = 376 KiB per million blobs; building holds one bucket
//! lookup: binary search of the fences, one 4 KiB pread (page cache), binary search in it
//! ```
//! The files are anonymous (`O_TMPFILE`, or unlinked at once where the filesystem lacks it) in
//! a cache folder on disk, never in the repository: they vanish with the process.

use super::table::Slot;
use crate::id::Id;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

const PAGE: usize = 4096;
const ENTRY: usize = 48;
const PER_PAGE: usize = PAGE / ENTRY;
/// Entries a bucket should hold (8 MiB of them) when it is sorted.
const BUCKET_ENTRIES: usize = (8 << 20) / ENTRY;
const MAX_BUCKETS: usize = 256;

/// A file nobody else can open, gone when closed (Windows: deleted on close, not shared).
#[cfg(windows)]
fn anonymous_file(dir: &Path) -> std::io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_ATTRIBUTE_TEMPORARY: u32 = 0x100;
    const FILE_FLAG_DELETE_ON_CLOSE: u32 = 0x0400_0000;
    std::fs::create_dir_all(dir)?;
    let mut name = [0u8; 8];
    getrandom::getrandom(&mut name).map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .share_mode(0)
        .attributes(FILE_ATTRIBUTE_TEMPORARY)
        .custom_flags(FILE_FLAG_DELETE_ON_CLOSE)
        .open(dir.join(format!(".sharekeep-index-{}.tmp", hex::encode(name))))
}

/// A file nobody else can open, gone when closed.
#[cfg(unix)]
fn anonymous_file(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => Ok(f),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP) | Some(libc::EISDIR)
            ) =>
        {
            let mut name = [0u8; 8];
            getrandom::getrandom(&mut name).map_err(|e| std::io::Error::other(e.to_string()))?;
            let path = dir.join(format!(".sharekeep-index-{}.tmp", hex::encode(name)));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

/// Collects data entries into bucket files, then sorts them into a [`PagedTable`].
pub(crate) struct PagedBuilder {
    dir: PathBuf,
    buckets: Vec<BufWriter<File>>,
    shift: u32,
}

impl PagedBuilder {
    /// A builder for about `estimate` entries, its files in `dir`.
    pub(crate) fn new(dir: &Path, estimate: usize) -> std::io::Result<PagedBuilder> {
        let n = estimate
            .div_ceil(BUCKET_ENTRIES)
            .next_power_of_two()
            .clamp(1, MAX_BUCKETS);
        let mut buckets = Vec::with_capacity(n);
        for _ in 0..n {
            buckets.push(BufWriter::with_capacity(16 << 10, anonymous_file(dir)?));
        }
        Ok(PagedBuilder {
            dir: dir.to_path_buf(),
            buckets,
            shift: 16 - n.trailing_zeros(),
        })
    }

    /// Adds one entry (the first one added of an id wins, by pack number as in the table).
    pub(crate) fn push(&mut self, slot: &Slot) -> std::io::Result<()> {
        let prefix = u32::from(u16::from_be_bytes([slot.id.0[0], slot.id.0[1]]));
        let b = (prefix >> self.shift) as usize;
        self.buckets[b].write_all(&slot.to_bytes())
    }

    /// Sorts the buckets into the table.
    pub(crate) fn finish(self) -> std::io::Result<PagedTable> {
        let mut table = BufWriter::with_capacity(64 << 10, anonymous_file(&self.dir)?);
        let mut fences = Vec::new();
        let mut len = 0usize;
        let mut page = [0u8; PAGE];
        let mut in_page = 0usize;
        let mut bytes = Vec::new();
        for bucket in self.buckets {
            let mut f = bucket.into_inner().map_err(|e| e.into_error())?;
            f.rewind()?;
            bytes.clear();
            f.read_to_end(&mut bytes)?;
            drop(f);
            let mut slots: Vec<Slot> = bytes.chunks_exact(ENTRY).map(Slot::from_bytes).collect();
            slots.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack().cmp(&b.pack())));
            slots.dedup_by(|later, first| later.id == first.id);
            for s in &slots {
                if in_page == 0 {
                    fences.push(s.id);
                }
                page[in_page * ENTRY..(in_page + 1) * ENTRY].copy_from_slice(&s.to_bytes());
                in_page += 1;
                if in_page == PER_PAGE {
                    table.write_all(&page)?;
                    in_page = 0;
                }
            }
            len += slots.len();
        }
        if in_page > 0 {
            page[in_page * ENTRY..].fill(0);
            table.write_all(&page)?;
        }
        let file = table.into_inner().map_err(|e| e.into_error())?;
        fences.shrink_to_fit();
        Ok(PagedTable { file, fences, len })
    }
}

/// Sorted entries on disk, the first id of each page in memory.
#[derive(Debug)]
pub(crate) struct PagedTable {
    file: File,
    fences: Vec<Id>,
    len: usize,
}

impl PagedTable {
    /// The entry of `id`, read from its page.
    pub(crate) fn find(&self, id: &Id) -> std::io::Result<Option<Slot>> {
        let p = self.fences.partition_point(|f| f <= id);
        if p == 0 {
            return Ok(None);
        }
        let p = p - 1;
        let mut page = [0u8; PAGE];
        crate::platform::read_exact_at(&self.file, &mut page, (p * PAGE) as u64)?;
        let n = PER_PAGE.min(self.len - p * PER_PAGE);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = &page[mid * ENTRY..(mid + 1) * ENTRY];
            match e[..32].cmp(&id.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(Slot::from_bytes(e))),
            }
        }
        Ok(None)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.fences.capacity() * 32
    }

    /// Every entry, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        let pages = self.len.div_ceil(PER_PAGE);
        (0..pages).flat_map(move |p| {
            let mut page = vec![0u8; PAGE];
            if let Err(e) = crate::platform::read_exact_at(&self.file, &mut page, (p * PAGE) as u64)
            {
                tracing::error!(error = %e, "cannot read the index cache file");
                page.clear();
            }
            let n = PER_PAGE.min(self.len - p * PER_PAGE);
            page.truncate(n * ENTRY);
            page.chunks_exact(ENTRY)
                .map(Slot::from_bytes)
                .collect::<Vec<_>>()
        })
    }
}
