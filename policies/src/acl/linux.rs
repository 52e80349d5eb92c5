//! POSIX ACLs on Linux through file descriptors opened without following symlinks
//! (directories `O_DIRECTORY|O_NOFOLLOW`, files `O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY` after
//! the walker checked they are regular files). Every read and change goes through the
//! descriptor (`fgetxattr`, `fsetxattr`, `fchown`, `fchmod`), never through a path that
//! could be swapped.

use super::{Acl, AclSystem, EntryState, Tag};
use crate::apply::StateView;
use crate::principal::User;
use crate::rights::{Access, Rights};
use crate::walk::Descriptors;
use rustix::fd::{AsRawFd, OwnedFd};
use std::collections::HashMap;
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
    type Tree = Descriptors;
    type State = EntryState;
    type Names = Names;

    fn tree(&self) -> &Descriptors {
        &Descriptors
    }

    fn read(&self, fd: &OwnedFd, st: &rustix::fs::Stat, is_dir: bool) -> io::Result<EntryState> {
        self.read_with_stat(fd, st, is_dir)
    }

    fn desired(
        &self,
        rights: &Rights,
        rel: &str,
        is_dir: bool,
        have: &EntryState,
    ) -> io::Result<EntryState> {
        // A file whose owner may execute it keeps execute for those who may read it.
        let exec = !is_dir && have.mode & 0o100 != 0;
        Ok(rights.desired(rel, is_dir, exec))
    }

    fn differences(have: &EntryState, want: &EntryState) -> Vec<&'static str> {
        differences(have, want)
    }

    fn view(names: &mut Names, s: &EntryState) -> StateView {
        names.view(s)
    }

    fn access(&self, s: &EntryState, user: &User, groups: &[u32], is_dir: bool) -> Access {
        Access::from_perm(s.access.effective(s.uid, s.gid, user.uid, groups), is_dir)
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

/// Names of the ids in ACLs, looked up once per walker (a number where NSS has no name).
#[derive(Debug, Default)]
pub struct Names(crate::NameCache);

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.0.user(uid).unwrap_or_else(|| uid.to_string())
    }
    fn group(&mut self, gid: u32) -> String {
        self.0.group(gid).unwrap_or_else(|| gid.to_string())
    }
    fn acl(&mut self, acl: &Acl) -> String {
        let mut named = HashMap::new();
        for e in acl.entries() {
            match e.tag {
                Tag::User(u) => {
                    named.insert(e.tag, self.user(u));
                }
                Tag::Group(g) => {
                    named.insert(e.tag, self.group(g));
                }
                _ => {}
            }
        }
        acl.text(&|t| named.get(&t).cloned().unwrap_or_default())
    }
    fn view(&mut self, s: &EntryState) -> StateView {
        StateView {
            owner: self.user(s.uid),
            group: self.group(s.gid),
            mode: format!("{:04o}", s.mode),
            acl: self.acl(&s.access),
            default_acl: s.default.as_ref().map(|d| self.acl(d)),
        }
    }
}

fn differences(have: &EntryState, want: &EntryState) -> Vec<&'static str> {
    let mut out = Vec::new();
    if have.uid != want.uid {
        out.push("owner");
    }
    if have.gid != want.gid {
        out.push("group");
    }
    if have.mode != want.mode {
        out.push("mode");
    }
    if have.access != want.access {
        out.push("acl");
    }
    if have.default != want.default {
        out.push("default acl");
    }
    out
}
