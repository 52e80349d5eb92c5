//! Storage behind a trait: where repository files live. The engine only ever names files by
//! kind and name (`data/ab/abcd…`, `index/…`, `snapshots/…`), so a local directory, an
//! S3-compatible bucket or an SFTP server can hold a repository alike.
//!
//! Contract every backend keeps (and [`conformance`] checks, on every backend):
//! - `write` and `commit_temp` are atomic and durable: once they return, the file is complete
//!   under its final name and survives a crash; a crash before leaves no file under that name.
//! - Files are written once and never replaced: writing a name that exists fails, unless the
//!   file there has the same size (names are hashes of content: the same file, a retried
//!   upload). `remove` is the only other mutation.
//! - `list` returns names only of complete files; two writers at once lose nothing.

pub mod conformance;
mod local;
mod location;
#[cfg(feature = "remote")]
mod remote;

pub use local::LocalBackend;
pub use location::require_private;
pub use location::{redact_url, Credentials, Location, S3Location, SftpLocation};
#[cfg(feature = "remote")]
pub use remote::RemoteBackend;

use crate::crypto::Secret;
use crate::error::{Error, Result};
use std::fmt::Debug;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// What opening a repository takes besides its location.
#[derive(Debug, Default)]
pub struct Access {
    /// The key of an encrypted repository (and, with `init`, the secret of its first key).
    pub secret: Option<Secret>,
    /// What a remote store needs.
    pub credentials: Credentials,
    /// A local folder for caches (a remote repository's immutable files, staged uploads, a
    /// paged index); `None`: the system's temporary folder.
    pub cache_root: Option<PathBuf>,
}

impl Access {
    /// The cache folder.
    pub fn cache_root(&self) -> PathBuf {
        self.cache_root
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("sharekeep-cache"))
    }
}

/// The backend for `location`.
pub fn open_backend(location: &Location, access: &Access) -> Result<Arc<dyn Backend>> {
    match location {
        Location::Local(p) => Ok(Arc::new(LocalBackend::new(p))),
        #[cfg(feature = "remote")]
        _ => Ok(Arc::new(RemoteBackend::open(
            location,
            &access.credentials,
            &access.cache_root(),
        )?)),
        #[cfg(not(feature = "remote"))]
        _ => {
            let _ = access;
            Err(Error::Invalid(format!(
                "{location}: this sharekeep was built without remote stores (feature `remote`)"
            )))
        }
    }
}

/// Refuses an unencrypted repository on another machine.
pub(crate) fn require_encryption(location: &Location, secret: Option<&Secret>) -> Result<()> {
    if location.is_remote() && secret.is_none() {
        return Err(Error::Invalid(format!(
            "{location}: a repository on another machine must be encrypted: `init --encrypt` with --key-file FILE (or SHAREKEEP_KEY_FILE) or SHAREKEEP_PASSWORD"
        )));
    }
    Ok(())
}

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
    /// Key slots of an encrypted repository (`keys/`).
    Key,
}

impl FileKind {
    /// Whether a file of this kind is named by the hash of its content (packs, index,
    /// snapshot and lock files; not the config nor key slots): writing one again under its
    /// name writes the same content.
    pub fn content_addressed(self) -> bool {
        !matches!(self, FileKind::Config | FileKind::Key)
    }

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
            FileKind::Key => "keys",
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
    /// Whether the store is on another machine (an object store, an SFTP server).
    fn is_remote(&self) -> bool {
        false
    }
    /// Where a backup notes the packs it committed and has not indexed yet (a local folder;
    /// `None`: index files are cheap enough to write every few packs).
    fn journal_dir(&self) -> Option<PathBuf> {
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
    /// Hands the `len` bytes at `offset` to `sink` in order, piece by piece as they arrive (a
    /// remote store's answer is never held whole); a transfer cut off is resumed where it
    /// stopped, so `sink` sees every byte once. An error of `sink` ends the read and is
    /// returned as it is.
    fn read_stream(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let data = self.read_at(kind, name, offset, len as usize)?;
        sink(&data)
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
