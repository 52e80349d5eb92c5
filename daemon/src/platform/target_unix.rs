//! The restore target on Unix: folders entered by descriptor from their parent (`openat`
//! with `O_NOFOLLOW | O_DIRECTORY`), entries created exclusively (`O_CREAT | O_EXCL |
//! O_NOFOLLOW`, `mkdirat`), renamed, linked and removed relative to their folder's
//! descriptor, metadata set on the entry's own descriptor. A restore (`restore.rs`) sees only
//! these functions; Windows has the same ones (`target_windows.rs`).

use crate::error::Result;
use crate::tree::{Node, NodeKind};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An open folder of the target.
pub(crate) type Dir = OwnedFd;

/// What is at a name of the target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) kind: NodeKind,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    /// (device, inode): its identity.
    pub(crate) id: (u64, u64),
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Meta {
    fn of(st: &rustix::fs::Stat) -> Meta {
        Meta {
            kind: super::kind_of_stat(st),
            size: st.st_size as u64,
            mtime_ns: super::mtime_of_stat(st),
            id: (st.st_dev, st.st_ino),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }

    /// Whether restoring `node`'s metadata here would change it (mode, and owner and group
    /// when `chown`); symlinks have no mode of their own.
    pub(crate) fn metadata_differs(&self, node: &Node, chown: bool) -> bool {
        node.kind != NodeKind::Symlink
            && (self.mode != node.mode || (chown && (self.uid != node.uid || self.gid != node.gid)))
    }
}

/// Whether entries of this kind can be restored here (all but sockets).
pub(crate) fn supported(kind: NodeKind) -> bool {
    kind != NodeKind::Socket
}

/// Opens the target's root, not following a symlink there.
pub(crate) fn open_root(path: &Path) -> Result<Dir> {
    super::open_dir(path)
}

/// Another descriptor on the same folder.
pub(crate) fn dup(dir: &Dir) -> io::Result<Dir> {
    Ok(rustix::io::dup(dir)?)
}

/// Enters the folder `name` of `dir`, refusing a symlink (`NotFound` when nothing is there).
pub(crate) fn enter(dir: &Dir, name: &OsStr) -> io::Result<Dir> {
    Ok(super::open_dir_at(dir, name)?)
}

/// What is at `name` in `dir`, not following it; `None` when nothing is.
pub(crate) fn stat(dir: &Dir, name: &OsStr) -> io::Result<Option<Meta>> {
    Ok(super::stat_at(dir, name)?.as_ref().map(Meta::of))
}

/// What an open entry is.
pub(crate) fn meta_of(h: &impl AsFd) -> io::Result<Meta> {
    Ok(Meta::of(&rustix::fs::fstat(h)?))
}

/// Whether `name` in `dir` is a symlink to `node`'s target.
pub(crate) fn same_link(dir: &Dir, name: &OsStr, node: &Node) -> bool {
    match rustix::fs::readlinkat(dir, name, Vec::new()) {
        Ok(t) => Some(t.as_bytes()) == node.target.as_ref().map(|t| t.0.as_slice()),
        Err(_) => false,
    }
}

/// Makes the folder `name` in `dir` (private until its metadata is set, last).
pub(crate) fn make_dir(dir: &Dir, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?)
}

/// Creates the file `name` in `dir` to write it, failing if anything is there (a symlink
/// there is not followed).
pub(crate) fn create_file(dir: &Dir, name: &OsStr) -> io::Result<std::fs::File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(fd.into())
}

/// Opens the file `name` in `dir` to change its metadata, not following a symlink.
pub(crate) fn open_to_change(dir: &Dir, name: &OsStr) -> io::Result<std::fs::File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd.into())
}

/// Renames `from` to `to` in `dir`, replacing a file there (a folder there: `IsADirectory`,
/// `DirectoryNotEmpty` or `AlreadyExists`).
pub(crate) fn rename(dir: &Dir, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat(dir, from, dir, to)?)
}

/// Renames `from` to `to` in `dir`, never replacing anything there (`AlreadyExists`).
pub(crate) fn rename_noreplace(dir: &Dir, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        from,
        dir,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )?)
}

/// Removes the non-folder `name` of `dir`: `Ok(true)` once it is gone (or was never there),
/// `Ok(false)` when it is a folder (left).
pub(crate) fn remove_file(dir: &Dir, name: &OsStr) -> io::Result<bool> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(true),
        Err(rustix::io::Errno::ISDIR) => Ok(false),
        // POSIX lets unlink say EPERM for a folder, and Linux for a file it may not remove.
        Err(rustix::io::Errno::PERM) => match stat(dir, name)? {
            Some(m) if m.kind == NodeKind::Dir => Ok(false),
            _ => Err(rustix::io::Errno::PERM.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Removes the empty folder `name` of `dir`.
pub(crate) fn remove_empty_dir(dir: &Dir, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Makes `to` in `to_dir` a new hard link to the file `from` of `from_dir` (not following
/// a symlink there).
pub(crate) fn link(from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        from_dir,
        from,
        to_dir,
        to,
        AtFlags::empty(),
    )?)
}

/// The names in a folder, without `.` and `..`.
pub(crate) fn names(dir: &Dir) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

/// Sets owner (with `chown`), extended attributes, mode and mtime on an open entry.
pub(crate) fn apply_meta(h: &impl AsFd, node: &Node, chown: bool) -> io::Result<()> {
    super::apply_meta_fd(h, node, chown)
}

/// Sets the metadata of the existing special entry (FIFO, device) `name` of `dir`, which
/// must still be `expect`.
pub(crate) fn apply_meta_special(
    dir: &Dir,
    name: &OsStr,
    node: &Node,
    chown: bool,
    expect: Option<(u64, u64)>,
) -> io::Result<()> {
    super::apply_meta_special(dir, name, node, chown, expect)
}

/// Makes `node` (a symlink, FIFO or device) at the new name `name` of `dir`, with its
/// metadata.
pub(crate) fn make_special(dir: &Dir, name: &OsStr, node: &Node, chown: bool) -> io::Result<()> {
    match node.kind {
        NodeKind::Symlink => {
            let target = node.target.clone().unwrap_or_default();
            rustix::fs::symlinkat(target.as_os_str(), dir, name)?;
            super::apply_meta_symlink(dir, name, node, chown)
        }
        NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
            let ft = match node.kind {
                NodeKind::Fifo => rustix::fs::FileType::Fifo,
                NodeKind::CharDevice => rustix::fs::FileType::CharacterDevice,
                _ => rustix::fs::FileType::BlockDevice,
            };
            rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(0o600), node.rdev)?;
            super::apply_meta_special(dir, name, node, chown, None)
        }
        _ => Err(io::Error::other(format!(
            "a {} is not made here",
            node.kind.word()
        ))),
    }
}

/// Whether this process may give entries away (owner and group restored): root.
pub(crate) fn can_chown() -> bool {
    super::can_chown()
}

/// Whether a restored file's metadata is the recorded one (a drill's check): its mode and
/// its write time.
pub(crate) fn check_restored(
    meta: &std::fs::Metadata,
    node: &Node,
) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.mode() & 0o7777 != node.mode & 0o7777 {
        return Err(format!(
            "mode {:o} restored, {:o} recorded",
            meta.mode() & 0o7777,
            node.mode & 0o7777
        ));
    }
    if meta.mtime() * 1_000_000_000 + meta.mtime_nsec() != node.mtime_ns {
        return Err("modification time differs from the recorded one".into());
    }
    Ok(())
}
