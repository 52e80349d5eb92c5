//! Platform code: reading filesystem metadata for a backup (`unix.rs`, `windows.rs`), the
//! restore target walked and changed by descriptor or handle (`target_unix.rs`,
//! `target_windows.rs`: one set of functions, `platform::target`), and the file operations
//! the repository needs on every platform (`files.rs`).

pub(crate) mod files;
pub(crate) use files::*;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::raise_open_file_limit;
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(unix)]
#[path = "target_unix.rs"]
pub(crate) mod target;
#[cfg(windows)]
#[path = "target_windows.rs"]
pub(crate) mod target;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::raise_open_file_limit;
#[cfg(windows)]
pub(crate) use windows::*;
