//! The Windows counterpart of `samba.rs`: the SMB share a Windows workstation exports for a
//! policy (`NetShareAdd` / `NetShareSetInfo`, level 502). As with Samba, the share level only
//! opens the door and NTFS does the rest: Change for everyone the policy lets write somewhere,
//! Read for those it only lets read, Full Control for Administrators; the guard's lockdown
//! leaves the locked users Read (and everyone, when the whole share is locked). Pure here
//! (tested on Linux); the call itself is in `win32.rs`.

use crate::acl::ntfs::{mask, Ace, Security, Sid, SidLookup, Unresolved, ADMINISTRATORS};
use crate::policy::Policy;
use crate::principal::Principal;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a share is to be: name, folder, remark, and its permissions (a DACL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsShare {
    /// Share name on the network.
    pub name: String,
    /// The folder.
    pub path: PathBuf,
    /// Remark shown to clients.
    pub remark: String,
    /// Share permissions.
    pub permissions: Security,
}

/// The share for one policy (`None` when it is not exported: `[samba] export = false`).
pub fn share_of(policy: &Policy, sids: &dyn SidLookup) -> Result<Option<WindowsShare>, Unresolved> {
    if !policy.samba.export {
        return Ok(None);
    }
    let sid = |p: &Principal| match p {
        Principal::User(u) => sids
            .user(u.uid)
            .ok_or_else(|| Unresolved(format!("user {}", u.name))),
        Principal::Group(g) => sids
            .group(g.gid)
            .ok_or_else(|| Unresolved(format!("group @{}", g.name))),
    };
    // Per account, the most it may do anywhere: Change (writes somewhere) or Read.
    let mut rights: BTreeMap<Sid, u32> = BTreeMap::new();
    let mut raise = |s: Sid, m: u32| {
        let slot = rights.entry(s).or_insert(0);
        if m == mask::MODIFY || *slot == 0 {
            *slot = m;
        }
    };
    raise(sid(&Principal::User(policy.owner.clone()))?, mask::MODIFY);
    for a in &policy.admins {
        raise(sid(a)?, mask::READ_EXECUTE);
    }
    for r in &policy.rules {
        for p in &r.read.principals {
            raise(sid(p)?, mask::READ_EXECUTE);
        }
        for p in &r.write.principals {
            raise(sid(p)?, mask::MODIFY);
        }
    }
    let lock = &policy.lockdown;
    for u in &lock.users {
        if let Some(r) = rights.get_mut(&sid(&Principal::User(u.user.clone()))?) {
            *r = mask::READ_EXECUTE;
        }
    }
    if lock.share {
        rights.values_mut().for_each(|r| *r = mask::READ_EXECUTE);
    }
    let admins = Sid::parse(ADMINISTRATORS).expect("a valid SID");
    rights.insert(admins, mask::FULL);
    let mut aces: Vec<Ace> = rights
        .into_iter()
        .map(|(sid, m)| Ace {
            allow: true,
            sid,
            mask: m,
            flags: 0,
        })
        .collect();
    aces.sort();
    Ok(Some(WindowsShare {
        name: policy.samba.name.clone(),
        path: policy.path.clone(),
        remark: policy
            .samba
            .comment
            .clone()
            .or_else(|| policy.description.clone())
            .unwrap_or_default(),
        permissions: Security {
            owner: None,
            group: None,
            protected: false,
            aces,
        },
    }))
}

/// What exporting a share did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareChange {
    /// The share did not exist: added.
    Added,
    /// It existed with another folder, remark or permissions: updated.
    Updated,
    /// It was as the policy says.
    Unchanged,
}

/// Adds or updates the share on this machine (`dry_run`: says what it would do, changes
/// nothing). A share of that name on another folder is updated to the policy's folder.
#[cfg(windows)]
pub fn export(share: &WindowsShare, dry_run: bool) -> std::io::Result<ShareChange> {
    use crate::acl::ntfs::NtfsState;
    let have = crate::win32::share_info(&share.name)?;
    let change = match have {
        None => ShareChange::Added,
        Some((path, remark, sddl)) => {
            let perms = Security::from_sddl(&sddl).map_err(std::io::Error::other)?;
            let same = std::path::Path::new(&path) == share.path
                && remark == share.remark
                && NtfsState::of(&perms).explicit == NtfsState::of(&share.permissions).explicit;
            if same {
                ShareChange::Unchanged
            } else {
                ShareChange::Updated
            }
        }
    };
    if !dry_run && change != ShareChange::Unchanged {
        crate::win32::set_share(
            &share.name,
            &share.path,
            &share.remark,
            &share.permissions.to_sddl(),
            change == ShareChange::Added,
        )?;
    }
    Ok(change)
}

/// Removes the share `name` from this machine (its folder stays); false if there was none.
#[cfg(windows)]
pub fn unexport(name: &str) -> std::io::Result<bool> {
    // Looked up first: NetShareDel's own "not found" is not given everywhere (Wine's succeeds).
    if crate::win32::share_info(name)?.is_none() {
        return Ok(false);
    }
    crate::win32::remove_share(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::LockedUser;
    use crate::rights::tests::{policy, user};
    use std::collections::HashMap;

    struct Table;
    impl SidLookup for Table {
        fn user(&self, uid: u32) -> Option<Sid> {
            let m = HashMap::from([
                (5000, "S-1-5-21-7-1000"),
                (5003, "S-1-5-21-7-1003"),
                (5004, "S-1-5-21-7-1004"),
            ]);
            m.get(&uid).and_then(|s| Sid::parse(s))
        }
        fn group(&self, gid: u32) -> Option<Sid> {
            (gid == 6000)
                .then(|| Sid::parse("S-1-5-21-7-2000"))
                .flatten()
        }
    }

    fn perms(p: &Policy) -> String {
        share_of(p, &Table).unwrap().unwrap().permissions.to_sddl()
    }

    #[test]
    fn the_share_opens_the_door_and_ntfs_does_the_rest() {
        let mut p = policy();
        p.samba.export = true;
        p.samba.name = "Commercial".into();
        // Sales write in Propositions: Change; dg writes in Confidentiel: Change; the owner
        // Change; Administrators Full Control. Nobody else.
        assert_eq!(
            perms(&p),
            "D:AI(A;;0x1301bf;;;S-1-5-21-7-1000)(A;;0x1301bf;;;S-1-5-21-7-1003)\
             (A;;0x1301bf;;;S-1-5-21-7-2000)(A;;FA;;;S-1-5-32-544)"
        );
        // Sales only read anywhere: Read.
        p.rules.retain(|r| r.path != "Propositions");
        assert!(
            perms(&p).contains("(A;;0x1200a9;;;S-1-5-21-7-2000)"),
            "{}",
            perms(&p)
        );
        // The guard's locks: a locked member reads; the whole share locked, everyone reads.
        let mut p = policy();
        p.samba.export = true;
        p.lockdown.users.push(LockedUser {
            user: user("dg", 5003, 5003),
            groups: vec![5003],
        });
        assert!(
            perms(&p).contains("(A;;0x1200a9;;;S-1-5-21-7-1003)"),
            "{}",
            perms(&p)
        );
        p.lockdown.share = true;
        assert!(!perms(&p).contains("0x1301bf"), "{}", perms(&p));
        assert!(perms(&p).contains("(A;;FA;;;S-1-5-32-544)"));
        // Not exported: no share.
        p.samba.export = false;
        assert_eq!(share_of(&p, &Table).unwrap(), None);
    }
}
