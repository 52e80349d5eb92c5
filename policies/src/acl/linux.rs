//! POSIX ACLs on Linux through file descriptors: a directory is an `O_DIRECTORY|O_NOFOLLOW`
//! descriptor; any other entry an `O_PATH|O_NOFOLLOW` descriptor, changed through
//! `/proc/self/fd/N` (which names that very inode, never a path that could be swapped).

use super::{Acl, AclSystem, EntryState};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use std::io;

const ACCESS: &str = "system.posix_acl_access";
const DEFAULT: &str = "system.posix_acl_default";

/// The Linux implementation of [`AclSystem`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PosixAcls;

fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn get(fd: &OwnedFd, is_dir: bool, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 512];
    loop {
        let r = if is_dir {
            rustix::fs::fgetxattr(fd, name, &mut buf)
        } else {
            rustix::fs::getxattr(proc_path(fd).as_str(), name, &mut buf)
        };
        match r {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

fn set(fd: &OwnedFd, is_dir: bool, name: &str, value: &[u8]) -> io::Result<()> {
    let flags = rustix::fs::XattrFlags::empty();
    if is_dir {
        rustix::fs::fsetxattr(fd, name, value, flags)?;
    } else {
        rustix::fs::setxattr(proc_path(fd).as_str(), name, value, flags)?;
    }
    Ok(())
}

impl AclSystem for PosixAcls {
    type Handle = OwnedFd;

    fn read(&self, fd: &OwnedFd, is_dir: bool) -> io::Result<EntryState> {
        let st = rustix::fs::fstat(fd)?;
        let mode = st.st_mode & 0o7777;
        let access = match get(fd, is_dir, ACCESS)? {
            Some(bytes) => {
                Acl::from_xattr(&bytes).ok_or_else(|| io::Error::other("malformed access ACL"))?
            }
            None => Acl::from_mode(mode),
        };
        let default = if is_dir {
            match get(fd, true, DEFAULT)? {
                Some(bytes) => Some(
                    Acl::from_xattr(&bytes)
                        .ok_or_else(|| io::Error::other("malformed default ACL"))?,
                ),
                None => None,
            }
        } else {
            None
        };
        Ok(EntryState {
            uid: st.st_uid,
            gid: st.st_gid,
            mode,
            access,
            default,
        })
    }

    fn write(
        &self,
        fd: &OwnedFd,
        is_dir: bool,
        have: &EntryState,
        want: &EntryState,
    ) -> io::Result<()> {
        if have.uid != want.uid || have.gid != want.gid {
            // AT_EMPTY_PATH changes the inode the descriptor holds (O_PATH ones included).
            nix::unistd::fchownat(
                Some(fd.as_fd().as_raw_fd()),
                "",
                Some(want.uid.into()),
                Some(want.gid.into()),
                nix::fcntl::AtFlags::AT_EMPTY_PATH,
            )?;
        }
        // chown may clear setgid; the ACL write keeps the special bits, so set them first.
        if have.mode & 0o7000 != want.mode & 0o7000 || have.uid != want.uid || have.gid != want.gid
        {
            let mode =
                rustix::fs::Mode::from_raw_mode((want.mode & 0o7000) | want.access.mode_bits());
            if is_dir {
                rustix::fs::fchmod(fd, mode)?;
            } else {
                rustix::fs::chmod(proc_path(fd).as_str(), mode)?;
            }
        }
        if have.access != want.access || have.mode & 0o777 != want.access.mode_bits() {
            set(fd, is_dir, ACCESS, &want.access.to_xattr())?;
        }
        if is_dir && have.default != want.default {
            match &want.default {
                Some(d) => set(fd, true, DEFAULT, &d.to_xattr())?,
                None => match rustix::fs::fremovexattr(fd, DEFAULT) {
                    Ok(()) | Err(rustix::io::Errno::NODATA) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Ok(())
    }
}
