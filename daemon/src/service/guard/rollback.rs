//! `rollback --incident ID`: what the incident's user changed, undone from the snapshot the
//! guard pinned. The incident's record (its changes, oldest first) is replayed into what the
//! changes left at each path ([`replay`], pure); the engine's undo (`sharekeep::plan_undo`,
//! `sharekeep::undo`) then brings back what they touched, removes what they made, and leaves
//! whatever changed again since (someone's later work).
//!
//! ```text
//! change               what it means for the undo
//! written P            P existed: bring it back (unless changed again since)
//! deleted P            P existed: bring it back (unless made again since)
//! renamed A -> B       A existed: bring it back; B is a copy of A: remove it (the rename
//!                      undone, not duplicated); B may have existed: brought back if the
//!                      snapshot has it
//! created P            made by them: remove it (a ransom note, an encrypted copy)
//! ```
//! Entries written are owned by the share's owner, and today's policy rights (with any lock
//! still in place) are applied to them at the end.

use super::detect::{Change, Kind};
use super::state;
use crate::service::Inner;
use sharekeep::protocol::RollbackResult;
use sharekeep::{Made, Touched, Undo, UndoAction};
use sharekeep_policies::Policy;
use std::collections::{BTreeMap, HashMap};

/// Where what the changes left at a path came from.
#[derive(Debug, Clone)]
enum Origin {
    /// The entry that was at this path before the changes (possibly renamed since).
    Was(String),
    /// Made by the changes.
    New,
}

/// What recorded changes did, as an [`Undo`] (pure).
pub(crate) fn replay(changes: &[Change]) -> Undo {
    let mut changes: Vec<&Change> = changes.iter().collect();
    changes.sort_by_key(|c| c.at_ms); // stable: the record's order within a millisecond
                                      // What the changes left at each path, and when they last changed it.
    let mut now: HashMap<String, (Origin, u64)> = HashMap::new();
    // Entries that were there before the changes (true) or may have been (false).
    let mut touched: BTreeMap<String, bool> = BTreeMap::new();
    for c in changes {
        let (p, at) = (&c.path, c.at_ms);
        match &c.kind {
            Kind::Created => {
                now.insert(p.clone(), (Origin::New, at));
            }
            Kind::Written { .. } => match now.get_mut(p) {
                Some(e) => e.1 = at,
                None => {
                    touched.insert(p.clone(), true);
                    now.insert(p.clone(), (Origin::Was(p.clone()), at));
                }
            },
            Kind::Deleted => {
                if now.remove(p).is_none() {
                    touched.insert(p.clone(), true);
                }
            }
            Kind::Renamed { from } => {
                let (origin, last) = match now.remove(from) {
                    Some(e) => e,
                    None => {
                        touched.insert(from.clone(), true);
                        (Origin::Was(from.clone()), at)
                    }
                };
                if !now.contains_key(p) {
                    // Renamed over whatever was there, if anything.
                    touched.entry(p.clone()).or_insert(false);
                }
                now.insert(p.clone(), (origin, last.max(at)));
            }
        }
    }
    let mut undo = Undo::default();
    for (path, existed) in touched {
        let last_ms = now.get(&path).map(|e| e.1);
        undo.restore.insert(path, Touched { last_ms, existed });
    }
    for (path, (origin, last_ms)) in now {
        let from = match origin {
            Origin::New => None,
            Origin::Was(w) if w == path => continue, // written in place: brought back
            Origin::Was(w) => Some(w),
        };
        undo.remove.insert(path, Made { last_ms, from });
    }
    undo
}

/// An error as the handler answers it.
pub(crate) enum Failure {
    NotFound(String),
    Invalid(String),
    Engine(sharekeep::Error),
}

impl From<sharekeep::Error> for Failure {
    fn from(e: sharekeep::Error) -> Self {
        Failure::Engine(e)
    }
}

/// The incident's recorded changes (lines that cannot be read are counted, and skipped).
fn read_changes(inner: &Inner, share: &str, id: &str) -> Result<(Vec<Change>, usize), Failure> {
    let path = state::changes_file(&inner.settings.state, share, id);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::Invalid(format!(
            "{}: the incident's record cannot be read ({e})",
            path.display()
        ))
    })?;
    let mut bad = 0;
    let changes = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Change>(l).map_err(|_| bad += 1).ok())
        .collect();
    Ok((changes, bad))
}

