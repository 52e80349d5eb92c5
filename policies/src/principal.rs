//! Users and groups named in policies (`alice`, `@commercial`, or numeric ids `1001`,
//! `@1001`), resolved through the system's name service (NSS: /etc/passwd, LDAP, winbind…);
//! on Windows, accounts looked up by name or SID (`accounts.rs`).

use std::fmt;

/// The names of user and group ids, each looked up once through NSS (shared between
/// threads): what an ACL listing and a backup's owner names ask for again and again.
#[cfg(unix)]
#[derive(Debug, Default)]
pub struct NameCache {
    users: std::sync::Mutex<std::collections::HashMap<u32, Option<String>>>,
    groups: std::sync::Mutex<std::collections::HashMap<u32, Option<String>>>,
}

#[cfg(unix)]
impl NameCache {
    /// The user name of `uid`, if NSS has one.
    pub fn user(&self, uid: u32) -> Option<String> {
        let mut users = self.users.lock().expect("name cache");
        users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    /// The group name of `gid`, if NSS has one.
    pub fn group(&self, gid: u32) -> Option<String> {
        let mut groups = self.groups.lock().expect("name cache");
        groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct User {
    /// Name (or the id as text when NSS has no entry for a numeric id).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// A resolved group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Group id.
    pub gid: u32,
}

/// A user or a group named in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Principal {
    /// `name`.
    User(User),
    /// `@name`.
    Group(Group),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(u) => write!(f, "{}", u.name),
            Principal::Group(g) => write!(f, "@{}", g.name),
        }
    }
}

/// How an administrator creates what a policy names, on this system.
#[cfg(unix)]
const CREATE_USER: &str = "useradd";
#[cfg(unix)]
const CREATE_GROUP: &str = "groupadd";
#[cfg(unix)]
const NAME_FORMS: &str = "write a user name (alice), a group (@commercial), or a numeric id";
#[cfg(windows)]
const CREATE_USER: &str = "net user NAME /add, or the domain's accounts";
#[cfg(windows)]
const CREATE_GROUP: &str = "net localgroup NAME /add, or the domain's groups";
#[cfg(windows)]
const NAME_FORMS: &str =
    r"write a user name (alice, PC\alice), a group (@Commercial, @DOMAINE\Ventes), or a SID";

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// No such user.
    UnknownUser(String),
    /// No such group.
    UnknownGroup(String),
    /// Empty or malformed.
    Malformed(String),
}

impl ResolveError {
    /// The message and hint for a policy problem.
    pub fn describe(&self) -> (String, String) {
        match self {
            ResolveError::UnknownUser(n) => (
                format!("unknown user `{n}`"),
                format!("create the account first ({CREATE_USER}), check the spelling, or write @name for a group"),
            ),
            ResolveError::UnknownGroup(n) => (
                format!("unknown group `@{n}`"),
                format!("create the group first ({CREATE_GROUP}) or check the spelling"),
            ),
            ResolveError::Malformed(n) => (
                format!("`{n}` is not a user or group name"),
                NAME_FORMS.into(),
            ),
        }
    }
}

/// Looks up a user by name or numeric id (on Windows: by name, `DOMAIN\name` or SID).
pub fn resolve_user(text: &str) -> Result<User, ResolveError> {
    if text.is_empty() || text.trim() != text || text.starts_with('@') {
        return Err(ResolveError::Malformed(text.to_string()));
    }
    #[cfg(windows)]
    return crate::accounts::user(text);
    #[cfg(unix)]
    if text.contains(char::is_whitespace) {
        return Err(ResolveError::Malformed(text.to_string()));
    }
    #[cfg(unix)]
    resolve_nss_user(text)
}

