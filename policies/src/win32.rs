//! The Win32 and NT calls sharekeep makes on Windows, as safe functions: opening entries by
//! handle relative to their parent (`NtCreateFile` with a root directory and
//! `FILE_OPEN_REPARSE_POINT`: a junction or symbolic link is opened as itself, never
//! followed), listing a folder through its handle, reading and writing an entry's security
//! descriptor through its handle (as SDDL), creating entries relative to their parent
//! (`FILE_CREATE`), renaming, linking, deleting and setting times and attributes through an
//! entry's own handle (a restore), and account lookups.
//!
//! This is the crate's only unsafe code on Windows (the lint is allowed here alone): every
//! call's buffers are owned Rust values sized as the API asks, every handle is wrapped in an
//! `OwnedHandle` at once, every buffer the system allocates is freed with its own function
//! before returning.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::ptr::{null, null_mut};
use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    FileDirectoryInformation, FileLinkInformation, FileRenameInformation, NtCreateFile,
    NtQueryDirectoryFile, NtSetInformationFile, FILE_CREATE, FILE_DIRECTORY_FILE,
    FILE_DIRECTORY_INFORMATION, FILE_LINK_INFORMATION, FILE_NON_DIRECTORY_FILE, FILE_OPEN,
    FILE_OPEN_FOR_BACKUP_INTENT, FILE_OPEN_REPARSE_POINT, FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Win32::Foundation::{
    LocalFree, RtlNtStatusToDosError, ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_FILES, HANDLE,
    INVALID_HANDLE_VALUE, UNICODE_STRING,
};
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetApiBufferFree, NetLocalGroupGetMembers, NetUserGetLocalGroups, LG_INCLUDE_INDIRECT,
    LOCALGROUP_MEMBERS_INFO_3, LOCALGROUP_USERS_INFO_0, MAX_PREFERRED_LENGTH,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, ConvertStringSidToSidW, GetSecurityInfo,
    SetSecurityInfo, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, LookupAccountNameW, LookupAccountSidW,
    ACL, DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SID_NAME_USE,
    UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FileBasicInfo, FileDispositionInfo, FileIdBothDirectoryInfo,
    FileIdBothDirectoryRestartInfo, GetFileInformationByHandle, GetFileInformationByHandleEx,
    SetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, DELETE, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_REPARSE_POINT, FILE_BASIC_INFO, FILE_DISPOSITION_INFO,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_GENERIC_READ,
    FILE_GENERIC_WRITE, FILE_ID_BOTH_DIR_INFO, FILE_INFO_BY_HANDLE_CLASS, FILE_LIST_DIRECTORY,
    FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_TRAVERSE,
    FILE_WRITE_ATTRIBUTES, OPEN_EXISTING, READ_CONTROL, SYNCHRONIZE, WRITE_DAC, WRITE_OWNER,
};
use windows_sys::Win32::Storage::FileSystem::{
    NetShareAdd, NetShareDel, NetShareGetInfo, NetShareSetInfo, SHARE_INFO_502, STYPE_DISKTREE,
};
use windows_sys::Win32::System::WindowsProgramming::GetUserNameW;
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

/// NUL-terminated UTF-16.
pub(crate) fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: `p` is a NUL-terminated string the system returned.
    let len = (0..).take_while(|i| unsafe { *p.add(*i) } != 0).count();
    // SAFETY: `len` u16s are readable (counted above).
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|c| *c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// A path in its long form, NUL-terminated, so that paths longer than 260 characters open:
/// made absolute by Windows' own rules first (`/` read as `\`, `.` and `..` resolved, which
/// the long form no longer does), then `C:\…` as `\\?\C:\…` and `\\server\share\…` as
/// `\\?\UNC\server\share\…`; a path already in a device form (`\\?\`, `\\.\`) is kept.
fn long_path(path: &Path) -> Vec<u16> {
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut w = long_form(&full.as_os_str().encode_wide().collect::<Vec<_>>());
    w.push(0);
    w
}