/// Rolls incident `id` of `policy`'s share back (plans only with `dry_run`).
pub(crate) fn rollback(
    inner: &Inner,
    policy: &Policy,
    id: &str,
    dry_run: bool,
    progress: &dyn sharekeep::Progress,
    cancel: &sharekeep::CancelToken,
) -> Result<RollbackResult, Failure> {
    let share = &policy.name;
    let st = state::load(&inner.settings.state, share);
    let Some(incident) = st.incidents.iter().find(|i| i.id == id) else {
        return Err(Failure::NotFound(format!(
            "share `{share}` has no incident `{id}`; `sharekeepctl guard status --share {share}` lists them"
        )));
    };
    let Some(pinned) = incident.pinned.clone() else {
        return Err(Failure::Invalid(format!(
            "incident `{id}` has no pinned snapshot (there was no backup of share `{share}` before it): nothing to roll back from; restore from a snapshot by hand"
        )));
    };
    let Some(plan) = &policy.backup else {
        return Err(Failure::Invalid(format!(
            "share `{share}` has no [backup]: nothing to roll back from"
        )));
    };
    let (changes, bad) = read_changes(inner, share, id)?;
    let undo = replay(&changes);
    let repo = sharekeep::open_plan_repository(
        plan,
        sharekeep::IndexScope::All,
        &inner.settings.plan_env(),
    )?;
    let snap = repo.find_snapshot(&pinned)?;
    let uplan = sharekeep::plan_undo(&repo, &snap, &policy.path, &undo)?;
    let mut result = RollbackResult {
        share: share.clone(),
        incident: id.to_string(),
        snapshot: snap.id.to_hex(),
        dry_run,
        restore: uplan.count(UndoAction::Restore),
        remove: uplan.count(UndoAction::Remove),
        left: uplan
            .steps
            .iter()
            .filter(|s| s.action == UndoAction::Leave)
            .cloned()
            .collect(),
        steps: Vec::new(),
        bytes_written: 0,
        pre_restore: None,
        warnings: Vec::new(),
        rights_applied: 0,
    };
    if bad > 0 {
        result.warnings.push((
            state::changes_file(&inner.settings.state, share, id)
                .display()
                .to_string(),
            format!("{bad} lines of the incident's record could not be read: their changes are not undone"),
        ));
    }
    if dry_run {
        result.steps = uplan.steps;
        return Ok(result);
    }
    let report = sharekeep::undo(
        &repo,
        &uplan,
        Some((policy.owner.uid, policy.group.gid)),
        progress,
        cancel,
    )?;
    result.restore = report.restored;
    result.remove = report.removed;
    result.bytes_written = report.bytes_written;
    result.pre_restore = report.pre_restore.map(|s| s.id.to_hex());
    result.warnings.extend(report.warnings);
    // Today's rights (a lock still in place included) on everything brought back.
    let restored: Vec<&str> = uplan
        .steps
        .iter()
        .filter(|s| s.action == UndoAction::Restore)
        .map(|s| s.path.as_str())
        .collect();
    if !restored.is_empty() {
        match sharekeep_policies::run_below_each(
            policy,
            sharekeep_policies::WalkMode::Apply,
            &restored,
        ) {
            Ok(r) => result.rights_applied = r.checked,
            Err(e) => result.warnings.push((
                policy.path.display().to_string(),
                format!("today's rights could not be applied: {e}"),
            )),
        }
    }
    let mut st = state::load(&inner.settings.state, share);
    if let Some(i) = st.incidents.iter_mut().find(|i| i.id == id) {
        i.rolled_back = Some(chrono::Local::now().to_rfc3339());
    }
    if let Err(e) = state::save(&inner.settings.state, share, &st) {
        tracing::error!(share = %share, "guard: {e}");
    }
    tracing::warn!(
        share = %share,
        incident = %id,
        restored = result.restore,
        removed = result.remove,
        left = result.left.len(),
        "guard: incident rolled back from snapshot {}",
        snap.id.short()
    );
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(at_ms: u64, path: &str, kind: Kind) -> Change {
        Change {
            at_ms,
            uid: Some(5001),
            path: path.into(),
            kind,
        }
    }
    fn w(at: u64, p: &str) -> Change {
        c(at, p, Kind::Written { suspicious: true })
    }
    fn mv(at: u64, from: &str, to: &str) -> Change {
        c(at, to, Kind::Renamed { from: from.into() })
    }
    fn t(last_ms: Option<u64>, existed: bool) -> Touched {
        Touched { last_ms, existed }
    }
    fn m(last_ms: u64, from: Option<&str>) -> Made {
        Made {
            last_ms,
            from: from.map(Into::into),
        }
    }

    type Case<'a> = (
        &'a str,
        Vec<Change>,
        Vec<(&'a str, Touched)>,
        Vec<(&'a str, Made)>,
    );

    #[test]
    fn replay_tells_what_to_bring_back_and_what_to_remove() {
        let cases: Vec<Case> = vec![
            (
                "rewritten, then renamed: the original back, the copy removed",
                vec![w(1, "a.docx"), mv(2, "a.docx", "a.docx.locked")],
                vec![
                    ("a.docx", t(None, true)),
                    ("a.docx.locked", t(Some(2), false)),
                ],
                vec![("a.docx.locked", m(2, Some("a.docx")))],
            ),
            (
                "a note: made, so removed",
                vec![c(1, "d/NOTE.txt", Kind::Created), w(2, "d/NOTE.txt")],
                vec![],
                vec![("d/NOTE.txt", m(2, None))],
            ),
            (
                "an encrypted copy and the original deleted",
                vec![
                    c(1, "a.pdf.enc", Kind::Created),
                    w(2, "a.pdf.enc"),
                    c(3, "a.pdf", Kind::Deleted),
                ],
                vec![("a.pdf", t(None, true))],
                vec![("a.pdf.enc", m(2, None))],
            ),
            (
                "rewritten in place: brought back, nothing removed",
                vec![w(1, "b.xlsx"), w(5, "b.xlsx")],
                vec![("b.xlsx", t(Some(5), true))],
                vec![],
            ),
            (
                "deleted",
                vec![c(4, "c.odt", Kind::Deleted)],
                vec![("c.odt", t(None, true))],
                vec![],
            ),
            (
                "a temporary file renamed over the original (how Office saves)",
                vec![
                    c(1, "~tmp1", Kind::Created),
                    w(2, "~tmp1"),
                    mv(3, "~tmp1", "doc.docx"),
                ],
                vec![("doc.docx", t(Some(3), false))],
                vec![("doc.docx", m(3, None))],
            ),
            (
                "renamed twice: one copy, at the end",
                vec![mv(1, "a", "b"), mv(2, "b", "c")],
                vec![
                    ("a", t(None, true)),
                    ("b", t(None, false)),
                    ("c", t(Some(2), false)),
                ],
                vec![("c", m(2, Some("a")))],
            ),
            (
                "made, then deleted: nothing to do",
                vec![c(1, "tmp", Kind::Created), c(2, "tmp", Kind::Deleted)],
                vec![],
                vec![],
            ),
            (
                "renamed back where it was: brought back, no copy",
                vec![mv(1, "a", "a.x"), w(2, "a.x"), mv(3, "a.x", "a")],
                vec![("a", t(Some(3), true)), ("a.x", t(None, false))],
                vec![],
            ),
            (
                "the record out of order is replayed in time order",
                vec![mv(2, "a.docx", "a.docx.locked"), w(1, "a.docx")],
                vec![
                    ("a.docx", t(None, true)),
                    ("a.docx.locked", t(Some(2), false)),
                ],
                vec![("a.docx.locked", m(2, Some("a.docx")))],
            ),
        ];
        for (what, changes, restore, remove) in cases {
            let got = replay(&changes);
            let want = Undo {
                restore: restore
                    .into_iter()
                    .map(|(p, t)| (p.to_string(), t))
                    .collect(),
                remove: remove
                    .into_iter()
                    .map(|(p, m)| (p.to_string(), m))
                    .collect(),
            };
            assert_eq!(got, want, "{what}");
        }
    }
}