#[cfg(unix)]
fn resolve_nss_user(text: &str) -> Result<User, ResolveError> {
    let found = match text.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(uid.into()).ok().flatten(),
        Err(_) => nix::unistd::User::from_name(text).ok().flatten(),
    };
    match (found, text.parse::<u32>()) {
        (Some(u), _) => Ok(User {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        (None, Ok(uid)) => Ok(User {
            name: text.to_string(),
            uid,
            gid: uid,
        }),
        (None, Err(_)) => Err(ResolveError::UnknownUser(text.to_string())),
    }
}

/// Looks up a group by name or numeric id (without the `@`; on Windows: by name,
/// `DOMAIN\name` or SID, spaces allowed as in `Domain Users`).
pub fn resolve_group(text: &str) -> Result<Group, ResolveError> {
    if text.is_empty() || text.trim() != text {
        return Err(ResolveError::Malformed(format!("@{text}")));
    }
    #[cfg(windows)]
    return crate::accounts::group(text);
    #[cfg(unix)]
    if text.contains(char::is_whitespace) {
        return Err(ResolveError::Malformed(format!("@{text}")));
    }
    #[cfg(unix)]
    resolve_nss_group(text)
}

#[cfg(unix)]
fn resolve_nss_group(text: &str) -> Result<Group, ResolveError> {
    let found = match text.parse::<u32>() {
        Ok(gid) => nix::unistd::Group::from_gid(gid.into()).ok().flatten(),
        Err(_) => nix::unistd::Group::from_name(text).ok().flatten(),
    };
    match (found, text.parse::<u32>()) {
        (Some(g), _) => Ok(Group {
            name: g.name,
            gid: g.gid.as_raw(),
        }),
        (None, Ok(gid)) => Ok(Group {
            name: text.to_string(),
            gid,
        }),
        (None, Err(_)) => Err(ResolveError::UnknownGroup(text.to_string())),
    }
}

/// The user a number stands for (a uid; on Windows the number a SID was given in this
/// process), `None` when no account has it.
pub fn user_of_id(id: u32) -> Option<User> {
    #[cfg(windows)]
    return crate::accounts::sid_of(id)
        .and_then(|sid| crate::accounts::user(&sid.to_string()).ok());
    #[cfg(unix)]
    nix::unistd::User::from_uid(id.into())
        .ok()
        .flatten()
        .map(|u| User {
            name: u.name,
            uid: id,
            gid: u.gid.as_raw(),
        })
}

/// Parses and resolves `alice` or `@group`.
pub fn resolve(text: &str) -> Result<Principal, ResolveError> {
    match text.strip_prefix('@') {
        Some(g) => resolve_group(g).map(Principal::Group),
        None => resolve_user(text).map(Principal::User),
    }
}

/// The groups a user belongs to (primary and supplementary), from NSS (on Windows: their
/// local groups, directly or through domain groups).
#[cfg(windows)]
pub fn groups_of(user: &User) -> Vec<u32> {
    crate::accounts::groups_of(user)
}

/// The groups a user belongs to (primary and supplementary), from NSS.
#[cfg(unix)]
pub fn groups_of(user: &User) -> Vec<u32> {
    let mut out = vec![user.gid];
    if let Ok(name) = std::ffi::CString::new(user.name.clone()) {
        if let Ok(groups) = nix::unistd::getgrouplist(&name, user.gid.into()) {
            out.extend(groups.into_iter().map(|g| g.as_raw()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The members of a local group (on Windows).
#[cfg(windows)]
pub fn members_of(group: &Group) -> Vec<String> {
    crate::accounts::members_of(group)
}

/// The users listed as members of a group (its member list and those whose primary group it
/// is, as far as NSS enumerates them).
#[cfg(unix)]
pub fn members_of(group: &Group) -> Vec<String> {
    let mut out: Vec<String> = nix::unistd::Group::from_gid(group.gid.into())
        .ok()
        .flatten()
        .map(|g| g.mem)
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn root_and_numeric_ids_resolve() {
        assert_eq!(
            resolve("root").unwrap(),
            Principal::User(User {
                name: "root".into(),
                uid: 0,
                gid: 0
            })
        );
        assert!(matches!(
            resolve("@0").unwrap(),
            Principal::Group(Group { gid: 0, .. })
        ));
        assert!(matches!(
            resolve("4242424").unwrap(),
            Principal::User(User { uid: 4242424, .. })
        ));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("no-such-user-sk"),
            Err(ResolveError::UnknownUser("no-such-user-sk".into()))
        );
        assert_eq!(
            resolve("@no-such-group-sk"),
            Err(ResolveError::UnknownGroup("no-such-group-sk".into()))
        );
        assert!(matches!(resolve(""), Err(ResolveError::Malformed(_))));
        assert!(matches!(
            resolve("two words"),
            Err(ResolveError::Malformed(_))
        ));
    }
}
