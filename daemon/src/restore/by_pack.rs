//! The files of a restore from a remote store, written pack by pack (restic's restorer works
//! the same way). Files come from the plan's walk in groups, as in a local restore; for a
//! batch of them, every pack the batch needs is asked for once, in one streamed request for
//! the span of its needed blobs, and each blob is opened, decompressed and checked as soon as
//! its bytes have arrived, then written to every place of every file that holds it. A file is
//! created (under its temporary name, by descriptor) when its first blob arrives, and finished
//! (length, metadata, rename over the final name) when its last one is written.
//!
//! Why not file by file, as from a local repository: there, a worker reading a file's blobs
//! waits for each of their packs in turn, and the packs, read in any order by several workers,
//! must be kept whole somewhere (on disk, written and read back) to be read again. Here nothing
//! of a pack is kept: a few requests stream at once, each into one blob's buffer.
//!
//! A batch holds its files and their directories open until it ends: its size follows the
//! process's limit of open files (raised to its hard limit by both binaries), so that most
//! restores are one batch and no pack is asked for twice.

use super::{replace_with, restore_file, write_sparse, Action, PlannedEntry, Results};
use crate::backend::FileKind;
use crate::error::{Error, IoContext, Result};
use crate::id::Id;
use crate::pack::{self, PackEntry};
use crate::platform::target::{self as t, Dir};
use crate::progress::{CancelToken, Progress};
use crate::repo::{BlobBuf, Repository};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Requests streaming at once by default: enough to keep two cores busy opening and writing
/// while the store sends (more only competes with the store for the same cores).
pub(super) const STREAMS: usize = 4;

/// Files and directories of a batch at most (each is held open until the batch ends).
const MAX_BATCH_FILES: usize = 65_536;

/// Descriptors left to the rest of the process when sizing a batch.
const FDS_SPARE: u64 = 512;

/// Needed blobs of a pack further apart than this are asked for in separate requests
/// (a partial restore needs a few blobs of a pack; a full one, all of them in one span).
const MAX_GAP: u64 = 4 << 20;

/// What the file workers of [`super::restore`] share.
pub(super) struct Shared<'a> {
    pub repo: &'a Repository,
    pub root: &'a Dir,
    pub chown: bool,
    pub streams: usize,
    pub results: &'a Mutex<Results>,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancelToken,
}

/// Takes the groups of files of the plan's walk, batch by batch, until the walk ends.
pub(super) fn run(
    sh: &Shared<'_>,
    groups: crossbeam_channel::Receiver<(PathBuf, Vec<PlannedEntry>)>,
) {
    // A descriptor per file and per directory of the batch, and some to spare for the rest
    // (the walk's directories, the store's connections; a group adds at most 256 files).
    let limit = crate::platform::open_file_limit().saturating_sub(FDS_SPARE);
    let cap = (limit.min(MAX_BATCH_FILES as u64) as usize).max(16);
    let mut batch = Batch::default();
    for (dir_rel, entries) in groups {
        if sh.cancel.is_cancelled() {
            break;
        }
        batch.add(sh, &dir_rel, entries);
        if batch.jobs.len() + batch.dirs.len() >= cap {
            std::mem::take(&mut batch).execute(sh);
        }
    }
    batch.execute(sh);
}

/// One file being written.
struct Job {
    entry: PlannedEntry,
    /// Its directory, in [`Batch::dirs`].
    dir: usize,
    /// The name it is written under.
    tmp: OsString,
    /// Made when its first blob arrives (`None`: it could not be).
    file: OnceLock<Option<std::fs::File>>,
    /// Its length.
    size: u64,
    /// Blob writes still to come.
    remaining: AtomicUsize,
    /// Finished: written, renamed and counted.
    done: AtomicBool,
    /// Why it cannot be restored (the first error).
    failed: Mutex<Option<String>>,
}

impl Job {
    fn fail(&self, why: String) {
        let mut f = self.failed.lock().expect("lock");
        if f.is_none() {
            *f = Some(why);
        }
    }

