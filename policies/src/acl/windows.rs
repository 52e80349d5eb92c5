//! NTFS ACLs on Windows through handles the walk opened (never a path): the security
//! descriptor read with `GetSecurityInfo` and written with `SetSecurityInfo`, as SDDL in
//! between, so that what is compared and decided is the pure model of `ntfs.rs`. Only the
//! owner and the entry's explicit ACEs are written, with the DACL protected or inheriting as
//! the translation says; inherited ACEs are Windows' own.

use super::ntfs::{self, NtfsState, Security, Sid};
use super::AclSystem;
use crate::accounts::{self, Accounts};
use crate::apply::StateView;
use crate::principal::User;
use crate::rights::{Access, Rights};
use crate::walk::{Handles, Tree};
use crate::win32;
use std::collections::HashMap;
use std::io;
use std::os::windows::io::OwnedHandle;
use std::path::Path;

/// The Windows implementation of [`AclSystem`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NtfsAcls;

/// The SDDL of an open entry's owner, group and DACL (what sharekeep reads).
pub fn sddl(h: &impl std::os::windows::io::AsRawHandle) -> io::Result<String> {
    win32::sddl(h)
}

/// Windows' own reading of an SDDL text: made into the binary security descriptor that
/// `SetSecurityInfo` is given, then printed back by the system. What sharekeep writes is
/// checked against it: the system must read the descriptor the way the translation meant it.
pub fn as_windows_reads(sddl: &str) -> io::Result<Security> {
    Security::from_sddl(&win32::sddl_round_trip(sddl)?).map_err(io::Error::other)
}

/// The owner, group and DACL of the folder or file at `path` (a reparse point is refused).
pub fn security_at(path: &Path) -> io::Result<Security> {
    let h = open_path(path)?;
    Security::from_sddl(&win32::sddl(&h)?).map_err(io::Error::other)
}

/// Gives the folder at `path` the DACL of `sddl`, protected (nothing inherited): how the
/// engine makes its repository and state folders private.
pub fn protect_dir(path: &Path, sddl: &str) -> io::Result<()> {
    let h = Handles.open_root(path)?;
    win32::set_security(&h, sddl, false, true)
}

fn open_path(path: &Path) -> io::Result<OwnedHandle> {
    if path.is_dir() {
        return Handles.open_root(path);
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: no file name", path.display())))?;
    let dir = Handles.open_root(parent)?;
    Handles
        .open_file(&dir, name)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// Account names of SIDs, looked up once per walker.
#[derive(Debug, Default)]
pub struct Names(HashMap<Sid, String>);

impl Names {
    fn name(&mut self, sid: &Sid) -> String {
        self.0
            .entry(sid.clone())
            .or_insert_with(|| win32::lookup_sid(sid.as_str()).unwrap_or_else(|| sid.to_string()))
            .clone()
    }
}

fn right_words(mask: u32) -> String {
    match mask {
        ntfs::mask::FULL => "full".into(),
        ntfs::mask::MODIFY => "modify".into(),
        ntfs::mask::READ_EXECUTE => "read".into(),
        ntfs::mask::TRAVERSE => "traverse".into(),
        m => format!("{m:#x}"),
    }
}

/// The SIDs a user acts with: their own, their groups', and those every signed-in user has.
fn sids_of(user: &User, groups: &[u32]) -> Vec<Sid> {
    let mut out: Vec<Sid> = std::iter::once(user.uid)
        .chain(groups.iter().copied())
        .filter_map(accounts::sid_of)
        .collect();
    out.extend(
        ["S-1-1-0", "S-1-5-11", "S-1-5-32-545"]
            .iter()
            .filter_map(|s| Sid::parse(s)),
    );
    out
}

impl AclSystem for NtfsAcls {
    type Tree = Handles;
    type State = Security;
    type Names = Names;

    fn tree(&self) -> &Handles {
        &Handles
    }

    fn read(&self, h: &OwnedHandle, _meta: &win32::Info, _is_dir: bool) -> io::Result<Security> {
        let text = win32::sddl(h)?;
        Security::from_sddl(&text).map_err(io::Error::other)
    }

    fn desired(
        &self,
        rights: &Rights,
        rel: &str,
        is_dir: bool,
        _have: &Security,
    ) -> io::Result<Security> {
        ntfs::desired(rights, rel, is_dir, &Accounts)
            .map(|s| s.to_security())
            .map_err(io::Error::other)
    }

    fn differences(have: &Security, want: &Security) -> Vec<&'static str> {
        NtfsState::of(have).differences(&NtfsState::of(want))
    }

    fn view(names: &mut Names, s: &Security) -> StateView {
        let acl = s
            .explicit()
            .iter()
            .map(|a| {
                let verb = if a.allow { "" } else { "deny " };
                let inherit = if a.flags & ntfs::flags::CONTAINER_INHERIT != 0 {
                    ""
                } else {
                    " (this entry only)"
                };
                format!(
                    "{}:{verb}{}{inherit}",
                    names.name(&a.sid),
                    right_words(a.mask)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        StateView {
            owner: s.owner.as_ref().map(|o| names.name(o)).unwrap_or_default(),
            group: s.group.as_ref().map(|g| names.name(g)).unwrap_or_default(),
            mode: if s.protected { "protected" } else { "inherits" }.into(),
            acl,
            default_acl: None,
        }
    }

    fn write(
        &self,
        h: &OwnedHandle,
        _is_dir: bool,
        have: &Security,
        want: &Security,
    ) -> io::Result<()> {
        let owner = have.owner != want.owner;
        win32::set_security(h, &want.to_sddl(), owner, want.protected)
    }

    fn access(&self, s: &Security, user: &User, groups: &[u32], is_dir: bool) -> Access {
        ntfs::access_of(s.effective(&sids_of(user, groups)), is_dir)
    }
}
