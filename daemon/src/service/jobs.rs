//! Running a share's backup plan: the scheduler task (cron, catch-up, requests merged) and one
//! run (backup, retention, prune on its cadence, report), on the blocking pool.

use super::{schedule, state, Counters, Inner, RunOutcome};
use chrono::{DateTime, Local};
use sharekeep::CancelToken;
use sharekeep::{BackupOptions, Error, KeepRules, PruneOptions, Repository};
use sharekeep_policies::Policy;
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// The scheduler task of one share.
pub(crate) async fn scheduler(
    inner: Arc<Inner>,
    policy: Arc<Policy>,
    counters: Arc<Mutex<Counters>>,
    trigger: Arc<Notify>,
    outcomes: watch::Sender<RunOutcome>,
    stop: CancellationToken,
    versions: super::versions::Slot,
) {
    #[cfg(windows)]
    let _ = versions;
    let plan = policy
        .backup
        .as_ref()
        .expect("only started for shares with a plan");
    let dir = inner.settings.state.clone();
    let mut st = state::load(&dir, &policy.name);
    if st.first_seen.is_none() {
        st.first_seen = Some(Local::now());
        let _ = state::save(&dir, &policy.name, &st);
    }
    let mut generation = 0;
    let mut catch_up = {
        let last = st.last_success.or(st.first_seen).unwrap_or_else(Local::now);
        schedule::missed(&plan.schedule, last, Local::now())
    };
    loop {
        let next = schedule::next_after(&plan.schedule, Local::now());
        counters.lock().expect("lock").next_backup = next;
        let why = if catch_up {
            catch_up = false;
            tracing::info!(share = %policy.name, "a scheduled backup was missed: running it now");
            "catch-up"
        } else {
            let wait = next
                .map(|n| (n - Local::now()).to_std().unwrap_or_default())
                .unwrap_or(std::time::Duration::from_secs(86400 * 365));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => "schedule",
                _ = trigger.notified() => "request",
            }
        };
        let tags = std::mem::take(&mut counters.lock().expect("lock").next_tags);
        let why = if tags.is_empty() { why } else { "incident" };
        counters.lock().expect("lock").running = true;
        let cancel = CancelToken::new();
        inner.running.lock().expect("lock").push(cancel.clone());
        let (p, d, c, prune_every, creds) = (
            policy.clone(),
            dir.clone(),
            cancel.clone(),
            inner.settings.prune_every,
            inner.settings.plan_env(),
        );
        let (live, fixed, checked) = {
            let c = counters.lock().expect("lock");
            (c.progress.clone(), c.fixed, c.checked)
        };
        live.reset();
        let result = tokio::task::spawn_blocking(move || {
            run_once(
                &p,
                &d,
                why,
                &c,
                prune_every,
                &live,
                (fixed, checked),
                &creds,
                &tags,
            )
        })
        .await;
        inner
            .running
            .lock()
            .expect("lock")
            .retain(|t| !t.same_as(&cancel));
        counters.lock().expect("lock").running = false;
        generation += 1;
        let result = result.unwrap_or_else(|e| Err(format!("backup task failed: {e}")));
        #[cfg(unix)]
        if result.is_ok() && policy.samba.previous_versions {
            // The first backup creates the repository the Previous Versions are mounted from.
            let (state, env, p, slot) = (
                dir.clone(),
                inner.settings.plan_env(),
                policy.clone(),
                versions.clone(),
            );
            let _ = tokio::task::spawn_blocking(move || {
                super::versions::ensure(&state, &env, &p, &slot)
            })
            .await;
        }
        let _ = outcomes.send(RunOutcome { generation, result });
        if stop.is_cancelled() {
            return;
        }
    }
}

