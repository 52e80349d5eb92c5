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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
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
        let x = u8::from(exec);
        match (self, is_dir) {
            (Access::None, _) | (Access::Traverse, false) => 0,
            (Access::Traverse, true) => 1,
            (Access::Read, true) => 5,
            (Access::Write, true) => 7,
            (Access::Read, false) => 4 | x,
            (Access::Write, false) => 6 | x,
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

/// A policy compiled for fast per-entry lookups.
#[derive(Debug)]
pub struct Rights<'p> {
    policy: &'p Policy,
    per_rule: Vec<Grants>,
    traverse: HashMap<String, Grants>,
}

fn ancestors(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    (0..parts.len()).map(|n| parts[..n].join("/")).collect()
}

impl<'p> Rights<'p> {
    /// Compiles `policy`.
    pub fn new(policy: &'p Policy) -> Rights<'p> {
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
        Rights {
            policy,
            per_rule,
            traverse,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &'p Policy {
        self.policy
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
        g
    }

    fn acl(grants: &Grants, is_dir: bool, exec: bool) -> Acl {
        let mut entries = vec![
            Entry {
                tag: Tag::UserObj,
                perm: Access::Write.perm(is_dir, exec),
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
        let default = is_dir.then(|| Self::acl(&self.per_rule[self.rule_index(rel)], true, false));
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
            return Access::Write;
        }
        let want = self.desired(rel, is_dir, false);
        let perm = want
            .access
            .effective(self.policy.owner.uid, self.policy.group.gid, uid, groups);
        Access::from_perm(perm, is_dir)
    }
}
