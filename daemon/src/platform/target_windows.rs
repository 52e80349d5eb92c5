//! The restore target on Windows: folders entered by handle relative to their parent
//! (`NtCreateFile` with a root directory and `FILE_OPEN_REPARSE_POINT`: a junction or link
//! is refused, never followed), entries created with `FILE_CREATE` (never over an existing
//! one), renamed, linked and deleted through their own handle, security descriptor, times
//! and attributes set on it. The same functions as `target_unix.rs`, which `restore.rs`
//! uses alone.

use crate::error::Result;
use crate::tree::{Node, NodeKind};
use sharekeep_policies::walk::{self, change, Refused};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::path::Path;

/// An open folder of the target.
pub(crate) type Dir = OwnedHandle;

use super::{kind_of_attributes, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT};

const FILE_ATTRIBUTE_READONLY: u32 = 0x1;

/// The attributes a backup records and a restore sets: read-only, hidden, system, archive,
/// not content indexed.
pub(crate) const KEPT_ATTRIBUTES: u32 = 0x1 | 0x2 | 0x4 | 0x20 | 0x2000;

/// What is at a name of the target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) kind: NodeKind,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    /// (volume serial, file index): its identity.
    pub(crate) id: (u64, u64),
    attributes: u32,
}

impl Meta {
    fn of(i: &walk::Info) -> Meta {
        let kind = kind_of_attributes(i.attributes);
        Meta {
            kind,
            size: if kind == NodeKind::File { i.size } else { 0 },
            mtime_ns: i.mtime_ns,
            id: (i.volume.into(), i.index),
            attributes: i.attributes,
        }
    }

    /// Whether restoring `node`'s metadata here would change its attributes (rights are
    /// not compared: in a share they are the policy's, applied again by the service).
    pub(crate) fn metadata_differs(&self, node: &Node, _chown: bool) -> bool {
        node.attributes
            .is_some_and(|a| a & KEPT_ATTRIBUTES != self.attributes & KEPT_ATTRIBUTES)
    }
}

fn refused(e: Refused) -> io::Error {
    match e {
        Refused::Missing => io::ErrorKind::NotFound.into(),
        Refused::Replaced => io::Error::other("replaced by a link or another entry"),
        Refused::Other(code) => io::Error::from_raw_os_error(code),
    }
}

/// Whether entries of this kind can be restored here: files and folders (a symbolic link,
/// FIFO, device or socket of a Unix snapshot is not).
pub(crate) fn supported(kind: NodeKind) -> bool {
    matches!(kind, NodeKind::File | NodeKind::Dir)
}

/// Opens the target's root, not following a junction or link there.
pub(crate) fn open_root(path: &Path) -> Result<Dir> {
    super::open_dir(path)
}

/// Another handle on the same folder.
pub(crate) fn dup(dir: &Dir) -> io::Result<Dir> {
    dir.try_clone()
}

/// Enters the folder `name` of `dir`, refusing a junction or link (`NotFound` when nothing
/// is there).
pub(crate) fn enter(dir: &Dir, name: &OsStr) -> io::Result<Dir> {
    change::open_dir(dir, name)
}

/// What is at `name` in `dir`, not following it; `None` when nothing is.
pub(crate) fn stat(dir: &Dir, name: &OsStr) -> io::Result<Option<Meta>> {
    match walk::stat_at(dir, name) {
        Ok(i) => Ok(Some(Meta::of(&i))),
        Err(Refused::Missing) => Ok(None),
        Err(e) => Err(refused(e)),
    }
}

/// What an open entry is.
pub(crate) fn meta_of(h: &impl AsRawHandle) -> io::Result<Meta> {
    Ok(Meta::of(&walk::info_of(h)?))
}

/// Links are never restored on Windows: never the same.
pub(crate) fn same_link(_dir: &Dir, _name: &OsStr, _node: &Node) -> bool {
    false
}

/// Makes the folder `name` in `dir`.
pub(crate) fn make_dir(dir: &Dir, name: &OsStr) -> io::Result<()> {
    change::create_dir(dir, name).map(drop)
}

/// Creates the file `name` in `dir` to write it, failing if anything is there (a link there
/// is not followed).
pub(crate) fn create_file(dir: &Dir, name: &OsStr) -> io::Result<std::fs::File> {
    Ok(change::create_file(dir, name)?.into())
}

/// Opens the file `name` in `dir` to change its metadata, not following a link.
pub(crate) fn open_to_change(dir: &Dir, name: &OsStr) -> io::Result<std::fs::File> {
    Ok(change::open(dir, name)?.into())
}

/// Lets a read-only entry be replaced or deleted (Windows refuses both otherwise).
fn writable(h: &impl AsRawHandle) -> io::Result<()> {
    let i = walk::info_of(h)?;
    if i.attributes & FILE_ATTRIBUTE_READONLY != 0 {
        change::set_times(
            h,
            None,
            Some(i.attributes & KEPT_ATTRIBUTES & !FILE_ATTRIBUTE_READONLY),
        )?;
    }
    Ok(())
}

/// `ERROR_ACCESS_DENIED` and `ERROR_SHARING_VIOLATION`: what renaming over a file another
/// handle holds open gets.
const IN_USE: [i32; 2] = [5, 32];

