//! The descriptor walk every root-side traversal of a share uses: the backup scan (and so the
//! pre-restore backup), the policy walker and the service's watches. sharekeepd is root in
//! folders members write to, so:
//!
//! ```text
//! a folder is opened by its name in its parent's descriptor: O_DIRECTORY|O_NOFOLLOW, never a
//!   path (a link swapped in fails with ELOOP/ENOTDIR), and, when the caller knows what its
//!   parent listed, it must still be that (device, inode)
//! a file is opened O_NOFOLLOW|O_NONBLOCK|O_NOCTTY (a FIFO swapped in never blocks), then its
//!   type is checked on the descriptor
//! names are bytes from getdents, never text; depth is the caller's explicit stack
//! ```

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Why a folder could not be entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Gone.
    Missing,
    /// A link, a file, or another folder than the one listed is there now.
    Replaced,
    /// Another error (permission, I/O).
    Other(rustix::io::Errno),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing => write!(f, "vanished"),
            Refused::Replaced => write!(f, "replaced (by a link or another entry) during the walk"),
            Refused::Other(e) => write!(f, "{e}"),
        }
    }
}

/// Opens the folder `name` in `parent`, never following a link; with `expect`, only if it is
/// still that (device, inode).
pub fn open_dir(
    parent: impl AsFd,
    name: &OsStr,
    expect: Option<(u64, u64)>,
) -> Result<OwnedFd, Refused> {
    let fd = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::NOENT => Refused::Missing,
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => Refused::Replaced,
        e => Refused::Other(e),
    })?;
    if let Some(expect) = expect {
        let st = rustix::fs::fstat(&fd).map_err(Refused::Other)?;
        if (st.st_dev, st.st_ino) != expect {
            return Err(Refused::Replaced);
        }
    }
    Ok(fd)
}

/// Opens `rel` (`/`-separated, relative) below `root`, one name at a time, never following a
/// link.
pub fn open_dir_beneath(root: impl AsFd, rel: &str) -> Result<OwnedFd, Refused> {
    let mut fd = rustix::io::dup(root).map_err(Refused::Other)?;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        fd = open_dir(&fd, OsStr::new(part), None)?;
    }
    Ok(fd)
}

/// Opens the file `name` in `dir` for reading: never through a link, never blocking, without
/// touching its access time when allowed. The caller checks the type on the descriptor.
pub fn open_file(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    let dir = dir.as_fd();
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    // O_NOATIME is refused for files we do not own unless we are root.
    rustix::fs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty())
        .or_else(|_| rustix::fs::openat(dir, name, flags, Mode::empty()))
}

/// The entries of a folder (without `.` and `..`): names as bytes, and the type getdents gave
/// (`FileType::Unknown` on filesystems that do not say).
pub fn list(dir: impl AsFd) -> rustix::io::Result<Vec<(OsString, FileType)>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push((OsStr::from_bytes(n).to_os_string(), entry.file_type()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_swapped_folders_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::fs::create_dir(t.path().join("other")).unwrap();
        std::os::unix::fs::symlink("/", t.path().join("link")).unwrap();
        std::fs::write(t.path().join("file"), "x").unwrap();
        let root = rustix::fs::open(t.path(), DIR_FLAGS, Mode::empty()).unwrap();
        assert!(open_dir(&root, OsStr::new("real"), None).is_ok());
        assert_eq!(
            open_dir(&root, OsStr::new("link"), None).unwrap_err(),
            Refused::Replaced
        );
        assert_eq!(
            open_dir(&root, OsStr::new("file"), None).unwrap_err(),
            Refused::Replaced
        );
        assert_eq!(
            open_dir(&root, OsStr::new("none"), None).unwrap_err(),
            Refused::Missing
        );
        let st = rustix::fs::stat(t.path().join("other")).unwrap();
        assert_eq!(
            open_dir(&root, OsStr::new("real"), Some((st.st_dev, st.st_ino))).unwrap_err(),
            Refused::Replaced,
            "another folder than the one listed"
        );
        assert!(open_dir(&root, OsStr::new("other"), Some((st.st_dev, st.st_ino))).is_ok());
        assert_eq!(
            open_dir_beneath(&root, "link/etc").unwrap_err(),
            Refused::Replaced
        );
        let names: Vec<_> = list(&root).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 4);
    }
}
