//! fanotify, the kernel's filesystem-wide notification (root only): who changed what in the
//! share, as it happens. One group per guarded share, marked on the share's filesystem
//! (`FAN_MARK_FILESYSTEM`: new folders are covered with nothing to add), reporting the folder
//! and name of each entry (`FAN_REPORT_DFID_NAME`) and the entry's own handle
//! (`FAN_REPORT_FID`), so a file renamed right after being written can still be opened and
//! sampled. Events carry the writing process; its filesystem uid is the member (smbd serves
//! each session as its user, so SMB writes are attributed too).
//!
//! Events from elsewhere on the filesystem are dropped after one lookup of their folder per
//! folder (a cache from folder handle to path, cleared when a folder is renamed). Nothing here
//! follows a name: folders and files are opened by handle (`open_by_handle_at`), files with
//! `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` before a byte is read.
//!
//! This module calls the fanotify and `open_by_handle_at` syscalls through `libc`: the
//! `unsafe` blocks are the calls and the parsing of the kernel's event records, each bounded
//! by the lengths the kernel wrote (documented at each block).
#![allow(unsafe_code)]

use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A file handle as the kernel reports it: its type then its bytes (the cache key, and what
/// `open_by_handle_at` takes back).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Handle {
    kind: i32,
    bytes: Vec<u8>,
}

/// One event, as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawEvent {
    /// `FAN_*` bits.
    pub(crate) mask: u64,
    /// The process that made the change.
    pub(crate) pid: i32,
    /// The folder and name of the entry (for a rename: its new place).
    pub(crate) dir: Option<(Handle, Vec<u8>)>,
    /// For a rename: where it came from.
    pub(crate) old: Option<(Handle, Vec<u8>)>,
    /// The entry itself.
    pub(crate) file: Option<Handle>,
}

impl RawEvent {
    pub(crate) fn is(&self, bit: u64) -> bool {
        self.mask & bit != 0
    }
}

/// A fanotify group marked on one filesystem.
pub(crate) struct Fanotify {
    /// The group (a `File` for its `read`).
    fd: std::fs::File,
    /// The share root: what handles are opened relative to.
    mount: OwnedFd,
    paths: HashMap<Handle, Option<PathBuf>>,
}

/// What the guard watches: files closed after writing, entries created, deleted, renamed.
const MASK: u64 = libc::FAN_CLOSE_WRITE
    | libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_RENAME
    | libc::FAN_ONDIR;

