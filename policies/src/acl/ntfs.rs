//! NTFS rights as values, on every platform: SIDs, access masks, ACEs, security descriptors in
//! SDDL (the text form Windows itself prints, parsed and written here), and the translation of
//! a policy into the owner and explicit ACEs each entry of a share must carry. Pure: the
//! Windows side (`windows.rs`) only moves SDDL to and from handles, so everything that decides
//! rights is tested on Linux too.
//!
//! ```text
//! read  = Read & Execute (0x1200a9)    write = Modify (0x1301bf), never Full Control
//! traverse (a deeper rule's reader)    = 0x1000a0 on that folder only (no listing)
//! SYSTEM and Administrators            = Full Control (the service and the machine's admins)
//! a folder's own rights                : object- and container-inherit (OICI)
//! the share root                       : protected DACL (nothing inherited from above)
//! below                                : inheritance kept; explicit ACEs for what the entry's
//!                                        rule adds to what it inherits; a rule that takes
//!                                        something away protects that entry's DACL instead
//! the guard's lockdown                 : a deny-write ACE for a locked user whose groups
//!                                        still give write (allow ACEs add up on NTFS)
//! owner                                = the share's owner
//! ```

use crate::rights::{Access, Grants, Rights};
use std::collections::BTreeMap;
use std::fmt;

/// A security identifier in its `S-1-…` form (or an SDDL alias this module does not know,
/// kept as written).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid(String);

/// `LocalSystem`, whom the service runs as.
pub const SYSTEM: &str = "S-1-5-18";
/// `BUILTIN\Administrators`.
pub const ADMINISTRATORS: &str = "S-1-5-32-544";

/// SDDL's SID abbreviations that do not depend on a domain.
const SID_ALIASES: &[(&str, &str)] = &[
    ("SY", "S-1-5-18"),
    ("BA", "S-1-5-32-544"),
    ("BU", "S-1-5-32-545"),
    ("BG", "S-1-5-32-546"),
    ("PU", "S-1-5-32-547"),
    ("BO", "S-1-5-32-551"),
    ("RD", "S-1-5-32-555"),
    ("WD", "S-1-1-0"),
    ("CO", "S-1-3-0"),
    ("CG", "S-1-3-1"),
    ("OW", "S-1-3-4"),
    ("NU", "S-1-5-2"),
    ("IU", "S-1-5-4"),
    ("SU", "S-1-5-6"),
    ("AN", "S-1-5-7"),
    ("PS", "S-1-5-10"),
    ("AU", "S-1-5-11"),
    ("LS", "S-1-5-19"),
    ("NS", "S-1-5-20"),
];

