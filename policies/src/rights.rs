//! From a policy to the rights each entry must have: the owner, group, mode and access and
//! default ACLs of a directory or file at a given place in the share.
//!
//! ```text
//! rule(path)     = the most specific rule covering path ([access] covers everything)
//! access(p, who) = Write if who ∈ rule.write, Read if who ∈ rule.read, else None
//!                  (a group counts for its members; the share's owner always has Write)
//! traverse       = a principal named in a deeper rule gets --x on each directory above that
//!                  rule's path, so it can reach it without listing what it may not see
//! dir perms      = Write rwx, Read r-x, Traverse --x     file perms = Write rw-, Read r--
//!                  (files keep x where their owner had it)
//! ACL            = u::(owner) u:<named> g::(share group) g:<named> m::(union) o::---
//! default ACL    = the directory's own rule, without traverse entries (new entries inherit)
//! directories get setgid so new files get the share's group
//! ```

use crate::acl::{Acl, Entry, EntryState, Perm, Tag};
use crate::policy::Policy;
use crate::principal::Principal;
use std::collections::{BTreeMap, HashMap};

/// What a principal may do at a place.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Nothing, not even listing.
    #[default]
    None,
    /// Pass through a directory to reach a deeper one (no listing).
    Traverse,
    /// Read and list.
    Read,
    /// Read, list, create, change, delete.
    Write,
}

impl Access {
    /// A word for listings.
    pub fn word(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Traverse => "traverse",
            Access::Read => "read",
            Access::Write => "write",
        }
    }

    fn perm(self, is_dir: bool, exec: bool) -> Perm {
        match (self, is_dir, exec) {
            (Access::None, _, _) | (Access::Traverse, false, _) => 0,
            (Access::Traverse, true, _) => 1,
            (Access::Read, true, _) | (Access::Read, false, true) => 5,
            (Access::Write, true, _) | (Access::Write, false, true) => 7,
            (Access::Read, false, false) => 4,
            (Access::Write, false, false) => 6,
        }
    }

    /// The access a permission gives (the inverse of the mapping above).
    pub fn from_perm(p: Perm, is_dir: bool) -> Access {
        let (r, w, x) = (p & 4 != 0, p & 2 != 0, p & 1 != 0);
        match (is_dir, r, w, x) {
            (true, true, true, true) | (false, _, true, _) => Access::Write,
            (true, true, _, true) | (false, true, _, _) => Access::Read,
            (true, _, _, true) => Access::Traverse,
            _ => Access::None,
        }
    }
}

/// Who gets what at one place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Named users (not the owner).
    pub users: BTreeMap<u32, Access>,
    /// Named groups (not the share's group).
    pub groups: BTreeMap<u32, Access>,
    /// The share's group.
    pub group_obj: Access,
    /// The share's owner may only read (the guard's lockdown took their write away).
    pub owner_read_only: bool,
}

impl Grants {
    fn raise(&mut self, p: &Principal, owner: u32, group: u32, a: Access) {
        let slot = match p {
            Principal::User(u) if u.uid == owner => return,
            Principal::User(u) => self.users.entry(u.uid).or_default(),
            Principal::Group(g) if g.gid == group => &mut self.group_obj,
            Principal::Group(g) => self.groups.entry(g.gid).or_default(),
        };
        *slot = (*slot).max(a);
    }
}

/// A policy compiled for fast per-entry lookups (it holds the policy: it can live as long as
/// its user needs, e.g. in a filesystem answering requests).
#[derive(Debug)]
pub struct Rights {
    policy: std::sync::Arc<Policy>,
    per_rule: Vec<Grants>,
    traverse: HashMap<String, Grants>,
    /// The groups of each named user: a named user's ACL entry shadows the group entries that
    /// would apply to them (POSIX.1e), so it must carry what their groups get too.
    user_groups: HashMap<u32, Vec<u32>>,
}

fn ancestors(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    (0..parts.len()).map(|n| parts[..n].join("/")).collect()
}

impl Rights {
    /// Compiles `policy` (a copy of it).
    pub fn new(policy: &Policy) -> Rights {
        Rights::from_arc(std::sync::Arc::new(policy.clone()))
    }

