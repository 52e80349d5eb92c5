//! Validation: `RawPolicy` → `Policy`, reporting every problem at once (unknown users and
//! groups, rule paths outside the share or missing, duplicate rules, bad cron expressions,
//! empty retention, a repository inside the share…), and loading a file or a directory of
//! policies with the checks that span files (duplicate names, overlapping shares).

use crate::policy::{
    is_remote_url, parse_duration, BackupPlan, Guard, GuardAction, Keep, Lockdown, Origin, Policy,
    PrincipalSet, RepositoryAddress, Rule, Samba,
};
use crate::principal::{self, Principal};
use crate::problem::{Locator, Problem, Problems};
use crate::raw::{self, RawPolicy};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;

/// The default policies directory.
#[cfg(unix)]
pub const DEFAULT_POLICY_DIR: &str = "/etc/sharekeep/policies";
/// The default policies directory.
#[cfg(windows)]
pub const DEFAULT_POLICY_DIR: &str = r"C:\ProgramData\sharekeep\policies";

struct Ctx<'a> {
    loc: &'a Locator,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at<T>(&mut self, s: &Spanned<T>, message: impl Into<String>, hint: impl Into<String>) {
        self.problems
            .push(self.loc.problem(Some(s.span()), message, hint));
    }

    fn origin<T>(&self, s: &Spanned<T>) -> Origin {
        Origin {
            file: self.loc.file().to_path_buf(),
            line: self.loc.position(s.span().start).0,
        }
    }

    fn principals(&mut self, list: &[Spanned<String>]) -> Vec<Principal> {
        let mut out = Vec::new();
        for item in list {
            match principal::resolve(item.get_ref().trim()) {
                Ok(p) => {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
                Err(e) => {
                    let (m, h) = e.describe();
                    self.at(item, m, h);
                }
            }
        }
        out
    }
}

/// Normalises a rule path: relative, `/`-separated, no `.`/`..`. `Err` explains why not.
fn normalise_rule_path(text: &str) -> Result<String, &'static str> {
    let p = Path::new(text.trim());
    if p.is_absolute() {
        return Err("is absolute; rule paths are relative to the share's path");
    }
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return Err("goes outside the share (`..`)"),
        }
    }
    Ok(parts.join("/"))
}