impl Sid {
    /// A SID from `S-1-…` text or an SDDL alias (`SY`, `BA`…); `None` if neither.
    pub fn parse(text: &str) -> Option<Sid> {
        if let Some((_, sid)) = SID_ALIASES.iter().find(|(a, _)| *a == text) {
            return Some(Sid((*sid).to_string()));
        }
        let upper = text.to_ascii_uppercase();
        let rest = upper.strip_prefix("S-1-")?;
        let ok = !rest.is_empty()
            && rest
                .split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            return Some(Sid(upper));
        }
        // A domain-relative alias (DA, DU, LA…): kept as written, compared as text.
        (text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()))
            .then(|| Sid(text.to_string()))
    }

    /// The SID `text` names, which must be valid (constants of this module).
    fn known(text: &str) -> Sid {
        Sid::parse(text).expect("a valid SID")
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Access mask bits and the usual combinations Explorer shows.
pub mod mask {
    /// Full Control.
    pub const FULL: u32 = 0x001f_01ff;
    /// Modify: read, write, execute, delete; not change rights nor take ownership.
    pub const MODIFY: u32 = 0x0013_01bf;
    /// Read & Execute (on a folder: list and traverse).
    pub const READ_EXECUTE: u32 = 0x0012_00a9;
    /// Traverse a folder (and read its attributes) without listing it.
    pub const TRAVERSE: u32 = 0x0010_00a0;
    /// What a write takes: data, append, attributes, extended attributes, deleting the entry
    /// or children.
    pub const WRITE: u32 = 0x0001_0156;
}

/// Inheritance flags of an ACE.
pub mod flags {
    /// Files below inherit it (OI).
    pub const OBJECT_INHERIT: u8 = 0x01;
    /// Folders below inherit it (CI).
    pub const CONTAINER_INHERIT: u8 = 0x02;
    /// Inherited one level only (NP).
    pub const NO_PROPAGATE: u8 = 0x04;
    /// Not for this entry, only for what inherits it (IO).
    pub const INHERIT_ONLY: u8 = 0x08;
    /// Inherited from a parent, not set here (ID).
    pub const INHERITED: u8 = 0x10;
}

const RIGHT_ALIASES: &[(&str, u32)] = &[
    ("FA", mask::FULL),
    ("FR", 0x0012_0089),
    ("FW", 0x0012_0116),
    ("FX", 0x0012_00a0),
    ("GA", 0x1000_0000),
    ("GX", 0x2000_0000),
    ("GW", 0x4000_0000),
    ("GR", 0x8000_0000),
    ("SD", 0x0001_0000),
    ("RC", 0x0002_0000),
    ("WD", 0x0004_0000),
    ("WO", 0x0008_0000),
    ("CC", 0x0000_0001),
    ("DC", 0x0000_0002),
    ("LC", 0x0000_0004),
    ("SW", 0x0000_0008),
    ("RP", 0x0000_0010),
    ("WP", 0x0000_0020),
    ("DT", 0x0000_0040),
    ("LO", 0x0000_0080),
    ("CR", 0x0000_0100),
];

const FLAG_ALIASES: &[(&str, u8)] = &[
    ("OI", flags::OBJECT_INHERIT),
    ("CI", flags::CONTAINER_INHERIT),
    ("NP", flags::NO_PROPAGATE),
    ("IO", flags::INHERIT_ONLY),
    ("ID", flags::INHERITED),
];

/// One access control entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ace {
    /// Deny (`false`, sorted first as Windows wants) or allow (`true`).
    pub allow: bool,
    /// Who.
    pub sid: Sid,
    /// What.
    pub mask: u32,
    /// Inheritance ([`flags`]).
    pub flags: u8,
}

impl Ace {
    fn sddl(&self) -> String {
        let mut f = String::new();
        for (text, bit) in FLAG_ALIASES {
            if self.flags & bit != 0 {
                f.push_str(text);
            }
        }
        let rights = match self.mask {
            mask::FULL => "FA".to_string(),
            m => format!("{m:#x}"),
        };
        let kind = if self.allow { "A" } else { "D" };
        format!("({kind};{f};{rights};;;{})", self.sid)
    }

    /// Whether it was inherited from a parent.
    pub fn inherited(&self) -> bool {
        self.flags & flags::INHERITED != 0
    }
}

/// An entry's owner and DACL (the part of a security descriptor sharekeep manages).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// Owner, if the descriptor names one.
    pub owner: Option<Sid>,
    /// Primary group (kept as read, never set).
    pub group: Option<Sid>,
    /// The DACL does not inherit from the parent (`P`).
    pub protected: bool,
    /// ACEs in the descriptor's order, inherited ones included.
    pub aces: Vec<Ace>,
}

/// Why an SDDL text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDDL `{text}`: {why}")]
pub struct SddlError {
    /// The part that failed.
    pub text: String,
    /// What was wrong.
    pub why: &'static str,
}

fn bad(text: &str, why: &'static str) -> SddlError {
    SddlError {
        text: text.to_string(),
        why,
    }
}

fn parse_rights(text: &str) -> Result<u32, SddlError> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).map_err(|_| bad(text, "not a hex access mask"));
    }
    if !text.len().is_multiple_of(2) {
        return Err(bad(text, "access rights are two-letter codes or 0x…"));
    }
    let mut m = 0;
    for i in (0..text.len()).step_by(2) {
        let code = &text[i..i + 2];
        let (_, bits) = RIGHT_ALIASES
            .iter()
            .find(|(a, _)| *a == code)
            .ok_or_else(|| bad(code, "unknown access right"))?;
        m |= bits;
    }
    Ok(m)
}

