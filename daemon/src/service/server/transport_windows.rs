//! The control channel on Windows: the named pipe `\\.\pipe\sharekeepd` (local clients only),
//! its DACL naming SYSTEM, Administrators and every account a managed policy names (admins,
//! owner, readers, writers): the same people the Unix socket lets through its authorisation
//! table, and only they may open it. Nobody but SYSTEM and Administrators may create an
//! instance of the pipe (no `FILE_CREATE_PIPE_INSTANCE` for the others: no one can pose as
//! the service), and the first instance is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`
//! (a pipe already there, someone else's, is an error).
//!
//! ```text
//! accept -> GetNamedPipeClientProcessId -> the client's process token (TokenUser, TokenGroups)
//!        -> root (uid 0) when the token is SYSTEM's or holds Administrators enabled (elevated);
//!           otherwise uid = the number of the user's SID, groups = those of its enabled groups
//!           (the numbers policies give SIDs: sharekeep_policies::accounts)
//! ```
//! Each new instance gets the DACL of the policies loaded at that moment: a reload lets new
//! members in from their next connection.
#![allow(unsafe_code)]

use super::Caller;
use sharekeep_policies::{Policy, Principal};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::ptr::null_mut;
use std::sync::Arc;
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenGroups, TokenUser, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
    TOKEN_GROUPS, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// The read half of a connection.
pub(crate) type RecvHalf = tokio::io::ReadHalf<NamedPipeServer>;
/// The write half of a connection.
pub(crate) type SendHalf = tokio::io::WriteHalf<NamedPipeServer>;

/// SYSTEM and Administrators: everything. `FILE_GENERIC_READ | FILE_WRITE_DATA` for the
/// accounts the policies name (not `FILE_APPEND_DATA`, which on a pipe is the right to create
/// an instance of it).
const MEMBER_RIGHTS: &str = "0x12008b";
/// A token's group that counts for access checks (winnt.h).
const SE_GROUP_ENABLED: u32 = 0x4;
/// A token's group that only denies (a filtered, not elevated, administrator's).
const SE_GROUP_USE_FOR_DENY_ONLY: u32 = 0x10;
const SYSTEM_SID: &str = "S-1-5-18";
const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// The pipe's name and the instance waiting for the next client.
pub(crate) struct Listener {
    name: String,
    next: NamedPipeServer,
}

/// Who connected, from their process token.
pub(crate) struct Peer {
    pub(crate) uid: u32,
    groups: Vec<u32>,
}

/// The pipe's DACL for the accounts the policies name now.
fn sddl(policies: &BTreeMap<String, Arc<Policy>>) -> String {
    let mut sids = BTreeSet::new();
    for p in policies.values() {
        let mut named: Vec<&Principal> = p.admins.iter().collect();
        for r in &p.rules {
            named.extend(r.read.principals.iter().chain(&r.write.principals));
        }
        let owner = sharekeep_policies::accounts::sid_of(p.owner.uid);
        let ids = named.into_iter().map(|n| match n {
            Principal::User(u) => u.uid,
            Principal::Group(g) => g.gid,
        });
        for sid in ids
            .filter_map(sharekeep_policies::accounts::sid_of)
            .chain(owner)
        {
            sids.insert(sid.to_string());
        }
    }
    let mut text = "D:P(A;;GA;;;SY)(A;;GA;;;BA)".to_string();
    for sid in sids {
        text.push_str(&format!("(A;;{MEMBER_RIGHTS};;;{sid})"));
    }
    text
}

/// A security descriptor parsed from SDDL, freed when dropped.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Descriptor {
    fn parse(sddl: &str) -> io::Result<Descriptor> {
        let text: Vec<u16> = sddl.encode_utf16().chain([0]).collect();
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `text` is NUL-terminated; `sd` is allocated by the call and owned from here.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                null_mut(),
            )
        } != 0;
        if ok {
            Ok(Descriptor(sd))
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by the system for this value alone, freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// A new instance of the pipe with the DACL of `policies`.
fn instance(
    name: &str,
    first: bool,
    policies: &BTreeMap<String, Arc<Policy>>,
) -> io::Result<NamedPipeServer> {
    let sd = Descriptor::parse(&sddl(policies))?;
    let mut attrs = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true);
    // SAFETY: `attrs` and the descriptor it points to live until the call returns.
    unsafe {
        options.create_with_security_attributes_raw(
            name,
            (&mut attrs as *mut SECURITY_ATTRIBUTES).cast::<c_void>(),
        )
    }
}

/// Creates the pipe's first instance (another process holding the name: an error).
pub(crate) fn bind(path: &Path) -> anyhow::Result<Listener> {
    let name = path.to_string_lossy().into_owned();
    if !name.starts_with(r"\\.\pipe\") {
        anyhow::bail!(r"{name}: not a pipe name; give --socket \\.\pipe\NAME");
    }
    let next = instance(&name, true, &BTreeMap::new()).map_err(|e| {
        anyhow::anyhow!("{name}: {e} (another sharekeepd, or another program, holds this pipe)")
    })?;
    Ok(Listener { name, next })
}

/// Nothing to remove: the pipe goes with its last handle.
pub(crate) fn unbind(_path: &Path) {}

