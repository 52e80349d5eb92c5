//! A backup worker's job: read one file by descriptor, cut it into chunks, store the chunks
//! the repository lacks.

use super::packer::Packer;
use super::Warning;
use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::BlobType;
use crate::platform;
use crate::platform::DirHandle;
use crate::progress::{CancelToken, Progress};
use crate::repo::Repository;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

/// A file to read.
pub(super) struct Job {
    /// Its directory's slot in the scan, and its node there.
    pub(super) dir: usize,
    pub(super) node: usize,
    /// For messages only: files are opened by `name` in `parent`, never by path.
    pub(super) path: PathBuf,
    pub(super) parent: Arc<DirHandle>,
    pub(super) name: OsString,
    pub(super) inode: u64,
    pub(super) device: u64,
}

/// What reading a file gave.
pub(super) enum JobResult {
    Done {
        dir: usize,
        node: usize,
        content: Vec<Id>,
        size: u64,
        /// Read from the open file (or why they could not be).
        xattrs: std::result::Result<Vec<crate::tree::Xattr>, String>,
        /// Its security descriptor (Windows).
        security: Option<String>,
    },
    Skipped {
        dir: usize,
        node: usize,
        warning: Warning,
    },
}

impl JobResult {
    /// The directory slot the file belongs to.
    pub(super) fn dir(&self) -> usize {
        match self {
            JobResult::Done { dir, .. } | JobResult::Skipped { dir, .. } => *dir,
        }
    }
}

/// Reads, chunks and stores one file. A file that cannot be read is `Skipped` with a warning;
/// only repository errors (and interruption) are errors.
pub(super) fn read_job(
    job: &Job,
    repo: &Repository,
    packer: &Packer<'_>,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<JobResult> {
    let skipped = |message: String| JobResult::Skipped {
        dir: job.dir,
        node: job.node,
        warning: Warning {
            path: job.path.clone(),
            message,
        },
    };
    // By name in its directory's handle, never through a link.
    let file = match platform::open_file_at(&job.parent, &job.name) {
        Ok(f) => f,
        Err(e) => return Ok(skipped(format!("cannot open: {e}"))),
    };
    match platform::file_identity(&file) {
        Ok(Some(id)) if id == (job.device, job.inode) => {}
        Ok(_) => return Ok(skipped("replaced during the backup; left out".into())),
        Err(e) => return Ok(skipped(format!("cannot stat: {e}"))),
    }
    let xattrs = platform::read_xattrs_fd(&file).map_err(|e| e.to_string());
    let security = platform::read_security(&file);
    let mut chunker = Chunker::with_buffer(file, repo.config().chunker, std::mem::take(buf));
    let mut content = Vec::new();
    let mut size = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let chunk = match chunker.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                *buf = chunker.into_buffer();
                return Ok(skipped(format!("read error: {e}")));
            }
        };
        let id = repo.blob_id(chunk);
        if packer.claim(&id) {
            packer.add(BlobType::Data, id, chunk)?;
        }
        content.push(id);
        size += chunk.len() as u64;
        progress.add_bytes(chunk.len() as u64);
    }
    *buf = chunker.into_buffer();
    progress.add_file(&job.path);
    Ok(JobResult::Done {
        dir: job.dir,
        node: job.node,
        content,
        size,
        xattrs,
        security,
    })
}
