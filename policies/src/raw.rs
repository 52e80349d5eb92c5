//! The policy file as written: TOML parsed into `Raw*` types (serde, `deny_unknown_fields`,
//! every value with its span), after a structural pass over the document that reports every
//! unknown key at once (serde alone would stop at the first). Nothing here resolves users or
//! checks the filesystem: that is `validate.rs`.

use crate::problem::{Locator, Problem};
use serde::Deserialize;
use toml::Spanned;

/// `[share]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShare {
    pub name: Spanned<String>,
    pub path: Spanned<String>,
    pub owner: Spanned<String>,
    pub group: Spanned<String>,
    #[serde(default)]
    pub admins: Vec<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[access]` and the `read`/`write` keys of a `[[rule]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    #[serde(default)]
    pub read: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub write: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[[rule]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub path: Spanned<String>,
    #[serde(default)]
    pub read: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub write: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// `keep = { … }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeep {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub within: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `[backup]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    pub schedule: Spanned<String>,
    pub repository: Spanned<String>,
    pub keep: Option<Spanned<RawKeep>>,
    pub keep_min_days: Option<Spanned<u32>>,
    pub drill: Option<Spanned<String>>,
    pub max_age: Option<Spanned<String>>,
    pub drill_sample: Option<Spanned<u32>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    pub repository_private: Option<bool>,
    pub key_file: Option<Spanned<String>>,
    pub copy_to: Option<Spanned<String>>,
    pub copy_keep: Option<Spanned<RawKeep>>,
}

/// `[samba]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSamba {
    #[serde(default)]
    pub export: bool,
    pub name: Option<Spanned<String>>,
    pub comment: Option<Spanned<String>>,
    pub browseable: Option<bool>,
    pub previous_versions: Option<Spanned<bool>>,
}

/// `[guard]`: counts per user and minute beyond which the share defends itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub rewrites_per_minute: Option<Spanned<u32>>,
    pub suspicious_per_minute: Option<Spanned<u32>>,
    pub renames_per_minute: Option<Spanned<u32>>,
    pub deletions_per_minute: Option<Spanned<u32>>,
    pub note_folders: Option<Spanned<u32>>,
    pub action: Option<Spanned<String>>,
}

/// A whole policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub share: Spanned<RawShare>,
    #[serde(default)]
    pub access: Option<Spanned<RawAccess>>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RawRule>>,
    pub backup: Option<Spanned<RawBackup>>,
    pub samba: Option<Spanned<RawSamba>>,
    pub guard: Option<Spanned<RawGuard>>,
}

const TOP: &[&str] = &["share", "access", "rule", "backup", "samba", "guard"];
const SHARE: &[&str] = &["name", "path", "owner", "group", "admins", "description"];
const ACCESS: &[&str] = &["read", "write"];
const RULE: &[&str] = &["path", "read", "write", "comment"];
const BACKUP: &[&str] = &[
    "schedule",
    "repository",
    "keep",
    "keep_min_days",
    "drill",
    "drill_sample",
    "max_age",
    "exclude",
    "repository_private",
    "key_file",
    "copy_to",
    "copy_keep",
];
const GUARD: &[&str] = &[
    "rewrites_per_minute",
    "suspicious_per_minute",
    "renames_per_minute",
    "deletions_per_minute",
    "note_folders",
    "action",
];
const KEEP: &[&str] = &[
    "last", "hourly", "daily", "weekly", "monthly", "yearly", "within", "tags",
];
const SAMBA: &[&str] = &[
    "export",
    "name",
    "comment",
    "browseable",
    "previous_versions",
];

fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_key(loc: &Locator, section: &str, key: &toml_edit::Key, known: &[&str]) -> Problem {
    let hint = match closest(key.get(), known) {
        Some(k) => format!(
            "did you mean `{k}`? {section} accepts: {}",
            known.join(", ")
        ),
        None => format!("{section} accepts: {}", known.join(", ")),
    };
    loc.problem(
        key.span(),
        format!("unknown key `{}` in {section}", key.get()),
        hint,
    )
}

fn check_table_like(
    loc: &Locator,
    section: &str,
    table: &dyn toml_edit::TableLike,
    known: &[&str],
    out: &mut Vec<Problem>,
) {
    for (k, _) in table.iter() {
        if !known.contains(&k) {
            if let Some((key, _)) = table.get_key_value(k) {
                out.push(unknown_key(loc, section, key, known));
            }
        }
    }
}

/// Reports every unknown key (with a "did you mean" hint) in a parsed document.
pub fn unknown_keys(loc: &Locator, doc: &toml_edit::ImDocument<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    let root = doc.as_table();
    check_table_like(loc, "the policy file", root, TOP, &mut out);
    let sections: [(&str, &[&str]); 5] = [
        ("share", SHARE),
        ("access", ACCESS),
        ("backup", BACKUP),
        ("samba", SAMBA),
        ("guard", GUARD),
    ];
    for (name, known) in sections {
        if let Some(t) = root.get(name).and_then(|i| i.as_table_like()) {
            check_table_like(loc, &format!("[{name}]"), t, known, &mut out);
            if name == "backup" {
                if let Some(k) = t.get("keep").and_then(|i| i.as_table_like()) {
                    check_table_like(loc, "backup.keep", k, KEEP, &mut out);
                }
            }
        }
    }
    if let Some(rules) = root.get("rule").and_then(|i| i.as_array_of_tables()) {
        for t in rules.iter() {
            check_table_like(loc, "[[rule]]", t, RULE, &mut out);
        }
    }
    out
}

/// Parses a policy file's text: TOML syntax, unknown keys (all of them), then types.
pub fn parse(loc: &Locator, text: &str) -> Result<RawPolicy, Vec<Problem>> {
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            return Err(vec![loc.problem(
                e.span(),
                format!("TOML syntax error: {}", e.message().trim()),
                "fix the syntax (strings need quotes, lists use [ ], one key per line)",
            )])
        }
    };
    let unknown = unknown_keys(loc, &doc);
    if !unknown.is_empty() {
        return Err(unknown);
    }
    toml::from_str::<RawPolicy>(text).map_err(|e| {
        vec![loc.problem(
            e.span(),
            e.message().trim().to_string(),
            "check the value's type: names are strings, lists are [\"a\", \"@group\"], counts are numbers",
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let text = "[share]\nname = \"x\"\npath = \"/srv\"\nowner = \"a\"\ngroup = \"b\"\nowenr = \"c\"\n\n[[rule]]\npath = \"A\"\nwrtie = [\"@g\"]\n";
        let loc = Locator::new(Path::new("p.toml"), text);
        let problems = parse(&loc, text).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column), (6, 1));
        assert!(
            problems[0].hint.contains("did you mean `owner`"),
            "{}",
            problems[0].hint
        );
        assert_eq!(problems[1].line, 10);
        assert!(problems[1].hint.contains("`write`"));
    }

    #[test]
    fn syntax_error_is_located() {
        let text = "[share]\nname = x\n";
        let loc = Locator::new(Path::new("p.toml"), text);
        let problems = parse(&loc, text).unwrap_err();
        assert_eq!(problems[0].line, 2, "{problems:?}");
        assert!(problems[0].message.contains("syntax"));
    }
}
