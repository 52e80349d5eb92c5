//! POSIX ACLs on Linux through file descriptors opened without following symlinks
//! (directories `O_DIRECTORY|O_NOFOLLOW`, files `O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY` after
//! the walker checked they are regular files). Every read and change goes through the
//! descriptor (`fgetxattr`, `fsetxattr`, `fchown`, `fchmod`), never through a path that
//! could be swapped.

use super::{Acl, AclSystem, EntryState};
use rustix::fd::{AsRawFd, OwnedFd};
use std::io;

const ACCESS: &str = "system.posix_acl_access";
const DEFAULT: &str = "system.posix_acl_default";

/// The Linux implementation of [`AclSystem`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PosixAcls;

fn get(fd: &OwnedFd, name: &str) -> io::Result<Option<Acl>> {
    let mut buf = [0u8; 1024];
    match rustix::fs::fgetxattr(fd, name, &mut buf) {
        Ok(n) => Acl::from_xattr(&buf[..n])
            .map(Some)
            .ok_or_else(|| io::Error::other(format!("malformed {name}"))),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(rustix::io::Errno::RANGE) => {
            let n = rustix::fs::fgetxattr(fd, name, &mut [])?;
            let mut big = vec![0u8; n];
            let n = rustix::fs::fgetxattr(fd, name, &mut big)?;
            Acl::from_xattr(&big[..n])
                .map(Some)
                .ok_or_else(|| io::Error::other(format!("malformed {name}")))
        }
        Err(e) => Err(e.into()),
    }
}

impl PosixAcls {
    /// The state of an entry whose `fstat` the caller already has.
    pub fn read_with_stat(
        &self,
        fd: &OwnedFd,
        st: &rustix::fs::Stat,
        is_dir: bool,
    ) -> io::Result<EntryState> {
        let mode = st.st_mode & 0o7777;
        let access = get(fd, ACCESS)?.unwrap_or_else(|| Acl::from_mode(mode));
        let default = if is_dir { get(fd, DEFAULT)? } else { None };
        Ok(EntryState {
            uid: st.st_uid,
            gid: st.st_gid,
            mode,
            access,
            default,
        })
    }
}

impl AclSystem for PosixAcls {
    type Handle = OwnedFd;

    fn read(&self, fd: &OwnedFd, is_dir: bool) -> io::Result<EntryState> {
        let st = rustix::fs::fstat(fd)?;
        self.read_with_stat(fd, &st, is_dir)
    }

    fn write(
        &self,
        fd: &OwnedFd,
        is_dir: bool,
        have: &EntryState,
        want: &EntryState,
    ) -> io::Result<()> {
        let owner_changes = have.uid != want.uid || have.gid != want.gid;
        if owner_changes {
            nix::unistd::fchown(fd.as_raw_fd(), Some(want.uid.into()), Some(want.gid.into()))?;
        }
        // chown may clear setgid, and an ACL write keeps the special bits: set them first.
        if have.mode & 0o7000 != want.mode & 0o7000 || (owner_changes && want.mode & 0o7000 != 0) {
            rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(want.mode))?;
        }
        if have.access != want.access || have.mode & 0o777 != want.mode & 0o777 {
            // Setting the access ACL sets the mode's permission bits too.
            rustix::fs::fsetxattr(
                fd,
                ACCESS,
                &want.access.to_xattr(),
                rustix::fs::XattrFlags::empty(),
            )?;
        }
        if is_dir && have.default != want.default {
            match &want.default {
                Some(d) => rustix::fs::fsetxattr(
                    fd,
                    DEFAULT,
                    &d.to_xattr(),
                    rustix::fs::XattrFlags::empty(),
                )?,
                None => match rustix::fs::fremovexattr(fd, DEFAULT) {
                    Ok(()) | Err(rustix::io::Errno::NODATA) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Ok(())
    }
}
