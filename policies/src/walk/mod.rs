//! Walking a share as root without trusting a path: folders opened by name in their parent's
//! handle, never through a link, files opened without following one and their type checked on
//! the handle. What a walk needs from the platform is the [`Tree`] trait: descriptors on Unix
//! (`unix.rs`, whose functions the backup scan and the watches use directly), handles opened
//! relative to their parent with reparse points never followed on Windows (`windows.rs`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Why an entry could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Gone.
    Missing,
    /// A link, a file, or another folder than the one listed is there now.
    Replaced,
    /// Another error (permission, I/O): the system's error code.
    Other(i32),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing => write!(f, "vanished"),
            Refused::Replaced => write!(f, "replaced (by a link or another entry) during the walk"),
            Refused::Other(code) => write!(f, "{}", std::io::Error::from_raw_os_error(*code)),
        }
    }
}

/// What an entry is, as a walk sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A folder (never a link to one).
    Dir,
    /// A regular file.
    File,
    /// A link, a reparse point, a device, a FIFO…: never opened, never touched.
    Other,
    /// The listing did not say (some filesystems): ask [`Tree::kind_at`].
    Unknown,
}

/// A filesystem as a walk running as root sees it.
pub trait Tree: Sync {
    /// An open folder or file.
    type Handle: Send + Sync;
    /// What the handle's metadata call returns.
    type Meta;
    /// Opens the share's root folder, not following a link there.
    fn open_root(&self, path: &Path) -> std::io::Result<Self::Handle>;
    /// Opens the folder `rel` (`/`-separated) below `root`, one name at a time.
    fn open_beneath(&self, root: &Self::Handle, rel: &str) -> Result<Self::Handle, Refused>;
    /// Opens the folder `name` in `parent`, never following a link.
    fn open_dir(&self, parent: &Self::Handle, name: &OsStr) -> Result<Self::Handle, Refused>;
    /// Opens the entry `name` in `dir` for its metadata and rights, never following a link
    /// (the caller checks it is still a file).
    fn open_file(&self, dir: &Self::Handle, name: &OsStr) -> Result<Self::Handle, Refused>;
    /// The open entry's metadata.
    fn meta(&self, h: &Self::Handle) -> Result<Self::Meta, Refused>;
    /// What `name` in `dir` is, without following it.
    fn kind_at(&self, dir: &Self::Handle, name: &OsStr) -> Result<Kind, Refused>;
    /// A folder's entries (without `.` and `..`).
    fn list(&self, dir: &Self::Handle) -> Result<Vec<(OsString, Kind)>, Refused>;
    /// The kind the metadata says.
    fn kind(m: &Self::Meta) -> Kind;
    /// Hard links to the entry.
    fn links(m: &Self::Meta) -> u64;
    /// The filesystem (device, volume) it is on.
    fn volume(m: &Self::Meta) -> u64;
}
