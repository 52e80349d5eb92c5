//! Who may do what through the control socket: one pure function, [`authorize`], used for
//! every request, and the per-path checks handlers apply to what they read or write. Root's
//! power is never lent: whatever a non-root caller gets written outside a share's own
//! in-place restore is written by `sharekeepctl` running as them.
//!
//! ```text
//! caller      may
//! root        everything, including restore anywhere (written by the daemon)
//! admin       everything on their share; restore in place (daemon: pre-restore snapshot, then
//!             today's rights); a copy --to DIR is streamed and written by the caller
//! member      snapshots, versions, ls, diff, cat, restore — filtered to what the policy lets
//!             them read today; a copy (--to) of what they may read, written by them; in place
//!             only where they may write today
//! anyone else status (of nothing); everything else refused, revealing no content
//! ```

use crate::service::server::Caller;
use sharekeep::protocol::Request;
use sharekeep::Visibility;
use sharekeep_policies::{Access, Policy, Principal, Rights};
use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::sync::Arc;

/// A caller's relation to a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Root,
    /// Named in `admins`.
    Admin,
    /// Named in a rule (or the share's owner).
    Member,
    Outsider,
}

/// What a caller may see of a share's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Everything,
    /// What the policy lets them read today.
    Readable,
}

/// Who writes a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// sharekeepd (root): in place into the share, or anywhere for root.
    Daemon,
    /// `sharekeepctl` as the caller, from a stream.
    Caller,
}

/// What a request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) role: Role,
    pub(crate) scope: Scope,
    pub(crate) writer: Writer,
}

/// The answer of [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed(Grant),
    Refused {
        /// `refused` or `not_found`.
        kind: &'static str,
        message: String,
    },
}

fn refused(message: String) -> Decision {
    Decision::Refused {
        kind: "refused",
        message,
    }
}

impl Caller {
    fn named(&self, p: &Principal) -> bool {
        match p {
            Principal::User(u) => u.uid == self.uid,
            Principal::Group(g) => self.groups.contains(&g.gid),
        }
    }

    /// The caller's role on `policy`'s share.
    pub(crate) fn role(&self, policy: &Policy) -> Role {
        if self.uid == 0 {
            Role::Root
        } else if policy.admins.iter().any(|a| self.named(a)) {
            Role::Admin
        } else if policy.owner.uid == self.uid
            || policy.rules.iter().any(|r| {
                r.read
                    .principals
                    .iter()
                    .chain(&r.write.principals)
                    .any(|p| self.named(p))
            })
        {
            Role::Member
        } else {
            Role::Outsider
        }
    }

    /// What the policy gives the caller at `rel` today.
    pub(crate) fn access(&self, rights: &Rights, rel: &str, is_dir: bool) -> Access {
        rights.user_access(rel, is_dir, self.uid, &self.groups)
    }
}

/// A path typed by the caller (relative to the share, or absolute inside it) as the share-
/// relative `/`-separated path; `None` when it leaves the share or holds `..`.
pub(crate) fn share_relative(policy: &Policy, path: &str) -> Option<String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        p.strip_prefix(&policy.path).ok()?
    } else {
        p
    };
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out.join("/"))
}

/// What a caller with `access` at an entry may see of it.
pub(crate) fn visibility(access: Access, is_dir: bool) -> Visibility {
    match access {
        Access::Read | Access::Write => Visibility::Visible,
        Access::Traverse if is_dir => Visibility::PassThrough,
        _ => Visibility::Hidden,
    }
}

/// Shown for the share's root in messages.
fn shown(rel: &str) -> &str {
    if rel.is_empty() {
        "the share's root"
    } else {
        rel
    }
}