fn parse_ace(text: &str) -> Result<Ace, SddlError> {
    let parts: Vec<&str> = text.split(';').collect();
    if parts.len() != 6 {
        return Err(bad(text, "an ACE has six fields"));
    }
    let allow = match parts[0] {
        "A" => true,
        "D" => false,
        _ => return Err(bad(text, "only allow (A) and deny (D) ACEs are supported")),
    };
    let mut f = 0u8;
    let fl = parts[1];
    if !fl.len().is_multiple_of(2) {
        return Err(bad(text, "ACE flags are two-letter codes"));
    }
    for i in (0..fl.len()).step_by(2) {
        let code = &fl[i..i + 2];
        match FLAG_ALIASES.iter().find(|(a, _)| *a == code) {
            Some((_, bit)) => f |= bit,
            None if code == "SA" || code == "FA" => {} // audit flags: not in a DACL's meaning
            None => return Err(bad(code, "unknown ACE flag")),
        }
    }
    let sid = Sid::parse(parts[5]).ok_or_else(|| bad(parts[5], "not a SID"))?;
    Ok(Ace {
        allow,
        sid,
        mask: parse_rights(parts[2])?,
        flags: f,
    })
}

impl Security {
    /// Reads `O:…G:…D:…` (the owner, group and DACL parts; a SACL is ignored).
    pub fn from_sddl(text: &str) -> Result<Security, SddlError> {
        let mut out = Security::default();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (tag, body) = rest
                .split_at_checked(2)
                .ok_or_else(|| bad(rest, "expected O:, G:, D: or S:"))?;
            // The part runs to the next `X:` that is not inside an ACE.
            let mut depth = 0;
            let mut end = body.len();
            for (i, b) in body.bytes().enumerate() {
                match b {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    b':' if depth == 0 && i >= 1 => {
                        end = i - 1;
                        break;
                    }
                    _ => {}
                }
            }
            let part = &body[..end];
            rest = &body[end..];
            match tag {
                "O:" => out.owner = Some(Sid::parse(part).ok_or_else(|| bad(part, "not a SID"))?),
                "G:" => out.group = Some(Sid::parse(part).ok_or_else(|| bad(part, "not a SID"))?),
                "D:" => {
                    let (head, aces) = part.split_at(part.find('(').unwrap_or(part.len()));
                    out.protected = head.contains('P');
                    for ace in aces.split_terminator(')') {
                        let ace = ace
                            .strip_prefix('(')
                            .ok_or_else(|| bad(ace, "an ACE is written (…)"))?;
                        out.aces.push(parse_ace(ace)?);
                    }
                }
                "S:" => {}
                _ => return Err(bad(tag, "expected O:, G:, D: or S:")),
            }
        }
        Ok(out)
    }

    /// The SDDL text (`O:` if there is an owner, then `D:`, `P` if protected, `AI`, the ACEs).
    pub fn to_sddl(&self) -> String {
        let mut s = String::new();
        if let Some(o) = &self.owner {
            s.push_str(&format!("O:{o}"));
        }
        if let Some(g) = &self.group {
            s.push_str(&format!("G:{g}"));
        }
        s.push_str("D:");
        if self.protected {
            s.push('P');
        }
        s.push_str("AI");
        for a in &self.aces {
            s.push_str(&a.sddl());
        }
        s
    }

    /// The ACEs set on this entry itself (not inherited), in canonical order.
    pub fn explicit(&self) -> Vec<Ace> {
        let mut v: Vec<Ace> = self
            .aces
            .iter()
            .filter(|a| !a.inherited())
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// Generic rights (GA, GR, GW, GX) as the file rights they stand for.
fn file_rights(m: u32) -> u32 {
    let mut out = m & 0x0fff_ffff;
    for (generic, specific) in [
        (0x1000_0000, mask::FULL),
        (0x8000_0000, 0x0012_0089),
        (0x4000_0000, 0x0012_0116),
        (0x2000_0000, 0x0012_00a0),
    ] {
        if m & generic != 0 {
            out |= specific;
        }
    }
    out
}

impl Security {
    /// The rights the DACL gives someone holding `sids` (their user, groups, Everyone…), the
    /// way Windows checks: ACEs in order, the first to allow or deny a right decides it;
    /// inherit-only ACEs do not apply to the entry itself.
    pub fn effective(&self, sids: &[Sid]) -> u32 {
        let (mut allowed, mut denied) = (0u32, 0u32);
        for ace in &self.aces {
            if ace.flags & flags::INHERIT_ONLY != 0 || !sids.contains(&ace.sid) {
                continue;
            }
            let m = file_rights(ace.mask);
            if ace.allow {
                allowed |= m & !denied;
            } else {
                denied |= m & !allowed;
            }
        }
        allowed
    }
}

/// The access an NTFS mask gives, in the policy's words.
pub fn access_of(m: u32, is_dir: bool) -> Access {
    let has = |want: u32| m & want == want;
    if has(mask::MODIFY) {
        Access::Write
    } else if has(if is_dir {
        mask::READ_EXECUTE
    } else {
        0x0012_0089
    }) {
        Access::Read
    } else if is_dir && has(0x20) {
        Access::Traverse
    } else {
        Access::None
    }
}

/// The Windows accounts behind a policy's principals (LookupAccountName on Windows; a table
/// in tests).
pub trait SidLookup {
    /// The SID of the user with this id.
    fn user(&self, uid: u32) -> Option<Sid>;
    /// The SID of the group with this id.
    fn group(&self, gid: u32) -> Option<Sid>;
}

/// What sharekeep manages on one entry: its owner, whether its DACL is protected, and the ACEs
/// set on it (inherited ones are Windows' business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtfsState {
    /// Owner.
    pub owner: Option<Sid>,
    /// The DACL does not inherit.
    pub protected: bool,
    /// Explicit ACEs, canonical order (deny first).
    pub explicit: Vec<Ace>,
}