/// Validates one parsed policy file.
pub fn validate(raw: RawPolicy, loc: &Locator) -> Result<Policy, Vec<Problem>> {
    let mut cx = Ctx {
        loc,
        problems: Vec::new(),
    };
    let share = raw.share.get_ref();
    let name = share.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        cx.at(
            &share.name,
            format!("share name `{name}` is not usable"),
            "use letters, digits, `-`, `_` or `.` (it names the Samba share and the state files)",
        );
    }
    let path = PathBuf::from(share.path.get_ref().trim());
    if let Some(bad) = crate::samba::unsafe_text(share.path.get_ref()) {
        cx.at(
            &share.path,
            format!("share path holds {bad}"),
            "rename the folder: its path goes into smb.conf, where it could start a new line",
        );
    }
    if !path.is_absolute() {
        cx.at(
            &share.path,
            format!("share path `{}` is not absolute", path.display()),
            "give the folder's full path, e.g. /srv/partages/commercial",
        );
    } else {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => cx.at(
                &share.path,
                format!("share path `{}` is a symbolic link", path.display()),
                "give the real folder's path (sharekeep never follows links)",
            ),
            Ok(_) => cx.at(
                &share.path,
                format!("share path `{}` is not a directory", path.display()),
                "give the service folder's path",
            ),
            Err(_) => cx.at(
                &share.path,
                format!("share path `{}` does not exist", path.display()),
                "create the folder first, or fix the path",
            ),
        }
    }
    let owner = match principal::resolve_user(share.owner.get_ref().trim()) {
        Ok(u) => Some(u),
        Err(e) => {
            let (m, h) = e.describe();
            cx.at(&share.owner, m, h);
            None
        }
    };
    let group_text = share.group.get_ref().trim();
    let group = match principal::resolve_group(group_text.strip_prefix('@').unwrap_or(group_text)) {
        Ok(g) => Some(g),
        Err(e) => {
            let (m, h) = e.describe();
            cx.at(&share.group, m, h);
            None
        }
    };
    let admins = cx.principals(&share.admins);

    // Rules: [access] is the root rule; then [[rule]]s, each inheriting what it leaves out
    // from the most specific enclosing rule.
    let access = raw.access.as_ref();
    let access_origin = access
        .map(|a| cx.origin(a))
        .unwrap_or_else(|| cx.origin(&raw.share));
    let set = |cx: &mut Ctx, v: &Option<Spanned<Vec<Spanned<String>>>>, fallback: &Origin| match v {
        Some(list) => PrincipalSet {
            principals: cx.principals(list.get_ref()),
            origin: cx.origin(list),
            inherited: false,
        },
        None => PrincipalSet {
            principals: Vec::new(),
            origin: fallback.clone(),
            inherited: false,
        },
    };
    let (root_read, root_write) = match access {
        Some(a) => {
            let a = a.get_ref();
            (
                set(&mut cx, &a.read, &access_origin),
                set(&mut cx, &a.write, &access_origin),
            )
        }
        None => (
            set(&mut cx, &None, &access_origin),
            set(&mut cx, &None, &access_origin),
        ),
    };
    let mut rules = vec![Rule {
        path: String::new(),
        read: root_read,
        write: root_write,
        origin: access_origin,
        comment: None,
    }];
    let mut pending: Vec<(String, &Spanned<raw::RawRule>)> = Vec::new();
    for r in &raw.rules {
        let rr = r.get_ref();
        match normalise_rule_path(rr.path.get_ref()) {
            Err(why) => cx.at(&rr.path, format!("rule path `{}` {why}", rr.path.get_ref()), "write the path of a folder or file inside the share, relative to it (e.g. \"Tarifs\")"),
            Ok(p) if p.is_empty() => cx.at(&rr.path, "rule path is the share itself", "put the share-wide rights in [access]"),
            Ok(p) => {
                if pending.iter().any(|(q, _)| *q == p) {
                    cx.at(&rr.path, format!("a rule for `{p}` already exists"), "merge the two rules into one");
                    continue;
                }
                if path.is_dir() && std::fs::symlink_metadata(path.join(&p)).is_err() {
                    cx.at(&rr.path, format!("rule path `{p}` does not exist in {}", path.display()), "create the folder first, or fix the path (names are case-sensitive)");
                } else if path.is_dir() && is_link_on_the_way(&path, &p) {
                    cx.at(&rr.path, format!("rule path `{p}` goes through a symbolic link"), "name the real folder; sharekeep never follows links");
                }
                pending.push((p, r));
            }
        }
    }
    pending.sort_by_key(|(p, _)| p.split('/').count());
    for (p, r) in pending {
        let rr = r.get_ref();
        let parent = rules
            .iter()
            .filter(|x| x.covers(&p))
            .max_by_key(|x| x.depth())
            .expect("root covers")
            .clone();
        let inherit = |s: &PrincipalSet| PrincipalSet {
            inherited: true,
            ..s.clone()
        };
        let read = match &rr.read {
            Some(_) => set(&mut cx, &rr.read, &parent.origin),
            None => inherit(&parent.read),
        };
        let write = match &rr.write {
            Some(_) => set(&mut cx, &rr.write, &parent.origin),
            None => inherit(&parent.write),
        };
        rules.push(Rule {
            path: p,
            read,
            write,
            origin: cx.origin(r),
            comment: rr.comment.clone(),
        });
    }

    let backup = raw
        .backup
        .as_ref()
        .and_then(|b| validate_backup(&mut cx, b, &path));
    let samba = match &raw.samba {
        Some(s) => {
            let s = s.get_ref();
            if let Some(n) = &s.name {
                if let Some(bad) = crate::samba::unsafe_share_name(n.get_ref().trim()) {
                    cx.at(
                        n,
                        format!("Samba share name holds {bad}"),
                        "use at most 80 letters, digits, spaces, `-`, `_`, `.` or `$`",
                    );
                }
            }
            if let Some(c) = &s.comment {
                if let Some(bad) = crate::samba::unsafe_text(c.get_ref()) {
                    cx.at(
                        c,
                        format!("Samba comment holds {bad}"),
                        "one line of at most 256 characters, without control characters",
                    );
                }
            }
            let previous_versions = s.previous_versions.as_ref().is_some_and(|v| *v.get_ref());
            #[cfg(windows)]
            if let Some(v) = s.previous_versions.as_ref().filter(|v| *v.get_ref()) {
                cx.at(
                    v,
                    "previous_versions is served by Samba from snapshots mounted with FUSE: Linux only",
                    "remove previous_versions: on Windows members restore with `sharekeepctl restore`",
                );
            }
            if previous_versions && raw.backup.is_none() {
                if let Some(v) = &s.previous_versions {
                    cx.at(
                        v,
                        "previous_versions needs snapshots: this policy has no [backup] plan",
                        "add a [backup] section (schedule, repository), or remove previous_versions",
                    );
                }
            }
            Samba {
                previous_versions,
                export: s.export,
                name: s
                    .name
                    .as_ref()
                    .map(|n| n.get_ref().trim().to_string())
                    .unwrap_or_else(|| name.clone()),
                comment: s.comment.as_ref().map(|c| c.get_ref().clone()),
                browseable: s.browseable.unwrap_or(true),
            }
        }
        None => Samba {
            name: name.clone(),
            browseable: true,
            ..Samba::default()
        },
    };
    let guard = raw
        .guard
        .as_ref()
        .map(|g| validate_guard(&mut cx, g.get_ref()));
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    Ok(Policy {
        file: loc.file().to_path_buf(),
        name,
        path,
        owner: owner.expect("no problem means resolved"),
        group: group.expect("no problem means resolved"),
        admins,
        description: share.description.clone(),
        rules,
        backup,
        samba,
        guard,
        lockdown: Lockdown::default(),
    })
}

