//! Samba export: one smb.conf section per policy with `[samba] export = true`, whose
//! share-level lists agree with the folder's ACLs. The share level only opens the door: who may
//! connect (`valid users`: everyone the policy names), who may write somewhere (`write list`),
//! who may only read everywhere (`read list`); what each may do in each sub-folder comes from
//! the POSIX ACLs (`inherit acls`, masks that keep the group class), so a user can do over SMB
//! exactly what they can do locally. `compare` checks a running smbd's view (`testparm -s`)
//! against the policies.

use crate::policy::Policy;
use crate::principal::Principal;
use std::collections::{BTreeMap, BTreeSet};

/// The smb.conf settings of one exported share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SambaShare {
    /// Section name.
    pub name: String,
    /// `key = value` settings, keys lowercase as testparm prints them.
    pub settings: BTreeMap<String, String>,
}

/// Why `text` cannot go into smb.conf as a value (`None`: it can): a control character
/// (a newline would start a new line, hence any setting or section), or more than 256
/// characters.
pub(crate) fn unsafe_text(text: &str) -> Option<String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Some(format!("a control character ({:?})", c));
    }
    (text.chars().count() > 256).then(|| "more than 256 characters".to_string())
}

/// Why `name` cannot be a Samba share (section) name.
pub(crate) fn unsafe_share_name(name: &str) -> Option<String> {
    if let Some(bad) = unsafe_text(name) {
        return Some(bad);
    }
    if name.is_empty() || name.chars().count() > 80 {
        return Some("no name, or more than 80 characters".into());
    }
    name.chars()
        .find(|c| !(c.is_alphanumeric() || " -_.$".contains(*c)))
        .map(|c| format!("the character {c:?}"))
}

/// Whether every value of a share section is safe to write (validation guarantees it; the
/// export checks again, since a name from NSS or a folder could hold anything).
fn section_is_safe(s: &SambaShare) -> bool {
    unsafe_share_name(&s.name).is_none()
        && s.settings
            .iter()
            .all(|(k, v)| unsafe_text(k).is_none() && unsafe_text(v).is_none())
}

fn principal(p: &Principal) -> String {
    match p {
        Principal::User(u) => u.name.clone(),
        Principal::Group(g) => format!("@{}", g.name),
    }
}

/// The share section for one policy (`None` when it is not exported). `versions`: the folder
/// under which sharekeepd mounts each share's snapshots (`<state>/versions`), for the shares
/// whose Previous Versions are on.
pub fn share_of(policy: &Policy, versions: &std::path::Path) -> Option<SambaShare> {
    if !policy.samba.export {
        return None;
    }
    let mut everyone: BTreeSet<String> = BTreeSet::new();
    let mut writers: BTreeSet<String> = BTreeSet::new();
    everyone.insert(policy.owner.name.clone());
    writers.insert(policy.owner.name.clone());
    for a in &policy.admins {
        everyone.insert(principal(a));
    }
    for r in &policy.rules {
        for p in &r.read.principals {
            everyone.insert(principal(p));
        }
        for p in &r.write.principals {
            everyone.insert(principal(p));
            writers.insert(principal(p));
        }
    }
    // The guard's lockdown: the locked users read only (a user who writes through a group
    // listed in `write list` keeps share-level write there, and the folder's ACLs, which
    // name them read-only, refuse it); the whole share read-only when the writer is unknown.
    let lock = &policy.lockdown;
    for u in &lock.users {
        writers.remove(&u.user.name);
    }
    let mut readers: BTreeSet<String> = everyone.difference(&writers).cloned().collect();
    readers.extend(lock.users.iter().map(|u| u.user.name.clone()));
    if lock.share {
        writers.clear();
        readers.clone_from(&everyone);
    }
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
    let mut settings = BTreeMap::new();
    settings.insert("path".into(), policy.path.display().to_string());
    if let Some(c) = &policy.samba.comment {
        settings.insert("comment".into(), c.clone());
    }
    settings.insert(
        "browseable".into(),
        if policy.samba.browseable { "Yes" } else { "No" }.into(),
    );
    settings.insert(
        "read only".into(),
        if lock.share { "Yes" } else { "No" }.into(),
    );
    settings.insert("valid users".into(), join(&everyone));
    if !writers.is_empty() {
        settings.insert("write list".into(), join(&writers));
    }
    if !readers.is_empty() {
        settings.insert("read list".into(), join(&readers));
    }
    settings.insert("inherit acls".into(), "Yes".into());
    settings.insert("create mask".into(), "0770".into());
    settings.insert("directory mask".into(), "02770".into());
    if policy.samba.previous_versions {
        // Windows' Previous Versions: one @GMT-… folder per snapshot, mounted by sharekeepd.
        settings.insert("vfs objects".into(), "shadow_copy2".into());
        settings.insert(
            "shadow:snapdir".into(),
            versions.join(&policy.name).display().to_string(),
        );
        settings.insert(
            "shadow:mountpoint".into(),
            policy.path.display().to_string(),
        );
        settings.insert("shadow:format".into(), "@GMT-%Y.%m.%d-%H.%M.%S".into());
        settings.insert("shadow:localtime".into(), "no".into());
        settings.insert("shadow:sort".into(), "desc".into());
    }
    Some(SambaShare {
        name: policy.samba.name.clone(),
        settings,
    })
}