/// One run: backup, retention, prune when due, then the off-site copy; the report is written
/// whatever happens.
#[allow(clippy::too_many_arguments)]
fn run_once(
    policy: &Policy,
    state_dir: &std::path::Path,
    trigger: &str,
    cancel: &CancelToken,
    prune_every: std::time::Duration,
    progress: &sharekeep::LiveProgress,
    (rights_fixed, rights_checked): (u64, u64),
    env: &sharekeep::PlanEnv,
    tags: &[String],
) -> Result<(serde_json::Value, Vec<String>), String> {
    let plan = policy.backup.as_ref().expect("plan");
    let start = Local::now();
    let mut report = state::RunReport {
        share: policy.name.clone(),
        start,
        end: start,
        trigger: trigger.into(),
        snapshot: None,
        summary: None,
        repository_growth: 0,
        repository_bytes: None,
        warnings: Vec::new(),
        error: None,
        kept: 0,
        removed: 0,
        pruned: false,
        copy: None,
        rights_fixed_since_start: rights_fixed,
        rights_checked_since_start: rights_checked,
    };
    let mut st = state::load(state_dir, &policy.name);
    let outcome = backup_and_retain(
        policy,
        plan,
        cancel,
        &mut st,
        &mut report,
        prune_every,
        progress,
        env,
        tags,
    );
    report.end = Local::now();
    match &outcome {
        Ok((snap, warnings)) => {
            let id = snap["id"].as_str().unwrap_or_default().to_string();
            st.last_success = Some(start);
            st.last_snapshot = Some(id.clone());
            st.last_result = Some(if warnings.is_empty() {
                "ok".into()
            } else {
                format!("ok, {} warning(s)", warnings.len())
            });
            let m = &snap["summary"];
            tracing::info!(
                share = %policy.name,
                snapshot = %id.get(..8).unwrap_or_default(),
                trigger,
                "backup done: {} new, {} changed, {} unchanged files; {} bytes added; {} warning(s)",
                m["files_new"], m["files_changed"], m["files_unchanged"], m["bytes_added"], warnings.len()
            );
        }
        Err(e) => {
            report.error = Some(e.clone());
            st.last_result = Some(format!("failed: {e}"));
            tracing::error!(share = %policy.name, trigger, "backup failed: {e}");
        }
    }
    // The off-site copy: after a successful backup only; its failure is reported (status,
    // report, alert) but does not fail the backup.
    if outcome.is_ok() && plan.copy_to.is_some() {
        let copy = match copy_offsite(policy, plan, env, cancel) {
            Ok(done) => {
                tracing::info!(share = %policy.name, "off-site copy: {done}");
                format!("ok: {done}")
            }
            Err(e) => {
                tracing::error!(share = %policy.name, "off-site copy failed: {e}");
                format!("failed: {e}")
            }
        };
        report.copy = Some(copy.clone());
        st.last_copy = Some(copy);
        report.end = Local::now();
    }
    if let Err(e) = state::save(state_dir, &policy.name, &st) {
        tracing::error!("cannot save the state of {}: {e}", policy.name);
    }
    if let Err(e) = state::save_report(state_dir, &report) {
        tracing::error!("cannot save the report of {}: {e}", policy.name);
    }
    outcome
}

/// The share's repository, created (private) if missing. One that others may read is refused
/// unless the policy says `repository_private = false`: it would hand every member's files,
/// whatever their rights, to anyone on the machine.
fn open_or_init(
    plan: &sharekeep_policies::BackupPlan,
    env: &sharekeep::PlanEnv,
) -> Result<Repository, Error> {
    let repo = match sharekeep::open_plan_repository_if_any(plan, sharekeep::IndexScope::All, env)?
    {
        Some(repo) => repo,
        None => {
            tracing::info!(
                "creating {}repository {}",
                if plan.key_file.is_some() {
                    "encrypted "
                } else {
                    ""
                },
                sharekeep::plan_repository_shown(plan)
            );
            sharekeep::init_plan_repository(plan, env)?
        }
    };
    if let Some(why) = repo.exposure() {
        if plan.repository_private {
            return Err(Error::Invalid(format!(
                "refusing to back up: {why}; or, if that is wanted, set `repository_private = false` in the policy's [backup]"
            )));
        }
        tracing::warn!("repository not private (allowed by the policy): {why}");
    }
    Ok(repo)
}