/// Renames `from` to `to` in `dir`, replacing a file there (a folder there:
/// `IsADirectory`). Windows refuses to rename over a file while any handle holds it open:
/// an indexer, an antivirus or the service's own guard reading what just changed keeps it
/// for a moment, so the rename is tried again for about a second before the refusal is
/// reported (a document left open in its program).
pub(crate) fn rename(dir: &Dir, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match rename_once(dir, from, to) {
            Err(e) if e.raw_os_error().is_some_and(|c| IN_USE.contains(&c)) => {
                if pause > std::time::Duration::from_millis(640) {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{e} (for a second): if it is open in a program, close it and restore again"),
                    ));
                }
                std::thread::sleep(pause);
                pause *= 2;
            }
            other => return other,
        }
    }
}

fn rename_once(dir: &Dir, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let h = change::open(dir, from)?;
    match change::open(dir, to) {
        Ok(there) => {
            if walk::info_of(&there)?.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
                return Err(io::ErrorKind::IsADirectory.into());
            }
            writable(&there)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    change::rename(&h, dir, to, true)
}

/// Renames `from` to `to` in `dir`, never replacing anything there (`AlreadyExists`).
pub(crate) fn rename_noreplace(dir: &Dir, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let h = change::open(dir, from)?;
    change::rename(&h, dir, to, false)
}

/// Deletes the non-folder `name` of `dir`: `Ok(true)` once it is gone (or was never there),
/// `Ok(false)` when it is a folder (left).
pub(crate) fn remove_file(dir: &Dir, name: &OsStr) -> io::Result<bool> {
    let h = match change::open(dir, name) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let i = walk::info_of(&h)?;
    if i.attributes & FILE_ATTRIBUTE_DIRECTORY != 0
        && i.attributes & FILE_ATTRIBUTE_REPARSE_POINT == 0
    {
        return Ok(false);
    }
    writable(&h)?;
    // Gone when this handle closes.
    change::delete(&h)?;
    Ok(true)
}

/// Deletes the empty folder `name` of `dir`.
pub(crate) fn remove_empty_dir(dir: &Dir, name: &OsStr) -> io::Result<()> {
    let h = change::open(dir, name)?;
    writable(&h)?;
    change::delete(&h)
}

/// Makes `to` in `to_dir` a new hard link to the file `from` of `from_dir`.
pub(crate) fn link(from_dir: &Dir, from: &OsStr, to_dir: &Dir, to: &OsStr) -> io::Result<()> {
    let h = change::open(from_dir, from)?;
    change::link(&h, to_dir, to)
}

/// The names in a folder, read through its handle.
pub(crate) fn names(dir: &Dir) -> io::Result<Vec<OsString>> {
    super::list_names(dir)
}

/// Sets an open entry's security descriptor (its explicit ACEs, and its owner where this
/// process may give ownership away; without the owner where it may not), then its last
/// write time and attributes.
pub(crate) fn apply_meta(h: &impl AsRawHandle, node: &Node, chown: bool) -> io::Result<()> {
    if let Some(sddl) = &node.security {
        let set = change::set_security(h, sddl, chown);
        if set.is_err() && chown {
            change::set_security(h, sddl, false)?;
        } else {
            set?;
        }
    }
    change::set_times(
        h,
        Some(node.mtime_ns),
        node.attributes.map(|a| a & KEPT_ATTRIBUTES),
    )
}

/// Special entries are not restored on Windows ([`supported`] says so at planning).
pub(crate) fn apply_meta_special(
    _dir: &Dir,
    _name: &OsStr,
    node: &Node,
    _chown: bool,
    _expect: Option<(u64, u64)>,
) -> io::Result<()> {
    Err(unsupported(node))
}

/// Special entries are not restored on Windows ([`supported`] says so at planning).
pub(crate) fn make_special(_dir: &Dir, _name: &OsStr, node: &Node, _chown: bool) -> io::Result<()> {
    Err(unsupported(node))
}

fn unsupported(node: &Node) -> io::Error {
    io::Error::other(format!(
        "a {} cannot be restored on Windows",
        node.kind.word()
    ))
}

/// Whether a restore tries to set each entry's recorded owner: always (where Windows
/// refuses, without SeRestorePrivilege, the entry keeps the restoring account as owner).
pub(crate) fn can_chown() -> bool {
    true
}

/// Whether a restored file's metadata is the recorded one (a drill's check): its attributes
/// and its write time.
pub(crate) fn check_restored(
    meta: &std::fs::Metadata,
    node: &Node,
) -> std::result::Result<(), String> {
    use std::os::windows::fs::MetadataExt;
    let got = meta.file_attributes() & KEPT_ATTRIBUTES;
    if let Some(want) = node.attributes.map(|a| a & KEPT_ATTRIBUTES) {
        if got != want {
            return Err(format!("attributes {got:#x} restored, {want:#x} recorded"));
        }
    }
    // FILETIME: 100 ns since 1601.
    let t100 = meta.last_write_time() as i64;
    if (t100 - 116_444_736_000_000_000) * 100 != node.mtime_ns {
        return Err("modification time differs from the recorded one".into());
    }
    Ok(())
}