impl NtfsState {
    /// The managed part of a descriptor read from disk.
    pub fn of(sec: &Security) -> NtfsState {
        NtfsState {
            owner: sec.owner.clone(),
            protected: sec.protected,
            explicit: sec.explicit(),
        }
    }

    /// The descriptor to write (owner and DACL).
    pub fn to_security(&self) -> Security {
        Security {
            owner: self.owner.clone(),
            group: None,
            protected: self.protected,
            aces: self.explicit.clone(),
        }
    }

    /// What differs from `want`: owner, inheritance, acl.
    pub fn differences(&self, want: &NtfsState) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.owner != want.owner {
            out.push("owner");
        }
        if self.protected != want.protected {
            out.push("inheritance");
        }
        if self.explicit != want.explicit {
            out.push("acl");
        }
        out
    }
}

/// A principal the policy names has no Windows account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} has no Windows account (LookupAccountName found no SID)")]
pub struct Unresolved(pub String);

/// Rights as NTFS sees them: per (deny/allow, SID), the mask and whether it is inheritable.
type Effective = BTreeMap<(bool, Sid), (u32, bool)>;

fn access_mask(a: Access) -> u32 {
    match a {
        Access::None => 0,
        Access::Traverse => mask::TRAVERSE,
        Access::Read => mask::READ_EXECUTE,
        Access::Write => mask::MODIFY,
    }
}

struct Translator<'a> {
    rights: &'a Rights,
    sids: &'a dyn SidLookup,
}

impl Translator<'_> {
    fn user(&self, uid: u32) -> Result<Sid, Unresolved> {
        self.sids
            .user(uid)
            .ok_or_else(|| Unresolved(format!("user {}", self.name(uid, true))))
    }

    fn group(&self, gid: u32) -> Result<Sid, Unresolved> {
        self.sids
            .group(gid)
            .ok_or_else(|| Unresolved(format!("group @{}", self.name(gid, false))))
    }

    fn name(&self, id: u32, user: bool) -> String {
        let p = self.rights.policy();
        let found = p
            .rules
            .iter()
            .flat_map(|r| r.read.principals.iter().chain(&r.write.principals));
        let mut found = found.chain(&p.admins).filter_map(|pr| match pr {
            crate::Principal::User(u) if user && u.uid == id => Some(u.name.clone()),
            crate::Principal::Group(g) if !user && g.gid == id => Some(g.name.clone()),
            _ => None,
        });
        found.next().unwrap_or_else(|| id.to_string())
    }

    /// The rights an entry gets from grants (`inheritable`: they flow down from a folder).
    fn add(&self, out: &mut Effective, g: &Grants, inheritable: bool) -> Result<(), Unresolved> {
        let p = self.rights.policy();
        let mut put = |allow: bool, sid: Sid, m: u32| {
            if m == 0 {
                return;
            }
            let slot = out.entry((allow, sid)).or_insert((0, inheritable));
            slot.0 |= m;
            slot.1 |= inheritable;
        };
        let owner = if g.owner_read_only {
            Access::Read
        } else {
            Access::Write
        };
        put(true, self.user(p.owner.uid)?, access_mask(owner));
        put(true, self.group(p.group.gid)?, access_mask(g.group_obj));
        for (uid, a) in &g.users {
            put(true, self.user(*uid)?, access_mask(*a));
        }
        for (gid, a) in &g.groups {
            put(true, self.group(*gid)?, access_mask(*a));
        }
        for uid in self.rights.locked_out(g) {
            put(false, self.user(uid)?, mask::WRITE);
        }
        Ok(())
    }

    /// Everything an entry at `rel` must grant, and which of it is inheritable.
    fn effective(&self, rel: &str, is_dir: bool) -> Result<Effective, Unresolved> {
        let mut out = Effective::new();
        for sid in [SYSTEM, ADMINISTRATORS] {
            out.insert((true, Sid::known(sid)), (mask::FULL, is_dir));
        }
        self.add(&mut out, &self.rights.own_grants(rel), is_dir)?;
        if is_dir {
            if let Some(t) = self.rights.traverse_grants(rel) {
                // Those a deeper rule names pass through, on this folder only.
                let p = self.rights.policy();
                let mut who = Vec::new();
                if t.group_obj > Access::None {
                    who.push(self.group(p.group.gid)?);
                }
                for uid in t.users.keys().filter(|u| **u != p.owner.uid) {
                    who.push(self.user(*uid)?);
                }
                for gid in t.groups.keys() {
                    who.push(self.group(*gid)?);
                }
                for sid in who {
                    out.entry((true, sid)).or_insert((mask::TRAVERSE, false));
                }
            }
        }
        Ok(out)
    }
}

