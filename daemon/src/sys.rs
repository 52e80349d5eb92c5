//! What the service needs of the operating system, the same call on Linux and on Windows:
//! files and folders private to the service (0600/0700, or a protected DACL), positional
//! reads, a file below a share read by handle without following a link, the machine's name,
//! and the check that a file of secrets is private.

use std::fs::File;
use std::io;
use std::path::Path;

pub use crate::backend::require_private;
pub use crate::platform::files::{create_new_private, private_dir, private_dirs, read_exact_at};

/// The machine's name.
pub fn hostname() -> String {
    crate::lock::hostname()
}

/// Opens for appending the file at `path`, created private to the service when missing
/// (0600 whatever the umask; on Windows its private folder's rights), never through a link.
pub fn append_private(path: &Path) -> io::Result<File> {
    match crate::platform::create_new_private(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mut o = std::fs::OpenOptions::new();
            o.append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
            }
            o.open(path)
        }
        Err(e) => Err(e),
    }
}

/// Opens the regular file `rel` (`/`-separated) below the folder `root` to read it: every
/// folder entered by descriptor or handle, never through a symlink, junction or mount
/// point's link; anything but a regular file refused (`InvalidInput`).
pub fn open_regular_beneath(root: &Path, rel: &str) -> io::Result<File> {
    use crate::platform::{enter_dir, file_identity, open_backup_root, open_file_at};
    let mut dir = open_backup_root(root).map_err(|e| io::Error::other(e.to_string()))?;
    let mut parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    let Some(name) = parts.pop() else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    for p in parts {
        if p == ".." || p == "." {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        dir = enter_dir(&dir, std::ffi::OsStr::new(p))?;
    }
    let f = open_file_at(&dir, std::ffi::OsStr::new(name))?;
    match file_identity(&f)? {
        Some(_) => Ok(f),
        None => Err(io::ErrorKind::InvalidInput.into()),
    }
}