    fn has_failed(&self) -> bool {
        self.failed.lock().expect("lock").is_some()
    }

    /// The file, made on first use: exclusively (`O_EXCL`, never through a link), in its
    /// directory's descriptor.
    fn file(&self, dirs: &[Dir]) -> Option<&std::fs::File> {
        self.file
            .get_or_init(|| match t::create_file(&dirs[self.dir], &self.tmp) {
                Ok(f) => Some(f),
                Err(err) => {
                    self.fail(Error::io(&self.entry.rel, err).to_string());
                    None
                }
            })
            .as_ref()
    }

    /// Whether this restore made the file (then it may remove it).
    fn made(&self) -> bool {
        matches!(self.file.get(), Some(Some(_)))
    }
}

/// One blob the batch needs, where it is, and where it goes.
struct Use {
    entry: PackEntry,
    /// (job, offset in its file).
    targets: Vec<(usize, u64)>,
}

#[derive(Default)]
struct Batch {
    dirs: Vec<Dir>,
    jobs: Vec<Job>,
    uses: Vec<Use>,
    /// Blob id -> its use.
    by_blob: HashMap<Id, usize>,
    /// Pack name -> its uses; the packs in the order the batch first needs them.
    by_pack: HashMap<String, usize>,
    packs: Vec<(String, Vec<usize>)>,
}

impl Batch {
    /// Notes the files of one directory's group and the blobs they need. Files
    /// without content, and metadata-only changes, are done here and now.
    fn add(&mut self, sh: &Shared<'_>, dir_rel: &Path, entries: Vec<PlannedEntry>) {
        let dir = match super::open_beneath(sh.root, dir_rel) {
            Ok(d) => d,
            Err(err) => {
                let mut r = sh.results.lock().expect("lock");
                for e in entries {
                    r.1.push((e.path.clone(), err.to_string()));
                }
                return;
            }
        };
        let di = self.dirs.len();
        let mut used = false;
        for e in entries {
            if sh.cancel.is_cancelled() {
                return;
            }
            if e.action == Action::Metadata || e.node.content.is_empty() {
                let mut buf = BlobBuf::default();
                let mut zeros = std::collections::HashSet::new();
                let r = restore_file(
                    sh.repo,
                    &dir,
                    &e,
                    sh.chown,
                    &mut zeros,
                    &mut buf,
                    sh.progress,
                );
                record(sh, &e, r.map_err(|err| err.to_string()));
                continue;
            }
            used |= self.add_file(sh, di, e);
        }
        if used {
            self.dirs.push(dir);
        }
    }

    /// Notes one file with content and its blobs (false: it cannot be restored, and that is
    /// recorded).
    fn add_file(&mut self, sh: &Shared<'_>, di: usize, e: PlannedEntry) -> bool {
        // Every blob located first: a file with a blob missing from the index is not made.
        let mut located = Vec::with_capacity(e.node.content.len());
        for id in &e.node.content {
            match sh.repo.locate(id) {
                Ok(l) => located.push(l),
                Err(err) => {
                    record(sh, &e, Err(err.to_string()));
                    return false;
                }
            }
        }
        let name = super::file_name(&e.rel);
        // Nothing was there when planning: the final name directly (O_EXCL: if something
        // appeared since, it is not touched). Otherwise aside, renamed over it at the end.
        let tmp = if e.action == Action::Create {
            name.to_os_string()
        } else {
            super::temp_name(name)
        };
        let ji = self.jobs.len();
        let mut offset = 0u64;
        for (pack_name, entry) in located {
            let len = entry.raw_length as u64;
            let ui = match self.by_blob.get(&entry.id) {
                Some(&ui) => ui,
                None => {
                    let ui = self.uses.len();
                    self.by_blob.insert(entry.id, ui);
                    let pi = match self.by_pack.get(&pack_name) {
                        Some(&pi) => pi,
                        None => {
                            self.packs.push((pack_name.clone(), Vec::new()));
                            self.by_pack.insert(pack_name, self.packs.len() - 1);
                            self.packs.len() - 1
                        }
                    };
                    self.packs[pi].1.push(ui);
                    self.uses.push(Use {
                        entry,
                        targets: Vec::new(),
                    });
                    ui
                }
            };
            self.uses[ui].targets.push((ji, offset));
            offset += len;
        }
        self.jobs.push(Job {
            remaining: AtomicUsize::new(e.node.content.len()),
            entry: e,
            dir: di,
            tmp,
            file: OnceLock::new(),
            size: offset,
            done: AtomicBool::new(false),
            failed: Mutex::new(None),
        });
        true
    }