#[allow(clippy::too_many_arguments)]
fn backup_and_retain(
    policy: &Policy,
    plan: &sharekeep_policies::BackupPlan,
    cancel: &CancelToken,
    st: &mut state::ShareState,
    report: &mut state::RunReport,
    prune_every: std::time::Duration,
    progress: &sharekeep::LiveProgress,
    env: &sharekeep::PlanEnv,
    tags: &[String],
) -> Result<(serde_json::Value, Vec<String>), String> {
    let repo = open_or_init(plan, env).map_err(|e| e.to_string())?;
    let opts = BackupOptions {
        excludes: plan.exclude.clone(),
        tags: std::iter::once(format!("share:{}", policy.name))
            .chain(tags.iter().cloned())
            .collect(),
        ..BackupOptions::default()
    };
    let out = sharekeep::backup(&repo, &policy.path, &opts, progress, cancel)
        .map_err(|e| e.to_string())?;
    let s = &out.snapshot;
    report.snapshot = Some(s.id.to_hex());
    report.summary = Some(s.summary.clone());
    report.repository_growth = s.summary.bytes_stored;
    report.warnings = out
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.path.display(), w.message))
        .collect();
    for w in &report.warnings {
        tracing::warn!(share = %policy.name, "{w}");
    }
    if let Some(keep) = &plan.keep {
        let rules = KeepRules::from_policy(keep, plan.keep_min_days);
        match sharekeep::forget(&repo, &rules, false) {
            Ok(d) => {
                report.kept = d.iter().filter(|x| x.keep).count();
                report.removed = d.len() - report.kept;
            }
            Err(e) => tracing::error!(share = %policy.name, "retention failed: {e}"),
        }
        let due = st.last_prune.is_none_or(|t: DateTime<Local>| {
            (Local::now() - t).to_std().unwrap_or_default() >= prune_every
        });
        if due && report.removed > 0 {
            let repo = repo.reopen().map_err(|e| e.to_string())?;
            match sharekeep::prune(&repo, &PruneOptions::default()) {
                Ok(_) => {
                    report.pruned = true;
                    st.last_prune = Some(Local::now());
                }
                Err(e) => tracing::error!(share = %policy.name, "prune failed: {e}"),
            }
        }
    }
    // The repository's size after the run (retention and prune included), for the report.
    report.repository_bytes = [
        sharekeep::backend::FileKind::Pack,
        sharekeep::backend::FileKind::Index,
        sharekeep::backend::FileKind::Snapshot,
    ]
    .iter()
    .filter_map(|k| repo.backend().list_sizes(*k).ok())
    .flatten()
    .map(|(_, n)| n)
    .sum::<u64>()
    .into();
    Ok((s.to_json(), report.warnings.clone()))
}

/// Copies the share's snapshots to the plan's `copy_to` (created there, encrypted with the
/// plan's key, if missing), then applies `copy_keep` there; what was done, in words.
fn copy_offsite(
    policy: &Policy,
    plan: &sharekeep_policies::BackupPlan,
    env: &sharekeep::PlanEnv,
    cancel: &CancelToken,
) -> Result<String, String> {
    let e = |e: Error| e.to_string();
    let src = sharekeep::open_plan_repository(plan, sharekeep::IndexScope::All, env).map_err(e)?;
    let dst = sharekeep::open_or_init_copy(plan, env).map_err(e)?;
    let tag = format!("share:{}", policy.name);
    let mine: Vec<sharekeep::Snapshot> = src
        .snapshots()
        .map_err(e)?
        .into_iter()
        .filter(|s| s.has_tag(&tag))
        .collect();
    if mine.is_empty() {
        return Ok("nothing to copy yet".into());
    }
    let r = sharekeep::copy(&src, &dst, &mine, &sharekeep::NoProgress, cancel).map_err(e)?;
    let mut removed = 0;
    if let Some(keep) = &plan.copy_keep {
        let rules = KeepRules::from_policy(keep, plan.keep_min_days);
        let decisions = sharekeep::forget(&dst, &rules, false).map_err(e)?;
        removed = decisions.iter().filter(|d| !d.keep).count();
        if removed > 0 {
            let dst = dst.reopen().map_err(e)?;
            sharekeep::prune(&dst, &PruneOptions::default()).map_err(e)?;
        }
    }
    Ok(format!(
        "{} snapshot(s) copied to {} ({} blob(s), {} bytes sent), {} already there; {} removed by copy_keep",
        r.copied.len(),
        sharekeep::redact_url(plan.copy_to.as_deref().unwrap_or_default()),
        r.blobs_sent,
        r.bytes_sent,
        r.already,
        removed
    ))
}
