//! Unix metadata and descriptor-based filesystem operations.
//!
//! Backup side: turn `lstat` results and xattrs into [`Node`]s (names of users and groups are
//! cached; they come from NSS). Restore side: every operation is relative to an open directory
//! descriptor and never follows a symlink, so entries from a snapshot cannot be redirected out
//! of the target by a symlink planted there.

use crate::error::{IoContext, Result};
use crate::tree::{Bytes, Node, NodeKind, Xattr};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// uid → user name and gid → group name, each looked up once (the policies crate's cache).
pub(crate) use sharekeep_policies::NameCache;

fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

/// A node for `name` from its `fstatat(AT_SYMLINK_NOFOLLOW)` result (no content, subtree,
/// target or xattrs yet).
pub(crate) fn node_from_stat(name: &OsStr, st: &rustix::fs::Stat, names: &NameCache) -> Node {
    let kind = kind_of_stat(st);
    Node {
        name: Bytes::from(name),
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        user: names.user(st.st_uid),
        group: names.group(st.st_gid),
        mtime_ns: mtime_of_stat(st),
        ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        inode: st.st_ino,
        device: st.st_dev,
        links: st.st_nlink,
        size: if kind == NodeKind::File {
            st.st_size as u64
        } else {
            0
        },
        content: Vec::new(),
        subtree: None,
        target: None,
        rdev: if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
            st.st_rdev
        } else {
            0
        },
        xattrs: Vec::new(),
        security: None,
        attributes: None,
    }
}

