//! Platform code: reading and writing filesystem metadata, and walking a restore target by file
//! descriptors. Only Unix exists today; `windows.rs` comes with NTFS support.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::raise_open_file_limit;
#[cfg(unix)]
pub(crate) use unix::*;