/// The long form of an absolute path (without the NUL).
fn long_form(path: &[u16]) -> Vec<u16> {
    let utf16 = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let starts = |p: &str| path.starts_with(&utf16(p));
    let sep = |c: u16| c == b'\\' as u16 || c == b'/' as u16;
    if starts(r"\\?\") || starts(r"\\.\") || starts(r"\??\") {
        path.to_vec()
    } else if path.len() > 2 && sep(path[0]) && sep(path[1]) {
        [utf16(r"\\?\UNC\"), path[2..].to_vec()].concat()
    } else if path.len() > 2
        && path[1] == b':' as u16
        && sep(path[2])
        && char::from_u32(u32::from(path[0])).is_some_and(|c| c.is_ascii_alphabetic())
    {
        [utf16(r"\\?\"), path.to_vec()].concat()
    } else {
        path.to_vec()
    }
}

/// What a relative open may want.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A folder: listed, its rights read and written.
    Dir,
    /// A file (never a folder): its rights read and written.
    File,
    /// Either, for its attributes only.
    Attributes,
    /// A file (never a folder), to read its content and rights.
    Read,
    /// Either, to change: its times, attributes, rights and owner, its name (rename, link,
    /// delete).
    Change,
    /// A folder, listed and entered, and changed like [`Want::Change`] where that is allowed
    /// (a restore's folders; read-only where it is refused, as for a dry run).
    ChangeDir,
}

/// Why an open relative to a parent failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// No such entry.
    Missing,
    /// A folder where a file was expected or the reverse.
    WrongType,
    /// Something is there already (a create).
    Exists,
    /// Another failure: a Win32 error code.
    Other(u32),
}

const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
const STATUS_OBJECT_PATH_NOT_FOUND: i32 = 0xC000_003A_u32 as i32;
const STATUS_NOT_A_DIRECTORY: i32 = 0xC000_0103_u32 as i32;
const STATUS_FILE_IS_A_DIRECTORY: i32 = 0xC000_00BA_u32 as i32;
const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
const STATUS_OBJECT_NAME_COLLISION: i32 = 0xC000_0035_u32 as i32;
const ERROR_INVALID_NAME: u32 = 123;

/// How every open relative to a parent is made: a reparse point opened as itself (never
/// followed), synchronous, with backup intent (an administrator's backup privilege applies).
const RELATIVE: u32 =
    FILE_OPEN_REPARSE_POINT | FILE_SYNCHRONOUS_IO_NONALERT | FILE_OPEN_FOR_BACKUP_INTENT;

/// A counted UTF-16 string over `name` (which must outlive it).
fn unicode(name: &[u16]) -> UNICODE_STRING {
    let bytes = (name.len() * 2) as u16;
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: name.as_ptr() as *mut u16,
    }
}

fn nt_open(parent: HANDLE, name: &[u16], access: u32, options: u32) -> Result<OwnedHandle, i32> {
    nt_create_file(parent, name, access, options, FILE_OPEN)
}

/// `NtCreateFile` relative to `parent` with `disposition` (`FILE_OPEN`, `FILE_CREATE`).
fn nt_create_file(
    parent: HANDLE,
    name: &[u16],
    access: u32,
    options: u32,
    disposition: u32,
) -> Result<OwnedHandle, i32> {
    let us = unicode(name);
    let attrs = OBJECT_ATTRIBUTES {
        Length: std::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: parent,
        ObjectName: &us,
        Attributes: 0x40, // OBJ_CASE_INSENSITIVE, as Win32 opens
        SecurityDescriptor: null(),
        SecurityQualityOfService: null(),
    };
    let mut h: HANDLE = null_mut();
    // SAFETY: every pointer is to a live local; the name buffer outlives the call.
    let mut io: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    // SAFETY: as above; a successful call returns a handle we now own.
    let status = unsafe {
        NtCreateFile(
            &mut h,
            access,
            &attrs,
            &mut io,
            null(),
            0,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            disposition,
            options,
            null(),
            0,
        )
    };
    if status < 0 {
        return Err(status);
    }
    // SAFETY: a handle NtCreateFile just returned, owned by nothing else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Opens `name` in the folder `parent` without following a reparse point (a junction or link
/// is opened as itself: the caller sees its attributes and refuses it). Asks for the right to
/// change rights and owner, and falls back to reading them where that is refused.
pub(crate) fn open_relative(
    parent: &OwnedHandle,
    name: &OsStr,
    want: Want,
) -> Result<OwnedHandle, OpenError> {
    let name = one_name(name)?;
    let base = RELATIVE;
    let (access, options) = match want {
        Want::Dir => (
            READ_CONTROL | FILE_READ_ATTRIBUTES | SYNCHRONIZE | FILE_LIST_DIRECTORY | FILE_TRAVERSE,
            base | FILE_DIRECTORY_FILE,
        ),
        Want::File => (
            READ_CONTROL | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
            base | FILE_NON_DIRECTORY_FILE,
        ),
        Want::Attributes => (FILE_READ_ATTRIBUTES | SYNCHRONIZE, base),
        Want::Read => (
            FILE_GENERIC_READ | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
            base | FILE_NON_DIRECTORY_FILE,
        ),
        Want::Change => (CHANGE_ACCESS, base),
        Want::ChangeDir => (
            READ_CONTROL | FILE_READ_ATTRIBUTES | SYNCHRONIZE | FILE_LIST_DIRECTORY | FILE_TRAVERSE,
            base | FILE_DIRECTORY_FILE,
        ),
    };
    let parent = parent.as_raw_handle() as HANDLE;
    let writable = access
        | match want {
            Want::Attributes | Want::Read | Want::Change => 0,
            Want::Dir | Want::File => WRITE_DAC | WRITE_OWNER,
            Want::ChangeDir => CHANGE_ACCESS,
        };
    let r = match nt_open(parent, &name, writable, options) {
        Err(STATUS_ACCESS_DENIED) if writable != access => nt_open(parent, &name, access, options),
        r => r,
    };
    r.map_err(open_error)
}

const STATUS_NO_SUCH_FILE: i32 = 0xC000_000F_u32 as i32;
const STATUS_NO_MORE_FILES: i32 = 0x8000_0006_u32 as i32;

/// The attributes `parent`'s listing gives `name` (`None`: not listed), read through a new
/// handle on the folder (a directory query honours its name only on a handle's first query).
/// A listing never follows a link: a second opinion where an open could have (Wine follows
/// its Unix symbolic links even with `FILE_OPEN_REPARSE_POINT`; Windows does not).
pub(crate) fn listed_attributes(
    parent: &OwnedHandle,
    name: &OsStr,
) -> Result<Option<u32>, OpenError> {
    let name = one_name(name)?;
    // Wildcards would match other names; no Windows name holds one.
    if name
        .iter()
        .any(|c| matches!(*c, 0x2a | 0x3f | 0x3c | 0x3e | 0x22))
    {
        return Err(OpenError::Other(ERROR_INVALID_NAME));
    }
    let dir = nt_open(
        parent.as_raw_handle() as HANDLE,
        &[],
        FILE_LIST_DIRECTORY | SYNCHRONIZE,
        FILE_DIRECTORY_FILE | RELATIVE,
    )
    .map_err(open_error)?;
    let us = unicode(&name);
    // One entry: its fixed part and a name of up to 255 UTF-16 units, u64-aligned.
    let mut buf = vec![0u64; 96];
    // SAFETY: a plain-data out structure.
    let mut io: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    // SAFETY: a live handle, the buffer and its size in bytes, `us` pointing into `name`
    // which outlives the call; synchronous (no event, no APC).
    let status = unsafe {
        NtQueryDirectoryFile(
            dir.as_raw_handle() as HANDLE,
            null_mut(),
            None,
            null(),
            &mut io,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            FileDirectoryInformation,
            true,
            &us,
            true,
        )
    };
    match status {
        STATUS_NO_SUCH_FILE | STATUS_NO_MORE_FILES | STATUS_OBJECT_NAME_NOT_FOUND => Ok(None),
        s if s < 0 => Err(open_error(s)),
        // SAFETY: the call filled the buffer's start with one entry.
        _ => Ok(Some(unsafe {
            (*buf.as_ptr().cast::<FILE_DIRECTORY_INFORMATION>()).FileAttributes
        })),
    }
}

fn open_error(status: i32) -> OpenError {
    match status {
        STATUS_OBJECT_NAME_NOT_FOUND | STATUS_OBJECT_PATH_NOT_FOUND => OpenError::Missing,
        STATUS_NOT_A_DIRECTORY | STATUS_FILE_IS_A_DIRECTORY => OpenError::WrongType,
        STATUS_OBJECT_NAME_COLLISION => OpenError::Exists,
        // SAFETY: a plain conversion of a status code.
        s => OpenError::Other(unsafe { RtlNtStatusToDosError(s) }),
    }
}

/// What a restore asks of an entry it changes: its data (files), attributes and times, rights
/// and owner, and its name; a folder is also listed and entered.
const CHANGE_ACCESS: u32 = READ_CONTROL
    | WRITE_DAC
    | WRITE_OWNER
    | DELETE
    | FILE_READ_ATTRIBUTES
    | FILE_WRITE_ATTRIBUTES
    | SYNCHRONIZE;

/// One name: no separator, no stream (`name:stream`), not `.` nor `..`.
fn one_name(name: &OsStr) -> Result<Vec<u16>, OpenError> {
    let name: Vec<u16> = name.encode_wide().collect();
    let dots = name == [b'.' as u16] || name == [b'.' as u16, b'.' as u16];
    if name.is_empty() || dots || name.iter().any(|c| matches!(*c, 0x5c | 0x2f | 0x3a | 0)) {
        return Err(OpenError::Other(ERROR_INVALID_NAME));
    }
    Ok(name)
}

/// Creates the file (or, with `dir`, the folder) `name` in `parent`, failing if anything is
/// there (`Exists`, nothing changed; a link there is not followed). The handle may write the
/// file's data, times, attributes, rights and owner, and rename or delete it; a folder's
/// handle lists and enters it too.
pub(crate) fn create_relative(
    parent: &OwnedHandle,
    name: &OsStr,
    dir: bool,
) -> Result<OwnedHandle, OpenError> {
    let name = one_name(name)?;
    let base = RELATIVE;
    let (access, options) = if dir {
        (
            CHANGE_ACCESS | FILE_LIST_DIRECTORY | FILE_TRAVERSE,
            base | FILE_DIRECTORY_FILE,
        )
    } else {
        (
            CHANGE_ACCESS | FILE_GENERIC_WRITE | FILE_GENERIC_READ,
            base | FILE_NON_DIRECTORY_FILE,
        )
    };
    nt_create_file(
        parent.as_raw_handle() as HANDLE,
        &name,
        access,
        options,
        FILE_CREATE,
    )
    .map_err(open_error)
}

/// Gives the open entry `h` the name `name` in `parent` (rename, or with `link` a new hard
/// link to it), replacing what is there when `replace` (never a folder), failing otherwise.
pub(crate) fn set_name(
    h: &impl AsRawHandle,
    parent: &OwnedHandle,
    name: &OsStr,
    replace: bool,
    link: bool,
) -> io::Result<()> {
    let name =
        one_name(name).map_err(|_| io::Error::from_raw_os_error(ERROR_INVALID_NAME as i32))?;
    // FILE_RENAME_INFORMATION and FILE_LINK_INFORMATION have the same layout: flags, root
    // folder, the name's length in bytes, the name. u64 elements: 8-byte alignment.
    let head = std::mem::offset_of!(FILE_LINK_INFORMATION, FileName);
    let bytes = head + name.len() * 2;
    let mut buf = vec![0u64; bytes.div_ceil(8)];
    let info = buf.as_mut_ptr().cast::<FILE_LINK_INFORMATION>();
    // SAFETY: the buffer holds the fixed part and `name.len()` u16s after it, aligned.
    unsafe {
        (*info).Anonymous.ReplaceIfExists = replace;
        (*info).RootDirectory = parent.as_raw_handle() as HANDLE;
        (*info).FileNameLength = (name.len() * 2) as u32;
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            buf.as_mut_ptr().cast::<u8>().add(head).cast::<u16>(),
            name.len(),
        );
    }
    // SAFETY: a plain-data out structure.
    let mut io: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    let class = if link {
        FileLinkInformation
    } else {
        FileRenameInformation
    };
    // SAFETY: a live handle, the buffer and its size.
    let status = unsafe {
        NtSetInformationFile(
            h.as_raw_handle() as HANDLE,
            &mut io,
            buf.as_ptr().cast(),
            bytes as u32,
            class,
        )
    };
    nt_result(status)
}

fn nt_result(status: i32) -> io::Result<()> {
    if status < 0 {
        if status == STATUS_OBJECT_NAME_COLLISION {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        // SAFETY: a plain conversion of a status code.
        return Err(io::Error::from_raw_os_error(
            unsafe { RtlNtStatusToDosError(status) } as i32,
        ));
    }
    Ok(())
}

/// `SetFileInformationByHandle` with one plain-data structure of the class.
fn set_info<T>(h: &impl AsRawHandle, class: FILE_INFO_BY_HANDLE_CLASS, info: &T) -> io::Result<()> {
    // SAFETY: a live handle, the structure the class names and its size.
    let ok = unsafe {
        SetFileInformationByHandle(
            h.as_raw_handle() as HANDLE,
            class,
            (info as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    } != 0;
    if !ok {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Deletes the open entry `h` (a folder must be empty) when its last handle closes.
pub(crate) fn delete(h: &impl AsRawHandle) -> io::Result<()> {
    set_info(
        h,
        FileDispositionInfo,
        &FILE_DISPOSITION_INFO { DeleteFile: true },
    )
}

/// Sets an open entry's last write time (ns since the Unix epoch) and its attributes
/// (`FILE_ATTRIBUTE_*`: read-only, hidden, system, archive...), each where given.
pub(crate) fn set_basic(
    h: &impl AsRawHandle,
    mtime_ns: Option<i64>,
    attributes: Option<u32>,
) -> io::Result<()> {
    // SAFETY: a plain-data structure; zero means "leave as is".
    let mut basic: FILE_BASIC_INFO = unsafe { std::mem::zeroed() };
    if let Some(t) = mtime_ns {
        basic.LastWriteTime = t.div_euclid(100).saturating_add(EPOCH_DIFF);
        basic.LastAccessTime = basic.LastWriteTime;
    }
    if let Some(a) = attributes {
        // Zero would leave them as they are: "normal" says none.
        basic.FileAttributes = if a == 0 { FILE_ATTRIBUTE_NORMAL } else { a };
    }
    set_info(h, FileBasicInfo, &basic)
}

/// Opens a folder by path (the share root), not following a reparse point there.
pub(crate) fn open_dir_path(path: &Path) -> io::Result<OwnedHandle> {
    let name = long_path(path);
    let access = READ_CONTROL | WRITE_DAC | WRITE_OWNER | FILE_READ_ATTRIBUTES | SYNCHRONIZE;
    let open = |access: u32| {
        // SAFETY: `name` is NUL-terminated and outlives the call.
        let h = unsafe {
            CreateFileW(
                name.as_ptr(),
                access | FILE_LIST_DIRECTORY | FILE_TRAVERSE,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                null(),
                OPEN_EXISTING,
                FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
                null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: a handle CreateFileW just returned, owned by nothing else.
            Ok(unsafe { OwnedHandle::from_raw_handle(h) })
        }
    };
    let h = open(access)
        .or_else(|_| open(READ_CONTROL | FILE_READ_ATTRIBUTES | SYNCHRONIZE))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let i = info(&h)?;
    if i.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0
        || i.attributes & FILE_ATTRIBUTE_DIRECTORY == 0
    {
        return Err(io::Error::other(format!(
            "{}: not a folder (a junction or link is never followed)",
            path.display()
        )));
    }
    Ok(h)
}

/// An open entry's metadata.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// `FILE_ATTRIBUTE_*`.
    pub attributes: u32,
    /// The volume's serial number.
    pub volume: u32,
    /// The file's index on its volume (its identity, like an inode number).
    pub index: u64,
    /// Hard links.
    pub links: u32,
    /// Size in bytes.
    pub size: u64,
    /// Last write, ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Last change of data or metadata, ns since the Unix epoch (the last write where the
    /// file system does not say).
    pub ctime_ns: i64,
}

/// 1601 (FILETIME's epoch) to 1970, in 100 ns.
const EPOCH_DIFF: i64 = 116_444_736_000_000_000;

/// A FILETIME-like count of 100 ns since 1601 as ns since 1970.
fn unix_ns(t100: i64) -> i64 {
    t100.saturating_sub(EPOCH_DIFF).saturating_mul(100)
}

/// `GetFileInformationByHandle` (and the change time from `FileBasicInfo`).
pub(crate) fn info(h: &impl AsRawHandle) -> io::Result<Info> {
    // SAFETY: a plain-data out structure.
    let mut i: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a live handle and a live out structure.
    if unsafe { GetFileInformationByHandle(h.as_raw_handle() as HANDLE, &mut i) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let t = |f: windows_sys::Win32::Foundation::FILETIME| {
        unix_ns(((f.dwHighDateTime as i64) << 32) | f.dwLowDateTime as i64)
    };
    let mtime_ns = t(i.ftLastWriteTime);
    // SAFETY: a plain-data out structure.
    let mut basic: FILE_BASIC_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a live handle; the structure and its size.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            h.as_raw_handle() as HANDLE,
            FileBasicInfo,
            (&mut basic as *mut FILE_BASIC_INFO).cast(),
            std::mem::size_of::<FILE_BASIC_INFO>() as u32,
        )
    } != 0;
    Ok(Info {
        attributes: i.dwFileAttributes,
        volume: i.dwVolumeSerialNumber,
        index: ((i.nFileIndexHigh as u64) << 32) | i.nFileIndexLow as u64,
        links: i.nNumberOfLinks,
        size: ((i.nFileSizeHigh as u64) << 32) | i.nFileSizeLow as u64,
        mtime_ns,
        ctime_ns: if ok && basic.ChangeTime != 0 {
            unix_ns(basic.ChangeTime)
        } else {
            mtime_ns
        },
    })
}

/// A folder's entries through its handle: names and attributes (without `.` and `..`).
pub(crate) fn list_dir(h: &OwnedHandle) -> io::Result<Vec<(OsString, u32)>> {
    // u64 elements: the records need 8-byte alignment.
    let mut buf = vec![0u64; 8192];
    let mut out = Vec::new();
    let mut class = FileIdBothDirectoryRestartInfo;
    loop {
        // SAFETY: the buffer is live and its size in bytes is given.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                h.as_raw_handle() as HANDLE,
                class,
                buf.as_mut_ptr().cast(),
                (buf.len() * 8) as u32,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(ERROR_NO_MORE_FILES as i32) {
                return Ok(out);
            }
            return Err(e);
        }
        class = FileIdBothDirectoryInfo;
        let base = buf.as_ptr().cast::<u8>();
        let mut off = 0usize;
        loop {
            // SAFETY: `off` is a record boundary the system wrote inside the buffer (0, then
            // each NextEntryOffset); records are 8-byte aligned.
            let rec = unsafe { &*base.add(off).cast::<FILE_ID_BOTH_DIR_INFO>() };
            let n = rec.FileNameLength as usize / 2;
            // SAFETY: the name's `n` u16s follow the record's fixed part, inside the buffer.
            let name = unsafe { std::slice::from_raw_parts(rec.FileName.as_ptr(), n) };
            let dots = name == [b'.' as u16] || name == [b'.' as u16, b'.' as u16];
            if !dots {
                out.push((OsString::from_wide(name), rec.FileAttributes));
            }
            if rec.NextEntryOffset == 0 {
                break;
            }
            off += rec.NextEntryOffset as usize;
        }
    }
}

/// A security descriptor the system allocated (`LocalAlloc`), freed when dropped.
struct LocalSd(PSECURITY_DESCRIPTOR);

impl LocalSd {
    /// The binary descriptor of an SDDL text, as Windows parses it.
    fn parse(sddl: &str) -> io::Result<LocalSd> {
        let text = wide(OsStr::new(sddl));
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `text` is NUL-terminated; `sd` is allocated by the call, owned from here.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                null_mut(),
            )
        } != 0;
        if !ok {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("SDDL {sddl}: {e}")));
        }
        Ok(LocalSd(sd))
    }

    /// Its SDDL text (the parts `what` names).
    fn text(&self, what: u32) -> io::Result<String> {
        // SAFETY: a descriptor this value owns.
        unsafe { sd_text(self.0, what) }
    }
}

