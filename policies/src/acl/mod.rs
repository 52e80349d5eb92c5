//! Rights on disk. POSIX ACLs as values here: entries, the kernel's xattr encoding
//! (`system.posix_acl_access`, `system.posix_acl_default`), the short text form `getfacl` users
//! know, and the conversion to and from mode bits; NTFS ACLs as values in `ntfs.rs`. The
//! filesystem side is the [`AclSystem`] trait the policy walk is written against: `linux.rs`
//! (descriptors, xattrs), `windows.rs` (handles, security descriptors); [`Native`] is this
//! platform's.
//!
//! ```text
//! xattr = version:u32le(=2) entry*          entry = tag:u16le perm:u16le id:u32le
//! tags: USER_OBJ 1, USER 2, GROUP_OBJ 4, GROUP 8, MASK 0x10, OTHER 0x20; id is -1 unless named
//! ```

#[cfg(target_os = "linux")]
pub mod linux;
pub mod ntfs;
#[cfg(windows)]
pub mod windows;

/// This platform's rights on disk.
#[cfg(target_os = "linux")]
pub type Native = linux::PosixAcls;
/// This platform's rights on disk.
#[cfg(windows)]
pub type Native = windows::NtfsAcls;

use crate::apply::StateView;
use crate::principal::User;
use crate::rights::{Access, Rights};
use crate::walk::Tree;

use std::fmt;

/// Read, write, execute bits (4, 2, 1).
pub type Perm = u8;

/// `rwx` text of a permission.
pub fn perm_text(p: Perm) -> String {
    let mut s = String::with_capacity(3);
    s.push(if p & 4 != 0 { 'r' } else { '-' });
    s.push(if p & 2 != 0 { 'w' } else { '-' });
    s.push(if p & 1 != 0 { 'x' } else { '-' });
    s
}

/// An entry's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    /// The owner.
    UserObj,
    /// A named user.
    User(u32),
    /// The owning group.
    GroupObj,
    /// A named group.
    Group(u32),
    /// The mask (maximum for the group class).
    Mask,
    /// Everyone else.
    Other,
}

/// One ACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// Who.
    pub tag: Tag,
    /// What.
    pub perm: Perm,
}

/// An ACL, kept in canonical order (the kernel's order: by tag, then id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Acl {
    entries: Vec<Entry>,
}

const VERSION: u32 = 2;
const UNDEFINED: u32 = u32::MAX;

impl Acl {
    /// An ACL from entries (sorted and de-duplicated, the last entry for a tag wins).
    pub fn new(mut entries: Vec<Entry>) -> Acl {
        entries.sort_by_key(|e| e.tag);
        entries.dedup_by_key(|e| e.tag);
        Acl { entries }
    }