fn aces(e: &Effective, is_dir: bool) -> Vec<Ace> {
    let mut v: Vec<Ace> = e
        .iter()
        .map(|((allow, sid), (m, inheritable))| Ace {
            allow: *allow,
            sid: sid.clone(),
            mask: *m,
            flags: if is_dir && *inheritable {
                flags::OBJECT_INHERIT | flags::CONTAINER_INHERIT
            } else {
                0
            },
        })
        .collect();
    v.sort();
    v
}

/// The owner, protection and explicit ACEs the entry at `rel` must have.
pub fn desired(
    rights: &Rights,
    rel: &str,
    is_dir: bool,
    sids: &dyn SidLookup,
) -> Result<NtfsState, Unresolved> {
    let t = Translator { rights, sids };
    let owner = Some(t.user(rights.policy().owner.uid)?);
    let want = t.effective(rel, is_dir)?;
    if rel.is_empty() {
        // The share root: nothing inherited from above.
        return Ok(NtfsState {
            owner,
            protected: true,
            explicit: aces(&want, is_dir),
        });
    }
    let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
    // What the parent folder passes down: its inheritable rights.
    let inherited: Effective = t
        .effective(parent, true)?
        .into_iter()
        .filter(|(_, (_, inheritable))| *inheritable)
        .map(|(k, (m, _))| (k, (m, is_dir)))
        .collect();
    let takes_away = inherited.iter().any(|(k, (m, _))| match want.get(k) {
        Some((w, _)) => w & m != *m,
        None => true,
    });
    if takes_away {
        return Ok(NtfsState {
            owner,
            protected: true,
            explicit: aces(&want, is_dir),
        });
    }
    // What it adds: rights beyond the inherited ones, or inheritable where they were not.
    let extra: Effective = want
        .into_iter()
        .filter(|(k, (m, inh))| match inherited.get(k) {
            Some((im, iinh)) => m & !im != 0 || (*inh && !iinh),
            None => true,
        })
        .collect();
    Ok(NtfsState {
        owner,
        protected: false,
        explicit: aces(&extra, is_dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::LockedUser;
    use crate::rights::tests::{policy, user};
    use std::collections::HashMap;

    const OWNER: &str = "S-1-5-21-7-1000";
    const SALES: &str = "S-1-5-21-7-2000";
    const DG: &str = "S-1-5-21-7-1003";
    const BOB: &str = "S-1-5-21-7-1004";

    struct Table(HashMap<u32, &'static str>, HashMap<u32, &'static str>);
    impl SidLookup for Table {
        fn user(&self, uid: u32) -> Option<Sid> {
            self.0.get(&uid).and_then(|s| Sid::parse(s))
        }
        fn group(&self, gid: u32) -> Option<Sid> {
            self.1.get(&gid).and_then(|s| Sid::parse(s))
        }
    }
    fn sids() -> Table {
        Table(
            HashMap::from([(5000, OWNER), (5003, DG), (5004, BOB)]),
            HashMap::from([(6000, SALES)]),
        )
    }

    /// The SDDL of what an entry must carry.
    fn want(rights: &Rights, rel: &str, is_dir: bool) -> String {
        desired(rights, rel, is_dir, &sids())
            .unwrap()
            .to_security()
            .to_sddl()
    }

    #[test]
    fn the_commercial_policy_as_explicit_aces() {
        let rights = Rights::new(&policy());
        let o = format!("O:{OWNER}");
        let cases: &[(&str, bool, String)] = &[
            // The root: protected, everything explicit; dg passes through to reach
            // Direction/Confidentiel (this folder only).
            (
                "",
                true,
                format!(
                    "{o}D:PAI(A;OICI;FA;;;S-1-5-18)(A;OICI;0x1301bf;;;{OWNER})(A;;0x1000a0;;;{DG})\
                     (A;OICI;0x1200a9;;;{SALES})(A;OICI;FA;;;S-1-5-32-544)"
                ),
            ),
            // Same rule as the root: all inherited.
            ("Tarifs", true, format!("{o}D:AI")),
            ("Tarifs/grille.xlsx", false, format!("{o}D:AI")),
            // Sales may write here: that adds to what is inherited.
            (
                "Propositions",
                true,
                format!("{o}D:AI(A;OICI;0x1301bf;;;{SALES})"),
            ),
            ("Propositions/devis.docx", false, format!("{o}D:AI")),
            // On the way to a deeper rule: traverse only, on the folder itself.
            ("Direction", true, format!("{o}D:AI(A;;0x1000a0;;;{DG})")),
            ("Direction/notes.txt", false, format!("{o}D:AI")),
            // Sales may not even read here: that takes away, so the DACL is protected.
            (
                "Direction/Confidentiel",
                true,
                format!(
                    "{o}D:PAI(A;OICI;FA;;;S-1-5-18)(A;OICI;0x1301bf;;;{OWNER})\
                     (A;OICI;0x1301bf;;;{DG})(A;OICI;FA;;;S-1-5-32-544)"
                ),
            ),
            (
                "Direction/Confidentiel/bilan.pdf",
                false,
                format!("{o}D:AI"),
            ),
            ("Direction/Confidentiel/2026", true, format!("{o}D:AI")),
        ];
        for (rel, is_dir, sddl) in cases {
            assert_eq!(&want(&rights, rel, *is_dir), sddl, "{rel}");
        }
    }

    #[test]
    fn a_locked_user_is_denied_the_write_their_group_gives() {
        let mut p = policy();
        p.lockdown.users.push(LockedUser {
            user: user("bob", 5004, 6000),
            groups: vec![6000],
        });
        let rights = Rights::new(&p);
        let o = format!("O:{OWNER}");
        // Where sales may only read, bob's named read entry is all there is.
        assert!(want(&rights, "", true).contains(&format!("(A;OICI;0x1200a9;;;{BOB})")));
        assert!(!want(&rights, "", true).contains("(D;"));
        // Where sales may write, bob's write is denied (deny ACEs first).
        assert_eq!(
            want(&rights, "Propositions", true),
            format!("{o}D:AI(D;OICI;0x10156;;;{BOB})(A;OICI;0x1301bf;;;{SALES})")
        );
        // Everyone locked: the owner and sales only read, no deny needed.
        let mut p = policy();
        p.lockdown.share = true;
        let rights = Rights::new(&p);
        assert_eq!(
            want(&rights, "Propositions", true),
            format!("{o}D:AI"),
            "sales' read is what the root already gives"
        );
        assert!(want(&rights, "", true).contains(&format!("(A;OICI;0x1200a9;;;{OWNER})")));
    }

    #[test]
    fn a_principal_without_an_account_is_named() {
        let rights = Rights::new(&policy());
        let none = Table(
            HashMap::from([(5000, OWNER)]),
            HashMap::from([(6000, SALES)]),
        );
        // Propositions and what it inherits name only the owner and sales.
        assert_eq!(
            desired(&rights, "Propositions/a", false, &none)
                .unwrap()
                .explicit,
            vec![]
        );
        let e = desired(&rights, "Direction", true, &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user dg has no Windows account (LookupAccountName found no SID)"
        );
    }

    #[test]
    fn state_on_disk_against_the_wanted_one() {
        let rights = Rights::new(&policy());
        let want = desired(&rights, "Propositions", true, &sids()).unwrap();
        // As Windows prints it: inherited ACEs after the explicit one, aliases for well-known
        // SIDs and masks, a group part.
        let disk = format!(
            "O:{OWNER}G:SYD:AI(A;OICI;0x1301bf;;;{SALES})(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)\
             (A;OICIID;0x1200a9;;;{SALES})"
        );
        let have = NtfsState::of(&Security::from_sddl(&disk).unwrap());
        assert_eq!(have.differences(&want), Vec::<&str>::new());
        let other = "O:BAD:PAI(A;OICI;FA;;;WD)";
        let have = NtfsState::of(&Security::from_sddl(other).unwrap());
        assert_eq!(have.differences(&want), vec!["owner", "inheritance", "acl"]);
    }

    #[test]
    fn sddl_reads_what_windows_writes_and_refuses_the_rest() {
        let s = Security::from_sddl(
            "O:S-1-5-21-7-1000G:SYD:PAI(A;OICI;FA;;;SY)(D;;0x10156;;;S-1-5-21-7-1004)\
             (A;OICIIOID;GA;;;CO)(A;ID;FRFX;;;BU)S:AI(AU;SA;FA;;;WD)",
        )
        .unwrap();
        assert_eq!(s.owner, Sid::parse("S-1-5-21-7-1000"));
        assert_eq!(s.group.as_ref().map(Sid::as_str), Some(SYSTEM));
        assert!(s.protected);
        let masks: Vec<(bool, u32, u8)> =
            s.aces.iter().map(|a| (a.allow, a.mask, a.flags)).collect();
        assert_eq!(
            masks,
            vec![
                (true, mask::FULL, 3),
                (false, mask::WRITE, 0),
                (
                    true,
                    0x1000_0000,
                    3 | flags::INHERIT_ONLY | flags::INHERITED
                ),
                (true, 0x0012_00a9, flags::INHERITED),
            ]
        );
        assert_eq!(s.explicit().len(), 2);
        assert_eq!(Security::from_sddl(&s.to_sddl()).unwrap(), s);
        for (text, why) in [
            (
                "D:(X;;FA;;;SY)",
                "only allow (A) and deny (D) ACEs are supported",
            ),
            ("D:(A;;0xZZ;;;SY)", "not a hex access mask"),
            ("D:(A;;FA;;;nobody)", "not a SID"),
            ("D:(A;QQ;FA;;;SY)", "unknown ACE flag"),
            ("D:(A;;FA;;SY)", "an ACE has six fields"),
            ("Q:x", "expected O:, G:, D: or S:"),
        ] {
            assert_eq!(Security::from_sddl(text).unwrap_err().why, why, "{text}");
        }
    }

    #[test]
    fn effective_rights_follow_ace_order() {
        let sddl = format!(
            "D:(D;;0x10156;;;{BOB})(A;OICI;0x1301bf;;;{SALES})(A;OICIIO;GA;;;CO)\
             (A;OICIID;0x1200a9;;;BU)(A;;0x1000a0;;;{DG})"
        );
        let s = Security::from_sddl(&sddl).unwrap();
        let sid = |t: &str| Sid::parse(t).unwrap();
        let cases: &[(&[&str], bool, Access)] = &[
            (&[BOB, SALES], true, Access::Read), // write denied first, the rest allowed
            (&[SALES], true, Access::Write),     // Modify
            (&[SALES], false, Access::Write),
            (&["BU"], true, Access::Read), // inherited Read & Execute
            (&["BU"], false, Access::Read),
            (&[DG], true, Access::Traverse), // this folder only, no listing
            (&[DG], false, Access::None),
            (&["CO"], true, Access::None), // inherit-only: not for the entry itself
            (&[OWNER], true, Access::None),
        ];
        for (sids, is_dir, want) in cases {
            let sids: Vec<Sid> = sids.iter().map(|t| sid(t)).collect();
            assert_eq!(
                access_of(s.effective(&sids), *is_dir),
                *want,
                "{sids:?} dir={is_dir}"
            );
        }
    }
}
