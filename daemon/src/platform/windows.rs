//! Windows: whether a process is alive (a lock's holder), the computer's name. The only
//! unsafe code of the engine on Windows (allowed here alone): one handle opened and closed.
#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::{CloseHandle, STILL_ACTIVE};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// Nothing to raise: Windows has no per-process limit on open handles worth raising.
pub fn raise_open_file_limit() {}

/// How many files this process may hold open: Windows' limit is the handle table's (about
/// 16 million), never the one a restore meets first.
pub(crate) fn open_file_limit() -> u64 {
    1 << 24
}

/// Whether the process `pid` runs (on this machine).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // SAFETY: a plain call; the handle, if any, is closed below.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        // Access denied means it exists; any other failure, that it does not.
        return std::io::Error::last_os_error().raw_os_error() == Some(5);
    }
    let mut code = 0u32;
    // SAFETY: `h` is the live handle just opened; `code` a local.
    let ok = unsafe { GetExitCodeProcess(h, &mut code) } != 0;
    // SAFETY: closed once.
    unsafe { CloseHandle(h) };
    !ok || code == STILL_ACTIVE as u32
}

/// The computer's name.
pub(crate) fn hostname() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".into())
}

use crate::error::{Error, IoContext, Result};
use crate::tree::{Bytes, Node, NodeKind, Xattr};
use sharekeep_policies::walk::{self, Handles, Refused, Tree};
use std::ffi::{OsStr, OsString};
use std::os::windows::io::OwnedHandle;
use std::path::Path;

/// An open folder, as a backup walks it.
pub(crate) type DirHandle = OwnedHandle;
/// What a handle says of an entry.
pub(crate) type Stat = walk::Info;

pub(crate) const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
pub(crate) const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

/// The kind of an entry from its attributes: a reparse point (junction, link) is a link.
pub(crate) fn kind_of_attributes(attributes: u32) -> NodeKind {
    if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        NodeKind::Symlink
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        NodeKind::Dir
    } else {
        NodeKind::File
    }
}

fn io(e: Refused) -> std::io::Error {
    match e {
        Refused::Missing => std::io::ErrorKind::NotFound.into(),
        Refused::Replaced => std::io::Error::other("replaced by a link or another entry"),
        Refused::Other(code) => std::io::Error::from_raw_os_error(code),
    }
}

/// Owner and group names: Windows backups record the owner in the security descriptor.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    _none: (),
}

/// Opens the folder to back up, not following a junction or link there.
pub(crate) fn open_backup_root(path: &Path) -> Result<OwnedHandle> {
    Handles.open_root(path).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e}; give the folder to back up",
            path.display()
        ))
    })
}

/// Opens the folder `name` in `dir`, refusing reparse points.
pub(crate) fn enter_dir(dir: &OwnedHandle, name: &OsStr) -> std::io::Result<OwnedHandle> {
    Handles.open_dir(dir, name).map_err(io)
}

/// The (volume, file index) of an open entry.
pub(crate) fn identity(h: &OwnedHandle) -> std::io::Result<(u64, u64)> {
    let i = walk::info_of(h)?;
    Ok((i.volume.into(), i.index))
}

/// What is at `name` in `dir`, not following it.
pub(crate) fn stat_entry(dir: &OwnedHandle, name: &OsStr) -> std::io::Result<Stat> {
    walk::stat_at(dir, name).map_err(io)
}

/// The (volume, file index) of an entry.
pub(crate) fn stat_identity(st: &Stat) -> (u64, u64) {
    (st.volume.into(), st.index)
}

/// The names in a folder, read through its handle.
pub(crate) fn list_names(dir: &OwnedHandle) -> std::io::Result<Vec<OsString>> {
    Ok(Handles
        .list(dir)
        .map_err(io)?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// Junctions and symbolic links are left out of a Windows backup (never followed).
pub(crate) fn read_link_at(_dir: &OwnedHandle, _name: &OsStr) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::other(
        "a junction or symbolic link: left out, never followed",
    ))
}

/// Opens the file `name` in `dir` to read it, never through a reparse point.
pub(crate) fn open_file_at(dir: &OwnedHandle, name: &OsStr) -> std::io::Result<std::fs::File> {
    Ok(std::fs::File::from(
        walk::open_file_for_reading(dir, name).map_err(io)?,
    ))
}

/// The (volume, file index) of an open file, `None` if it is a folder or a reparse point.
pub(crate) fn file_identity(f: &std::fs::File) -> std::io::Result<Option<(u64, u64)>> {
    let i = walk::info_of(f)?;
    let file = i.attributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT) == 0;
    Ok(file.then(|| (i.volume.into(), i.index)))
}

/// No read-ahead hint on Windows (its cache manager reads sequential files ahead itself).
pub(crate) fn prefetch_entry(_dir: &OwnedHandle, _name: &OsStr, _content_max: Option<u64>) {}

/// The owner, group and DACL of an open entry, as SDDL.
pub(crate) fn read_security(h: &impl std::os::windows::io::AsRawHandle) -> Option<String> {
    sharekeep_policies::acl::windows::sddl(h).ok()
}

/// Windows has no extended attributes sharekeep records (the security descriptor is kept
/// on its own).
pub(crate) fn read_xattrs_fd(
    _h: &impl std::os::windows::io::AsRawHandle,
) -> std::io::Result<Vec<Xattr>> {
    Ok(Vec::new())
}

/// The account this process runs as.
pub(crate) fn current_user_name(_names: &NameCache) -> String {
    sharekeep_policies::accounts::current_user().unwrap_or_else(|| "unknown".into())
}

/// A node for `name` from its metadata (no content, subtree or security yet).
pub(crate) fn node_from_stat(name: &OsStr, st: &Stat, _names: &NameCache) -> Node {
    let kind = kind_of_attributes(st.attributes);
    Node {
        name: Bytes::from(name),
        kind,
        mode: 0,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime_ns: st.mtime_ns,
        ctime_ns: st.ctime_ns,
        inode: st.index,
        device: st.volume.into(),
        links: st.links.into(),
        size: if kind == NodeKind::File { st.size } else { 0 },
        content: Vec::new(),
        subtree: None,
        target: None,
        rdev: 0,
        xattrs: Vec::new(),
        security: None,
        attributes: Some(st.attributes & super::target::KEPT_ATTRIBUTES),
    }
}

/// Opens `path` as a folder, not following a reparse point there.
pub(crate) fn open_dir(path: &Path) -> Result<OwnedHandle> {
    Handles.open_root(path).at(path)
}