    /// The minimal ACL equivalent to mode bits.
    pub fn from_mode(mode: u32) -> Acl {
        Acl::new(vec![
            Entry {
                tag: Tag::UserObj,
                perm: ((mode >> 6) & 7) as u8,
            },
            Entry {
                tag: Tag::GroupObj,
                perm: ((mode >> 3) & 7) as u8,
            },
            Entry {
                tag: Tag::Other,
                perm: (mode & 7) as u8,
            },
        ])
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether it has only owner, group and other entries (mode bits say it all).
    pub fn is_minimal(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e.tag, Tag::UserObj | Tag::GroupObj | Tag::Other))
    }

    /// The permission of a tag, if present.
    pub fn get(&self, tag: Tag) -> Option<Perm> {
        self.entries.iter().find(|e| e.tag == tag).map(|e| e.perm)
    }

    /// The mode permission bits this ACL implies (group bits are the mask when there is one).
    pub fn mode_bits(&self) -> u32 {
        let u = self.get(Tag::UserObj).unwrap_or(0) as u32;
        let g = self.get(Tag::Mask).or(self.get(Tag::GroupObj)).unwrap_or(0) as u32;
        let o = self.get(Tag::Other).unwrap_or(0) as u32;
        (u << 6) | (g << 3) | o
    }

    /// The kernel's xattr encoding.
    pub fn to_xattr(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 8 * self.entries.len());
        out.extend_from_slice(&VERSION.to_le_bytes());
        for e in &self.entries {
            let (tag, id) = match e.tag {
                Tag::UserObj => (0x01u16, UNDEFINED),
                Tag::User(u) => (0x02, u),
                Tag::GroupObj => (0x04, UNDEFINED),
                Tag::Group(g) => (0x08, g),
                Tag::Mask => (0x10, UNDEFINED),
                Tag::Other => (0x20, UNDEFINED),
            };
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&(e.perm as u16).to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// Decodes the kernel's xattr encoding.
    pub fn from_xattr(bytes: &[u8]) -> Option<Acl> {
        if bytes.len() < 4 || !(bytes.len() - 4).is_multiple_of(8) {
            return None;
        }
        if u32::from_le_bytes(bytes[..4].try_into().ok()?) != VERSION {
            return None;
        }
        let mut entries = Vec::new();
        for e in bytes[4..].chunks_exact(8) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]) as u8 & 7;
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let tag = match tag {
                0x01 => Tag::UserObj,
                0x02 => Tag::User(id),
                0x04 => Tag::GroupObj,
                0x08 => Tag::Group(id),
                0x10 => Tag::Mask,
                0x20 => Tag::Other,
                _ => return None,
            };
            entries.push(Entry { tag, perm });
        }
        Some(Acl::new(entries))
    }

    /// Short text with names: `u::rwx,u:alice:r-x,g::---,g:commercial:rwx,m::rwx,o::---`.
    pub fn text(&self, names: &dyn Fn(Tag) -> String) -> String {
        self.entries
            .iter()
            .map(|e| {
                let who = match e.tag {
                    Tag::UserObj => "u:".to_string(),
                    Tag::User(_) => format!("u:{}", names(e.tag)),
                    Tag::GroupObj => "g:".to_string(),
                    Tag::Group(_) => format!("g:{}", names(e.tag)),
                    Tag::Mask => "m:".to_string(),
                    Tag::Other => "o:".to_string(),
                };
                format!("{who}:{}", perm_text(e.perm))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// What the kernel grants `uid` (member of `groups`) through this ACL, for an entry owned by
    /// `owner`:`group` (POSIX.1e access check).
    pub fn effective(&self, owner: u32, group: u32, uid: u32, groups: &[u32]) -> Perm {
        if uid == 0 {
            return 7;
        }
        if uid == owner {
            return self.get(Tag::UserObj).unwrap_or(0);
        }
        let mask = self.get(Tag::Mask).unwrap_or(7);
        if let Some(p) = self.get(Tag::User(uid)) {
            return p & mask;
        }
        let mut matched = false;
        let mut best = 0;
        for e in &self.entries {
            let hit = match e.tag {
                Tag::GroupObj => groups.contains(&group),
                Tag::Group(g) => groups.contains(&g),
                _ => false,
            };
            if hit {
                matched = true;
                best |= e.perm;
            }
        }
        if matched {
            return best & mask;
        }
        self.get(Tag::Other).unwrap_or(0)
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(&|t| match t {
            Tag::User(u) => u.to_string(),
            Tag::Group(g) => g.to_string(),
            _ => String::new(),
        }))
    }
}

/// The rights-relevant state of one filesystem entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Mode bits including setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
    /// Access ACL (minimal when the entry has none beyond its mode).
    pub access: Acl,
    /// Default ACL (directories), if any.
    pub default: Option<Acl>,
}

/// An open entry of an [`AclSystem`]'s walk.
pub type Handle<S> = <<S as AclSystem>::Tree as Tree>::Handle;
/// The metadata an [`AclSystem`]'s walk reads from a handle.
pub type Meta<S> = <<S as AclSystem>::Tree as Tree>::Meta;