/// `[guard]`: every count at least 1 (0 would lock the share at the first change), `action`
/// `lock` or `alert`.
fn validate_guard(cx: &mut Ctx, g: &raw::RawGuard) -> Guard {
    let d = Guard::default();
    let mut count = |v: &Option<Spanned<u32>>, default: u32, what: &str| match v {
        Some(n) if *n.get_ref() == 0 => {
            cx.at(
                n,
                format!("{what} = 0 would defend the share against its first change"),
                "give a count of at least 1, or remove the key for the default",
            );
            default
        }
        Some(n) => *n.get_ref(),
        None => default,
    };
    let guard = Guard {
        rewrites_per_minute: count(
            &g.rewrites_per_minute,
            d.rewrites_per_minute,
            "rewrites_per_minute",
        ),
        suspicious_per_minute: count(
            &g.suspicious_per_minute,
            d.suspicious_per_minute,
            "suspicious_per_minute",
        ),
        renames_per_minute: count(
            &g.renames_per_minute,
            d.renames_per_minute,
            "renames_per_minute",
        ),
        deletions_per_minute: count(
            &g.deletions_per_minute,
            d.deletions_per_minute,
            "deletions_per_minute",
        ),
        note_folders: count(&g.note_folders, d.note_folders, "note_folders"),
        action: d.action,
    };
    let action = match g.action.as_ref().map(|a| (a, a.get_ref().trim())) {
        None | Some((_, "lock")) => GuardAction::Lock,
        Some((_, "alert")) => GuardAction::Alert,
        Some((a, other)) => {
            cx.at(
                a,
                format!("unknown guard action `{other}`"),
                "\"lock\" (take write away, pin the last good snapshot, alert) or \"alert\" (alert only)",
            );
            GuardAction::Lock
        }
    };
    Guard { action, ..guard }
}

fn is_link_on_the_way(root: &Path, rel: &str) -> bool {
    let mut p = root.to_path_buf();
    for c in rel.split('/') {
        p.push(c);
        if std::fs::symlink_metadata(&p)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return true;
        }
    }
    false
}

/// A `keep` (or `copy_keep`) table: `None` when it is wrong (reported).
fn validate_keep(cx: &mut Ctx, k: &Spanned<raw::RawKeep>) -> Option<Keep> {
    let rk = k.get_ref();
    let mut ok = true;
    let within_secs = match &rk.within {
        None => None,
        Some(w) => {
            match parse_duration(w.get_ref()) {
                Some(s) => Some(s),
                None => {
                    cx.at(w, format!("`{}` is not a duration", w.get_ref()), "write a number and a unit: y, m (30 days), w, d or h, e.g. \"2d\" or \"1y6m\"");
                    ok = false;
                    None
                }
            }
        }
    };
    let keep = Keep {
        last: rk.last,
        hourly: rk.hourly,
        daily: rk.daily,
        weekly: rk.weekly,
        monthly: rk.monthly,
        yearly: rk.yearly,
        within_secs,
        tags: rk.tags.clone(),
    };
    if keep.is_empty() && rk.within.is_none() {
        cx.at(k, "retention with no rule: `keep` sets nothing to keep", "set at least one of last, daily, weekly, monthly, yearly, within, tags (or remove `keep` to keep everything)");
        ok = false;
    }
    ok.then_some(keep)
}

/// A remote address's shape: a bucket or host after the scheme, and no password in it (a
/// policy is readable by the share's admins; credentials live in sharekeepd.toml's
/// `remote_credentials`). The store itself is checked when the service opens it.
fn check_url<T>(cx: &mut Ctx, at: &Spanned<T>, url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() {
        cx.at(
            at,
            format!("`{url}` names no bucket or host"),
            "e.g. \"s3://bucket/commercial?endpoint=https://s3.example.net&region=eu-west-1\" or \"sftp://backup@nas:22/volume1/commercial\"",
        );
        return false;
    }
    let userinfo = authority.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
    let lower = url.to_ascii_lowercase();
    if userinfo.contains(':') || lower.contains("secret") || lower.contains("password") {
        cx.at(
            at,
            "a secret is written in the address",
            "remove it: credentials go in the private file sharekeepd.toml's `remote_credentials` names (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), SFTP logs in with a key",
        );
        return false;
    }
    true
}