    /// Compiles a shared policy.
    pub fn from_arc(policy: std::sync::Arc<Policy>) -> Rights {
        let (owner, group) = (policy.owner.uid, policy.group.gid);
        let mut per_rule = Vec::with_capacity(policy.rules.len());
        let mut traverse: HashMap<String, Grants> = HashMap::new();
        for rule in &policy.rules {
            let mut g = Grants::default();
            for p in &rule.read.principals {
                g.raise(p, owner, group, Access::Read);
            }
            for p in &rule.write.principals {
                g.raise(p, owner, group, Access::Write);
            }
            if !rule.path.is_empty() {
                for anc in ancestors(&rule.path) {
                    let t = traverse.entry(anc).or_default();
                    for p in rule.read.principals.iter().chain(&rule.write.principals) {
                        t.raise(p, owner, group, Access::Traverse);
                    }
                }
            }
            per_rule.push(g);
        }
        let mut user_groups = HashMap::new();
        for rule in &policy.rules {
            for p in rule.read.principals.iter().chain(&rule.write.principals) {
                if let Principal::User(u) = p {
                    user_groups
                        .entry(u.uid)
                        .or_insert_with(|| crate::principal::groups_of(u));
                }
            }
        }
        Rights {
            policy,
            per_rule,
            traverse,
            user_groups,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn rule_index(&self, rel: &str) -> usize {
        self.policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.covers(rel))
            .max_by_key(|(_, r)| r.depth())
            .map(|(i, _)| i)
            .expect("the root rule covers everything")
    }

    /// Who gets what at `rel` (traverse rights only count for directories).
    pub fn grants(&self, rel: &str, is_dir: bool) -> Grants {
        let mut g = self.per_rule[self.rule_index(rel)].clone();
        if is_dir {
            if let Some(t) = self.traverse.get(rel) {
                for (u, a) in &t.users {
                    let s = g.users.entry(*u).or_default();
                    *s = (*s).max(*a);
                }
                for (gid, a) in &t.groups {
                    let s = g.groups.entry(*gid).or_default();
                    *s = (*s).max(*a);
                }
                g.group_obj = g.group_obj.max(t.group_obj);
            }
        }
        // A named user gets at least what their groups get here.
        let uids: Vec<u32> = g.users.keys().copied().collect();
        for uid in uids {
            let gids = self.user_groups.get(&uid).map(Vec::as_slice).unwrap_or(&[]);
            let via = self.via_groups(&g, gids);
            let access = g.users.get_mut(&uid).expect("listed");
            *access = (*access).max(via);
        }
        self.lock(&mut g);
        g
    }

    /// What the rule covering `rel` gives, the guard's lockdown applied, without traverse
    /// rights nor the named users raised to what their groups give: what new entries below a
    /// directory inherit (a POSIX default ACL, NTFS inheritable ACEs).
    pub fn own_grants(&self, rel: &str) -> Grants {
        let mut g = self.per_rule[self.rule_index(rel)].clone();
        self.lock(&mut g);
        g
    }

    /// The traverse rights a directory at `rel` carries for deeper rules (none if no rule lies
    /// below it).
    pub fn traverse_grants(&self, rel: &str) -> Option<&Grants> {
        self.traverse.get(rel)
    }

    /// The locked users (not the owner) whose groups still give them write in `g`: where
    /// rights add up (NTFS: allow entries never shadow one another), they need their write
    /// denied explicitly.
    pub fn locked_out(&self, g: &Grants) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .policy
            .lockdown
            .users
            .iter()
            .filter(|l| l.user.uid != self.policy.owner.uid)
            .filter(|l| self.via_groups(g, &l.groups) == Access::Write)
            .map(|l| l.user.uid)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The most `gids` give here: the owning group's entry for the policy's group, the named
    /// group entries for the others.
    fn via_groups(&self, g: &Grants, gids: &[u32]) -> Access {
        gids.iter()
            .map(|gid| {
                if *gid == self.policy.group.gid {
                    g.group_obj
                } else {
                    g.groups.get(gid).copied().unwrap_or_default()
                }
            })
            .max()
            .unwrap_or_default()
    }

    /// The guard's lockdown: write becomes read for the locked users (a named entry, which
    /// shadows the group entries that would let them write), for everyone when the whole
    /// share is locked.
    fn lock(&self, g: &mut Grants) {
        let lock = &self.policy.lockdown;
        if lock.share {
            for a in g.users.values_mut().chain(g.groups.values_mut()) {
                *a = (*a).min(Access::Read);
            }
            g.group_obj = g.group_obj.min(Access::Read);
            g.owner_read_only = true;
        }
        for locked in &lock.users {
            let u = &locked.user;
            if u.uid == self.policy.owner.uid {
                g.owner_read_only = true;
                continue;
            }
            let access = g
                .users
                .get(&u.uid)
                .copied()
                .unwrap_or_default()
                .max(self.via_groups(g, &locked.groups));
            if access > Access::None {
                g.users.insert(u.uid, access.min(Access::Read));
            }
        }
    }

    fn acl(grants: &Grants, is_dir: bool, exec: bool) -> Acl {
        let mut entries = vec![
            Entry {
                tag: Tag::UserObj,
                perm: if grants.owner_read_only {
                    Access::Read
                } else {
                    Access::Write
                }
                .perm(is_dir, exec),
            },
            Entry {
                tag: Tag::GroupObj,
                perm: grants.group_obj.perm(is_dir, exec),
            },
            Entry {
                tag: Tag::Other,
                perm: 0,
            },
        ];
        let mut mask = grants.group_obj.perm(is_dir, exec);
        let mut named = false;
        for (u, a) in &grants.users {
            let perm = a.perm(is_dir, exec);
            if perm != 0 {
                entries.push(Entry {
                    tag: Tag::User(*u),
                    perm,
                });
                mask |= perm;
                named = true;
            }
        }
        for (g, a) in &grants.groups {
            let perm = a.perm(is_dir, exec);
            if perm != 0 {
                entries.push(Entry {
                    tag: Tag::Group(*g),
                    perm,
                });
                mask |= perm;
                named = true;
            }
        }
        if named {
            entries.push(Entry {
                tag: Tag::Mask,
                perm: mask,
            });
        }
        Acl::new(entries)
    }

    /// The state an entry at `rel` must have. `exec`: a file whose owner may execute it keeps
    /// execute rights for those who may read it.
    pub fn desired(&self, rel: &str, is_dir: bool, exec: bool) -> EntryState {
        let grants = self.grants(rel, is_dir);
        let access = Self::acl(&grants, is_dir, exec);
        let default = is_dir.then(|| {
            let mut own = self.per_rule[self.rule_index(rel)].clone();
            self.lock(&mut own);
            Self::acl(&own, true, false)
        });
        let special = if is_dir { 0o2000 } else { 0 };
        EntryState {
            uid: self.policy.owner.uid,
            gid: self.policy.group.gid,
            mode: special | access.mode_bits(),
            access,
            default,
        }
    }

    /// What a user (member of `groups`) may do at `rel` according to the policy, computed the
    /// way the kernel will from the ACL sharekeep sets.
    pub fn user_access(&self, rel: &str, is_dir: bool, uid: u32, groups: &[u32]) -> Access {
        if uid == self.policy.owner.uid {
            let locked = self.policy.lockdown.share
                || self.policy.lockdown.users.iter().any(|u| u.user.uid == uid);
            return if locked { Access::Read } else { Access::Write };
        }
        let want = self.desired(rel, is_dir, false);
        let perm = want
            .access
            .effective(self.policy.owner.uid, self.policy.group.gid, uid, groups);
        Access::from_perm(perm, is_dir)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::{Origin, PrincipalSet, Rule, Samba};
    use crate::principal::{Group, User};
    use std::path::PathBuf;

    fn origin() -> Origin {
        Origin {
            file: PathBuf::from("t.toml"),
            line: 1,
        }
    }
    fn set(p: Vec<Principal>) -> PrincipalSet {
        PrincipalSet {
            principals: p,
            origin: origin(),
            inherited: false,
        }
    }
    pub(crate) fn user(name: &str, uid: u32, gid: u32) -> User {
        User {
            name: name.into(),
            uid,
            gid,
        }
    }
    fn group(name: &str, gid: u32) -> Principal {
        Principal::Group(Group {
            name: name.into(),
            gid,
        })
    }

    /// The commercial example with made-up ids: owner 5000, share group 6000 (sales),
    /// Tarifs read-only for sales, Propositions writable by sales, Confidentiel for 5003 only.
    pub(crate) fn policy() -> Policy {
        let rule = |path: &str, read: Vec<Principal>, write: Vec<Principal>| Rule {
            path: path.into(),
            read: set(read),
            write: set(write),
            origin: origin(),
            comment: None,
        };
        let owner = user("adjoint", 5000, 6000);
        Policy {
            file: PathBuf::from("t.toml"),
            name: "commercial".into(),
            path: PathBuf::from("/srv/c"),
            owner: owner.clone(),
            group: Group {
                name: "sales".into(),
                gid: 6000,
            },
            admins: vec![],
            description: None,
            rules: vec![
                rule(
                    "",
                    vec![group("sales", 6000)],
                    vec![Principal::User(owner.clone())],
                ),
                rule(
                    "Tarifs",
                    vec![group("sales", 6000)],
                    vec![Principal::User(owner)],
                ),
                rule(
                    "Propositions",
                    vec![group("sales", 6000)],
                    vec![group("sales", 6000)],
                ),
                rule(
                    "Direction/Confidentiel",
                    vec![],
                    vec![Principal::User(user("dg", 5003, 5003))],
                ),
            ],
            backup: None,
            samba: Samba::default(),
            guard: None,
            lockdown: Default::default(),
        }
    }

    #[test]
    fn access_table() {
        let p = policy();
        let r = Rights::new(&p);
        type Who = (u32, &'static [u32]);
        let member: Who = (5001, &[5001, 6000]);
        let outsider: Who = (5002, &[5002]);
        let dg: Who = (5003, &[5003]);
        let cases: &[(&str, bool, Who, Access)] = &[
            ("", true, member, Access::Read),
            ("Tarifs", true, member, Access::Read),
            ("Tarifs/grille.csv", false, member, Access::Read),
            ("Propositions", true, member, Access::Write),
            ("Propositions/a/b.docx", false, member, Access::Write),
            ("", true, outsider, Access::None),
            ("Tarifs/grille.csv", false, outsider, Access::None),
            ("", true, (5000, &[6000]), Access::Write),
            ("Tarifs/grille.csv", false, (5000, &[6000]), Access::Write),
            ("", true, dg, Access::Traverse),
            ("Direction", true, dg, Access::Traverse),
            ("Direction", true, member, Access::Read),
            ("Direction/Confidentiel", true, dg, Access::Write),
            ("Direction/Confidentiel", true, member, Access::None),
            ("Direction/Confidentiel/x.pdf", false, member, Access::None),
        ];
        for (path, dir, (uid, groups), want) in cases {
            assert_eq!(
                r.user_access(path, *dir, *uid, groups),
                *want,
                "{uid} on {path:?}"
            );
        }
    }

    #[test]
    fn the_guards_lockdown_leaves_read_and_takes_write() {
        use crate::policy::{Lockdown, LockedUser};
        type Who = (u32, &'static [u32]);
        let member: Who = (5001, &[5001, 6000]);
        let outsider: Who = (5002, &[5002]);
        let dg: Who = (5003, &[5003]);
        let owner: Who = (5000, &[6000]);
        let locked = |who: &[Who], share: bool| {
            let mut p = policy();
            p.lockdown = Lockdown {
                users: who
                    .iter()
                    .map(|(uid, groups)| LockedUser {
                        user: user(&format!("u{uid}"), *uid, groups[0]),
                        groups: groups.to_vec(),
                    })
                    .collect(),
                share,
            };
            Rights::new(&p)
        };
        // (locked users, whole share, path, is_dir, who, access)
        type Case<'a> = (&'a [Who], bool, &'a str, bool, Who, Access);
        let cases: &[Case<'_>] = &[
            // The member wrote through the share's group: a named read entry shadows it.
            (&[member], false, "Propositions", true, member, Access::Read),
            (
                &[member],
                false,
                "Propositions/a/b.docx",
                false,
                member,
                Access::Read,
            ),
            (
                &[member],
                false,
                "Tarifs/grille.csv",
                false,
                member,
                Access::Read,
            ),
            (
                &[member],
                false,
                "Direction/Confidentiel",
                true,
                member,
                Access::None,
            ),
            // Others keep their rights.
            (
                &[member],
                false,
                "Propositions",
                true,
                (5004, &[5004, 6000]),
                Access::Write,
            ),
            (
                &[member],
                false,
                "Direction/Confidentiel",
                true,
                dg,
                Access::Write,
            ),
            (&[member], false, "", true, owner, Access::Write),
            // A user named in a rule; a user with no right stays without.
            (
                &[dg],
                false,
                "Direction/Confidentiel",
                true,
                dg,
                Access::Read,
            ),
            (&[dg], false, "Direction", true, dg, Access::Traverse),
            (&[outsider], false, "", true, outsider, Access::None),
            // The owner: their own entry.
            (
                &[owner],
                false,
                "Tarifs/grille.csv",
                false,
                owner,
                Access::Read,
            ),
            (&[owner], false, "Propositions", true, member, Access::Write),
            // The whole share: everyone reads at most.
            (&[], true, "Propositions", true, member, Access::Read),
            (&[], true, "Direction/Confidentiel", true, dg, Access::Read),
            (&[], true, "", true, owner, Access::Read),
            (
                &[],
                true,
                "Tarifs/grille.csv",
                false,
                outsider,
                Access::None,
            ),
            // No lockdown: the policy's rights.
            (&[], false, "Propositions", true, member, Access::Write),
        ];
        for (who, share, path, dir, (uid, groups), want) in cases {
            let r = locked(who, *share);
            assert_eq!(
                r.user_access(path, *dir, *uid, groups),
                *want,
                "{uid} on {path:?}, locked {who:?} share {share}"
            );
        }
        // New entries inherit the lock: the default ACL carries the named read entry.
        let want = locked(&[member], false).desired("Propositions", true, false);
        let default = want.default.expect("a folder has a default ACL");
        assert_eq!(
            default.effective(5000, 6000, 5001, &[5001, 6000]),
            5,
            "{default:?}"
        );
    }

    #[test]
    fn renames_that_keep_every_right_below() {
        let p = policy();
        let cases: &[(&str, &str, bool)] = &[
            ("Propositions/a", "Propositions/b", true),
            ("Propositions/x/a", "Propositions/b", true),
            ("Divers/a", "Autres/b", true),
            ("Propositions/a", "Tarifs/a", false),
            ("Propositions/a", "Divers/a", false),
            // A rule lies inside: its folder moves away from it.
            ("Direction", "Direction2", false),
            ("Autres", "Direction", false),
            ("a", "Direction/Confidentiel/x", false),
            ("Tarifs", "Tarifs2", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(p.same_rights_below(a, b), *want, "{a} -> {b}");
            assert_eq!(p.same_rights_below(b, a), *want, "{b} -> {a}");
        }
    }

    #[test]
    fn words_name_each_access() {
        let words: Vec<&str> = [Access::None, Access::Traverse, Access::Read, Access::Write]
            .iter()
            .map(|a| a.word())
            .collect();
        assert_eq!(words, ["none", "traverse", "read", "write"]);
    }

    /// Named groups and users besides the share's group: their own ACL entries, and a mask
    /// that lets each through.
    #[test]
    fn named_groups_and_users_get_their_entries_and_the_mask_covers_them() {
        let mut p = policy();
        // The IT group (7000) reads Tarifs; an auditor (5004) reads Propositions.
        p.rules[1].read.principals.push(group("dsi", 7000));
        p.rules[2]
            .read
            .principals
            .push(Principal::User(user("audit", 5004, 5004)));
        let r = Rights::new(&p);
        let tarifs = r.desired("Tarifs", true, false);
        assert_eq!(
            tarifs.access.to_string(),
            "u::rwx,g::r-x,g:7000:r-x,m::r-x,o::---",
            "{}",
            tarifs.access
        );
        let file = r.desired("Tarifs/grille.csv", false, false);
        assert_eq!(
            file.access.to_string(),
            "u::rw-,g::r--,g:7000:r--,m::r--,o::---"
        );
        // Executables: x for every reader, named ones included.
        let tool = r.desired("Tarifs/outil.sh", false, true);
        assert_eq!(
            tool.access.to_string(),
            "u::rwx,g::r-x,g:7000:r-x,m::r-x,o::---"
        );
        // A named user's write widens the mask beyond the share group's read.
        p.rules[1]
            .write
            .principals
            .push(Principal::User(user("stagiaire", 5005, 5005)));
        let r = Rights::new(&p);
        let t = r.desired("Tarifs/grille.csv", false, false);
        assert_eq!(
            t.access.to_string(),
            "u::rw-,u:5005:rw-,g::r--,g:7000:r--,m::rw-,o::---"
        );
        assert_eq!(
            r.user_access("Tarifs/grille.csv", false, 5005, &[5005]),
            Access::Write
        );
        assert_eq!(
            r.user_access("Tarifs/grille.csv", false, 5006, &[7000]),
            Access::Read
        );
        assert_eq!(
            r.user_access("Tarifs/grille.csv", false, 5006, &[5006]),
            Access::None
        );
        let auditor = r.desired("Propositions/p.docx", false, false);
        assert_eq!(
            auditor.access.to_string(),
            "u::rw-,u:5004:r--,g::rw-,m::rw-,o::---"
        );
    }

    #[test]
    fn directories_get_setgid_and_a_default_acl_files_do_not() {
        let p = policy();
        let r = Rights::new(&p);
        let d = r.desired("Propositions", true, false);
        assert_eq!(d.mode, 0o2770);
        assert_eq!(
            d.default.as_ref().unwrap().to_string(),
            "u::rwx,g::rwx,o::---"
        );
        let f = r.desired("Tarifs/grille.csv", false, false);
        assert_eq!(f.mode, 0o640);
        assert!(f.default.is_none());
        // Executables stay executable for those who may read them.
        assert_eq!(r.desired("Tarifs/outil.sh", false, true).mode, 0o750);
        // Traverse-only principals are not inherited by new entries.
        let root = r.desired("", true, false);
        assert!(
            root.access.to_string().contains("u:5003:--x"),
            "{}",
            root.access
        );
        assert!(!root.default.unwrap().to_string().contains("5003"));
    }
}
