//! Explain a user's rights at a path (which rule, which of their groups, what the ACL on disk
//! actually grants), and the matrix of principals × folders for the admin's test report.

use crate::acl::{AclSystem, Native};
use crate::policy::{Policy, PrincipalSet};
use crate::principal::{self, Principal, User};
use crate::rights::{Access, Rights};
use crate::walk::Tree;
use std::path::Path;

/// Why a user has the rights they have.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    /// The user.
    pub user: User,
    /// The path asked about (relative to the share, `.` for its root).
    pub path: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// What the policy grants.
    pub access: Access,
    /// The rule that applies (its path, `.` for [access]) and where it is written.
    pub rule: String,
    /// Reasons, one line each.
    pub reasons: Vec<String>,
    /// What the ACLs on disk grant today (the entry and the directories above it), if readable.
    pub on_disk: Option<Access>,
}

fn matches_in(set: &PrincipalSet, user: &User, groups: &[u32]) -> Vec<String> {
    set.principals
        .iter()
        .filter_map(|p| match p {
            Principal::User(u) if u.uid == user.uid => Some(format!("{} is named", u.name)),
            Principal::Group(g) if groups.contains(&g.gid) => {
                Some(format!("{} is a member of @{}", user.name, g.name))
            }
            _ => None,
        })
        .collect()
}

fn describe_set(word: &str, set: &PrincipalSet) -> String {
    let who: Vec<String> = set.principals.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "{word} = [{}] ({} {})",
        who.join(", "),
        if set.inherited {
            "inherited from"
        } else {
            "set at"
        },
        set.origin
    )
}

/// Explains `user`'s rights at `path` (absolute, inside the share, or relative to it).
pub fn explain(policy: &Policy, user: &User, path: &Path) -> Result<Explanation, String> {
    let rel = if path.is_absolute() {
        policy.relative(path).ok_or_else(|| {
            format!(
                "{} is not inside share `{}` ({})",
                path.display(),
                policy.name,
                policy.path.display()
            )
        })?
    } else {
        path.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .filter(|c| c != ".")
            .collect::<Vec<_>>()
            .join("/")
    };
    let abs = policy.path.join(&rel);
    let is_dir = std::fs::symlink_metadata(&abs)
        .map(|m| m.is_dir())
        .unwrap_or(true);
    let rights = Rights::new(policy);
    let groups = principal::groups_of(user);
    let access = rights.user_access(&rel, is_dir, user.uid, &groups);
    let rule = policy.rule_for(&rel);
    let mut reasons = Vec::new();
    if user.uid == policy.owner.uid {
        reasons.push(format!(
            "{} owns the share's files: full rights everywhere",
            user.name
        ));
    }
    let w = matches_in(&rule.write, user, &groups);
    let r = matches_in(&rule.read, user, &groups);
    reasons.push(format!(
        "{} → {}",
        describe_set("write", &rule.write),
        if w.is_empty() {
            "not named".into()
        } else {
            w.join("; ")
        }
    ));
    reasons.push(format!(
        "{} → {}",
        describe_set("read", &rule.read),
        if r.is_empty() {
            "not named".into()
        } else {
            r.join("; ")
        }
    ));
    if access == Access::Traverse {
        reasons.push(format!(
            "may pass through this folder (no listing) to reach a deeper rule that names {}",
            user.name
        ));
    }
    if access == Access::None {
        reasons.push("anyone not named has no access, not even listing".into());
    }
    Ok(Explanation {
        user: user.clone(),
        path: if rel.is_empty() {
            ".".into()
        } else {
            rel.clone()
        },
        is_dir,
        access,
        rule: format!(
            "{} ({})",
            if rule.path.is_empty() {
                "[access]".to_string()
            } else {
                format!("[[rule]] path = \"{}\"", rule.path)
            },
            rule.origin
        ),
        reasons,
        on_disk: on_disk(policy, &rel, is_dir, user, &groups),
    })
}

/// What the ACLs on disk grant: the entry's own rights, limited by the need to traverse every
/// directory above it.
fn on_disk(
    policy: &Policy,
    rel: &str,
    is_dir: bool,
    user: &User,
    groups: &[u32],
) -> Option<Access> {
    on_disk_with(&Native::default(), policy, rel, is_dir, user, groups)
}

fn on_disk_with<S: AclSystem>(
    sys: &S,
    policy: &Policy,
    rel: &str,
    is_dir: bool,
    user: &User,
    groups: &[u32],
) -> Option<Access> {
    let mut h = sys.tree().open_root(&policy.path).ok()?;
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let meta = sys.tree().meta(&h).ok()?;
        let st = sys.read(&h, &meta, true).ok()?;
        if sys.access(&st, user, groups, true) < Access::Traverse {
            return Some(Access::None);
        }
        let name = std::ffi::OsStr::new(part);
        let last = i + 1 == parts.len();
        h = if last && !is_dir {
            sys.tree().open_file(&h, name)
        } else {
            sys.tree().open_dir(&h, name)
        }
        .ok()?;
    }
    let meta = sys.tree().meta(&h).ok()?;
    let st = sys.read(&h, &meta, is_dir).ok()?;
    Some(sys.access(&st, user, groups, is_dir))
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatrixRow {
    /// `alice` or `@commercial`.
    pub who: String,
    /// Access per column.
    pub access: Vec<Access>,
}

/// Principals × folders (the share root and each rule's path).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Matrix {
    /// Share name.
    pub share: String,
    /// Column paths (`.` for the root).
    pub columns: Vec<String>,
    /// Rows: the owner, named users, members of named groups, then the groups themselves.
    pub rows: Vec<MatrixRow>,
}

/// Builds the matrix of a policy.
pub fn matrix(policy: &Policy) -> Matrix {
    let rights = Rights::new(policy);
    let columns: Vec<String> = policy.rules.iter().map(|r| r.path.clone()).collect();
    let mut users: Vec<User> = vec![policy.owner.clone()];
    let mut groups = Vec::new();
    let all = policy
        .rules
        .iter()
        .flat_map(|r| r.read.principals.iter().chain(&r.write.principals))
        .chain(&policy.admins);
    for p in all {
        match p {
            Principal::User(u) => {
                if !users.iter().any(|x| x.uid == u.uid) {
                    users.push(u.clone());
                }
            }
            Principal::Group(g) => {
                if !groups
                    .iter()
                    .any(|x: &crate::principal::Group| x.gid == g.gid)
                {
                    groups.push(g.clone());
                }
            }
        }
    }
    for g in &groups {
        for m in principal::members_of(g) {
            if let Ok(u) = principal::resolve_user(&m) {
                if !users.iter().any(|x| x.uid == u.uid) {
                    users.push(u);
                }
            }
        }
    }
    let mut rows = Vec::new();
    for u in &users {
        let gs = principal::groups_of(u);
        rows.push(MatrixRow {
            who: u.name.clone(),
            access: columns
                .iter()
                .map(|c| rights.user_access(c, true, u.uid, &gs))
                .collect(),
        });
    }
    for g in &groups {
        rows.push(MatrixRow {
            who: format!("@{}", g.name),
            access: columns
                .iter()
                .map(|c| {
                    let grants = rights.grants(c, true);
                    if g.gid == policy.group.gid {
                        grants.group_obj
                    } else {
                        grants.groups.get(&g.gid).copied().unwrap_or_default()
                    }
                })
                .collect(),
        });
    }
    Matrix {
        share: policy.name.clone(),
        columns: columns
            .iter()
            .map(|c| if c.is_empty() { ".".into() } else { c.clone() })
            .collect(),
        rows,
    }
}