impl Drop for LocalSd {
    fn drop(&mut self) {
        // SAFETY: allocated by the system for this value alone, freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// The SDDL text of the parts `what` names of a descriptor.
///
/// # Safety
/// `sd` must be a valid security descriptor for the whole call.
unsafe fn sd_text(sd: PSECURITY_DESCRIPTOR, what: u32) -> io::Result<String> {
    let mut text: *mut u16 = null_mut();
    // SAFETY: `sd` is valid (the caller's promise); `text` is allocated by the call.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            what,
            &mut text,
            null_mut(),
        )
    } != 0;
    if !ok {
        return Err(io::Error::last_os_error());
    }
    let s = from_wide_ptr(text);
    // SAFETY: allocated by the conversion, freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(s)
}

/// The entry's owner, group and DACL as SDDL.
pub(crate) fn sddl(h: &impl AsRawHandle) -> io::Result<String> {
    let what = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    let mut sd: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: out pointers to locals; the descriptor the call allocates is owned below.
    let e = unsafe {
        GetSecurityInfo(
            h.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            what,
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
            &mut sd,
        )
    };
    if e != 0 {
        return Err(io::Error::from_raw_os_error(e as i32));
    }
    LocalSd(sd).text(what)
}

/// An SDDL text made into a binary security descriptor and printed back (owner and DACL).
pub(crate) fn sddl_round_trip(sddl: &str) -> io::Result<String> {
    LocalSd::parse(sddl)?.text(OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION)
}

