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

pub use fs::{Gate, Layout, SnapshotFilter, SnapshotFs, MAX_INODES};
pub use names::{assign as snapshot_names, shadow_name, SHADOW_FORMAT};

use crate::error::{Error, Result};
use crate::repo::Repository;
use std::os::unix::ffi::OsStrExt;
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
    /// Entries held for the kernel before the oldest are invalidated ([`MAX_INODES`]).
    pub max_inodes: usize,
}

impl std::fmt::Debug for MountOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountOptions")
            .field("layout", &self.layout)
            .field("filtered", &self.filter.is_some())
            .field("gated", &self.gate.is_some())
            .field("allow_other", &self.allow_other)
            .field("name", &self.name)
            .field("max_inodes", &self.max_inodes)
            .finish()
    }
}

/// Blobs (256 KiB to 4 MiB) go back to the system when dropped: glibc's default raises its mmap
/// threshold to the largest chunk freed, after which such buffers come from the heap and a
/// long-lived mount keeps tens of MiB it no longer uses. Two arenas at most.
#[allow(unsafe_code)]
fn return_freed_blobs_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before the mount's
    // threads start allocating blobs, and a failure (0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        // The reader threads would otherwise each get an arena of their own, each keeping
        // what it once held (a tar of a million small files: 58.6 MiB peak, 59.4 without).
        libc::mallopt(libc::M_ARENA_MAX, 2);
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
    let mut fs = SnapshotFs::new(repo, opts.layout, opts.filter, opts.gate);
    fs.set_max_inodes(opts.max_inodes);
    let evictions = fs.evictions().expect("a new filesystem's evictions");
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
    let session = fuser::Session::new(fs, mountpoint, &options).map_err(|e| {
        Error::io(
            mountpoint,
            std::io::Error::new(
                e.kind(),
                format!("cannot mount there ({e}); it must be an empty folder, and /dev/fuse usable (apt-get install fuse3)"),
            ),
        )
    })?;
    // Entries the filesystem no longer wants to keep are invalidated in the kernel's cache
    // from this thread: the kernel may wait for the FUSE loop before taking an invalidation,
    // so the loop must never send one itself. The thread ends with the filesystem.
    let notifier = session.notifier();
    let _ = std::thread::Builder::new()
        .name("sk-mount-evict".into())
        .spawn(move || {
            for (parent, name) in evictions {
                let _ = notifier.inval_entry(parent, std::ffi::OsStr::from_bytes(&name));
            }
        });
    Ok(session)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{CancelToken, NoProgress};
    use std::time::{Duration, Instant};

    /// Entries the mount holds for the kernel (`statfs`'s file count).
    fn held(mnt: &Path) -> u64 {
        nix::sys::statvfs::statvfs(mnt).unwrap().files()
    }

    fn walk(dir: &Path, seen: &mut usize) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            *seen += 1;
            if meta.is_dir() {
                walk(&e.path(), seen);
            }
        }
    }

    /// Mounts the snapshot with at most `max` entries held, walks it (stat of every entry),
    /// and returns the entries walked and what the mount holds once the kernel's forgets have
    /// arrived (the count is polled until it stops falling).
    fn walk_mounted(repo: &Path, cache: &Path, mnt: &Path, max: usize) -> (usize, u64) {
        let repo = Repository::open_local_paged(repo, cache).unwrap();
        let opts = MountOptions {
            layout: Layout::Browse,
            filter: None,
            gate: None,
            allow_other: false,
            name: "test".into(),
            max_inodes: max,
        };
        let bg = session(repo, mnt, opts).unwrap().spawn().unwrap();
        let latest = mnt.join("latest");
        let start = Instant::now();
        while !latest.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the mount did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut seen = 0;
        walk(&latest, &mut seen);
        // The content comes through the paged index.
        let f = std::fs::read(latest.join("d07/f013.txt")).unwrap();
        assert_eq!(f, b"folder 7 file 13\n".repeat(20));
        let (mut last, mut since) = (held(mnt), Instant::now());
        while since.elapsed() < Duration::from_millis(1500)
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(50));
            let now = held(mnt);
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        drop(bg);
        (seen, last)
    }

    #[test]
    fn a_walk_through_a_snapshot_leaves_at_most_max_inodes_held() {
        if !nix::unistd::Uid::effective().is_root() || !Path::new("/dev/fuse").exists() {
            eprintln!("skipped: mounting needs root and /dev/fuse");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        for d in 0..20 {
            for f in 0..50 {
                let dir = src.join(format!("d{d:02}"));
                std::fs::create_dir_all(&dir).unwrap();
                let body = format!("folder {d} file {f}\n").repeat(20);
                std::fs::write(dir.join(format!("f{f:03}.txt")), body).unwrap();
            }
        }
        let repo_path = tmp.path().join("repo");
        let repo = Repository::init_local(&repo_path).unwrap();
        crate::backup(
            &repo,
            &src,
            &crate::BackupOptions::default(),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        let (cache, mnt) = (tmp.path().join("cache"), tmp.path().join("mnt"));
        std::fs::create_dir_all(&mnt).unwrap();
        // Positive control: without a cap, the kernel keeps every entry it was shown.
        let (seen, all) = walk_mounted(&repo_path, &cache, &mnt, usize::MAX);
        assert!(seen >= 1020, "walked {seen}");
        assert!(all >= 1020, "held {all} without a cap");
        // With a cap of 100: the oldest entries are dropped from the kernel's cache, then
        // forgotten. Besides the cap: the four fixed inodes, the snapshot's root, entries in
        // use while they were invalidated (the folder being listed, the file read), and the
        // last few added (trimmed as new ones come, a few at a time).
        let (seen, capped) = walk_mounted(&repo_path, &cache, &mnt, 100);
        assert!(seen >= 1020, "walked {seen}");
        // (Under a loaded machine a few dozen more may still be on their way: CI once saw 126.
        // Without invalidations the mount holds every one of the 1,020.)
        assert!(capped <= 100 + 32, "held {capped} with a cap of 100");
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            0,
            "cache files left"
        );
    }
}