/// Rights on one platform's filesystem, as the policy walk and `explain` use them: entries
/// opened by the [`Tree`] (never through a link), their state read, compared with what the
/// policy wants, written, shown and judged for one user.
pub trait AclSystem: Default + Sync {
    /// How entries are opened and listed.
    type Tree: Tree;
    /// The walk this system's entries are opened with.
    fn tree(&self) -> &Self::Tree;
    /// The rights-relevant state of an entry.
    type State: Clone + PartialEq + Send;
    /// What [`AclSystem::view`] remembers between calls (names looked up).
    type Names: Default + Send;
    /// The entry's state, from its handle and the metadata the walk already read.
    fn read(
        &self,
        h: &Handle<Self>,
        meta: &Meta<Self>,
        is_dir: bool,
    ) -> std::io::Result<Self::State>;
    /// The state the policy wants for the entry at `rel` (which has `have` now).
    fn desired(
        &self,
        rights: &Rights,
        rel: &str,
        is_dir: bool,
        have: &Self::State,
    ) -> std::io::Result<Self::State>;
    /// What differs, in words (owner, group, mode, acl…).
    fn differences(have: &Self::State, want: &Self::State) -> Vec<&'static str>;
    /// The state in words, for plans.
    fn view(names: &mut Self::Names, s: &Self::State) -> StateView;
    /// Makes the entry match `want`, changing only what differs from `have`.
    fn write(
        &self,
        h: &Handle<Self>,
        is_dir: bool,
        have: &Self::State,
        want: &Self::State,
    ) -> std::io::Result<()>;
    /// What the state lets `user` (member of `groups`) do with the entry itself.
    fn access(&self, s: &Self::State, user: &User, groups: &[u32], is_dir: bool) -> Access;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Acl {
        Acl::new(vec![
            Entry {
                tag: Tag::Other,
                perm: 0,
            },
            Entry {
                tag: Tag::Group(1001),
                perm: 5,
            },
            Entry {
                tag: Tag::UserObj,
                perm: 7,
            },
            Entry {
                tag: Tag::User(1002),
                perm: 7,
            },
            Entry {
                tag: Tag::GroupObj,
                perm: 5,
            },
            Entry {
                tag: Tag::Mask,
                perm: 7,
            },
        ])
    }

    #[test]
    fn xattr_round_trip_in_canonical_order() {
        let acl = sample();
        let tags: Vec<Tag> = acl.entries().iter().map(|e| e.tag).collect();
        assert_eq!(
            tags,
            vec![
                Tag::UserObj,
                Tag::User(1002),
                Tag::GroupObj,
                Tag::Group(1001),
                Tag::Mask,
                Tag::Other
            ]
        );
        assert_eq!(Acl::from_xattr(&acl.to_xattr()).unwrap(), acl);
        assert_eq!(
            acl.to_string(),
            "u::rwx,u:1002:rwx,g::r-x,g:1001:r-x,m::rwx,o::---"
        );
        assert_eq!(acl.mode_bits(), 0o770);
        assert!(Acl::from_xattr(b"\x01\0\0\0").is_none());
    }

    #[test]
    fn effective_rights_follow_posix_1e() {
        let acl = Acl::new(vec![
            Entry {
                tag: Tag::UserObj,
                perm: 7,
            },
            Entry {
                tag: Tag::User(2000),
                perm: 7,
            },
            Entry {
                tag: Tag::GroupObj,
                perm: 0,
            },
            Entry {
                tag: Tag::Group(3000),
                perm: 5,
            },
            Entry {
                tag: Tag::Mask,
                perm: 5,
            },
            Entry {
                tag: Tag::Other,
                perm: 0,
            },
        ]);
        let cases: &[(u32, &[u32], Perm)] = &[
            (1000, &[1000], 7),      // owner
            (2000, &[2000], 5),      // named user, masked
            (2500, &[3000], 5),      // group member
            (2600, &[100, 1000], 0), // owning group: ---
            (2700, &[9], 0),         // other
            (0, &[0], 7),            // root
        ];
        for (uid, groups, want) in cases {
            assert_eq!(acl.effective(1000, 1000, *uid, groups), *want, "uid {uid}");
        }
    }
}
