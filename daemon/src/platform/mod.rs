//! Platform code: reading and writing filesystem metadata, walking a restore target by file
//! descriptors (Unix), and the file operations the repository needs on every platform
//! (`files.rs`). On Windows (`windows.rs`) the repository side builds today; backup and
//! restore of a tree come with the NTFS metadata.

mod files;
pub(crate) use files::*;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::raise_open_file_limit;
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::raise_open_file_limit;
#[cfg(windows)]
pub(crate) use windows::*;