/// Sets the entry's DACL (protected or inheriting) and, with `owner`, its owner, from SDDL.
pub(crate) fn set_security(
    h: &impl AsRawHandle,
    sddl: &str,
    owner: bool,
    protected: bool,
) -> io::Result<()> {
    let sd = LocalSd::parse(sddl)?;
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = null_mut();
    let mut sid: PSID = null_mut();
    // SAFETY: `sd` is a valid descriptor; the out pointers point into it afterwards.
    let parsed = unsafe {
        GetSecurityDescriptorDacl(sd.0, &mut present, &mut dacl, &mut defaulted) != 0
            && GetSecurityDescriptorOwner(sd.0, &mut sid, &mut defaulted) != 0
    };
    if !parsed {
        return Err(io::Error::last_os_error());
    }
    let mut what = DACL_SECURITY_INFORMATION
        | if protected {
            PROTECTED_DACL_SECURITY_INFORMATION
        } else {
            UNPROTECTED_DACL_SECURITY_INFORMATION
        };
    if owner && !sid.is_null() {
        what |= OWNER_SECURITY_INFORMATION;
    }
    // SAFETY: a live handle; `sid` and `dacl` point into `sd`, alive for the call.
    let e = unsafe {
        SetSecurityInfo(
            h.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            what,
            sid,
            null_mut(),
            dacl,
            null(),
        )
    };
    if e != 0 {
        return Err(io::Error::from_raw_os_error(e as i32));
    }
    Ok(())
}

