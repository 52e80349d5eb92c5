//! Storage behind a trait: where repository files live. The engine only ever names files by
//! kind and name (`data/ab/abcd…`, `index/…`, `snapshots/…`), so a local directory, an
//! S3-compatible bucket or an SFTP server can hold a repository alike.
//!
//! Contract every backend keeps (and the conformance tests in `local.rs` check):
//! - `write` and `commit_temp` are atomic and durable: once they return, the file is complete
//!   under its final name and survives a crash; a crash before leaves no file under that name.
//! - Files are written once and never modified; `remove` is the only other mutation.
//! - `list` returns names only of complete files.

mod local;

pub use local::LocalBackend;

use crate::error::Result;
use std::fmt::Debug;
use std::fs::File;
use std::path::PathBuf;

/// The kinds of repository file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The repository's `config`.
    Config,
    /// Pack files (`data/`), holding blobs.
    Pack,
    /// Index files (`index/`): which blob is where.
    Index,
    /// Snapshot files (`snapshots/`).
    Snapshot,
    /// Lock files (`locks/`).
    Lock,
}

impl FileKind {
    /// The kinds listed when walking a repository.
    pub const ALL: [FileKind; 4] = [
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
    ];

    /// The directory holding files of this kind.
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Pack => "data",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Lock => "locks",
        }
    }
}

/// A temporary file being written, to be committed under a final name with
/// [`Backend::commit_temp`].
#[derive(Debug)]
pub struct TempFile {
    /// The open file, positioned at its end for appending.
    pub file: File,
    /// Where it is (for error messages and for committing).
    pub path: PathBuf,
}

/// A place that stores repository files.
pub trait Backend: Send + Sync + Debug {
    /// A human-readable location, used in messages (a path or URL).
    fn location(&self) -> String;
    /// Why others than its owner could read or change what is stored (`None`: private).
    fn exposure(&self) -> Option<String> {
        None
    }
    /// The location of one file, for messages.
    fn file_location(&self, kind: FileKind, name: &str) -> PathBuf;
    /// Creates the empty structure; fails if a repository is already there.
    fn create(&self) -> Result<()>;
    /// Whether a file exists.
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool>;
    /// Names of all complete files of a kind.
    fn list(&self, kind: FileKind) -> Result<Vec<String>>;
    /// Names and sizes of all complete files of a kind.
    fn list_sizes(&self, kind: FileKind) -> Result<Vec<(String, u64)>>;
    /// Reads a whole file.
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`.
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// Reads `out.len()` bytes at `offset` into `out` (a buffer reused from read to read).
    fn read_at_into(&self, kind: FileKind, name: &str, offset: u64, out: &mut [u8]) -> Result<()> {
        let data = self.read_at(kind, name, offset, out.len())?;
        out.copy_from_slice(&data);
        Ok(())
    }
    /// Writes a whole file atomically and durably.
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// A new temporary file for streaming a large file (a pack) before committing it.
    fn create_temp(&self) -> Result<TempFile>;
    /// Makes a temporary file durable under its final name.
    fn commit_temp(&self, temp: TempFile, kind: FileKind, name: &str) -> Result<()>;
    /// Makes committed files durable as a group (for a local directory: fsync the parent
    /// directories touched since the last call). Called before writing what references them.
    fn sync(&self) -> Result<()>;
    /// Removes a file.
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// Removes temporary files left by interrupted operations; only safe when nothing else
    /// writes (under the exclusive lock). Returns how many were removed.
    fn clean_temp(&self) -> Result<usize>;
}
