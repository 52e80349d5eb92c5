//! The guard's judgement, a pure function of the changes it is shown: per user, a sliding
//! minute of changes, and the `[guard]` thresholds.
//!
//! ```text
//! signal        counts, per user over the last 60 s                      default limit
//! rewrites      existing files written (a file created in the window      1000
//!               and then written is new, not rewritten)
//! suspicious    files written whose content looks encrypted (sample.rs)   20
//! renames       files renamed to one same new extension                  20
//! notes         one same new file name created in N folders              8 folders
//! deletions     files deleted                                            1000
//! ```
//! A user reaching a limit triggers once (until released); changes by an unknown process
//! count under `None` (the whole share is then locked). What the user changed in the window is
//! kept for the incident, so it can be rolled back.

use sharekeep_policies::Guard;
use std::collections::{HashMap, HashSet, VecDeque};

/// The sliding window.
pub(crate) const WINDOW_MS: u64 = 60_000;

/// What happened to an entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Kind {
    /// A new entry.
    Created,
    /// A file closed after writing; `suspicious`: its content looks encrypted.
    Written { suspicious: bool },
    /// Removed.
    Deleted,
    /// Renamed from `from` (relative to the share root).
    Renamed { from: String },
}

/// One change, attributed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Change {
    /// Milliseconds since the Unix epoch.
    pub(crate) at_ms: u64,
    /// Whose process made it (`None`: unknown).
    pub(crate) uid: Option<u32>,
    /// The entry, relative to the share root.
    pub(crate) path: String,
    #[serde(flatten)]
    pub(crate) kind: Kind,
}

/// A limit reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trigger {
    pub(crate) uid: Option<u32>,
    /// Which signal, in words (`"42 files renamed to .locked in a minute"`).
    pub(crate) reason: String,
    /// The first change of the window: the attack started no earlier.
    pub(crate) first_ms: u64,
    /// The user's changes in the window, oldest first.
    pub(crate) changes: Vec<Change>,
}

/// Names that appear in many folders without anyone meaning harm (Explorer, Finder, Office).
fn harmless_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(n.as_str(), "desktop.ini" | "thumbs.db" | ".ds_store")
        || n.starts_with("~$")
        || n.starts_with(".~lock.")
        || n.starts_with("._")
}

fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, n)| n).unwrap_or(path)
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// What one change counted for (taken back when it leaves the window).
#[derive(Debug, Default)]
struct Counted {
    rewrite: bool,
    suspicious: bool,
    deletion: bool,
    renamed_to: Option<String>,
    note: Option<(String, String)>,
    created: Option<(String, String)>,
    deleted: Option<String>,
}

/// One user's last minute, counted as changes come and go (each change costs the same
/// whatever the window holds).
#[derive(Debug, Default)]
struct Window {
    changes: VecDeque<(Change, Counted)>,
    /// Files created in the window (a write to them is not a rewrite; renaming them is a save
    /// through a temporary name).
    new: HashMap<String, u64>,
    rewrites: u32,
    suspicious: u32,
    deletions: u32,
    renamed_to: HashMap<String, u32>,
    /// Name -> folder -> count.
    notes: HashMap<String, HashMap<String, u32>>,
    /// Created files by stem (path without its last extension) -> extensions.
    created: HashMap<String, HashMap<String, u32>>,
    /// Deleted paths.
    deleted: HashMap<String, u32>,
}

fn inc<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
    *m.entry(k).or_default() += 1;
}

fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: &K) {
    if let Some(n) = m.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            m.remove(k);
        }
    }
}

impl Window {
    fn expire(&mut self, now: u64) {
        let cut = now.saturating_sub(WINDOW_MS);
        self.new.retain(|_, t| *t >= cut);
        while self.changes.front().is_some_and(|(c, _)| c.at_ms < cut) {
            let (_, k) = self.changes.pop_front().expect("front");
            self.rewrites -= u32::from(k.rewrite);
            self.suspicious -= u32::from(k.suspicious);
            self.deletions -= u32::from(k.deletion);
            if let Some(ext) = &k.renamed_to {
                dec(&mut self.renamed_to, ext);
            }
            if let Some((name, dir)) = &k.note {
                if let Some(dirs) = self.notes.get_mut(name) {
                    dec(dirs, dir);
                    if dirs.is_empty() {
                        self.notes.remove(name);
                    }
                }
            }
            if let Some((stem, ext)) = &k.created {
                if let Some(exts) = self.created.get_mut(stem) {
                    dec(exts, ext);
                    if exts.is_empty() {
                        self.created.remove(stem);
                    }
                }
            }
            if let Some(p) = &k.deleted {
                dec(&mut self.deleted, p);
            }
        }
    }