/// Whether `caller` may make `req`. `shares` are the managed shares' policies by name.
pub(crate) fn authorize(
    caller: &Caller,
    req: &Request,
    shares: &BTreeMap<String, Arc<Policy>>,
) -> Decision {
    let full = |role| {
        Decision::Allowed(Grant {
            role,
            scope: Scope::Everything,
            writer: Writer::Daemon,
        })
    };
    let Some(share) = req.share() else {
        return match req {
            // Everyone may ask; the handler shows each caller only their shares.
            Request::Hello { .. } | Request::Status => full(if caller.uid == 0 {
                Role::Root
            } else {
                Role::Outsider
            }),
            Request::Reload => {
                if caller.uid == 0 || shares.values().any(|p| caller.role(p) == Role::Admin) {
                    full(Role::Admin)
                } else {
                    refused("only root and share admins may reload the policies".into())
                }
            }
            _ => refused("this request needs a share".into()),
        };
    };
    let Some(policy) = shares.get(share) else {
        return Decision::Refused {
            kind: "not_found",
            message: format!("no managed share named `{share}`; `sharekeepctl status` lists yours"),
        };
    };
    let role = caller.role(policy);
    let name = &policy.name;
    match (role, req) {
        (Role::Outsider, _) => refused(format!(
            "you are not named in share `{name}`'s policy: ask one of its admins for access"
        )),
        // Restores: who writes, and where.
        (Role::Root, Request::Restore { stream, .. }) => Decision::Allowed(Grant {
            role,
            scope: Scope::Everything,
            writer: if *stream { Writer::Caller } else { Writer::Daemon },
        }),
        (Role::Admin | Role::Member, Request::Restore { to: Some(_), stream, .. }) => {
            if !*stream {
                return refused("a copy (--to DIR) by anyone but root is written by sharekeepctl with your own rights; use a sharekeepctl as recent as this sharekeepd".into());
            }
            if role == Role::Member {
                if let Some(d) = member_may(caller, policy, req, Access::Read) {
                    return d;
                }
            }
            Decision::Allowed(Grant {
                role,
                scope: if role == Role::Admin {
                    Scope::Everything
                } else {
                    Scope::Readable
                },
                writer: Writer::Caller,
            })
        }
        (Role::Root | Role::Admin, _) => full(role),
        (Role::Member, Request::Restore { to: None, .. }) => {
            match member_may(caller, policy, req, Access::Write) {
                Some(d) => d,
                None => Decision::Allowed(Grant {
                    role,
                    scope: Scope::Readable,
                    writer: Writer::Daemon,
                }),
            }
        }
        (
            Role::Member,
            Request::Snapshots { .. }
            | Request::Versions { .. }
            | Request::Diff { .. }
            | Request::Ls { .. }
            | Request::Cat { .. },
        ) => match member_may(caller, policy, req, Access::Read) {
            Some(d) => d,
            None => Decision::Allowed(Grant {
                role,
                scope: Scope::Readable,
                writer: Writer::Caller,
            }),
        },
        (Role::Member, _) => refused(format!(
            "only root and the admins of share `{name}` may do this (you are a member: you may list, compare and restore what you may read)"
        )),
    }
}