/// The extended attributes of an open file or directory, sorted by name. Filesystems without
/// xattr support give none.
pub(crate) fn read_xattrs_fd(fd: impl AsFd) -> std::io::Result<Vec<Xattr>> {
    let fd = fd.as_fd();
    let mut list = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::flistxattr(fd, &mut list) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => {
                let need = rustix::fs::flistxattr(fd, &mut [])?;
                list.resize(need.max(list.len() * 2), 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in list[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name_os = OsStr::from_bytes(name);
        let mut value = vec![0u8; 256];
        let n = loop {
            match rustix::fs::fgetxattr(fd, name_os, &mut value) {
                Ok(n) => break Some(n),
                Err(rustix::io::Errno::RANGE) => {
                    let need = rustix::fs::fgetxattr(fd, name_os, &mut [])?;
                    value.resize(need.max(value.len() * 2), 0);
                }
                // Removed between list and get.
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(n) = n {
            value.truncate(n);
            out.push(Xattr {
                name: Bytes(name.to_vec()),
                value,
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Opens `path` as a directory to restore into, without following a final symlink.
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(path)
}

/// Opens the directory `name` inside `dir`, refusing symlinks.
pub(crate) fn open_dir_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// What is at `name` in `dir` (not following symlinks), if anything.
pub(crate) fn stat_at(
    dir: impl AsFd,
    name: &OsStr,
) -> rustix::io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The kind of a `stat` result.
pub(crate) fn kind_of_stat(st: &rustix::fs::Stat) -> NodeKind {
    use rustix::fs::FileType;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => NodeKind::Dir,
        FileType::Symlink => NodeKind::Symlink,
        FileType::Fifo => NodeKind::Fifo,
        FileType::Socket => NodeKind::Socket,
        FileType::CharacterDevice => NodeKind::CharDevice,
        FileType::BlockDevice => NodeKind::BlockDevice,
        _ => NodeKind::File,
    }
}

/// Modification time of a `stat` result in ns.
pub(crate) fn mtime_of_stat(st: &rustix::fs::Stat) -> i64 {
    ns(st.st_mtime as i64, st.st_mtime_nsec as i64)
}

fn timestamps(node: &Node) -> Timestamps {
    let t = Timespec {
        tv_sec: node.mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: node.mtime_ns.rem_euclid(1_000_000_000),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn uid(node: &Node) -> nix::unistd::Uid {
    nix::unistd::Uid::from_raw(node.uid)
}

fn gid(node: &Node) -> nix::unistd::Gid {
    nix::unistd::Gid::from_raw(node.gid)
}

/// Whether this process may give files away (chown to another user).
pub(crate) fn can_chown() -> bool {
    rustix::process::geteuid().is_root()
}

/// Applies owner, xattrs, mode and mtime to an open file or directory. Owner first: a chown
/// clears setuid bits, so the mode comes after it.
pub(crate) fn apply_meta_fd(fd: impl AsFd, node: &Node, chown: bool) -> std::io::Result<()> {
    let fd = fd.as_fd();
    if chown {
        // A file this restore made is often its owner's already (root's files restored by
        // root): a change of owner to the same owner still costs the filesystem an inode
        // update, one per file of a restore.
        let st = rustix::fs::fstat(fd)?;
        let (u, g) = (uid(node), gid(node));
        if st.st_uid != u.as_raw() || st.st_gid != g.as_raw() {
            nix::unistd::fchown(fd.as_raw_fd(), Some(u), Some(g))?;
        }
    }
    for x in &node.xattrs {
        match rustix::fs::fsetxattr(
            fd,
            x.name.as_os_str(),
            &x.value,
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            // security.* and trusted.* need privileges; not fatal for an unprivileged restore.
            Err(rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP) if !chown => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(node.mode))?;
    rustix::fs::futimens(fd, &timestamps(node))?;
    Ok(())
}

/// Applies owner and mtime to a symlink `name` in `dir` (symlinks have no mode of their own).
pub(crate) fn apply_meta_symlink(
    dir: impl AsFd,
    name: &OsStr,
    node: &Node,
    chown: bool,
) -> std::io::Result<()> {
    let dir = dir.as_fd();
    if chown {
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(uid(node)),
            Some(gid(node)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    rustix::fs::utimensat(dir, name, &timestamps(node), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Applies metadata to a special file (fifo, device) `name` in `dir`: opened with `O_PATH`
/// so that opening a fifo never blocks, then changed through `/proc/self/fd`.
pub(crate) fn apply_meta_special(
    dir: impl AsFd,
    name: &OsStr,
    node: &Node,
    chown: bool,
    expect: Option<(u64, u64)>,
) -> std::io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Only the entry that was planned (device, inode), never one swapped in since.
    if let Some(expect) = expect {
        let st = rustix::fs::fstat(&fd)?;
        if (st.st_dev, st.st_ino) != expect {
            return Err(std::io::Error::other(
                "replaced since the restore was planned; left as is",
            ));
        }
    }
    let proc_path = format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&fd));
    if chown {
        nix::unistd::chown(proc_path.as_str(), Some(uid(node)), Some(gid(node)))?;
    }
    rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(node.mode))?;
    rustix::fs::utimensat(
        rustix::fs::CWD,
        proc_path.as_str(),
        &timestamps(node),
        AtFlags::empty(),
    )?;
    Ok(())
}

/// Raises this process's soft limit of open files to its hard limit. The descriptor-based
/// walks keep one descriptor per directory level of the current path (a 10,000-level tree
/// needs 10,000), and the default soft limit (often 1024) is far below the hard one.
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// How many files this process may hold open (its soft limit).
pub(crate) fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// An open directory, as a backup walks it.
pub(crate) type DirHandle = OwnedFd;
/// What `fstatat` says of an entry.
pub(crate) type Stat = rustix::fs::Stat;

/// Opens the folder to back up, not following a link there; a file or a link is refused with
/// a message saying what to give.
pub(crate) fn open_backup_root(path: &Path) -> Result<OwnedFd> {
    open_dir(path).map_err(|e| match e {
        crate::error::Error::Io { source, .. }
            if source.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
                || source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
        {
            crate::error::Error::Invalid(format!(
                "{}: not a directory; give the folder to back up",
                path.display()
            ))
        }
        other => other,
    })
}

/// Opens the folder `name` in `dir`, refusing links.
pub(crate) fn enter_dir(dir: &OwnedFd, name: &OsStr) -> std::io::Result<OwnedFd> {
    Ok(open_dir_at(dir, name)?)
}

/// The (device, inode) of an open entry.
pub(crate) fn identity(h: &OwnedFd) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(h)?;
    Ok((st.st_dev, st.st_ino))
}

/// What is at `name` in `dir`, not following a link.
pub(crate) fn stat_entry(dir: &OwnedFd, name: &OsStr) -> std::io::Result<Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// The (device, inode) of a `stat` result.
pub(crate) fn stat_identity(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// The names in a directory (without `.` and `..`), read from its descriptor.
pub(crate) fn list_names(dir: &OwnedFd) -> std::io::Result<Vec<std::ffi::OsString>> {
    Ok(sharekeep_policies::walk::list(dir)?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// A symlink's target.
pub(crate) fn read_link_at(dir: &OwnedFd, name: &OsStr) -> std::io::Result<Vec<u8>> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())
}

/// Opens the file `name` in `dir` to read it: never through a link, never blocking (a FIFO
/// swapped in opens at once and is then refused by the type check).
pub(crate) fn open_file_at(dir: &OwnedFd, name: &OsStr) -> std::io::Result<std::fs::File> {
    Ok(std::fs::File::from(sharekeep_policies::walk::open_file(
        dir, name,
    )?))
}

/// The (device, inode) of an open file, `None` if it is not a regular file.
pub(crate) fn file_identity(f: &std::fs::File) -> std::io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata()?;
    Ok(m.is_file().then(|| (m.dev(), m.ino())))
}

/// Reads an entry's metadata ahead and, for a regular file of at most `content_max` bytes,
/// asks the kernel to start reading its content (hints: failures do not matter).
pub(crate) fn prefetch_entry(dir: &OwnedFd, name: &OsStr, content_max: Option<u64>) {
    let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return;
    };
    let regular =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
    if regular && content_max.is_some_and(|max| st.st_size as u64 <= max) {
        if let Ok(f) = sharekeep_policies::walk::open_file(dir, name) {
            let _ = rustix::fs::fadvise(&f, 0, 0, rustix::fs::Advice::WillNeed);
        }
    }
}

/// The security descriptor of an open entry: none on Unix (its ACLs are xattrs).
pub(crate) fn read_security(_h: &impl AsFd) -> Option<String> {
    None
}

/// The name of the user this process runs as.
pub(crate) fn current_user_name(names: &NameCache) -> String {
    let uid = rustix::process::geteuid().as_raw();
    names.user(uid).unwrap_or_else(|| uid.to_string())
}
