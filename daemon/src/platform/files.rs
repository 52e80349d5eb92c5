//! Files and folders private to their owner, positional reads and writes, renames that never
//! replace: what the repository and the service's state need, on Unix (modes 0600/0700,
//! `renameat2(RENAME_NOREPLACE)`, `pread`) and on Windows (a protected DACL for SYSTEM,
//! Administrators and the owner; a hard link then an unlink, which fails where the name is
//! taken; `ReadFile` at an offset).

use std::fs::{File, OpenOptions};
#[cfg(windows)]
use std::io::ErrorKind;
use std::io::Result;
use std::path::Path;

/// Creates `dir` and its missing parents, private to their owner.
pub fn private_dirs(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(windows)]
    {
        let existed = dir.is_dir();
        std::fs::create_dir_all(dir)?;
        if existed {
            return Ok(());
        }
        make_private(dir)
    }
}

/// Creates the folder `dir` (its parent exists), private to its owner.
pub fn private_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(dir)
    }
    #[cfg(windows)]
    {
        std::fs::create_dir(dir)?;
        make_private(dir)
    }
}

/// Makes an existing folder private to its owner (0700; on Windows a protected DACL).
pub(crate) fn make_private(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(windows)]
    {
        // SYSTEM, Administrators and the creator (OWNER RIGHTS stands for whoever owns it).
        sharekeep_policies::acl::windows::protect_dir(
            dir,
            "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)",
        )
    }
}

/// A new file at `path` (never an existing one, never through a link), read-write, that only
/// its owner may read (0600; on Windows its private folder's rights).
pub fn create_new_private(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        let f = o.open(path)?;
        // The mode given to open() is filtered by the umask; set it exactly.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(windows)]
    {
        o.open(path)
    }
}

/// A new file at `path` with exactly `mode` on Unix (the umask does not apply); on Windows
/// the folder's rights.
pub(crate) fn create_new_with_mode(path: &Path, mode: u32) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        let f = o.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(f)
    }
    #[cfg(windows)]
    {
        let _ = mode;
        o.open(path)
    }
}

/// Reads exactly `buf.len()` bytes at `offset` (several threads may share the file).
pub fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match f.seek_read(&mut buf[done..], offset + done as u64) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(f: &File, buf: &[u8], offset: u64) -> Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match f.seek_write(&buf[done..], offset + done as u64) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, nothing changed).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            from,
            rustix::fs::CWD,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(Into::into)
    }
    #[cfg(windows)]
    {
        // A new name for the same file fails where the name is taken: then the old name goes.
        std::fs::hard_link(from, to)?;
        std::fs::remove_file(from)
    }
}

/// Makes what was renamed into `dir` durable (on Windows, NTFS journals the rename itself).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all())
    }
    #[cfg(windows)]
    {
        let _ = dir;
        Ok(())
    }
}

/// Why a file of secrets or a repository folder is open to others than its owner (`None`
/// if it is not): whether its DACL lets Everyone, the signed-in users or Users read it.
#[cfg(windows)]
pub(crate) fn open_to_others(path: &Path) -> Result<Option<String>> {
    use sharekeep_policies::acl::ntfs::Sid;
    let sec = sharekeep_policies::acl::windows::security_at(path)?;
    let others: Vec<Sid> = ["S-1-1-0", "S-1-5-11", "S-1-5-32-545"]
        .iter()
        .filter_map(|s| Sid::parse(s))
        .collect();
    let read = sec.effective(&others) & 0x1; // FILE_READ_DATA (a folder: list)
    Ok((read != 0)
        .then(|| "is readable by Everyone, Users or signed-in users (its DACL)".to_string()))
}

/// The command that makes `path` private to SYSTEM, Administrators and its owner.
#[cfg(windows)]
pub(crate) fn private_hint(path: &Path, _dir: bool) -> String {
    format!(
        "make it private with `icacls \"{}\" /inheritance:r /grant:r SYSTEM:(OI)(CI)F Administrators:(OI)(CI)F %USERNAME%:(OI)(CI)F`",
        path.display()
    )
}