fn validate_backup(cx: &mut Ctx, b: &Spanned<raw::RawBackup>, share: &Path) -> Option<BackupPlan> {
    let rb = b.get_ref();
    let mut ok = true;
    let schedule = match cron::Schedule::from_str(rb.schedule.get_ref().trim()) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.at(&rb.schedule, format!("bad cron expression `{}`: {e}", rb.schedule.get_ref()), "cron with seconds: \"sec min hour day-of-month month day-of-week\", e.g. \"0 30 18 * * Mon-Fri\"");
            None
        }
    };
    let repository = RepositoryAddress::parse(rb.repository.get_ref());
    match &repository {
        RepositoryAddress::Local(path) if !path.is_absolute() => {
            cx.at(
                &rb.repository,
                format!("repository `{}` is neither s3://, sftp:// nor an absolute folder", path.display()),
                "give the repository directory's full path, e.g. /var/backups/sharekeep/commercial, or a store: \"s3://bucket/commercial?endpoint=https://s3.example.net&region=eu-west-1\", \"sftp://backup@nas:22/volume1/commercial\"",
            );
            ok = false;
        }
        RepositoryAddress::Local(path) if path.starts_with(share) => {
            cx.at(
                &rb.repository,
                "the repository is inside the share it backs up",
                "keep backups outside the share, e.g. /var/backups/sharekeep/<share>",
            );
            ok = false;
        }
        RepositoryAddress::Remote(url) => ok &= check_url(cx, &rb.repository, url),
        RepositoryAddress::Local(_) => {}
    }
    let keep = rb.keep.as_ref().and_then(|k| {
        let v = validate_keep(cx, k);
        ok &= v.is_some();
        v
    });
    let copy_keep = rb.copy_keep.as_ref().and_then(|k| {
        let v = validate_keep(cx, k);
        ok &= v.is_some();
        v
    });
    let key_file = rb
        .key_file
        .as_ref()
        .map(|k| PathBuf::from(k.get_ref().trim()));
    if let (Some(k), Some(path)) = (&rb.key_file, &key_file) {
        if !path.is_absolute() {
            cx.at(
                k,
                format!("key_file `{}` is not absolute", path.display()),
                "give the key file's full path, e.g. /etc/sharekeep/keys/commercial.key (make it with `sharekeepctl key generate`)",
            );
            ok = false;
        } else if path.starts_with(share) {
            cx.at(
                k,
                "the key file is inside the share: its members could read it",
                "keep it outside the share, e.g. /etc/sharekeep/keys/<share>.key (root only)",
            );
            ok = false;
        }
    }
    let copy_to = rb.copy_to.as_ref().map(|c| c.get_ref().trim().to_string());
    if repository.is_remote() && key_file.is_none() {
        cx.at(
            &rb.repository,
            "a repository on another machine is encrypted, and no key_file is set",
            "add key_file = \"/etc/sharekeep/keys/<share>.key\" to [backup] (make it with `sharekeepctl key generate FILE`; keep a copy of it away from this machine)",
        );
        ok = false;
    }
    if let (Some(c), Some(url)) = (&rb.copy_to, &copy_to) {
        let remote = is_remote_url(url);
        if !remote && !Path::new(url).is_absolute() {
            cx.at(
                c,
                format!("copy_to `{url}` is neither s3://, sftp:// nor an absolute folder"),
                "e.g. \"s3://bucket/commercial?endpoint=https://s3.example.net&region=eu-west-1\" or \"sftp://backup@nas:22/volume1/commercial\"",
            );
            ok = false;
        } else if remote && !check_url(cx, c, url) {
            ok = false;
        } else if remote && key_file.is_none() {
            cx.at(
                c,
                "a copy on another machine is encrypted, and no key_file is set",
                "add key_file = \"/etc/sharekeep/keys/<share>.key\" to [backup] (make it with `sharekeepctl key generate FILE`; keep a copy of it away from this machine)",
            );
            ok = false;
        } else if RepositoryAddress::parse(url) == repository {
            cx.at(
                c,
                "copy_to is the repository itself",
                "name another repository",
            );
            ok = false;
        }
    }
    if let (Some(k), None) = (&rb.copy_keep, &rb.copy_to) {
        cx.at(
            k,
            "copy_keep without copy_to",
            "add copy_to, or remove copy_keep",
        );
        ok = false;
    }
    for e in &rb.exclude {
        if e.get_ref().trim().is_empty() {
            cx.at(
                e,
                "empty exclude pattern",
                "remove it, or write a pattern such as \"*.tmp\"",
            );
            ok = false;
        }
    }
    let drill_text = rb.drill.as_ref().map(|d| {
        match d.get_ref().trim() {
            "daily" => "0 0 20 * * *",
            "weekly" => "0 0 20 * * Sun",
            "monthly" => "0 0 20 1 * *",
            other => other,
        }
        .to_string()
    });
    let drill = match (&rb.drill, &drill_text) {
        (Some(d), Some(text)) => match cron::Schedule::from_str(text) {
            Ok(s) => Some(s),
            Err(e) => {
                cx.at(
                    d,
                    format!("bad drill schedule `{}`: {e}", d.get_ref()),
                    "daily, weekly, monthly, or cron with seconds, e.g. \"0 0 20 * * Sun\"",
                );
                ok = false;
                None
            }
        },
        _ => None,
    };
    let max_age_secs = match &rb.max_age {
        None => None,
        Some(m) => match parse_duration(m.get_ref()) {
            Some(s) if s > 0 => Some(s),
            _ => {
                cx.at(
                    m,
                    format!("max_age `{}` is not a duration", m.get_ref()),
                    "write a number and a unit: y, m (30 days), w, d or h, e.g. \"2d\"",
                );
                ok = false;
                None
            }
        },
    };
    if let Some(n) = &rb.drill_sample {
        if *n.get_ref() == 0 {
            cx.at(
                n,
                "drill_sample = 0 restores nothing",
                "give the number of files each drill restores (default 50)",
            );
            ok = false;
        }
    }
    Some(BackupPlan {
        max_age_secs,
        drill_text,
        drill,
        drill_sample: rb.drill_sample.as_ref().map(|n| *n.get_ref()).unwrap_or(50),
        schedule_text: rb.schedule.get_ref().trim().to_string(),
        schedule: schedule?,
        repository,
        keep,
        keep_min_days: rb.keep_min_days.as_ref().map(|d| *d.get_ref()).unwrap_or(0),
        exclude: rb
            .exclude
            .iter()
            .map(|e| e.get_ref().trim().to_string())
            .collect(),
        repository_private: rb.repository_private.unwrap_or(true),
        key_file,
        copy_to,
        copy_keep,
    })
    .filter(|_| ok)
}