/// For a member: the refusal when a path of `req` is not at least `need` for them today.
fn member_may(caller: &Caller, policy: &Policy, req: &Request, need: Access) -> Option<Decision> {
    let paths: Vec<&str> = match req {
        Request::Versions { path, .. } | Request::Cat { path, .. } => vec![path.as_str()],
        Request::Ls { path, .. } => vec![path.as_str()],
        Request::Restore { paths, .. } if paths.is_empty() => vec![""],
        Request::Restore { paths, .. } => paths.iter().map(String::as_str).collect(),
        _ => return None,
    };
    let rights = Rights::new(policy);
    for typed in paths {
        let Some(rel) = share_relative(policy, typed) else {
            return Some(refused(format!(
                "{typed:?} is not a path inside share `{}` ({})",
                policy.name,
                policy.path.display()
            )));
        };
        // Directories and files of one place get the same read/write level; a directory one
        // may only pass through is enough to list what one may read below it.
        let access = caller
            .access(&rights, &rel, true)
            .max(caller.access(&rights, &rel, false));
        let enough = match need {
            Access::Write => access == Access::Write,
            _ => access >= Access::Traverse,
        };
        if !enough {
            let message = match (need, access) {
                (Access::Write, Access::Read) => format!(
                    "you may read but not write `{}`: restore a copy with --to DIR",
                    shown(&rel)
                ),
                (Access::Write, Access::Traverse) => format!(
                    "you may not write `{}`: restore a copy of what you may read with --to DIR",
                    shown(&rel)
                ),
                _ => format!("you may not read `{}`", shown(&rel)),
            };
            return Some(refused(message));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use sharekeep_policies::{Group, Origin, PrincipalSet, Rule, Samba, User};
    use std::path::PathBuf;

    fn set(p: Vec<Principal>) -> PrincipalSet {
        PrincipalSet {
            principals: p,
            origin: Origin {
                file: PathBuf::from("t.toml"),
                line: 1,
            },
            inherited: false,
        }
    }

    fn group(gid: u32) -> Principal {
        Principal::Group(Group {
            name: format!("g{gid}"),
            gid,
        })
    }

    /// Owner 5000; admins group 7000; members group 6000 read everything, write
    /// `Propositions`; `Paie` is readable by user 5009 only.
    /// The share's folder and a path outside it, in this platform's form.
    #[cfg(unix)]
    const SHARE_ROOT: &str = "/srv/c";
    #[cfg(windows)]
    const SHARE_ROOT: &str = r"C:\srv\c";
    #[cfg(unix)]
    const OUTSIDE: &str = "/etc/shadow";
    #[cfg(windows)]
    const OUTSIDE: &str = r"C:\Windows\System32\config\SAM";

    fn policy() -> Arc<Policy> {
        let rule = |path: &str, read: Vec<Principal>, write: Vec<Principal>| Rule {
            path: path.into(),
            read: set(read),
            write: set(write),
            origin: Origin {
                file: PathBuf::from("t.toml"),
                line: 1,
            },
            comment: None,
        };
        let owner = User {
            name: "adjoint".into(),
            uid: 5000,
            gid: 5000,
        };
        let paie = Principal::User(User {
            name: "paie".into(),
            uid: 5009,
            gid: 5009,
        });
        Arc::new(Policy {
            file: PathBuf::from("t.toml"),
            name: "commercial".into(),
            path: PathBuf::from(SHARE_ROOT),
            owner: owner.clone(),
            group: Group {
                name: "g6000".into(),
                gid: 6000,
            },
            admins: vec![group(7000)],
            description: None,
            rules: vec![
                rule("", vec![group(6000)], vec![Principal::User(owner.clone())]),
                rule("Propositions", vec![group(6000)], vec![group(6000)]),
                rule("Paie", vec![paie], vec![Principal::User(owner)]),
            ],
            backup: None,
            samba: Samba::default(),
            guard: None,
            lockdown: Default::default(),
        })
    }

    fn req(op: &str, path: &str, to: Option<&str>, stream: bool) -> Request {
        let share = "commercial".to_string();
        let path = path.to_string();
        match op {
            "status" => Request::Status,
            "reload" => Request::Reload,
            "backup" => Request::Backup { share },
            "forget" => Request::Forget {
                share,
                dry_run: true,
            },
            "check" => Request::Check {
                share,
                read_data: None,
            },
            "drill" => Request::Drill {
                share,
                sample: None,
            },
            "report" => Request::Report {
                share,
                from: chrono::NaiveDate::MIN,
                to: chrono::NaiveDate::MAX,
            },
            "guard" => Request::Guard { share },
            "release" => Request::GuardRelease { share, user: None },
            "rollback" => Request::Rollback {
                share,
                incident: "20261130-100000-m".into(),
                dry_run: path == "dry",
            },
            "snapshots" => Request::Snapshots { share },
            "versions" => Request::Versions { share, path },
            "ls" => Request::Ls {
                share,
                snapshot: "latest".into(),
                path,
            },
            "cat" => Request::Cat {
                share,
                snapshot: "latest".into(),
                path,
            },
            "diff" => Request::Diff {
                share,
                from: "a".into(),
                to: "b".into(),
            },
            "restore" => Request::Restore {
                share,
                snapshot: "latest".into(),
                paths: if path.is_empty() { vec![] } else { vec![path] },
                to: to.map(str::to_string),
                overwrite: "if-changed".into(),
                dry_run: false,
                stream,
            },
            _ => unreachable!(),
        }
    }

    #[test]
    fn who_may_do_what() {
        let shares: BTreeMap<String, Arc<Policy>> =
            [("commercial".to_string(), policy())].into_iter().collect();
        let root = Caller {
            uid: 0,
            groups: vec![0],
        };
        let admin = Caller {
            uid: 5001,
            groups: vec![5001, 7000],
        };
        let member = Caller {
            uid: 5002,
            groups: vec![5002, 6000],
        };
        let outsider = Caller {
            uid: 5003,
            groups: vec![5003],
        };
        use Role::*;
        use Scope::*;
        use Writer::{Caller as ByCaller, Daemon};
        let inside = Path::new(SHARE_ROOT)
            .join("Propositions")
            .join("a.docx")
            .display()
            .to_string();
        type Want = Option<(Role, Scope, Writer)>;
        let ok = |r, s, w| -> Want { Some((r, s, w)) };
        // (caller, op, path, to, stream, expected: None = refused, and a word of the message)
        type Case<'a> = (
            &'a Caller,
            &'a str,
            &'a str,
            Option<&'a str>,
            bool,
            Want,
            &'a str,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (&root, "status", "", None, false, ok(Root, Everything, Daemon), ""),
            (&outsider, "status", "", None, false, ok(Outsider, Everything, Daemon), ""),
            (&root, "reload", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&admin, "reload", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&member, "reload", "", None, false, None, "only root"),
            (&outsider, "reload", "", None, false, None, "only root"),
            // Maintenance: root and admins.
            (&root, "backup", "", None, false, ok(Root, Everything, Daemon), ""),
            (&admin, "backup", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&admin, "forget", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&admin, "check", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&member, "backup", "", None, false, None, "only root and the admins"),
            (&member, "forget", "", None, false, None, "only root and the admins"),
            (&member, "check", "", None, false, None, "only root and the admins"),
            (&admin, "drill", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&root, "drill", "", None, false, ok(Root, Everything, Daemon), ""),
            (&member, "drill", "", None, false, None, "only root and the admins"),
            (&outsider, "drill", "", None, false, None, "not named"),
            (&admin, "report", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&member, "report", "", None, false, None, "only root and the admins"),
            (&outsider, "backup", "", None, false, None, "not named"),
            // The guard: root and admins only (a member may not lift their own lock, nor
            // roll back, even dry).
            (&admin, "guard", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&admin, "release", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&admin, "rollback", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&root, "rollback", "", None, false, ok(Root, Everything, Daemon), ""),
            (&member, "guard", "", None, false, None, "only root and the admins"),
            (&member, "release", "", None, false, None, "only root and the admins"),
            (&member, "rollback", "", None, false, None, "only root and the admins"),
            (&member, "rollback", "dry", None, false, None, "only root and the admins"),
            (&outsider, "rollback", "", None, false, None, "not named"),
            // History: members see what they may read.
            (&admin, "snapshots", "", None, false, ok(Admin, Everything, Daemon), ""),
            (&member, "snapshots", "", None, false, ok(Member, Readable, ByCaller), ""),
            (&member, "diff", "", None, false, ok(Member, Readable, ByCaller), ""),
            (&outsider, "snapshots", "", None, false, None, "not named"),
            (&outsider, "diff", "", None, false, None, "not named"),
            (&member, "versions", "Tarifs/grille.csv", None, false, ok(Member, Readable, ByCaller), ""),
            (&member, "versions", "Propositions/a.docx", None, false, ok(Member, Readable, ByCaller), ""),
            (&member, "versions", &inside, None, false, ok(Member, Readable, ByCaller), ""),
            (&member, "versions", "Paie/bulletin.txt", None, false, None, "may not read `Paie/bulletin.txt`"),
            (&member, "versions", OUTSIDE, None, false, None, "not a path inside"),
            (&member, "versions", "../x", None, false, None, "not a path inside"),
            (&member, "ls", "", None, false, ok(Member, Readable, ByCaller), ""),
            (&member, "ls", "Paie", None, false, None, "may not read `Paie`"),
            (&member, "cat", "Tarifs/grille.csv", None, false, ok(Member, Readable, ByCaller), ""),
            (&member, "cat", "Paie/bulletin.txt", None, false, None, "may not read"),
            (&outsider, "cat", "Tarifs/grille.csv", None, false, None, "not named"),
            (&admin, "cat", "Paie/bulletin.txt", None, false, ok(Admin, Everything, Daemon), ""),
            // Restores in place.
            (&root, "restore", "Tarifs", None, false, ok(Root, Everything, Daemon), ""),
            (&admin, "restore", "Paie", None, false, ok(Admin, Everything, Daemon), ""),
            (&member, "restore", "Propositions/a.docx", None, false, ok(Member, Readable, Daemon), ""),
            (&member, "restore", "Propositions", None, false, ok(Member, Readable, Daemon), ""),
            (&member, "restore", "Tarifs/grille.csv", None, false, None, "you may read but not write `Tarifs/grille.csv`: restore a copy with --to"),
            (&member, "restore", "", None, false, None, "you may read but not write `the share's root`"),
            (&member, "restore", "Paie/bulletin.txt", None, false, None, "may not read"),
            (&outsider, "restore", "Propositions/a.docx", None, false, None, "not named"),
            // Copies: streamed and written by the caller, except root's own.
            (&root, "restore", "Paie", Some("/root/x"), false, ok(Root, Everything, Daemon), ""),
            (&root, "restore", "Paie", Some("/root/x"), true, ok(Root, Everything, ByCaller), ""),
            (&admin, "restore", "Paie", Some("/etc/cron.hourly"), false, None, "written by sharekeepctl with your own rights"),
            (&admin, "restore", "Paie", Some("/home/a/x"), true, ok(Admin, Everything, ByCaller), ""),
            (&member, "restore", "Tarifs/grille.csv", Some("/home/m/x"), true, ok(Member, Readable, ByCaller), ""),
            (&member, "restore", "", Some("/home/m/x"), true, ok(Member, Readable, ByCaller), ""),
            (&member, "restore", "Tarifs", Some("/home/m/x"), false, None, "written by sharekeepctl"),
            (&member, "restore", "Paie/bulletin.txt", Some("/home/m/x"), true, None, "may not read"),
            (&outsider, "restore", "Tarifs", Some("/tmp/x"), true, None, "not named"),
        ];
        for (who, op, path, to, stream, want, words) in cases {
            let got = authorize(who, &req(op, path, to, stream), &shares);
            match (&got, want) {
                (Decision::Allowed(g), Some((role, scope, writer))) => assert_eq!(
                    (g.role, g.scope, g.writer),
                    (role, scope, writer),
                    "uid {} {op} {path:?} to {to:?}",
                    who.uid
                ),
                (Decision::Refused { message, .. }, None) => assert!(
                    message.contains(words),
                    "uid {} {op} {path:?}: {message:?} should say {words:?}",
                    who.uid
                ),
                _ => panic!(
                    "uid {} {op} {path:?} to {to:?}: got {got:?}, want {want:?}",
                    who.uid
                ),
            }
        }
    }

    #[test]
    fn unknown_shares_are_not_found() {
        let shares = BTreeMap::new();
        let d = authorize(
            &Caller {
                uid: 5002,
                groups: vec![],
            },
            &req("snapshots", "", None, false),
            &shares,
        );
        assert!(
            matches!(
                d,
                Decision::Refused {
                    kind: "not_found",
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn visibility_follows_todays_access() {
        let p = policy();
        let rights = Rights::new(&p);
        let member = Caller {
            uid: 5002,
            groups: vec![5002, 6000],
        };
        let paie = Caller {
            uid: 5009,
            groups: vec![5009],
        };
        let cases: &[(&Caller, &str, bool, Visibility)] = &[
            (&member, "Tarifs", true, Visibility::Visible),
            (&member, "Tarifs/grille.csv", false, Visibility::Visible),
            (&member, "Propositions/a.docx", false, Visibility::Visible),
            (&member, "Paie", true, Visibility::Hidden),
            (&member, "Paie/bulletin.txt", false, Visibility::Hidden),
            (&paie, "", true, Visibility::PassThrough),
            (&paie, "Tarifs", true, Visibility::Hidden),
            (&paie, "Paie", true, Visibility::Visible),
            (&paie, "Paie/bulletin.txt", false, Visibility::Visible),
        ];
        for (who, rel, dir, want) in cases {
            assert_eq!(
                visibility(who.access(&rights, rel, *dir), *dir),
                *want,
                "uid {} at {rel:?}",
                who.uid
            );
        }
    }
}
