//! The engine's error type. Every variant carries what the user needs to act: the path, the
//! repository file, or the snapshot concerned. Binaries map these to exit codes; the library
//! never prints.

use crate::id::Id;
use std::io;
use std::path::PathBuf;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named path (source file, restore target, repository file).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The directory holds no repository.
    #[error("{}: not a sharekeep repository (no config file); create one with `sharekeepctl init --repo {}`", path.display(), path.display())]
    NotARepository {
        /// The directory given as repository.
        path: PathBuf,
    },
    /// `init` on a directory that already holds a repository or other files.
    #[error("{}: {reason}", path.display())]
    CannotInit {
        /// The directory given as repository.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A repository file could not be understood (bad format, wrong version, hash mismatch).
    #[error("repository file {}: {reason}", path.display())]
    Corrupt {
        /// The repository file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob's content does not hash to its id.
    #[error("blob {} in pack {}: content does not match its sha256 (pack damaged){}", id.short(), pack.display(), files_hint(files))]
    BlobMismatch {
        /// The blob.
        id: Id,
        /// The pack file holding it.
        pack: PathBuf,
        /// Files whose content includes the blob, when known.
        files: Vec<String>,
    },
    /// A blob the snapshot needs is in no index.
    #[error("blob {} is not in the repository's index; run `sharekeepctl check` (and `repair index`)", id.short())]
    BlobMissing {
        /// The blob.
        id: Id,
    },
    /// No snapshot matches a selector.
    #[error("no snapshot matches {selector:?}; list them with `sharekeepctl snapshots`")]
    SnapshotNotFound {
        /// What the user typed.
        selector: String,
    },
    /// An id prefix matches several snapshots.
    #[error("snapshot prefix {selector:?} matches {count} snapshots; type more characters")]
    SnapshotAmbiguous {
        /// What the user typed.
        selector: String,
        /// How many matched.
        count: usize,
    },
    /// A selector that is not an id prefix, `latest` or `@TIME`.
    #[error("{selector:?} is not a snapshot: give an id prefix (4+ hex digits), `latest`, or `@TIME` such as @2026-11-28 or @2026-11-28T18:00")]
    BadSelector {
        /// What the user typed.
        selector: String,
    },
    /// A path not present in a snapshot.
    #[error("`{path}` is not in snapshot {snapshot} (root {root})")]
    PathNotInSnapshot {
        /// The path asked for.
        path: String,
        /// The snapshot's short id.
        snapshot: String,
        /// The snapshot's backed-up root.
        root: String,
    },
    /// A path that names a directory where a file was expected, or the reverse.
    #[error("{path:?} in snapshot {snapshot} is a {found}, not a {expected}")]
    WrongKind {
        /// The path asked for.
        path: String,
        /// The snapshot's short id.
        snapshot: String,
        /// What it is.
        found: &'static str,
        /// What was wanted.
        expected: &'static str,
    },
    /// Invalid option or argument (the message says which and what to do).
    #[error("{0}")]
    Invalid(String),
    /// Another process holds a conflicting lock on the repository.
    #[error("the repository is locked: {holder}; wait for it to finish (a lock left by a crashed process is removed automatically; `sharekeepctl unlock` removes stale ones)")]
    Locked {
        /// Who holds it.
        holder: String,
    },
    /// The operation was cancelled (signal or shutdown); nothing partial was recorded.
    #[error("interrupted; nothing partial was recorded")]
    Interrupted,
    /// The repository is encrypted and no key was given.
    #[error("{repo} is encrypted: give its key with --key-file FILE (or SHAREKEEP_KEY_FILE) or a passphrase in SHAREKEEP_PASSWORD")]
    KeyNeeded {
        /// The repository.
        repo: String,
    },
    /// No key slot of the repository opens with the secret given.
    #[error("{repo}: {secret} opens none of its keys ({tried} of {slots} tried): wrong passphrase or key file")]
    WrongKey {
        /// The repository.
        repo: String,
        /// How the secret was given.
        secret: String,
        /// Slots of the same kind (passphrase or key file) tried.
        tried: usize,
        /// Slots in all.
        slots: usize,
    },
    /// A remote store refused or failed a request (after retries).
    #[error("{location}: {message}")]
    Remote {
        /// The object or store concerned.
        location: String,
        /// What went wrong, and what to do.
        message: String,
    },
}

fn files_hint(files: &[String]) -> String {
    if files.is_empty() {
        String::new()
    } else {
        format!("; affects {}", files.join(", "))
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A short machine-readable kind, used by `--json` output and the control protocol.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::NotARepository { .. } => "not_a_repository",
            Error::CannotInit { .. } => "cannot_init",
            Error::Corrupt { .. } | Error::BlobMismatch { .. } | Error::BlobMissing { .. } => {
                "corrupt"
            }
            Error::SnapshotNotFound { .. }
            | Error::SnapshotAmbiguous { .. }
            | Error::BadSelector { .. } => "snapshot",
            Error::PathNotInSnapshot { .. } | Error::WrongKind { .. } => "path",
            Error::Invalid(_) => "invalid",
            Error::Locked { .. } => "locked",
            Error::Interrupted => "interrupted",
            Error::KeyNeeded { .. } | Error::WrongKey { .. } => "key",
            Error::Remote { .. } => "remote",
        }
    }
}

/// Adds a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

impl<T> IoContext<T> for std::result::Result<T, rustix::io::Errno> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e.into()))
    }
}