/// What `LookupAccountName` says of a name: its SID (text), its type (`SID_NAME_USE`) and
/// the domain (or computer) it belongs to.
pub(crate) fn lookup_name(name: &str) -> Option<(String, SID_NAME_USE, String)> {
    let wname = wide(OsStr::new(name));
    let mut sid = vec![0u8; 68];
    let mut dom = vec![0u16; 256];
    loop {
        let mut sid_len = sid.len() as u32;
        let mut dom_len = dom.len() as u32;
        let mut kind: SID_NAME_USE = 0;
        // SAFETY: buffers and their lengths as the API asks.
        let ok = unsafe {
            LookupAccountNameW(
                null(),
                wname.as_ptr(),
                sid.as_mut_ptr().cast(),
                &mut sid_len,
                dom.as_mut_ptr(),
                &mut dom_len,
                &mut kind,
            )
        };
        if ok != 0 {
            return Some((sid_text(sid.as_mut_ptr().cast())?, kind, from_wide(&dom)));
        }
        if io::Error::last_os_error().raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER as i32)
            || sid_len as usize <= sid.len() && dom_len as usize <= dom.len()
        {
            return None;
        }
        sid.resize(sid_len as usize, 0);
        dom.resize(dom_len as usize + 1, 0);
    }
}