/// Reads, parses and validates one policy file.
pub fn load_file(file: &Path) -> Result<Policy, Problems> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Problems(vec![Problem {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
            hint: "check the path and permissions".into(),
        }])
    })?;
    let loc = Locator::new(file, &text);
    let raw = raw::parse(&loc, &text).map_err(Problems)?;
    validate(raw, &loc).map_err(Problems)
}

/// The policy files in `dir` (`*.toml`, sorted), or `path` itself when it is a file.
pub fn policy_files(path: &Path) -> Result<Vec<PathBuf>, Problems> {
    let whole = |message: String, hint: &str| {
        Problems(vec![Problem {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
            hint: hint.into(),
        }])
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        whole(
            format!("cannot read: {e}"),
            "give a policy file or a directory of *.toml files",
        )
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| whole(format!("cannot list: {e}"), "check the permissions"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every policy of a file or directory: all problems of all files at once, plus the
/// checks across files (duplicate share names, overlapping share paths).
pub fn load(path: &Path) -> Result<Vec<Policy>, Problems> {
    let mut problems = Problems::default();
    let mut policies = Vec::new();
    for f in policy_files(path)? {
        match load_file(&f) {
            Ok(p) => policies.push(p),
            Err(ps) => problems.0.extend(ps.0),
        }
    }
    for (i, a) in policies.iter().enumerate() {
        for b in &policies[i + 1..] {
            let whole = |p: &Policy, message: String, hint: &str| Problem {
                file: p.file.clone(),
                line: 0,
                column: 0,
                message,
                hint: hint.into(),
            };
            if a.name == b.name {
                problems.push(whole(
                    b,
                    format!(
                        "share name `{}` is also used by {}",
                        b.name,
                        a.file.display()
                    ),
                    "give each share its own name",
                ));
            }
            if a.path.starts_with(&b.path) || b.path.starts_with(&a.path) {
                problems.push(whole(
                    b,
                    format!(
                        "share `{}` ({}) overlaps share `{}` ({}) from {}",
                        b.name,
                        b.path.display(),
                        a.name,
                        a.path.display(),
                        a.file.display()
                    ),
                    "shares must not contain one another: use a [[rule]] inside one share instead",
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(policies)
    } else {
        problems.sort();
        Err(problems)
    }
}

#[cfg(all(test, unix))]
mod tests {
    //! Tables: a policy body (with `SHARE` standing for a real folder) → the problems it gets
    //! (`line: message` fragments), or what the validated policy holds. Accounts used: `root`
    //! and `nobody`, present on every Linux system.

    use super::*;
    use std::os::unix::fs::symlink;

    struct Scene {
        dir: tempfile::TempDir,
    }

    impl Scene {
        /// A share folder `share/` with `Tarifs/`, `Propositions/a/b/`, a file, and a link
        /// `Raccourci -> Tarifs`; a stray file `file.txt` next to it.
        fn new() -> Scene {
            let dir = tempfile::tempdir().unwrap();
            let s = dir.path().join("share");
            std::fs::create_dir_all(s.join("Tarifs")).unwrap();
            std::fs::create_dir_all(s.join("Propositions/a/b")).unwrap();
            std::fs::write(s.join("Tarifs/grille.csv"), "x").unwrap();
            symlink("Tarifs", s.join("Raccourci")).unwrap();
            std::fs::write(dir.path().join("file.txt"), "x").unwrap();
            symlink("share", dir.path().join("lien")).unwrap();
            Scene { dir }
        }

        fn share(&self) -> PathBuf {
            self.dir.path().join("share")
        }

        fn write(&self, name: &str, body: &str) -> PathBuf {
            let f = self.dir.path().join(name);
            let text = body
                .replace("SHARE", &self.share().display().to_string())
                .replace("TOP", &self.dir.path().display().to_string());
            std::fs::write(&f, text).unwrap();
            f
        }

        /// `line: message` of every problem of `body`, or the policy.
        fn load(&self, body: &str) -> Result<Policy, Vec<String>> {
            let f = self.write("p.toml", body);
            load_file(&f).map_err(|ps| {
                ps.0.iter()
                    .map(|p| format!("{}: {}", p.line, p.message))
                    .collect()
            })
        }
    }

    const SHARE: &str =
        "[share]\nname = \"c\"\npath = \"SHARE\"\nowner = \"root\"\ngroup = \"root\"\n";

    #[test]
    fn bad_policies_get_every_problem_located() {
        let sc = Scene::new();
        let cases: &[(&str, &[&str])] = &[
            ("[share]\nname = \"\"\npath = \"SHARE\"\nowner = \"root\"\ngroup = \"root\"\n", &["2: share name `` is not usable"]),
            ("[share]\nname = \"a b\"\npath = \"SHARE\"\nowner = \"root\"\ngroup = \"root\"\n", &["2: share name `a b` is not usable"]),
            ("[share]\nname = \"c\"\npath = \"rel/x\"\nowner = \"root\"\ngroup = \"root\"\n", &["3: share path `rel/x` is not absolute"]),
            ("[share]\nname = \"c\"\npath = \"TOP/absent\"\nowner = \"root\"\ngroup = \"root\"\n", &["does not exist"]),
            ("[share]\nname = \"c\"\npath = \"TOP/file.txt\"\nowner = \"root\"\ngroup = \"root\"\n", &["is not a directory"]),
            ("[share]\nname = \"c\"\npath = \"TOP/lien\"\nowner = \"root\"\ngroup = \"root\"\n", &["is a symbolic link"]),
            ("[share]\nname = \"c\"\npath = \"SHARE\\nx\"\nowner = \"root\"\ngroup = \"root\"\n", &["3: share path holds"]),
            ("[share]\nname = \"c\"\npath = \"SHARE\"\nowner = \"sk-no-such-user\"\ngroup = \"root\"\n", &["4: ", "sk-no-such-user"]),
            ("[share]\nname = \"c\"\npath = \"SHARE\"\nowner = \"root\"\ngroup = \"@sk-no-such-group\"\n", &["5: ", "sk-no-such-group"]),
            // Every problem at once, each on its line.
            ("[share]\nname = \"a b\"\npath = \"rel\"\nowner = \"sk-no-such-user\"\ngroup = \"root\"\nadmins = [\"@sk-no-such-group\"]\n", &["2: share name", "3: share path `rel`", "4: ", "6: "]),
        ];
        for (body, want) in cases {
            let got = sc.load(body).expect_err(body).join("\n");
            for w in *want {
                assert!(got.contains(w), "{body}\nwanted {w:?} in:\n{got}");
            }
        }
        // Every problem of the last case is reported, not just the first.
        assert_eq!(sc.load(cases[9].0).unwrap_err().len(), 4);
    }

    #[test]
    fn rule_paths_are_checked_and_normalised() {
        let sc = Scene::new();
        let bad: &[(&str, &str)] = &[
            ("/etc", "rule path `/etc` is absolute"),
            ("../x", "rule path `../x` goes outside the share"),
            (
                "Tarifs/../../x",
                "rule path `Tarifs/../../x` goes outside the share",
            ),
            (".", "rule path is the share itself"),
            ("Absent", "rule path `Absent` does not exist"),
            (
                "Raccourci/grille.csv",
                "rule path `Raccourci/grille.csv` goes through a symbolic link",
            ),
            (
                "Raccourci",
                "rule path `Raccourci` goes through a symbolic link",
            ),
        ];
        for (path, want) in bad {
            let body = format!("{SHARE}\n[[rule]]\npath = \"{path}\"\nread = [\"root\"]\n");
            let got = sc.load(&body).expect_err(path).join("\n");
            assert!(got.contains(&format!("8: {want}")), "{path}: {got}");
        }
        let dup =
            format!("{SHARE}\n[[rule]]\npath = \"Tarifs\"\n\n[[rule]]\npath = \"./Tarifs/\"\n");
        let got = sc.load(&dup).unwrap_err().join("\n");
        assert!(
            got.contains("11: a rule for `Tarifs` already exists"),
            "{got}"
        );
        let ok = format!("{SHARE}\n[[rule]]\npath = \"./Propositions//a/\"\n");
        let p = sc.load(&ok).unwrap();
        assert_eq!(p.rules[1].path, "Propositions/a");
        assert_eq!(p.rules[1].origin.line, 7);
    }

    #[test]
    fn rules_inherit_what_they_leave_out_from_the_closest_enclosing_rule() {
        let sc = Scene::new();
        let body = format!(
            "{SHARE}admins = [\"root\", \" root \", \"@root\"]\n\n[access]\nread = [\"nobody\"]\nwrite = [\"root\"]\n\n\
             [[rule]]\npath = \"Propositions/a/b\"\nread = [\"@root\"]\n\n\
             [[rule]]\npath = \"Propositions\"\nwrite = [\"nobody\"]\ncomment = \"équipe\"\n"
        );
        let p = sc.load(&body).unwrap();
        // Duplicates collapse; a user and a group of the same name stay two principals.
        assert_eq!(p.admins.len(), 2, "{:?}", p.admins);
        let names = |s: &PrincipalSet| {
            s.principals
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        };
        let paths: Vec<&str> = p.rules.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            ["", "Propositions", "Propositions/a/b"],
            "shallow rules first"
        );
        let prop = &p.rules[1];
        assert_eq!(names(&prop.write), ["nobody"]);
        assert!(!prop.write.inherited);
        assert_eq!(
            names(&prop.read),
            ["nobody"],
            "read inherited from [access]"
        );
        assert!(prop.read.inherited);
        assert_eq!(prop.comment.as_deref(), Some("équipe"));
        let deep = &p.rules[2];
        assert_eq!(names(&deep.read), ["@root"]);
        assert_eq!(
            names(&deep.write),
            ["nobody"],
            "write inherited from Propositions, not [access]"
        );
        assert!(deep.write.inherited && !deep.read.inherited);
        // Without [access], the root rule names nobody.
        let bare = sc.load(SHARE).unwrap();
        assert!(
            bare.rules[0].read.principals.is_empty() && bare.rules[0].write.principals.is_empty()
        );
        assert_eq!(bare.samba.name, "c");
        assert!(bare.samba.browseable && !bare.samba.export);
        assert!(bare.backup.is_none());
    }

    #[test]
    fn samba_settings_are_checked() {
        let sc = Scene::new();
        let ok = sc
            .load(&format!("{SHARE}\n[samba]\nexport = true\nname = \" Ventes \"\ncomment = \"Service\"\nbrowseable = false\n"))
            .unwrap();
        assert!(ok.samba.export && !ok.samba.browseable);
        assert_eq!(ok.samba.name, "Ventes");
        assert_eq!(ok.samba.comment.as_deref(), Some("Service"));
        let default = sc
            .load(&format!("{SHARE}\n[samba]\nexport = true\n"))
            .unwrap();
        assert_eq!(default.samba.name, "c");
        assert!(default.samba.browseable);
        let bad = sc
            .load(&format!("{SHARE}\n[samba]\nexport = true\nname = \"a]b\"\ncomment = \"x\\ninclude = /tmp/evil\"\n"))
            .unwrap_err()
            .join("\n");
        assert!(bad.contains("9: Samba share name holds"), "{bad}");
        assert!(bad.contains("10: Samba comment holds"), "{bad}");
    }

    #[test]
    fn guard_settings_are_checked() {
        let sc = Scene::new();
        assert_eq!(sc.load(SHARE).unwrap().guard, None, "off unless asked");
        let defaults = sc.load(&format!("{SHARE}\n[guard]\n")).unwrap();
        assert_eq!(defaults.guard, Some(Guard::default()));
        assert!(defaults.lockdown.is_empty());
        let set = sc
            .load(&format!("{SHARE}\n[guard]\nsuspicious_per_minute = 5\nrenames_per_minute = 7\naction = \"alert\"\n"))
            .unwrap()
            .guard
            .unwrap();
        assert_eq!(
            (
                set.suspicious_per_minute,
                set.renames_per_minute,
                set.action
            ),
            (5, 7, GuardAction::Alert)
        );
        assert_eq!(
            set.rewrites_per_minute,
            Guard::default().rewrites_per_minute
        );
        let bad = sc
            .load(&format!(
                "{SHARE}\n[guard]\nnote_folders = 0\naction = \"panic\"\nrenames_per_minut = 3\n"
            ))
            .unwrap_err()
            .join("\n");
        assert!(
            bad.contains("unknown key `renames_per_minut` in [guard]"),
            "{bad}"
        );
        let bad = sc
            .load(&format!(
                "{SHARE}\n[guard]\nnote_folders = 0\naction = \"panic\"\n"
            ))
            .unwrap_err()
            .join("\n");
        assert!(
            bad.contains("8: note_folders = 0 would defend the share against its first change"),
            "{bad}"
        );
        assert!(bad.contains("9: unknown guard action `panic`"), "{bad}");
    }

    #[test]
    fn backup_plans_are_checked() {
        let sc = Scene::new();
        let plan = |b: &str| format!("{SHARE}\n[backup]\n{b}");
        let bad: &[(&str, &str)] = &[
            ("schedule = \"every day\"\nrepository = \"/var/r\"\n", "8: bad cron expression `every day`"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"var/r\"\n", "9: repository `var/r` is neither s3://, sftp:// nor an absolute folder"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"s3://b/r?endpoint=http://127.0.0.1:9000\"\n", "9: a repository on another machine is encrypted, and no key_file is set"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"sftp://backup:hunter2@nas/r\"\nkey_file = \"/k\"\n", "9: a secret is written in the address"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"s3:///r\"\nkey_file = \"/k\"\n", "9: `s3:///r` names no bucket or host"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"s3://b/r\"\nkey_file = \"/k\"\ncopy_to = \" s3://b/r \"\n", "11: copy_to is the repository itself"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"SHARE/.backup\"\n", "9: the repository is inside the share"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nkeep = {}\n", "10: retention with no rule"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nkeep = { within = \"2 days\" }\n", "10: `2 days` is not a duration"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nexclude = [\"*.tmp\", \" \"]\n", "10: empty exclude pattern"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ndrill = \"fortnightly\"\n", "10: bad drill schedule `fortnightly`"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ndrill = \"weekly\"\ndrill_sample = 0\n", "11: drill_sample = 0 restores nothing"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ncopy_to = \"s3://b/c\"\n", "10: a copy on another machine is encrypted, and no key_file is set"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ncopy_to = \"nas:/r\"\n", "10: copy_to `nas:/r` is neither"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ncopy_to = \"/var/r\"\n", "10: copy_to is the repository itself"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nkey_file = \"k.key\"\n", "10: key_file `k.key` is not absolute"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nkey_file = \"SHARE/k.key\"\n", "10: the key file is inside the share"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ncopy_keep = { last = 3 }\n", "10: copy_keep without copy_to"),
            ("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nkey_file = \"/k\"\ncopy_to = \"/c\"\ncopy_keep = {}\n", "12: retention with no rule"),
        ];
        for (b, want) in bad {
            let got = sc.load(&plan(b)).expect_err(b).join("\n");
            assert!(got.contains(want), "{b}: {got}");
            assert_eq!(got.lines().count(), 1, "{b}: one problem: {got}");
        }
        let p = sc
            .load(&plan("schedule = \" 0 30 18 * * Mon-Fri \"\nrepository = \"/var/r\"\nkeep = { within = \"2d\" }\nkeep_min_days = 30\nexclude = [\" *.tmp \"]\n"))
            .unwrap();
        let b = p.backup.unwrap();
        assert_eq!(b.schedule_text, "0 30 18 * * Mon-Fri");
        assert_eq!(b.repository, RepositoryAddress::Local("/var/r".into()));
        assert_eq!(b.keep.unwrap().within_secs, Some(2 * 86400));
        assert_eq!(b.keep_min_days, 30);
        assert_eq!(b.exclude, ["*.tmp"]);
        assert!(b.repository_private);
        assert_eq!((b.drill_text.as_deref(), b.drill_sample), (None, 50));
        let drilled = sc
            .load(&plan("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\ndrill = \"weekly\"\ndrill_sample = 20\n"))
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(drilled.drill_text.as_deref(), Some("0 0 20 * * Sun"));
        assert!(drilled.drill.is_some());
        assert_eq!(drilled.drill_sample, 20);
        let open = sc
            .load(&plan("schedule = \"0 0 3 * * *\"\nrepository = \"/var/r\"\nrepository_private = false\nkeep = { daily = 7 }\n"))
            .unwrap()
            .backup
            .unwrap();
        assert!(!open.repository_private);
        assert_eq!(open.keep.unwrap().daily, Some(7));
        let remote = sc
            .load(&plan("schedule = \"0 0 3 * * *\"\nrepository = \" s3://b/team?endpoint=http://127.0.0.1:9000 \"\nkey_file = \"/etc/sharekeep/team.key\"\n"))
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(
            remote.repository,
            RepositoryAddress::Remote("s3://b/team?endpoint=http://127.0.0.1:9000".into())
        );
        assert_eq!(remote.repository.local(), None);
        assert_eq!(open.keep_min_days, 0);
    }

    #[test]
    fn a_directory_of_policies_is_checked_across_files() {
        let sc = Scene::new();
        let dir = sc.dir.path().join("policies");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir_all(sc.share().join("Tarifs/sub")).unwrap();
        let other = sc.dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let policy = |name: &str, path: &Path| {
            format!(
                "[share]\nname = \"{name}\"\npath = \"{}\"\nowner = \"root\"\ngroup = \"root\"\n",
                path.display()
            )
        };
        std::fs::write(dir.join("b.toml"), policy("b", &other)).unwrap();
        std::fs::write(dir.join("a.toml"), policy("a", &sc.share())).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
        std::fs::create_dir(dir.join("old.toml")).unwrap();
        let files = policy_files(&dir).unwrap();
        assert_eq!(files, [dir.join("a.toml"), dir.join("b.toml")]);
        assert_eq!(
            policy_files(&dir.join("a.toml")).unwrap(),
            [dir.join("a.toml")]
        );
        let missing = policy_files(&dir.join("absent")).unwrap_err();
        assert!(missing.0[0].message.contains("cannot read"), "{missing:?}");
        let loaded = load(&dir).unwrap();
        let names: Vec<&str> = loaded.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // Same name, and a share inside another: both named, on the later file.
        std::fs::write(
            dir.join("c.toml"),
            policy("a", &sc.share().join("Tarifs/sub")),
        )
        .unwrap();
        let err = load(&dir).unwrap_err();
        let text: Vec<String> = err
            .0
            .iter()
            .map(|p| format!("{}: {}", p.file.display(), p.message))
            .collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text.iter().all(|t| t.contains("c.toml")), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.contains("share name `a` is also used by")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("overlaps share `a`")),
            "{text:?}"
        );
        // A broken file is reported with the others' problems, not instead of them.
        std::fs::write(dir.join("d.toml"), "[share\n").unwrap();
        let err = load(&dir).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err:?}");
    }
}