impl Listener {
    /// The next connection and who made it (`None`: one whose token could not be read, closed).
    pub(crate) async fn accept(
        &mut self,
        policies: &BTreeMap<String, Arc<Policy>>,
    ) -> io::Result<Option<(RecvHalf, SendHalf, Peer)>> {
        self.next.connect().await?;
        let fresh = instance(&self.name, false, policies)?;
        let connected = std::mem::replace(&mut self.next, fresh);
        let peer = match client_identity(&connected) {
            Ok(peer) => peer,
            Err(e) => {
                tracing::debug!("a pipe client whose token could not be read ({e}): closed");
                return Ok(None);
            }
        };
        let (r, w) = tokio::io::split(connected);
        Ok(Some((r, w, peer)))
    }
}

impl Peer {
    /// The caller (their groups were read with their token).
    pub(crate) async fn caller(&self) -> Caller {
        Caller {
            uid: self.uid,
            groups: self.groups.clone(),
        }
    }
}

fn sid_text(sid: PSID) -> io::Result<String> {
    let mut text: *mut u16 = null_mut();
    // SAFETY: `sid` points into a token buffer alive for the call; `text` is allocated by it.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a NUL-terminated string the conversion allocated.
    let len = (0..).take_while(|&i| unsafe { *text.add(i) } != 0).count();
    // SAFETY: `len` UTF-16 units before the NUL.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: allocated by the conversion, freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(s)
}

/// A token information class read into a buffer aligned for the structures it holds.
fn token_info(token: &OwnedHandle, class: i32) -> io::Result<Vec<u64>> {
    let mut len = 0u32;
    // SAFETY: a size query (no buffer); `len` receives the size needed.
    unsafe {
        GetTokenInformation(
            token.as_raw_handle() as HANDLE,
            class,
            null_mut(),
            0,
            &mut len,
        )
    };
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds `len` bytes at least, 8-aligned.
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle() as HANDLE,
            class,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut len,
        )
    } != 0;
    if ok {
        Ok(buf)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The user SID and enabled group SIDs of the process at the other end of the pipe.
fn client_sids(pipe: &NamedPipeServer) -> io::Result<(String, Vec<String>)> {
    let mut pid = 0u32;
    // SAFETY: a pipe handle this process holds; `pid` receives the client's process id.
    if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle() as HANDLE, &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain calls; the handles returned are owned from here.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened, owned by this value alone.
    let process = unsafe { OwnedHandle::from_raw_handle(process as _) };
    let mut token: HANDLE = null_mut();
    // SAFETY: a process handle we hold; `token` receives a new handle.
    if unsafe { OpenProcessToken(process.as_raw_handle() as HANDLE, TOKEN_QUERY, &mut token) } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened, owned by this value alone.
    let token = unsafe { OwnedHandle::from_raw_handle(token as _) };
    let user = token_info(&token, TokenUser)?;
    // SAFETY: the buffer holds a TOKEN_USER, as GetTokenInformation filled it.
    let user = sid_text(unsafe { (*user.as_ptr().cast::<TOKEN_USER>()).User.Sid })?;
    let groups = token_info(&token, TokenGroups)?;
    let list = groups.as_ptr().cast::<TOKEN_GROUPS>();
    // SAFETY: a TOKEN_GROUPS with GroupCount entries, within the buffer.
    let count = unsafe { (*list).GroupCount } as usize;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: i < GroupCount; the entries follow the count in the same buffer.
        let g = unsafe { *(*list).Groups.as_ptr().add(i) };
        if g.Attributes & SE_GROUP_ENABLED != 0 && g.Attributes & SE_GROUP_USE_FOR_DENY_ONLY == 0 {
            out.push(sid_text(g.Sid)?);
        }
    }
    Ok((user, out))
}

/// Who is at the other end of the pipe, in the numbers the authorisation table uses.
fn client_identity(pipe: &NamedPipeServer) -> io::Result<Peer> {
    let (user, groups) = client_sids(pipe)?;
    Ok(identity(&user, &groups))
}

/// The caller a token's SIDs make: root for SYSTEM or an enabled Administrators group.
fn identity(user: &str, groups: &[String]) -> Peer {
    use sharekeep_policies::accounts::id_of;
    if user == SYSTEM_SID || groups.iter().any(|g| g == ADMINISTRATORS_SID) {
        return Peer {
            uid: 0,
            groups: Vec::new(),
        };
    }
    let mut ids: Vec<u32> = groups.iter().map(|g| id_of(g)).collect();
    ids.sort_unstable();
    ids.dedup();
    Peer {
        uid: id_of(user),
        groups: ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_and_elevated_administrators_are_root_others_are_their_sids() {
        let admin = identity(
            "S-1-5-21-1-2-3-1001",
            &["S-1-1-0".into(), ADMINISTRATORS_SID.into()],
        );
        assert_eq!(admin.uid, 0);
        assert_eq!(identity(SYSTEM_SID, &[]).uid, 0);
        let member = identity("S-1-5-21-1-2-3-1002", &["S-1-5-21-1-2-3-513".into()]);
        assert_ne!(member.uid, 0);
        assert_eq!(
            member.uid,
            sharekeep_policies::accounts::id_of("S-1-5-21-1-2-3-1002")
        );
        assert_eq!(
            member.groups,
            vec![sharekeep_policies::accounts::id_of("S-1-5-21-1-2-3-513")]
        );
    }
}