fn sid_text(sid: PSID) -> Option<String> {
    let mut text: *mut u16 = null_mut();
    // SAFETY: `sid` is a valid SID; `text` is allocated by the call and freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return None;
    }
    let s = from_wide_ptr(text);
    // SAFETY: allocated by the conversion, freed once.
    unsafe { LocalFree(text.cast()) };
    Some(s)
}

/// The account name (`DOMAIN\name`) of a SID given as text.
pub(crate) fn lookup_sid(sid: &str) -> Option<String> {
    let wsid = wide(OsStr::new(sid));
    let mut psid: PSID = null_mut();
    // SAFETY: NUL-terminated input; `psid` is allocated by the call and freed below.
    if unsafe { ConvertStringSidToSidW(wsid.as_ptr(), &mut psid) } == 0 {
        return None;
    }
    let mut name = vec![0u16; 256];
    let mut dom = vec![0u16; 256];
    let mut name_len = name.len() as u32;
    let mut dom_len = dom.len() as u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: buffers and their lengths as the API asks.
    let ok = unsafe {
        LookupAccountSidW(
            null(),
            psid,
            name.as_mut_ptr(),
            &mut name_len,
            dom.as_mut_ptr(),
            &mut dom_len,
            &mut kind,
        )
    };
    // SAFETY: allocated by the conversion, freed once.
    unsafe { LocalFree(psid) };
    if ok == 0 {
        return None;
    }
    let (name, dom) = (from_wide(&name), from_wide(&dom));
    Some(if dom.is_empty() {
        name
    } else {
        format!("{dom}\\{name}")
    })
}

