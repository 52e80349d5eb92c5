//! File reads of the mounted snapshots, off the FUSE loop: a few worker threads answer read
//! requests (the kernel sends several at once: read-ahead), taking blobs from a bounded cache
//! of verified, decompressed blobs; a blob wanted by several requests at once is read once;
//! after a request, the next blobs of the file are fetched ahead.
//!
//! ```text
//! read(fh, offset, size) -> job on the pool: for each blob the range covers, cache or load
//!   (a load in flight is waited for, not repeated), copy the range, reply; then read ahead
//!   the file's next READ_AHEAD blobs
//! memory: the cache (BLOB_CACHE_BYTES) + one blob per worker in flight
//! ```

use super::lru::Lru;
use crate::id::Id;
use crate::repo::Repository;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Decompressed blobs kept for reads: the blobs a few readers are in (the kernel asks for
/// 128 KiB at a time, a blob is up to 4 MiB) and what is read ahead; the kernel keeps what
/// was read in its own page cache.
const BLOB_CACHE_BYTES: usize = 8 << 20;
/// Blobs fetched ahead of a sequential reader.
const READ_AHEAD: usize = 2;

/// An open file: its blobs with their offsets.
#[derive(Debug)]
pub(crate) struct OpenFile {
    /// (start offset, blob), in order.
    pub(crate) blobs: Vec<(u64, Id)>,
    pub(crate) size: u64,
    /// For messages.
    pub(crate) rel: String,
}

type Loaded = Result<Arc<Vec<u8>>, String>;

#[derive(Default)]
struct Loading {
    done: Mutex<Option<Loaded>>,
    ready: Condvar,
}

/// The blobs of a repository, shared by the workers.
pub(crate) struct Blobs {
    repo: RwLock<Arc<Repository>>,
    cache: Mutex<Lru<Arc<Vec<u8>>>>,
    loading: Mutex<HashMap<Id, Arc<Loading>>>,
}

impl Blobs {
    pub(crate) fn new(repo: Arc<Repository>) -> Blobs {
        Blobs {
            repo: RwLock::new(repo),
            cache: Mutex::new(Lru::new(BLOB_CACHE_BYTES)),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// Reads from `repo` from now on (reopened with a newer index).
    pub(crate) fn set_repo(&self, repo: Arc<Repository>) {
        *self.repo.write().expect("lock") = repo;
    }

    fn cached(&self, id: &Id) -> bool {
        self.cache.lock().expect("lock").contains(id)
    }

    /// The blob, verified and decompressed: from the cache, or read once however many ask.
    pub(crate) fn get(&self, id: &Id) -> Loaded {
        if let Some(b) = self.cache.lock().expect("lock").get(id) {
            return Ok(b);
        }
        let (slot, mine) = {
            let mut l = self.loading.lock().expect("lock");
            match l.get(id) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = Arc::new(Loading::default());
                    l.insert(*id, s.clone());
                    (s, true)
                }
            }
        };
        if !mine {
            let mut done = slot.done.lock().expect("lock");
            while done.is_none() {
                done = slot.ready.wait(done).expect("lock");
            }
            return done.clone().expect("set");
        }
        let repo = self.repo.read().expect("lock").clone();
        let r: Loaded = repo.read_blob(id).map(Arc::new).map_err(|e| e.to_string());
        if let Ok(b) = &r {
            self.cache
                .lock()
                .expect("lock")
                .put(*id, b.clone(), b.len().max(1));
        }
        *slot.done.lock().expect("lock") = Some(r.clone());
        slot.ready.notify_all();
        self.loading.lock().expect("lock").remove(id);
        r
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The worker threads.
pub(crate) struct Pool {
    jobs: crossbeam_channel::Sender<Job>,
    ahead: Arc<Mutex<HashSet<Id>>>,
}

impl Pool {
    pub(crate) fn new() -> Pool {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("sk-mount-read-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
        }
        Pool {
            jobs: tx,
            ahead: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Answers `reply` with `size` bytes of `file` from `offset`, on a worker.
    pub(crate) fn read(
        &self,
        blobs: &Arc<Blobs>,
        file: &Arc<OpenFile>,
        offset: u64,
        size: u32,
        reply: fuser::ReplyData,
    ) {
        let (blobs, file) = (blobs.clone(), file.clone());
        let jobs = self.jobs.clone();
        let ahead = self.ahead.clone();
        let job: Job = Box::new(move || {
            let (out, next) = read_range(&blobs, &file, offset, size);
            match out {
                Ok(data) => reply.data(&data),
                Err(e) => {
                    tracing::warn!(path = %file.rel, error = %e, "mount: cannot read");
                    reply.error(libc::EIO);
                }
            }
            // Read ahead: the next blobs, each by one worker at most.
            for (_, id) in file.blobs.iter().skip(next).take(READ_AHEAD) {
                if blobs.cached(id) || !ahead.lock().expect("lock").insert(*id) {
                    continue;
                }
                let (blobs, ahead, id) = (blobs.clone(), ahead.clone(), *id);
                let _ = jobs.send(Box::new(move || {
                    let _ = blobs.get(&id);
                    ahead.lock().expect("lock").remove(&id);
                }));
            }
        });
        let _ = self.jobs.send(job);
    }
}

/// The bytes of `file` in `[offset, offset + size)`, and the index of the blob after the last
/// one used.
fn read_range(
    blobs: &Blobs,
    file: &OpenFile,
    offset: u64,
    size: u32,
) -> (Result<Vec<u8>, String>, usize) {
    let end = (offset + u64::from(size)).min(file.size);
    if offset >= end {
        return (Ok(Vec::new()), file.blobs.len());
    }
    let first = file
        .blobs
        .partition_point(|(start, _)| *start <= offset)
        .saturating_sub(1);
    let mut out = Vec::with_capacity((end - offset) as usize);
    let mut next = first;
    for (i, (start, id)) in file.blobs.iter().enumerate().skip(first) {
        if *start >= end {
            break;
        }
        let blob = match blobs.get(id) {
            Ok(b) => b,
            Err(e) => return (Err(e), i + 1),
        };
        let from = offset.max(*start) - start;
        let to = (end - start).min(blob.len() as u64);
        if from < to {
            out.extend_from_slice(&blob[from as usize..to as usize]);
        }
        next = i + 1;
    }
    (Ok(out), next)
}
