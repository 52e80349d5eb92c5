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
        OpenError::Other(code) => Refused::Other(code as i32),
    }
}

fn open(parent: &OwnedHandle, name: &OsStr, want: Want) -> Result<OwnedHandle, Refused> {
    let h = win32::open_relative(parent, name, want).map_err(refused)?;
    // Opened as itself: a reparse point (junction, link) in the place of a folder or file.
    let info = win32::info(&h).map_err(|e| Refused::Other(e.raw_os_error().unwrap_or(0)))?;
    let expected = match want {
        Want::Dir => Kind::Dir,
        Want::File | Want::Read => Kind::File,
        Want::Attributes => kind_of(info.attributes),
    };
    if kind_of(info.attributes) != expected {
        return Err(Refused::Replaced);
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