/// The names in the `read` records of type `T` a NetApi call put in `buf` (its error `e`),
/// the buffer freed.
fn net_names<T>(e: u32, buf: *mut u8, read: u32, name: impl Fn(&T) -> *const u16) -> Vec<String> {
    let mut out = Vec::new();
    if e == 0 && !buf.is_null() {
        // SAFETY: `read` records of the level asked, as the call says.
        let recs = unsafe { std::slice::from_raw_parts(buf.cast::<T>(), read as usize) };
        out.extend(recs.iter().map(|r| from_wide_ptr(name(r))));
    }
    if !buf.is_null() {
        // SAFETY: allocated by the call, freed once.
        unsafe { NetApiBufferFree(buf.cast()) };
    }
    out
}

/// The local groups a user belongs to, directly or through a global group.
pub(crate) fn local_groups_of(user: &str) -> Vec<String> {
    let wuser = wide(OsStr::new(user));
    let mut buf: *mut u8 = null_mut();
    let (mut read, mut total) = (0u32, 0u32);
    // SAFETY: out pointers to locals; the buffer the call allocates is freed below.
    let e = unsafe {
        NetUserGetLocalGroups(
            null(),
            wuser.as_ptr(),
            0,
            LG_INCLUDE_INDIRECT,
            &mut buf,
            MAX_PREFERRED_LENGTH,
            &mut read,
            &mut total,
        )
    };
    net_names(e, buf, read, |r: &LOCALGROUP_USERS_INFO_0| r.lgrui0_name)
}

/// The members (`DOMAIN\name`) of a local group.
pub(crate) fn local_group_members(group: &str) -> Vec<String> {
    let wgroup = wide(OsStr::new(group));
    let mut buf: *mut u8 = null_mut();
    let (mut read, mut total, mut resume) = (0u32, 0u32, 0usize);
    // SAFETY: out pointers to locals; the buffer the call allocates is freed below.
    let e = unsafe {
        NetLocalGroupGetMembers(
            null(),
            wgroup.as_ptr(),
            3,
            &mut buf,
            MAX_PREFERRED_LENGTH,
            &mut read,
            &mut total,
            &mut resume,
        )
    };
    net_names(e, buf, read, |r: &LOCALGROUP_MEMBERS_INFO_3| {
        r.lgrmi3_domainandname
    })
}