    /// Fetches the batch's packs, [`Shared::streams`] at once, writing their blobs as they
    /// come; then removes what could not be finished.
    fn execute(mut self, sh: &Shared<'_>) {
        for (_, uses) in &mut self.packs {
            uses.sort_by_key(|&ui| self.uses[ui].entry.offset);
        }
        let next = AtomicUsize::new(0);
        let this = &self;
        std::thread::scope(|s| {
            for _ in 0..sh.streams.min(this.packs.len()) {
                s.spawn(|| {
                    let mut stored: Vec<u8> = Vec::new();
                    let mut raw: Vec<u8> = Vec::new();
                    loop {
                        let pi = next.fetch_add(1, Ordering::Relaxed);
                        if pi >= this.packs.len() || sh.cancel.is_cancelled() {
                            return;
                        }
                        let (name, uses) = &this.packs[pi];
                        for span in spans(this, uses) {
                            this.stream_span(sh, name, span, &mut stored, &mut raw);
                        }
                    }
                });
            }
        });
        // What was not finished (a blob that failed, or a cancelled restore) goes: the
        // temporary file, or the file made under its final name (nothing was there); never
        // what this restore did not make.
        for job in &self.jobs {
            if job.done.load(Ordering::Acquire) {
                continue;
            }
            if job.made() {
                let _ = t::remove_file(&self.dirs[job.dir], &job.tmp);
            }
            if sh.cancel.is_cancelled() {
                continue;
            }
            let why = job
                .failed
                .lock()
                .expect("lock")
                .take()
                .unwrap_or_else(|| "not restored".into());
            record(sh, &job.entry, Err(why));
        }
    }

    /// Streams one span of a pack (its uses, in pack order) and writes each blob as it
    /// completes. A failure of the request fails the files of the blobs not yet written.
    fn stream_span(
        &self,
        sh: &Shared<'_>,
        name: &str,
        span: &[usize],
        stored: &mut Vec<u8>,
        raw: &mut Vec<u8>,
    ) {
        let first = &self.uses[span[0]].entry;
        let last = &self.uses[span[span.len() - 1]].entry;
        let start = first.offset as u64;
        let end = last.offset as u64 + last.length as u64;
        // The blob being filled (its place in `span`), how much of it has arrived, and where
        // the answer is in the pack.
        let (mut cur, mut filled, mut pos) = (0usize, 0usize, start);
        let r = sh.repo.backend().read_stream(
            FileKind::Pack,
            name,
            start,
            end - start,
            &mut |mut piece: &[u8]| {
                while !piece.is_empty() && cur < span.len() {
                    let u = &self.uses[span[cur]];
                    let (off, len) = (u.entry.offset as u64, u.entry.length as usize);
                    if pos < off {
                        // Between two needed blobs.
                        let skip = ((off - pos) as usize).min(piece.len());
                        piece = &piece[skip..];
                        pos += skip as u64;
                        continue;
                    }
                    if stored.len() < len {
                        stored.resize(len, 0);
                    }
                    let take = (len - filled).min(piece.len());
                    stored[filled..filled + take].copy_from_slice(&piece[..take]);
                    filled += take;
                    piece = &piece[take..];
                    pos += take as u64;
                    if filled == len {
                        if sh.cancel.is_cancelled() {
                            return Err(Error::Interrupted);
                        }
                        self.write_blob(sh, name, u, &mut stored[..len], raw);
                        cur += 1;
                        filled = 0;
                    }
                }
                Ok(())
            },
        );
        if let Err(err) = r {
            let at = &self.uses[span[cur.min(span.len() - 1)]].entry.id;
            let why = Repository::pack_read_error(at, err).to_string();
            for &ui in &span[cur.min(span.len())..] {
                for &(ji, _) in &self.uses[ui].targets {
                    self.jobs[ji].fail(why.clone());
                }
            }
        }
    }

