//! The handle walk on Windows: a folder is opened by its name relative to its parent's handle
//! (`NtCreateFile` with a root directory), a junction, symbolic link or any reparse point is
//! opened as itself and refused, never followed; a file is opened the same way and its type
//! checked on the handle; one volume only (the volume serial number of the root); a file with
//! more than one hard link is refused like on Linux.

use super::{Kind, Refused, Tree};
pub use crate::win32::Info;
use crate::win32::{self, OpenError, Want};
use std::ffi::{OsStr, OsString};
use std::os::windows::io::OwnedHandle;
use std::path::Path;
use windows_sys::Win32::Storage::FileSystem::{
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT,
};

/// The Windows walk as a [`Tree`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Handles;

fn kind_of(attributes: u32) -> Kind {
    if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        Kind::Other
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        Kind::Dir
    } else {
        Kind::File
    }
}

fn refused(e: OpenError) -> Refused {
    match e {
        OpenError::Missing => Refused::Missing,
        OpenError::WrongType => Refused::Replaced,
        OpenError::Exists => Refused::Other(ERROR_FILE_EXISTS),
        OpenError::Other(code) => Refused::Other(code as i32),
    }
}

fn open(parent: &OwnedHandle, name: &OsStr, want: Want) -> Result<OwnedHandle, Refused> {
    let h = win32::open_relative(parent, name, want).map_err(refused)?;
    // Opened as itself: a reparse point (junction, link) in the place of a folder or file.
    let info = win32::info(&h).map_err(|e| Refused::Other(e.raw_os_error().unwrap_or(0)))?;
    let expected = match want {
        Want::Dir | Want::ChangeDir => Kind::Dir,
        Want::File | Want::Read => Kind::File,
        Want::Attributes | Want::Change => kind_of(info.attributes),
    };
    if kind_of(info.attributes) != expected {
        return Err(Refused::Replaced);
    }
    // A folder entered or a file read: the parent's listing must agree that no link is
    // there (the open above already refuses one on Windows; Wine's follows Unix links).
    if matches!(want, Want::Dir | Want::ChangeDir | Want::Read) {
        let listed = win32::listed_attributes(parent, name).map_err(refused)?;
        if listed.is_some_and(|a| kind_of(a) != expected) {
            return Err(Refused::Replaced);
        }
    }
    Ok(h)
}

/// Opens the file `name` in `dir` to read its content (and rights), never through a reparse
/// point: a backup's read.
pub fn open_file_for_reading(dir: &OwnedHandle, name: &OsStr) -> Result<OwnedHandle, Refused> {
    open(dir, name, Want::Read)
}

/// What is at `name` in `dir`, without following it.
pub fn stat_at(dir: &OwnedHandle, name: &OsStr) -> Result<Info, Refused> {
    let h = win32::open_relative(dir, name, Want::Attributes).map_err(refused)?;
    win32::info(&h).map_err(|e| Refused::Other(e.raw_os_error().unwrap_or(0)))
}

/// The metadata of an open file or folder.
pub fn info_of(h: &impl std::os::windows::io::AsRawHandle) -> std::io::Result<Info> {
    win32::info(h)
}

const ERROR_FILE_EXISTS: i32 = 80;

fn io_error(e: OpenError) -> std::io::Error {
    match e {
        OpenError::Missing => std::io::ErrorKind::NotFound.into(),
        OpenError::Exists => std::io::ErrorKind::AlreadyExists.into(),
        OpenError::WrongType => {
            std::io::Error::other("a folder where a file was expected, or the reverse")
        }
        OpenError::Other(code) => std::io::Error::from_raw_os_error(code as i32),
    }
}

/// Changing entries by handle, for a restore: created relative to their parent's handle
/// (`FILE_CREATE`: never over an existing entry, never through a link), opened to change
/// without following a reparse point, renamed, linked and deleted through their own handle.
pub mod change {
    use super::{io_error, Refused};
    use crate::acl::ntfs::Security;
    use crate::win32::{self, Want};
    use std::ffi::OsStr;
    use std::io;
    use std::os::windows::io::{AsRawHandle, OwnedHandle};

    /// Creates the file `name` in `dir` (`AlreadyExists` if anything is there); the handle
    /// writes its data, metadata, rights and name.
    pub fn create_file(dir: &OwnedHandle, name: &OsStr) -> io::Result<OwnedHandle> {
        win32::create_relative(dir, name, false).map_err(io_error)
    }

    /// Creates the folder `name` in `dir` (`AlreadyExists` if anything is there); the handle
    /// lists and enters it and changes its metadata.
    pub fn create_dir(dir: &OwnedHandle, name: &OsStr) -> io::Result<OwnedHandle> {
        win32::create_relative(dir, name, true).map_err(io_error)
    }

