//! Windows accounts behind a policy's names: `alice`, `PC\alice`, `@Commercial`,
//! `@DOMAINE\Ventes`, or a SID (`S-1-5-21-…`) are looked up with `LookupAccountName`
//! (`LookupAccountSid` for a SID). The policy model counts principals by number, so each SID
//! gets a number for the life of the process (from 0x1_0000, never 0, which means root on
//! Unix); the NTFS translation turns them back into SIDs.

use crate::acl::ntfs::{Sid, SidLookup};
use crate::principal::{Group, ResolveError, User};
use crate::win32;
use std::sync::Mutex;

const BASE: u32 = 0x1_0000;
const SID_TYPE_USER: i32 = 1;
const SID_TYPE_GROUP: i32 = 2;
const SID_TYPE_ALIAS: i32 = 4;
const SID_TYPE_WELL_KNOWN_GROUP: i32 = 5;

static SIDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The number standing for a SID in this process.
pub fn id_of(sid: &str) -> u32 {
    let mut sids = SIDS.lock().expect("lock");
    let i = match sids.iter().position(|s| s == sid) {
        Some(i) => i,
        None => {
            sids.push(sid.to_string());
            sids.len() - 1
        }
    };
    BASE + i as u32
}

/// The SID a number stands for.
pub fn sid_of(id: u32) -> Option<Sid> {
    let sids = SIDS.lock().expect("lock");
    let i = id.checked_sub(BASE)? as usize;
    sids.get(i).and_then(|s| Sid::parse(s))
}

/// The SIDs of the accounts named in policies, from the numbers they were given.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accounts;

impl SidLookup for Accounts {
    fn user(&self, uid: u32) -> Option<Sid> {
        sid_of(uid)
    }
    fn group(&self, gid: u32) -> Option<Sid> {
        sid_of(gid)
    }
}

/// Looks `text` up: its name as Windows spells it, its SID and its type.
fn lookup(text: &str) -> Option<(String, String, i32)> {
    if text.to_ascii_uppercase().starts_with("S-1-") {
        let sid = Sid::parse(text)?;
        let name = win32::lookup_sid(sid.as_str())?;
        let (_, kind, _) = win32::lookup_name(&name)?;
        return Some((name, sid.as_str().to_string(), kind));
    }
    let (sid, kind, _) = win32::lookup_name(text)?;
    Some((text.to_string(), sid, kind))
}

/// A user account.
pub fn user(text: &str) -> Result<User, ResolveError> {
    match lookup(text) {
        Some((name, sid, SID_TYPE_USER)) => {
            let id = id_of(&sid);
            Ok(User {
                name,
                uid: id,
                gid: id,
            })
        }
        _ => Err(ResolveError::UnknownUser(text.to_string())),
    }
}

/// A group: a local group (alias), a domain group or a well-known one (Everyone…).
pub fn group(text: &str) -> Result<Group, ResolveError> {
    match lookup(text) {
        Some((name, sid, SID_TYPE_GROUP | SID_TYPE_ALIAS | SID_TYPE_WELL_KNOWN_GROUP)) => {
            Ok(Group {
                name,
                gid: id_of(&sid),
            })
        }
        _ => Err(ResolveError::UnknownGroup(text.to_string())),
    }
}

/// The local groups the user belongs to (directly or through a domain group), as numbers,
/// with the user's own.
pub fn groups_of(user: &User) -> Vec<u32> {
    let mut out = vec![user.gid];
    for g in win32::local_groups_of(&user.name) {
        if let Some((sid, _, _)) = win32::lookup_name(&g) {
            out.push(id_of(&sid));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A local group's members (`DOMAIN\name`).
pub fn members_of(group: &Group) -> Vec<String> {
    let mut out = win32::local_group_members(&group.name);
    out.sort();
    out.dedup();
    out
}

/// The account this process runs as (the tests' share owner).
pub fn current_user() -> Option<String> {
    win32::current_user()
}