    /// Checks one blob and writes it wherever the batch needs it; a file whose last blob this
    /// was is finished.
    fn write_blob(
        &self,
        sh: &Shared<'_>,
        pack_name: &str,
        u: &Use,
        stored: &mut [u8],
        raw: &mut Vec<u8>,
    ) {
        let data = match pack::decode_blob_into(
            sh.repo.keys(),
            &u.entry,
            stored,
            raw,
            pack::IdCheck::UnlessSealed,
        ) {
            Some(pack::Decoded::Raw) => &raw[..],
            Some(pack::Decoded::Stored(range)) => &stored[range],
            None => {
                let why = Error::BlobMismatch {
                    id: u.entry.id,
                    pack: sh.repo.backend().file_location(FileKind::Pack, pack_name),
                    files: Vec::new(),
                }
                .to_string();
                for &(ji, _) in &u.targets {
                    self.jobs[ji].fail(why.clone());
                }
                return;
            }
        };
        for &(ji, offset) in &u.targets {
            let job = &self.jobs[ji];
            if !job.has_failed() {
                if let Some(file) = job.file(&self.dirs) {
                    match write_sparse(file, data, offset).at(&job.entry.rel) {
                        Ok(_) => sh.progress.add_bytes(data.len() as u64),
                        Err(err) => job.fail(err.to_string()),
                    }
                }
            }
            if job.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.finish(sh, job);
            }
        }
    }

    /// A file's last blob is written: its length and metadata, then its final name.
    fn finish(&self, sh: &Shared<'_>, job: &Job) {
        if job.has_failed() {
            return;
        }
        let e = &job.entry;
        let Some(Some(file)) = job.file.get() else {
            return;
        };
        let r = (|| -> Result<()> {
            super::set_len_if_short(file, job.size).at(&e.rel)?;
            t::apply_meta(file, &e.node, sh.chown).at(&e.rel)?;
            if e.action != Action::Create {
                replace_with(&self.dirs[job.dir], &job.tmp, super::file_name(&e.rel), e)?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => {
                job.done.store(true, Ordering::Release);
                record(sh, e, Ok(job.size));
            }
            Err(err) => job.fail(err.to_string()),
        }
    }
}

/// A pack's uses (in pack order) cut where needed blobs are more than [`MAX_GAP`] apart.
fn spans<'u>(batch: &Batch, uses: &'u [usize]) -> Vec<&'u [usize]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..uses.len() {
        let prev = &batch.uses[uses[i - 1]].entry;
        let gap = (batch.uses[uses[i]].entry.offset as u64)
            .saturating_sub(prev.offset as u64 + prev.length as u64);
        if gap > MAX_GAP {
            out.push(&uses[from..i]);
            from = i;
        }
    }
    if from < uses.len() {
        out.push(&uses[from..]);
    }
    out
}

/// A file's outcome, into the restore's results and progress.
fn record(sh: &Shared<'_>, e: &PlannedEntry, r: std::result::Result<u64, String>) {
    {
        let mut results = sh.results.lock().expect("lock");
        match r {
            Ok(n) => {
                results.0 += n;
                results.2.push(e.action);
            }
            Err(why) => results.1.push((e.path.clone(), why)),
        }
    }
    sh.progress.add_file(&e.rel);
}
