//! The descriptor walk on Unix, which every root-side traversal of a share uses: the backup
//! scan (and so the pre-restore backup), the policy walker and the service's watches.
//! sharekeepd is root in folders members write to, so:
//!
//! ```text
//! a folder is opened by its name in its parent's descriptor: O_DIRECTORY|O_NOFOLLOW, never a
//!   path (a link swapped in fails with ELOOP/ENOTDIR), and, when the caller knows what its
//!   parent listed, it must still be that (device, inode)
//! a file is opened O_NOFOLLOW|O_NONBLOCK|O_NOCTTY (a FIFO swapped in never blocks), then its
//!   type is checked on the descriptor
//! names are bytes from getdents, never text; depth is the caller's explicit stack
//! ```

use super::{Kind, Refused, Tree};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn other(e: rustix::io::Errno) -> Refused {
    Refused::Other(e.raw_os_error())
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
        e => other(e),
    })?;
    if let Some(expect) = expect {
        let st = rustix::fs::fstat(&fd).map_err(other)?;
        if (st.st_dev, st.st_ino) != expect {
            return Err(Refused::Replaced);
        }
    }
    Ok(fd)
}

/// Opens `rel` (`/`-separated, relative) below `root`, one name at a time, never following a
/// link.
pub fn open_dir_beneath(root: impl AsFd, rel: &str) -> Result<OwnedFd, Refused> {
    let mut fd = rustix::io::dup(root).map_err(other)?;
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

fn kind_of(ft: FileType) -> Kind {
    match ft {
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        FileType::Unknown => Kind::Unknown,
        _ => Kind::Other,
    }
}

/// The Unix walk as a [`Tree`]: descriptors, `fstat` as the metadata.
#[derive(Debug, Default, Clone, Copy)]
pub struct Descriptors;

impl Tree for Descriptors {
    type Handle = OwnedFd;
    type Meta = rustix::fs::Stat;

    fn open_root(&self, path: &Path) -> std::io::Result<OwnedFd> {
        rustix::fs::open(path, DIR_FLAGS, Mode::empty())
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    fn open_beneath(&self, root: &OwnedFd, rel: &str) -> Result<OwnedFd, Refused> {
        open_dir_beneath(root, rel)
    }

    fn open_dir(&self, parent: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Refused> {
        open_dir(parent, name, None)
    }

    fn open_file(&self, dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Refused> {
        open_file(dir, name).map_err(|e| match e {
            rustix::io::Errno::NOENT => Refused::Missing,
            rustix::io::Errno::LOOP => Refused::Replaced,
            e => other(e),
        })
    }

    fn meta(&self, h: &OwnedFd) -> Result<rustix::fs::Stat, Refused> {
        rustix::fs::fstat(h).map_err(other)
    }

    fn kind_at(&self, dir: &OwnedFd, name: &OsStr) -> Result<Kind, Refused> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(kind_of(FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Err(Refused::Missing),
            Err(e) => Err(other(e)),
        }
    }

    fn list(&self, dir: &OwnedFd) -> Result<Vec<(OsString, Kind)>, Refused> {
        Ok(list(dir)
            .map_err(other)?
            .into_iter()
            .map(|(n, ft)| (n, kind_of(ft)))
            .collect())
    }

    fn kind(m: &rustix::fs::Stat) -> Kind {
        kind_of(FileType::from_raw_mode(m.st_mode))
    }

    fn links(m: &rustix::fs::Stat) -> u64 {
        m.st_nlink
    }

    fn volume(m: &rustix::fs::Stat) -> u64 {
        m.st_dev
    }
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
