//! Restore drills: proof that a snapshot restores. A sample of its files (drawn at random,
//! plus always the largest) is restored with the real restore into a scratch folder, each
//! restored file is checked against the snapshot (content blob by blob against the blobs'
//! sha256 ids, size, mode, mtime), and the scratch folder is removed.
//!
//! ```text
//! sample:  one pass over the snapshot's files, reservoir sampling (memory: the sample, not
//!          the snapshot), seeded; the largest file always joins
//! restore: plan_restore + restore into SCRATCH/drill-<pid>-<time> (never into the share)
//! verify:  for each sampled file, its restored bytes cut at the blobs' raw lengths must hash
//!          to the blob ids the snapshot lists; size, mode and mtime as recorded
//! result:  ok, or the files damaged (unreadable blobs, with the pack named by the restore)
//!          or different (what differs)
//! ```

use crate::error::{Error, IoContext, Result};
use crate::history::list;
use crate::progress::{CancelToken, NoProgress};
use crate::repo::Repository;
use crate::restore::{plan_restore, restore, Overwrite, RestoreOptions, Target};
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};
use std::io::Read;
use std::path::Path;

/// How a drill samples.
#[derive(Debug, Clone, Copy)]
pub struct DrillOptions {
    /// Files drawn at random (the largest file is added to them).
    pub sample: usize,
    /// Seed of the draw (reproducible drills; the service uses the time).
    pub seed: u64,
}

/// A file the drill found wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DrillProblem {
    /// Path in the snapshot.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// What a drill found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DrillReport {
    /// The snapshot drilled.
    pub snapshot: String,
    /// Files in the snapshot.
    pub files_in_snapshot: u64,
    /// Files restored and checked.
    pub files_checked: u64,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Files that could not be restored or differ.
    pub problems: Vec<DrillProblem>,
    /// Seconds it took.
    pub seconds: f64,
}

impl DrillReport {
    /// Whether everything sampled restored identical.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// SplitMix64: the draw needs no more.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((u128::from(z ^ (z >> 31)) * u128::from(n)) >> 64) as u64
    }
}

/// The files of `snap` a drill restores: `opts.sample` drawn uniformly (reservoir), plus the
/// largest; and how many files the snapshot holds.
fn sample(
    repo: &Repository,
    snap: &Snapshot,
    opts: DrillOptions,
) -> Result<(Vec<(String, Node)>, u64)> {
    let mut draw = Draw(opts.seed);
    let mut chosen: Vec<(String, Node)> = Vec::with_capacity(opts.sample);
    let mut largest: Option<(String, Node)> = None;
    let mut seen = 0u64;
    list(repo, snap, "", &mut |e| {
        if e.node.kind != NodeKind::File || e.path.is_empty() {
            return;
        }
        seen += 1;
        let larger = match &largest {
            Some((_, n)) => e.node.size > n.size,
            None => true,
        };
        if larger {
            largest = Some((e.path.clone(), e.node.clone()));
        }
        if chosen.len() < opts.sample {
            chosen.push((e.path, e.node));
        } else {
            let j = draw.below(seen) as usize;
            if j < opts.sample {
                chosen[j] = (e.path, e.node);
            }
        }
    })?;
    if let Some(l) = largest {
        if !chosen.iter().any(|(p, _)| *p == l.0) {
            chosen.push(l);
        }
    }
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((chosen, seen))
}

/// Checks a restored file against its node.
fn verify(repo: &Repository, file: &Path, node: &Node) -> std::result::Result<u64, String> {
    let meta = std::fs::symlink_metadata(file).map_err(|e| format!("not restored ({e})"))?;
    if !meta.is_file() {
        return Err("not restored as a file".into());
    }
    if meta.len() != node.size {
        return Err(format!(
            "{} bytes restored, {} recorded",
            meta.len(),
            node.size
        ));
    }
    crate::platform::target::check_restored(&meta, node)?;
    let mut f = std::fs::File::open(file).map_err(|e| format!("cannot read it back ({e})"))?;
    let lengths: Vec<u64> = {
        let index = repo.index();
        node.content
            .iter()
            .map(|id| index.get(id).map(|(_, e)| u64::from(e.raw_length)))
            .collect::<Option<Vec<u64>>>()
            .ok_or("a blob of it is not in the index")?
    };
    let mut buf = Vec::new();
    for (i, (id, len)) in node.content.iter().zip(lengths).enumerate() {
        buf.clear();
        (&mut f)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read it back ({e})"))?;
        if repo.blob_id(&buf) != *id {
            return Err(format!(
                "restored content differs from the snapshot's (block {} of {})",
                i + 1,
                node.content.len()
            ));
        }
    }
    Ok(meta.len())
}

/// Restores a sample of `snap`'s files under `scratch` (created, then removed) and checks
/// them. Damage is reported in the result, not as an error: an error means the drill itself
/// could not run (no space in scratch, the snapshot unreadable…).
pub fn drill(
    repo: &Repository,
    snap: &Snapshot,
    scratch: &Path,
    opts: DrillOptions,
    cancel: &CancelToken,
) -> Result<DrillReport> {
    repo.require_full_index("a drill")?;
    let started = std::time::Instant::now();
    let (chosen, files_in_snapshot) = sample(repo, snap, opts)?;
    let dir = scratch.join(format!(
        "drill-{}-{}",
        std::process::id(),
        chrono::Local::now().format("%Y%m%dT%H%M%S%.f")
    ));
    std::fs::create_dir_all(scratch).at(scratch)?;
    let cleanup = Cleanup(&dir);
    let plan = plan_restore(
        repo,
        snap,
        &RestoreOptions {
            paths: chosen.iter().map(|(p, _)| p.clone()).collect(),
            target: Target::Dir(dir.clone()),
            overwrite: Overwrite::IfChanged,
            threads: 0,
        },
    )?;
    let restored = restore(repo, &plan, 0, &NoProgress, cancel)?;
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    let mut problems: Vec<DrillProblem> = restored
        .warnings
        .iter()
        .map(|(path, why)| DrillProblem {
            path: path.clone(),
            problem: why.clone(),
        })
        .collect();
    let (mut files_checked, mut bytes_checked) = (0, 0);
    for (path, node) in &chosen {
        if problems.iter().any(|p| p.path == *path) {
            continue;
        }
        match verify(repo, &dir.join(path), node) {
            Ok(bytes) => {
                files_checked += 1;
                bytes_checked += bytes;
            }
            Err(problem) => problems.push(DrillProblem {
                path: path.clone(),
                problem,
            }),
        }
    }
    drop(cleanup);
    Ok(DrillReport {
        snapshot: snap.id.to_hex(),
        files_in_snapshot,
        files_checked,
        bytes_checked,
        problems,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Removes the scratch copy however the drill ends (by descriptor or handle, never through
/// a link; on Windows a read-only file made writable first, which Windows requires).
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let (Some(parent), Some(name)) = (self.0.parent(), self.0.file_name()) else {
            return;
        };
        if let Ok(dir) = crate::platform::target::open_root(parent) {
            let _ = crate::restore::remove_at(&dir, name);
        }
    }
}