    /// Counts `c`.
    fn count(&mut self, c: &Change) -> Counted {
        let mut k = Counted::default();
        match &c.kind {
            Kind::Written { suspicious } => {
                k.rewrite = !self.new.contains_key(&c.path);
                k.suspicious = *suspicious;
            }
            Kind::Deleted => {
                k.deletion = true;
                // A copy under a new extension made before the original was deleted.
                if let Some(ext) = self
                    .created
                    .get(&c.path)
                    .and_then(|exts| exts.keys().next().cloned())
                {
                    k.renamed_to = Some(ext);
                }
                k.deleted = Some(c.path.clone());
            }
            // A new file renamed is a save through a temporary name (Office), not a document
            // renamed.
            Kind::Renamed { .. } if self.new.contains_key(&c.path) => {}
            Kind::Renamed { from } => {
                let (old, new) = (
                    super::sample::extension(name_of(from)),
                    super::sample::extension(name_of(&c.path)),
                );
                if !new.is_empty() && new != old {
                    k.renamed_to = Some(new);
                }
            }
            Kind::Created => {
                let name = name_of(&c.path);
                if !harmless_name(name) {
                    k.note = Some((name.to_string(), dir_of(&c.path).to_string()));
                }
                if let Some((stem, ext)) = c.path.rsplit_once('.') {
                    if !ext.contains('/') && !ext.is_empty() {
                        let ext = ext.to_ascii_lowercase();
                        // A copy under a new extension of a file deleted: as good as a rename.
                        if self.deleted.contains_key(stem) {
                            k.renamed_to = Some(ext.clone());
                        }
                        k.created = Some((stem.to_string(), ext));
                    }
                }
            }
        }
        self.rewrites += u32::from(k.rewrite);
        self.suspicious += u32::from(k.suspicious);
        self.deletions += u32::from(k.deletion);
        if let Some(ext) = &k.renamed_to {
            inc(&mut self.renamed_to, ext.clone());
        }
        if let Some((name, dir)) = &k.note {
            inc(self.notes.entry(name.clone()).or_default(), dir.clone());
        }
        if let Some((stem, ext)) = &k.created {
            inc(self.created.entry(stem.clone()).or_default(), ext.clone());
        }
        if let Some(p) = &k.deleted {
            inc(&mut self.deleted, p.clone());
        }
        k
    }

    /// The signal that reached its limit, in words.
    fn judge(&self, g: &Guard) -> Option<String> {
        if self.suspicious >= g.suspicious_per_minute {
            return Some(format!(
                "{} files rewritten with content that looks encrypted in a minute",
                self.suspicious
            ));
        }
        if let Some((ext, n)) = self
            .renamed_to
            .iter()
            .filter(|(_, n)| **n >= g.renames_per_minute)
            .max_by_key(|(_, n)| **n)
        {
            return Some(format!("{n} files renamed to .{ext} in a minute"));
        }
        if let Some((name, dirs)) = self
            .notes
            .iter()
            .filter(|(_, d)| d.len() >= g.note_folders as usize)
            .max_by_key(|(_, d)| d.len())
        {
            return Some(format!(
                "a file named {name:?} created in {} folders in a minute",
                dirs.len()
            ));
        }
        if self.rewrites >= g.rewrites_per_minute {
            return Some(format!(
                "{} existing files rewritten in a minute",
                self.rewrites
            ));
        }
        if self.deletions >= g.deletions_per_minute {
            return Some(format!("{} files deleted in a minute", self.deletions));
        }
        None
    }
}

/// Per-user windows and the thresholds.
#[derive(Debug)]
pub(crate) struct Detector {
    guard: Guard,
    users: HashMap<Option<u32>, Window>,
    triggered: HashSet<Option<u32>>,
}

impl Detector {
    pub(crate) fn new(guard: Guard) -> Detector {
        Detector {
            guard,
            users: HashMap::new(),
            triggered: HashSet::new(),
        }
    }

    /// Users already triggered (not judged again until released).
    pub(crate) fn set_triggered(&mut self, uid: Option<u32>) {
        self.triggered.insert(uid);
    }

    /// A user given write back: judged again, from an empty window.
    pub(crate) fn release(&mut self, uid: Option<u32>) {
        self.triggered.remove(&uid);
        self.users.remove(&uid);
    }

