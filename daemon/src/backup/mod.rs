//! The backup engine: turns a directory into a snapshot, storing only what the repository
//! does not already have.
//!
//! ```text
//! scan (this thread, scan.rs)     walks by descriptor; unchanged files keep the parent
//!                                 snapshot's content list; other files become jobs; each
//!                                 directory's tree is stored as soon as it is complete
//! workers (one per core, read.rs) open, chunk (FastCDC), hash; a chunk nobody has or is
//!                                 storing is compressed and appended to the open pack
//! finisher (packer.rs)            commits full packs, writes an index file every 4 packs
//! then                            the last pack is sealed and indexed, then the snapshot
//! ```
//! A file that cannot be read or vanishes is a warning (with its path), left out of the
//! snapshot, and counted in the summary; the snapshot is still written. A repository error
//! (disk full, permission on the repository) aborts the backup with no snapshot written;
//! earlier snapshots are untouched since files are only ever added. Memory does not grow with
//! the number of files backed up (see the memory model in the README).

mod excludes;
mod journal;
mod packer;
mod read;
mod scan;

pub(crate) use excludes::Excludes;

use crate::error::{IoContext, Result};
use crate::id::Id;
use crate::lock::{LockKind, RepoLock};
use crate::platform::{self, NameCache};
use crate::progress::{CancelToken, Progress};
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::Error;
use journal::Journal;
use packer::Packer;
use read::{read_job, Job, JobResult};
use scan::Scan;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Threads listing directories ahead of the scan (I/O-bound: more than the cores).
const PREFETCHERS: usize = 4;
/// Directories waiting for them, at most.
const PREFETCH_QUEUE: usize = 4096;

/// Which snapshot a backup compares against to skip unchanged files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot of the same root (not a `pre-restore` one).
    #[default]
    Auto,
    /// None: read every file.
    None,
    /// This snapshot.
    Id(Id),
}

/// How to back up.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Glob patterns to leave out: a pattern without `/` matches a name anywhere
    /// (`*.tmp`, `~$*`, `Thumbs.db`); one with `/` matches a path relative to the root.
    pub excludes: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Parent snapshot for change detection.
    pub parent: ParentChoice,
    /// Only these paths (relative to the root) and the directories leading to them.
    pub only: Option<Vec<PathBuf>>,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// The time to record (default: now), e.g. when importing history.
    pub time: Option<chrono::DateTime<chrono::Local>>,
}

/// An entry that could not be backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The entry.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The result of a backup.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The snapshot written.
    pub snapshot: Snapshot,
    /// Entries left out, with why.
    pub warnings: Vec<Warning>,
}

fn choose_parent(repo: &Repository, root: &str, choice: &ParentChoice) -> Result<Option<Snapshot>> {
    Ok(match choice {
        ParentChoice::None => None,
        ParentChoice::Id(id) => repo.snapshots()?.into_iter().find(|s| s.id == *id),
        ParentChoice::Auto => repo
            .snapshots()?
            .into_iter()
            .filter(|s| s.root() == root && !s.has_tag(crate::snapshot::PRE_RESTORE_TAG))
            .max_by_key(|s| s.time),
    })
}

