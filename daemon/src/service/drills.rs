//! Restore drills on a schedule: for a share whose `[backup] drill` is set, the service
//! restores a sample of the latest snapshot of the share into `<state>/drills` (root's), checks
//! it against the snapshot and removes it (`sharekeep::drill`), records the outcome in
//! `<state>/<share>.drill.json` (shown by `status`), and logs an error naming the damaged
//! files when the drill fails. A drill missed while the machine was off runs at start.

use super::{schedule, Inner};
use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use sharekeep::{CancelToken, DrillOptions, DrillProblem, DrillReport};
use sharekeep_policies::Policy;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The last drill of a share (`<state>/<share>.drill.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DrillState {
    pub(crate) last: Option<DateTime<Local>>,
    pub(crate) ok: bool,
    /// The outcome in words.
    pub(crate) summary: String,
    pub(crate) problems: Vec<DrillProblem>,
}

fn file(state: &Path, share: &str) -> PathBuf {
    state.join(format!("{share}.drill.json"))
}

pub(crate) fn load(state: &Path, share: &str) -> DrillState {
    std::fs::read(file(state, share))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// One drill of the share's latest snapshot, now (blocking); recorded and logged.
pub(crate) fn run(
    state: &Path,
    env: &sharekeep::PlanEnv,
    policy: &Policy,
    sample: Option<usize>,
    cancel: &CancelToken,
) -> Result<DrillReport, String> {
    let plan = policy.backup.as_ref().ok_or_else(|| {
        format!(
            "share `{}` has no [backup] plan: nothing to drill",
            policy.name
        )
    })?;
    let outcome = (|| {
        let repo = sharekeep::open_plan_repository(plan, sharekeep::IndexScope::All, env)
            .map_err(|e| e.to_string())?;
        let snap = repo
            .snapshots()
            .map_err(|e| e.to_string())?
            .into_iter()
            .rfind(|s| Path::new(s.root()) == policy.path && !s.has_tag(sharekeep::PRE_RESTORE_TAG))
            .ok_or("no snapshot of the share yet: the drill runs after the first backup")?;
        let seed = Local::now().timestamp_nanos_opt().unwrap_or(1) as u64;
        sharekeep::drill(
            &repo,
            &snap,
            &state.join("drills"),
            DrillOptions {
                sample: sample.unwrap_or(plan.drill_sample as usize),
                seed,
            },
            cancel,
        )
        .map_err(|e| e.to_string())
    })();
    let record = match &outcome {
        Ok(r) if r.ok() => {
            tracing::info!(share = %policy.name, snapshot = %&r.snapshot[..8], files = r.files_checked, "restore drill ok");
            DrillState {
                last: Some(Local::now()),
                ok: true,
                summary: format!(
                    "ok: {} of {} files restored identical",
                    r.files_checked, r.files_in_snapshot
                ),
                problems: Vec::new(),
            }
        }
        Ok(r) => {
            let names: Vec<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
            tracing::error!(share = %policy.name, snapshot = %&r.snapshot[..8], "restore drill FAILED: {} file(s) do not restore: {}", names.len(), names.join(", "));
            DrillState {
                last: Some(Local::now()),
                ok: false,
                summary: format!(
                    "FAILED: {} file(s) do not restore ({}); run `sharekeepctl check --read-data`",
                    names.len(),
                    names.join(", ")
                ),
                problems: r.problems.clone(),
            }
        }
        Err(e) => {
            tracing::error!(share = %policy.name, "restore drill could not run: {e}");
            DrillState {
                last: Some(Local::now()),
                ok: false,
                summary: format!("FAILED: {e}"),
                problems: Vec::new(),
            }
        }
    };
    let _ = super::state::write_atomic(
        &file(state, &policy.name),
        &serde_json::to_vec_pretty(&record).expect("serializes"),
    );
    // The history, one line per drill, for the report.
    let history = state.join(format!("{}.drills.jsonl", policy.name));
    let line = serde_json::json!({
        "last": record.last.map(|t| t.to_rfc3339()),
        "ok": record.ok,
        "summary": record.summary,
    });
    let appended = sharekeep::sys::append_private(&history).and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = appended {
        tracing::warn!(share = %policy.name, "cannot record the drill in {}: {e}", history.display());
    }
    outcome
}

/// The drill task of one share (started when its plan has `drill`).
pub(crate) async fn scheduler(inner: Arc<Inner>, policy: Arc<Policy>, stop: CancellationToken) {
    let Some(when) = policy.backup.as_ref().and_then(|p| p.drill.clone()) else {
        return;
    };
    let dir = inner.settings.state.clone();
    let mut catch_up = {
        let last = load(&dir, &policy.name)
            .last
            .or(super::state::load(&dir, &policy.name).first_seen)
            .unwrap_or_else(Local::now);
        schedule::missed(&when, last, Local::now())
    };
    loop {
        if !catch_up {
            let wait = schedule::next_after(&when, Local::now())
                .map(|n| (n - Local::now()).to_std().unwrap_or_default())
                .unwrap_or(std::time::Duration::from_secs(86400 * 365));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        catch_up = false;
        let cancel = CancelToken::new();
        inner.running.lock().expect("lock").push(cancel.clone());
        let (d, env, p, c) = (
            dir.clone(),
            inner.settings.plan_env(),
            policy.clone(),
            cancel.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || run(&d, &env, &p, None, &c)).await;
        inner
            .running
            .lock()
            .expect("lock")
            .retain(|t| !t.same_as(&cancel));
        if stop.is_cancelled() {
            return;
        }
    }
}