/// A share's folder, remark and permissions (SDDL), `None` if there is no such share.
pub(crate) fn share_info(name: &str) -> io::Result<Option<(String, String, String)>> {
    const NERR_NET_NAME_NOT_FOUND: u32 = 2310;
    let wname = wide(OsStr::new(name));
    let mut buf: *mut u8 = null_mut();
    // SAFETY: out pointer to a local; the buffer the call allocates is freed below.
    let e = unsafe { NetShareGetInfo(null(), wname.as_ptr(), 502, &mut buf) };
    if e == NERR_NET_NAME_NOT_FOUND {
        return Ok(None);
    }
    if e != 0 {
        return Err(io::Error::other(format!(
            "share {name}: NetShareGetInfo error {e}"
        )));
    }
    // SAFETY: a level-502 record, as asked.
    let info = unsafe { &*buf.cast::<SHARE_INFO_502>() };
    let path = from_wide_ptr(info.shi502_path);
    let remark = from_wide_ptr(info.shi502_remark);
    let sddl = if info.shi502_security_descriptor.is_null() {
        String::new()
    } else {
        // SAFETY: the share's descriptor, alive until the buffer is freed below.
        unsafe { sd_text(info.shi502_security_descriptor, DACL_SECURITY_INFORMATION) }
            .unwrap_or_default()
    };
    // SAFETY: allocated by NetShareGetInfo, freed once.
    unsafe { NetApiBufferFree(buf.cast()) };
    Ok(Some((path, remark, sddl)))
}

/// Adds (`add`) or updates a disk share: folder, remark, permissions from SDDL.
pub(crate) fn set_share(
    name: &str,
    path: &Path,
    remark: &str,
    sddl: &str,
    add: bool,
) -> io::Result<()> {
    let mut wname = wide(OsStr::new(name));
    let mut wpath = wide(path.as_os_str());
    let mut wremark = wide(OsStr::new(remark));
    let sd = LocalSd::parse(sddl)?;
    let info = SHARE_INFO_502 {
        shi502_netname: wname.as_mut_ptr(),
        shi502_type: STYPE_DISKTREE,
        shi502_remark: wremark.as_mut_ptr(),
        shi502_permissions: 0,
        shi502_max_uses: u32::MAX,
        shi502_current_uses: 0,
        shi502_path: wpath.as_mut_ptr(),
        shi502_passwd: null_mut(),
        shi502_reserved: 0,
        shi502_security_descriptor: sd.0,
    };
    let mut bad = 0u32;
    // SAFETY: every pointer in `info` is to a live local; `bad` is a local.
    let e = unsafe {
        if add {
            NetShareAdd(
                null(),
                502,
                (&info as *const SHARE_INFO_502).cast(),
                &mut bad,
            )
        } else {
            NetShareSetInfo(
                null(),
                wname.as_ptr(),
                502,
                (&info as *const SHARE_INFO_502).cast(),
                &mut bad,
            )
        }
    };
    if e != 0 {
        let call = if add {
            "NetShareAdd"
        } else {
            "NetShareSetInfo"
        };
        return Err(io::Error::other(format!(
            "share {name}: {call} error {e} (parameter {bad})"
        )));
    }
    Ok(())
}

/// Removes a share (the folder stays); false if there was none.
pub(crate) fn remove_share(name: &str) -> io::Result<bool> {
    const NERR_NET_NAME_NOT_FOUND: u32 = 2310;
    let wname = wide(OsStr::new(name));
    // SAFETY: a NUL-terminated name.
    match unsafe { NetShareDel(null(), wname.as_ptr(), 0) } {
        0 => Ok(true),
        NERR_NET_NAME_NOT_FOUND => Ok(false),
        e => Err(io::Error::other(format!(
            "share {name}: NetShareDel error {e}"
        ))),
    }
}

/// The account this process runs as.
pub(crate) fn current_user() -> Option<String> {
    let mut buf = vec![0u16; 257];
    let mut len = buf.len() as u32;
    // SAFETY: a buffer and its length.
    (unsafe { GetUserNameW(buf.as_mut_ptr(), &mut len) } != 0).then(|| from_wide(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_forms_of_drive_unc_and_device_paths() {
        let long = |p: &str| {
            String::from_utf16(&long_form(&p.encode_utf16().collect::<Vec<_>>())).unwrap()
        };
        for (given, want) in [
            (r"C:\Partages\Commercial", r"\\?\C:\Partages\Commercial"),
            (
                r"\\nas\Partages\Commercial",
                r"\\?\UNC\nas\Partages\Commercial",
            ),
            (r"\\?\C:\x", r"\\?\C:\x"),
            (r"\\?\UNC\nas\x", r"\\?\UNC\nas\x"),
            (r"\\.\pipe\sharekeepd", r"\\.\pipe\sharekeepd"),
            ("relatif", "relatif"),
        ] {
            assert_eq!(long(given), want, "{given}");
        }
        // Made absolute by Windows' rules before: `/` and `..` are gone from the long form.
        let w = long_path(Path::new("C:/Partages/x/../Commercial"));
        assert_eq!(
            String::from_utf16(&w[..w.len() - 1]).unwrap(),
            r"\\?\C:\Partages\Commercial"
        );
    }

    #[test]
    fn a_share_root_written_with_slashes_opens() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("Commercial");
        std::fs::create_dir(&dir).unwrap();
        let slashed = dir.display().to_string().replace('\\', "/");
        open_dir_path(Path::new(&slashed)).unwrap_or_else(|e| panic!("{slashed}: {e}"));
    }
}