    /// Opens `name` in `dir` to change its metadata, name or existence: a link or junction is
    /// opened as itself (never followed).
    pub fn open(dir: &OwnedHandle, name: &OsStr) -> io::Result<OwnedHandle> {
        win32::open_relative(dir, name, Want::Change).map_err(io_error)
    }

    /// Opens the folder `name` in `dir` to list, enter and change it (only to list and enter
    /// it where changing is refused); a link or junction there is refused, never followed.
    pub fn open_dir(dir: &OwnedHandle, name: &OsStr) -> io::Result<OwnedHandle> {
        super::open(dir, name, Want::ChangeDir).map_err(|e| match e {
            Refused::Missing => io::ErrorKind::NotFound.into(),
            Refused::Replaced => {
                io::Error::other("not a folder (a link or junction is never followed)")
            }
            Refused::Other(code) => io::Error::from_raw_os_error(code),
        })
    }

    /// Renames the open entry `h` to `name` in `dir`, replacing a file there if `replace`.
    pub fn rename(
        h: &impl AsRawHandle,
        dir: &OwnedHandle,
        name: &OsStr,
        replace: bool,
    ) -> io::Result<()> {
        win32::set_name(h, dir, name, replace, false)
    }

    /// Makes `name` in `dir` a new hard link to the open file `h` (`AlreadyExists` if taken).
    pub fn link(h: &impl AsRawHandle, dir: &OwnedHandle, name: &OsStr) -> io::Result<()> {
        win32::set_name(h, dir, name, false, true)
    }

    /// Deletes the open entry `h` once closed (a folder must be empty).
    pub fn delete(h: &impl AsRawHandle) -> io::Result<()> {
        win32::delete(h)
    }

    /// Sets the open entry's last write time (ns since 1970) and its attributes, each where
    /// given.
    pub fn set_times(
        h: &impl AsRawHandle,
        mtime_ns: Option<i64>,
        attributes: Option<u32>,
    ) -> io::Result<()> {
        win32::set_basic(h, mtime_ns, attributes)
    }

    /// Gives the open entry the explicit ACEs of `sddl` (a descriptor as a backup read it)
    /// and, with `owner`, its owner; its DACL protected where the text says so (`D:P`),
    /// otherwise inheriting from its new folder: inherited ACEs are Windows' to compute
    /// there, never copied.
    pub fn set_security(h: &impl AsRawHandle, sddl: &str, owner: bool) -> io::Result<()> {
        let mut sec = Security::from_sddl(sddl).map_err(io::Error::other)?;
        sec.aces = sec.explicit();
        let owner = owner && sec.owner.is_some();
        win32::set_security(h, &sec.to_sddl(), owner, sec.protected)
    }
}

impl Tree for Handles {
    type Handle = OwnedHandle;
    type Meta = win32::Info;

    fn open_root(&self, path: &Path) -> std::io::Result<OwnedHandle> {
        win32::open_dir_path(path)
    }

    fn open_beneath(&self, root: &OwnedHandle, rel: &str) -> Result<OwnedHandle, Refused> {
        let mut h = root
            .try_clone()
            .map_err(|e| Refused::Other(e.raw_os_error().unwrap_or(0)))?;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            h = open(&h, OsStr::new(part), Want::Dir)?;
        }
        Ok(h)
    }

    fn open_dir(&self, parent: &OwnedHandle, name: &OsStr) -> Result<OwnedHandle, Refused> {
        open(parent, name, Want::Dir)
    }

    fn open_file(&self, dir: &OwnedHandle, name: &OsStr) -> Result<OwnedHandle, Refused> {
        open(dir, name, Want::File)
    }

    fn meta(&self, h: &OwnedHandle) -> Result<win32::Info, Refused> {
        win32::info(h).map_err(|e| Refused::Other(e.raw_os_error().unwrap_or(0)))
    }

    fn kind_at(&self, dir: &OwnedHandle, name: &OsStr) -> Result<Kind, Refused> {
        let h = win32::open_relative(dir, name, Want::Attributes).map_err(refused)?;
        Ok(kind_of(self.meta(&h)?.attributes))
    }

    fn list(&self, dir: &OwnedHandle) -> Result<Vec<(OsString, Kind)>, Refused> {
        Ok(win32::list_dir(dir)
            .map_err(|e| Refused::Other(e.raw_os_error().unwrap_or(0)))?
            .into_iter()
            .map(|(n, a)| (n, kind_of(a)))
            .collect())
    }

    fn kind(m: &win32::Info) -> Kind {
        kind_of(m.attributes)
    }

    fn links(m: &win32::Info) -> u64 {
        m.links.into()
    }

    fn volume(m: &win32::Info) -> u64 {
        m.volume.into()
    }
}