/// Backs up the directory `root` into `repo` and writes a snapshot.
pub fn backup(
    repo: &Repository,
    root: &Path,
    opts: &BackupOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<BackupOutcome> {
    repo.require_full_index("backup")?;
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Shared, "backup")?;
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(chrono::Local::now);
    let root = std::path::absolute(root).at(root)?;
    let root_text = root
        .to_str()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the folder to back up must have a UTF-8 path",
                root.display()
            ))
        })?
        .to_string();
    let excludes = Excludes::new(&opts.excludes)?;
    let parent = choose_parent(repo, &root_text, &opts.parent)?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };

    // Bounded: each waiting job holds its directory's descriptor and keeps its directory's
    // nodes in memory.
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(256);
    let (res_tx, res_rx) = crossbeam_channel::unbounded::<Result<JobResult>>();
    let (sealed_tx, sealed_rx) = crossbeam_channel::bounded(4);
    let journal = match repo.backend().journal_dir() {
        Some(dir) => Some(Journal::open(repo, &dir)?),
        None => None,
    };
    let packer = Packer::new(repo, sealed_tx, journal);
    let inner_cancel = CancelToken::new();
    let mut scan = Scan::new(repo, &root, opts, excludes, &packer, progress);
    let (prefetch_tx, prefetch_rx) = crossbeam_channel::bounded(PREFETCH_QUEUE);
    scan.prefetch_into(prefetch_tx);

    let outcome = std::thread::scope(|s| -> Result<(Id, u64)> {
        for _ in 0..PREFETCHERS {
            let rx = prefetch_rx.clone();
            s.spawn(move || scan::prefetch(repo, rx));
        }
        drop(prefetch_rx);
        let finisher = s.spawn(|| packer.finisher(sealed_rx));
        for _ in 0..threads {
            let job_rx = job_rx.clone();
            let res_tx = res_tx.clone();
            let (packer, inner_cancel) = (&packer, &inner_cancel);
            s.spawn(move || {
                let mut buf = Vec::new();
                for job in job_rx {
                    if inner_cancel.is_cancelled() || cancel.is_cancelled() {
                        break;
                    }
                    let r = read_job(&job, repo, packer, &mut buf, progress, cancel);
                    if r.is_err() {
                        inner_cancel.cancel();
                    }
                    if res_tx.send(r).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        drop(job_rx);

        let tree = scan.run(cancel, parent.as_ref().map(|p| p.tree), job_tx, &res_rx);
        if tree.is_ok() {
            progress.set_total(scan.to_read.0, scan.to_read.1);
        } else {
            inner_cancel.cancel();
        }
        // The last pack is sealed on success, dropped otherwise; either way the finisher
        // indexes what it committed (the next backup reuses it) and ends.
        let tree = match tree {
            Ok(t) => packer.finish().map(|_| t),
            Err(e) => {
                packer.abandon();
                Err(e)
            }
        };
        let stored = finisher.join().expect("finisher thread");
        let tree = tree?;
        Ok((tree, stored?))
    });
    progress.finish();
    let (tree, stored) = outcome?;

    let mut summary = scan.summary;
    summary.blobs_added = packer.blobs_added.load(Ordering::Relaxed);
    summary.bytes_added = packer.bytes_added.load(Ordering::Relaxed);
    summary.bytes_stored = stored;
    summary.warnings = scan.warnings.len() as u64;
    summary.started = Some(time);
    summary.seconds = started.elapsed().as_secs_f64();
    let names = NameCache::default();
    let mut snapshot = Snapshot {
        id: Id::default(),
        time,
        host: opts.host.clone().unwrap_or_else(crate::lock::hostname),
        username: platform::current_user_name(&names),
        paths: vec![root_text],
        tags: opts.tags.clone(),
        tree,
        parent: parent.map(|p| p.id),
        original: None,
        summary,
        program_version: format!("sharekeep {}", env!("CARGO_PKG_VERSION")),
    };
    repo.save_snapshot(&mut snapshot)?;
    Ok(BackupOutcome {
        snapshot,
        warnings: scan.warnings,
    })
}

#[cfg(test)]
mod tests {
    //! A backup of a small tree, on every platform (under Wine for Windows): content, sizes,
    //! folders, the security descriptor on Windows, unchanged files not read again.

    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn a_tree_is_backed_up_with_its_content_and_read_once() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("Commercial");
        std::fs::create_dir_all(src.join("Tarifs")).unwrap();
        std::fs::create_dir_all(src.join("Propositions/2026")).unwrap();
        std::fs::create_dir_all(src.join("Vide")).unwrap();
        let small = b"prix".to_vec();
        let big: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(src.join("Tarifs/grille.csv"), &small).unwrap();
        std::fs::write(src.join("Propositions/2026/devis.docx"), &big).unwrap();
        let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
        let run = || {
            backup(
                &repo,
                &src,
                &BackupOptions::default(),
                &NoProgress,
                &CancelToken::new(),
            )
            .unwrap()
        };
        let first = run();
        assert!(first.warnings.is_empty(), "{:?}", first.warnings);
        let snap = &first.snapshot;
        assert_eq!(snap.summary.total_files, 2);
        assert_eq!(snap.summary.files_new, 2);
        for (path, want) in [
            ("Tarifs/grille.csv", &small),
            ("Propositions/2026/devis.docx", &big),
        ] {
            let node = repo.find_node(snap, path).unwrap().expect(path);
            assert_eq!(node.kind, crate::tree::NodeKind::File);
            assert_eq!(node.size, want.len() as u64, "{path}");
            let content: Vec<u8> = node
                .content
                .iter()
                .flat_map(|id| repo.read_blob(id).unwrap())
                .collect();
            assert_eq!(&content, want, "{path}");
            // Windows records each entry's security descriptor; elsewhere the ACLs are xattrs.
            #[cfg(windows)]
            assert!(
                node.security.as_deref().is_some_and(|s| s.contains("D:")),
                "{node:?}"
            );
            #[cfg(unix)]
            assert_eq!(node.security, None);
        }
        let dir = repo.find_node(snap, "Vide").unwrap().expect("Vide");
        assert_eq!(dir.kind, crate::tree::NodeKind::Dir);
        #[cfg(windows)]
        assert!(dir.security.is_some(), "{dir:?}");
        // Nothing changed: nothing read again, and the same tree.
        let second = run();
        assert_eq!(second.snapshot.summary.files_unchanged, 2);
        assert_eq!(second.snapshot.summary.bytes_read, 0);
        assert_eq!(second.snapshot.tree, snap.tree);
    }
}