    /// Takes one change into account; the trigger when it makes its user reach a limit.
    pub(crate) fn observe(&mut self, c: Change) -> Option<Trigger> {
        let now = c.at_ms;
        let uid = c.uid;
        let w = self.users.entry(uid).or_default();
        w.expire(now);
        if let Kind::Created = c.kind {
            w.new.insert(c.path.clone(), now);
        }
        if let Kind::Renamed { from } = &c.kind {
            // A new file renamed stays new (Office saves through a temporary name).
            if let Some(t) = w.new.remove(from) {
                w.new.insert(c.path.clone(), t);
            }
        }
        let counted = w.count(&c);
        w.changes.push_back((c, counted));
        if self.triggered.contains(&uid) {
            return None;
        }
        let reason = w.judge(&self.guard)?;
        self.triggered.insert(uid);
        Some(Trigger {
            uid,
            reason,
            first_ms: w.changes.front().map(|(c, _)| c.at_ms).unwrap_or(now),
            changes: w.changes.iter().map(|(c, _)| c.clone()).collect(),
        })
    }

    /// The user's changes since `since_ms`.
    #[cfg(test)]
    fn changes_since(&self, uid: Option<u32>, since_ms: u64) -> Vec<Change> {
        self.users
            .get(&uid)
            .map(|w| {
                w.changes
                    .iter()
                    .filter(|(c, _)| c.at_ms > since_ms)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(at_ms: u64, uid: u32, path: &str, kind: Kind) -> Change {
        Change {
            at_ms,
            uid: Some(uid),
            path: path.into(),
            kind,
        }
    }

    fn written(s: bool) -> Kind {
        Kind::Written { suspicious: s }
    }

    /// Feeds `changes`; the first trigger and how many changes it took.
    fn run(g: Guard, changes: Vec<Change>) -> Option<(usize, Trigger)> {
        let mut d = Detector::new(g);
        changes
            .into_iter()
            .enumerate()
            .find_map(|(i, c)| d.observe(c).map(|t| (i + 1, t)))
    }

    /// A working day at full speed: 1 % of 8,000 documents rewritten with proper content,
    /// 1 % of the text edited, 150 new files in one folder, 80 deleted, Office's lock files
    /// in every folder touched: all within a few seconds, by one user.
    fn day(uid: u32) -> Vec<Change> {
        let mut v = Vec::new();
        let mut t = 1_000_000;
        for i in 0..160 {
            v.push(ch(
                t,
                uid,
                &format!("clients/c{i}/devis.docx"),
                written(false),
            ));
            v.push(ch(
                t,
                uid,
                &format!("clients/c{i}/~$devis.docx"),
                Kind::Created,
            ));
            t += 5;
        }
        for i in 0..80 {
            v.push(ch(t, uid, &format!("compta/notes{i}.txt"), written(false)));
            t += 5;
        }
        for i in 0..150 {
            let p = format!("commun/jour-1/nouveau-{i:03}.pdf");
            v.push(ch(t, uid, &p, Kind::Created));
            v.push(ch(t, uid, &p, written(false)));
            t += 5;
        }
        for i in 0..80 {
            v.push(ch(t, uid, &format!("archives/a{i}.pdf"), Kind::Deleted));
            t += 5;
        }
        // Office saves through a temporary file renamed over the document.
        for i in 0..40 {
            let tmp = format!("clients/c{i}/~WRL{i:04}.tmp");
            v.push(ch(t, uid, &tmp, Kind::Created));
            v.push(ch(t, uid, &tmp, written(false)));
            v.push(ch(
                t,
                uid,
                &format!("clients/c{i}/devis.docx"),
                Kind::Renamed { from: tmp },
            ));
            t += 5;
        }
        v
    }

    /// The attack: each file overwritten with random bytes, renamed to `.locked`, and a note in
    /// each folder.
    fn attack(uid: u32, t0: u64, files: usize) -> Vec<Change> {
        let mut v = Vec::new();
        for i in 0..files {
            let dir = format!("clients/c{}", i / 10);
            let p = format!("{dir}/f{i}.docx");
            let t = t0 + i as u64 * 10;
            v.push(ch(t, uid, &p, written(true)));
            v.push(ch(
                t,
                uid,
                &format!("{p}.locked"),
                Kind::Renamed { from: p.clone() },
            ));
            if i % 10 == 0 {
                v.push(ch(
                    t,
                    uid,
                    &format!("{dir}/LISEZ-MOI-RANCON.txt"),
                    Kind::Created,
                ));
            }
        }
        v
    }

    #[test]
    fn a_working_day_at_full_speed_raises_nothing() {
        assert_eq!(run(Guard::default(), day(1001)), None);
        // Two days in the same minute by two users: still nothing.
        let mut both = day(1001);
        both.extend(day(1002));
        assert_eq!(run(Guard::default(), both), None);
    }

    #[test]
    fn each_signal_at_its_limit() {
        let g = Guard::default();
        // (what, changes, Some((changes it takes, words of the reason)) or None)
        type Case<'a> = (&'a str, Vec<Change>, Option<(usize, &'a str)>);
        let cases: Vec<Case<'_>> = vec![
            (
                "attack",
                attack(7, 0, 500),
                Some((41, "20 files rewritten with content that looks encrypted")),
            ),
            (
                "renames only",
                (0..30)
                    .map(|i| {
                        ch(
                            i,
                            7,
                            &format!("d/f{i}.xlsx.crypt"),
                            Kind::Renamed {
                                from: format!("d/f{i}.xlsx"),
                            },
                        )
                    })
                    .collect(),
                Some((20, "20 files renamed to .crypt")),
            ),
            (
                "renames to many extensions",
                (0..30)
                    .map(|i| {
                        ch(
                            i,
                            7,
                            &format!("d/f{i}.x{i}"),
                            Kind::Renamed {
                                from: format!("d/f{i}.xlsx"),
                            },
                        )
                    })
                    .collect(),
                None,
            ),
            (
                "copies under a new extension, originals deleted",
                (0..30)
                    .flat_map(|i| {
                        let p = format!("d/f{i}.pdf");
                        [
                            ch(i, 7, &format!("{p}.enc"), Kind::Created),
                            ch(i, 7, &p, Kind::Deleted),
                        ]
                    })
                    .collect(),
                Some((40, "20 files renamed to .enc")),
            ),
            (
                "notes",
                (0..10)
                    .map(|i| ch(i, 7, &format!("d{i}/HOW_TO_DECRYPT.html"), Kind::Created))
                    .collect(),
                Some((8, "\"HOW_TO_DECRYPT.html\" created in 8 folders")),
            ),
            (
                "desktop.ini everywhere",
                (0..50)
                    .map(|i| ch(i, 7, &format!("d{i}/desktop.ini"), Kind::Created))
                    .collect(),
                None,
            ),
            (
                "deletions",
                (0..1000)
                    .map(|i| ch(i, 7, &format!("d/f{i}"), Kind::Deleted))
                    .collect(),
                Some((1000, "1000 files deleted")),
            ),
            (
                "deletions spread over more than a minute",
                (0..1000)
                    .map(|i| ch(i * 100, 7, &format!("d/f{i}"), Kind::Deleted))
                    .collect(),
                None,
            ),
            (
                "rewrites",
                (0..1000)
                    .map(|i| ch(i, 7, &format!("d/f{i}.bin"), written(false)))
                    .collect(),
                Some((1000, "1000 existing files rewritten")),
            ),
            (
                "new files are not rewrites",
                (0..1000)
                    .flat_map(|i| {
                        let p = format!("d/f{i}.bin");
                        [ch(i, 7, &p, Kind::Created), ch(i, 7, &p, written(false))]
                    })
                    .collect(),
                None,
            ),
        ];
        for (what, changes, want) in cases {
            let got = run(g.clone(), changes);
            match (got, want) {
                (None, None) => {}
                (Some((n, t)), Some((wn, words))) => {
                    assert_eq!(n, wn, "{what}: triggered after {n} changes: {}", t.reason);
                    assert!(t.reason.contains(words), "{what}: {}", t.reason);
                    assert_eq!(t.uid, Some(7));
                }
                (got, want) => panic!(
                    "{what}: got {:?}, want {want:?}",
                    got.map(|(n, t)| (n, t.reason))
                ),
            }
        }
    }

    #[test]
    fn a_trigger_names_its_user_once_and_keeps_what_they_changed() {
        let mut changes = day(1001);
        let t0 = changes.last().unwrap().at_ms + 1;
        changes.extend(attack(7, t0, 100));
        let mut d = Detector::new(Guard::default());
        let triggers: Vec<Trigger> = changes.into_iter().filter_map(|c| d.observe(c)).collect();
        assert_eq!(triggers.len(), 1, "once: {triggers:?}");
        let t = &triggers[0];
        assert_eq!(t.uid, Some(7));
        assert_eq!(t.first_ms, t0);
        assert!(t.changes.iter().all(|c| c.uid == Some(7)));
        assert_eq!(
            t.changes.len(),
            20 + 19 + 2,
            "writes, renames, notes so far"
        );
        // The record goes on after the trigger.
        assert!(
            d.changes_since(Some(7), t.changes.last().unwrap().at_ms)
                .len()
                > 100
        );
        assert!(
            d.changes_since(Some(1001), 0).len() > 500,
            "others are recorded apart"
        );
    }
}
