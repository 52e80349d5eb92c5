//! Snapshots as a read-only filesystem (FUSE): `sharekeepctl mount` for people browsing a
//! repository, and sharekeepd's Previous Versions of a share, served to Windows Explorer by
//! Samba's `shadow_copy2`, each caller seeing only what today's policy lets them read.
//!
//! Mounting needs `/dev/fuse`; as root the mount is made directly, otherwise through
//! `fusermount3` (Debian's fuse3). Dropping the session (or unmounting the folder) ends it.

mod fs;
mod lru;
mod names;
mod reader;

pub use fs::{Gate, Layout, SnapshotFilter, SnapshotFs};
pub use names::{assign as snapshot_names, shadow_name, SHADOW_FORMAT};

use crate::error::{Error, Result};
use crate::repo::Repository;
use std::path::Path;

/// What to mount and for whom.
#[derive(Clone)]
pub struct MountOptions {
    /// How snapshots are laid out.
    pub layout: Layout,
    /// Which snapshots are shown (all when `None`).
    pub filter: Option<SnapshotFilter>,
    /// What each uid may see (everything when `None`).
    pub gate: Option<Gate>,
    /// Let other users than the mounting one use the mount (the gate then decides what
    /// they see; without a gate, only root and the mounting user should be let in).
    pub allow_other: bool,
    /// The source shown in /proc/mounts (`sharekeep:<name>`).
    pub name: String,
}

impl std::fmt::Debug for MountOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountOptions")
            .field("layout", &self.layout)
            .field("filtered", &self.filter.is_some())
            .field("gated", &self.gate.is_some())
            .field("allow_other", &self.allow_other)
            .field("name", &self.name)
            .finish()
    }
}

/// Blobs (256 KiB to 4 MiB) go back to the system when dropped: glibc's default raises its mmap
/// threshold to the largest chunk freed, after which such buffers come from the heap and a
/// long-lived mount keeps tens of MiB it no longer uses.
#[allow(unsafe_code)]
fn return_freed_blobs_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before the mount's
    // threads start allocating blobs, and a failure (0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Mounts `repo`'s snapshots at `mountpoint` (an empty folder); `run()` the session to serve
/// it, or `spawn()` it on a thread of its own.
pub fn session(
    repo: Repository,
    mountpoint: &Path,
    opts: MountOptions,
) -> Result<fuser::Session<SnapshotFs>> {
    return_freed_blobs_to_the_system();
    let fs = SnapshotFs::new(repo, opts.layout, opts.filter, opts.gate);
    let mut options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName(format!("sharekeep:{}", opts.name)),
        fuser::MountOption::Subtype("sharekeep".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoExec,
    ];
    if opts.allow_other {
        options.push(fuser::MountOption::AllowOther);
    }
    fuser::Session::new(fs, mountpoint, &options).map_err(|e| {
        Error::io(
            mountpoint,
            std::io::Error::new(
                e.kind(),
                format!("cannot mount there ({e}); it must be an empty folder, and /dev/fuse usable (apt-get install fuse3)"),
            ),
        )
    })
}

/// Detaches a mount left behind at `mountpoint` by a process that died (the folder then
/// answers "Transport endpoint is not connected"). Does nothing to a live mount or a folder.
pub fn detach_stale(mountpoint: &Path) {
    if let Err(e) = std::fs::metadata(mountpoint) {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            let _ = nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