/// The smb.conf include for all exported policies.
pub fn export(policies: &[Policy], versions: &std::path::Path) -> String {
    let mut out = String::from("# Written by sharekeep from its share policies; do not edit (changes are overwritten).\n# Include it from smb.conf with: include = <this file>\n");
    for p in policies {
        if let Some(s) = share_of(p, versions) {
            if !section_is_safe(&s) {
                out.push_str(&format!(
                    "\n# from {}: not exported (a value holds a control character)\n",
                    p.file
                        .display()
                        .to_string()
                        .replace(|c: char| c.is_control(), "?")
                ));
                continue;
            }
            out.push_str(&format!("\n# from {}\n[{}]\n", p.file.display(), s.name));
            for (k, v) in &s.settings {
                out.push_str(&format!("   {k} = {v}\n"));
            }
        }
    }
    out
}

/// Parses `testparm -s` output into sections of lowercase keys.
pub fn parse_smb_conf(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            current = Some(name.to_string());
            out.entry(name.to_string()).or_default();
        } else if let (Some(sec), Some((k, v))) = (&current, l.split_once('=')) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn normalise(key: &str, value: &str) -> String {
    match key {
        "valid users" | "write list" | "read list" => {
            let mut v: Vec<&str> = value.split([' ', ',']).filter(|x| !x.is_empty()).collect();
            v.sort();
            v.join(" ")
        }
        "create mask" | "directory mask" => u32::from_str_radix(value.trim_start_matches('0'), 8)
            .map(|n| format!("{n:o}"))
            .unwrap_or_else(|_| value.to_string()),
        _ => value.to_lowercase(),
    }
}

/// Differences between what the policies export and smbd's effective configuration
/// (`testparm -s` output): one line per difference.
pub fn compare(policies: &[Policy], testparm: &str, versions: &std::path::Path) -> Vec<String> {
    let running = parse_smb_conf(testparm);
    let mut out = Vec::new();
    for p in policies {
        let Some(want) = share_of(p, versions) else {
            continue;
        };
        let Some(have) = running.get(&want.name) else {
            out.push(format!("[{}] (from {}) is not exported by smbd: include sharekeep's file in smb.conf and reload", want.name, p.file.display()));
            continue;
        };
        for (k, v) in &want.settings {
            // testparm omits settings equal to their default.
            let default = match k.as_str() {
                "browseable" | "inherit acls" => Some("yes"),
                "read only" => Some("yes"),
                _ => None,
            };
            let got = have.get(k).map(String::as_str).or(default).unwrap_or("");
            if normalise(k, got) != normalise(k, v) {
                out.push(format!(
                    "[{}] {k}: smbd has {got:?}, the policy {} says {v:?}",
                    want.name,
                    p.file.display()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testparm_output_is_parsed_and_compared_ignoring_order_and_case() {
        let conf = "[global]\n\tserver role = standalone server\n\n[commercial]\n\tpath = /srv/c\n\tvalid users = @commercial adjoint\n\twrite list = adjoint\n\tread list = @commercial\n\tread only = No\n\tinherit acls = Yes\n\tcreate mask = 0770\n\tdirectory mask = 02770\n";
        let parsed = parse_smb_conf(conf);
        assert_eq!(parsed["commercial"]["path"], "/srv/c");
        assert_eq!(
            normalise("valid users", "@commercial adjoint"),
            normalise("valid users", "adjoint @commercial")
        );
        assert_eq!(
            normalise("directory mask", "02770"),
            normalise("directory mask", "2770")
        );
    }
}