impl Fanotify {
    /// A group marked on the filesystem holding `root` (needs CAP_SYS_ADMIN).
    pub(crate) fn new(root: &Path) -> io::Result<Fanotify> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_UNLIMITED_QUEUE
            | libc::FAN_REPORT_DFID_NAME
            | libc::FAN_REPORT_FID;
        let event_flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as libc::c_uint;
        // SAFETY: fanotify_init takes two integers and returns a new descriptor or -1.
        let raw = unsafe { libc::fanotify_init(flags, event_flags) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor fanotify_init just returned, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = CString::new(root.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the share path"))?;
        // SAFETY: `fd` is our fanotify group, `path` a NUL-terminated string that outlives
        // the call.
        let r = unsafe {
            libc::fanotify_mark(
                fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                MASK,
                libc::AT_FDCWD,
                path.as_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mount = rustix::fs::open(
            root,
            // Not O_PATH: open_by_handle_at refuses such a descriptor (EBADF).
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(Fanotify {
            fd: std::fs::File::from(fd),
            mount,
            paths: HashMap::new(),
        })
    }

    /// Waits up to `timeout_ms` for events; what was read (empty on timeout).
    pub(crate) fn read(&self, buf: &mut [u8], timeout_ms: i32) -> io::Result<Vec<RawEvent>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, valid for the call.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        if r == 0 {
            return Ok(Vec::new());
        }
        let n = match (&self.fd).read(buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        Ok(parse(&buf[..n]))
    }

    /// The folder `h` names, relative to `root` (`None`: outside it, or gone). Cached.
    pub(crate) fn dir_path(&mut self, h: &Handle, root: &Path) -> Option<PathBuf> {
        if let Some(p) = self.paths.get(h) {
            return p.clone();
        }
        let opened = self.open(h, libc::O_PATH | libc::O_DIRECTORY);
        if let Err(e) = &opened {
            tracing::trace!("guard: open_by_handle_at: {e}");
        }
        let found = opened
            .ok()
            .and_then(|fd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok())
            .and_then(|abs| abs.strip_prefix(root).ok().map(Path::to_path_buf));
        if self.paths.len() > 100_000 {
            self.paths.clear();
        }
        self.paths.insert(h.clone(), found.clone());
        found
    }

    /// Forgets the folder paths (a folder was renamed: those below it moved).
    pub(crate) fn forget_paths(&mut self) {
        self.paths.clear();
    }

    /// Opens what `h` names (`flags`: `O_*`), never through a name.
    pub(crate) fn open(&self, h: &Handle, flags: libc::c_int) -> io::Result<OwnedFd> {
        // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, built in
        // u64 words so it is aligned.
        let mut words = vec![0u64; 1 + h.bytes.len().div_ceil(8)];
        let raw = words.as_mut_ptr() as *mut u8;
        // SAFETY: `words` holds 8 + len bytes (rounded up): the two header fields fit in the
        // first word, the handle's bytes after them; nothing else refers to the buffer.
        unsafe {
            std::ptr::write_unaligned(raw as *mut u32, h.bytes.len() as u32);
            std::ptr::write_unaligned(raw.add(4) as *mut i32, h.kind);
            std::ptr::copy_nonoverlapping(h.bytes.as_ptr(), raw.add(8), h.bytes.len());
        }
        // SAFETY: the buffer is a complete file_handle (above), valid for the call; the mount
        // descriptor is open.
        let fd = unsafe {
            libc::open_by_handle_at(
                self.mount.as_raw_fd(),
                raw as *mut libc::file_handle,
                flags | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor, ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Reads a `T` at `off` in `b` (unaligned), if it fits.
fn at<T: Copy>(b: &[u8], off: usize) -> Option<T> {
    if off.checked_add(std::mem::size_of::<T>())? > b.len() {
        return None;
    }
    // SAFETY: the bytes [off, off + size_of::<T>()) are inside `b` (checked above); T is
    // plain data (integers) read unaligned.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().add(off) as *const T) })
}

/// Parses a buffer of event records (`struct fanotify_event_metadata` then info records);
/// a malformed record ends the batch.
fn parse(buf: &[u8]) -> Vec<RawEvent> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 24 <= buf.len() {
        let (Some(len), Some(meta_len), Some(mask), Some(fd), Some(pid)) = (
            at::<u32>(buf, off),
            at::<u16>(buf, off + 6),
            at::<u64>(buf, off + 8),
            at::<i32>(buf, off + 16),
            at::<i32>(buf, off + 20),
        ) else {
            break;
        };
        let (len, meta_len) = (len as usize, meta_len as usize);
        if len < 24 || meta_len < 24 || off + len > buf.len() {
            break;
        }
        if fd >= 0 {
            // Not in FID mode, but never leak one.
            // SAFETY: a descriptor the kernel gave us with this event, closed once.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let mut ev = RawEvent {
            mask,
            pid,
            ..RawEvent::default()
        };
        let end = off + len;
        let mut i = off + meta_len;
        while i + 4 <= end {
            let (Some(kind), Some(ilen)) = (at::<u8>(buf, i), at::<u16>(buf, i + 2)) else {
                break;
            };
            let ilen = ilen as usize;
            if ilen < 4 || i + ilen > end {
                break;
            }
            let rec = &buf[i..i + ilen];
            // header (4) + fsid (8), then struct file_handle.
            if let (Some(hbytes), Some(htype)) = (at::<u32>(rec, 12), at::<i32>(rec, 16)) {
                let hstart = 20;
                let hend = hstart + hbytes as usize;
                if hend <= rec.len() {
                    let handle = Handle {
                        kind: htype,
                        bytes: rec[hstart..hend].to_vec(),
                    };
                    let name = || {
                        let n = &rec[hend..];
                        n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())].to_vec()
                    };
                    match kind {
                        libc::FAN_EVENT_INFO_TYPE_FID => ev.file = Some(handle),
                        libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                        | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => {
                            ev.dir = Some((handle, name()))
                        }
                        libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => ev.old = Some((handle, name())),
                        _ => {}
                    }
                }
            }
            i += ilen;
        }
        out.push(ev);
        off = end;
    }
    out
}

/// The filesystem uid of process `pid` (what the kernel checks its file accesses against),
/// from `/proc/PID/status`; `None` when it is gone.
pub(crate) fn fsuid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}

/// Whose process made an event, remembered per process: a process may be gone when its last
/// events are read (an SMB session's smbd exits right after its client disconnects), or
/// briefly root (smbd becomes root for a moment for some of its work). A process's last
/// known non-root filesystem uid answers then. Entries untouched for 10 minutes are forgotten
/// (a pid is reused only after the whole pid range has gone round).
#[derive(Debug, Default)]
pub(crate) struct Owners {
    known: std::collections::HashMap<i32, (u32, std::time::Instant)>,
    swept: Option<std::time::Instant>,
}

const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

impl Owners {
    /// The filesystem uid `pid` works as (`None`: gone and never seen).
    pub(crate) fn uid(&mut self, pid: i32) -> Option<u32> {
        let now = std::time::Instant::now();
        if self
            .swept
            .is_none_or(|t| now.duration_since(t) > FORGET_AFTER / 10)
        {
            self.known
                .retain(|_, (_, seen)| now.duration_since(*seen) < FORGET_AFTER);
            self.swept = Some(now);
        }
        match fsuid(pid) {
            Some(uid) if uid != 0 => {
                self.known.insert(pid, (uid, now));
                Some(uid)
            }
            read => match self.known.get_mut(&pid) {
                Some((uid, seen)) => {
                    *seen = now;
                    Some(*uid)
                }
                None => read,
            },
        }
    }
}
