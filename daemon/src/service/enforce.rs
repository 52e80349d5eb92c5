//! Keeping a share's rights applied: an inotify watch (notify) on the share, new directories
//! followed, and a full reconcile at start, periodically and when the kernel's event queue
//! overflowed.
//!
//! ```text
//! loop:
//!   wait for an event, the reconcile timer, or stop
//!   event: collect the paths of created, moved-in and attribute-changed entries for a short
//!          window (25 ms after the last event, 250 ms at most), then, on the blocking pool,
//!          apply the policy below each of them (a directory is walked whole, so entries
//!          created in it before its watch existed are not missed); a path inside another
//!          collected directory is skipped
//!   overflow (rescan) or timer: apply the policy to the whole share
//! ```
//! The service's own changes raise attribute events too; the next check finds nothing to
//! change and raises none, so there is no loop.

use super::{Counters, Inner};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::Watcher;
use sharekeep_policies::{Policy, Report, WalkMode};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

enum Signal {
    Paths(Vec<PathBuf>),
    Rescan,
}

fn relevant(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Modify(ModifyKind::Metadata(_))
            | EventKind::Modify(ModifyKind::Name(
                RenameMode::To | RenameMode::Both | RenameMode::Any
            ))
            | EventKind::Any
    )
}

fn record(counters: &Mutex<Counters>, report: &Report, full: bool) {
    let mut c = counters.lock().expect("lock");
    c.checked += report.checked;
    c.fixed += report.changed;
    if full {
        c.last_reconcile = Some(chrono::Local::now());
    }
    for e in &report.errors {
        tracing::warn!(share = %report.share, path = %e.path, "{}", e.reason);
    }
    if report.changed > 0 {
        tracing::info!(share = %report.share, "rights fixed on {} entries", report.changed);
    }
}

async fn reconcile(policy: &Arc<Policy>, counters: &Arc<Mutex<Counters>>) {
    let p = policy.clone();
    match tokio::task::spawn_blocking(move || sharekeep_policies::run(&p, WalkMode::Apply)).await {
        Ok(Ok(report)) => record(counters, &report, true),
        Ok(Err(e)) => tracing::error!(share = %policy.name, "reconcile failed: {e}"),
        Err(e) => tracing::error!(share = %policy.name, "reconcile task failed: {e}"),
    }
}

/// The enforcement task of one share.
pub(crate) async fn enforce(
    inner: Arc<Inner>,
    policy: Arc<Policy>,
    counters: Arc<Mutex<Counters>>,
    stop: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
    let watcher = {
        let tx = tx.clone();
        notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
            Ok(ev) if ev.need_rescan() => {
                let _ = tx.send(Signal::Rescan);
            }
            Ok(ev) if relevant(&ev.kind) => {
                let _ = tx.send(Signal::Paths(ev.paths));
            }
            Ok(_) => {}
            Err(_) => {
                // Queue overflow or watch limit: only a full walk is safe.
                let _ = tx.send(Signal::Rescan);
            }
        })
    };
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(share = %policy.name, "cannot watch the share ({e}); relying on periodic reconciles");
            None
        }
    };
    if let Some(w) = watcher.as_mut() {
        if let Err(e) = w.watch(&policy.path, notify::RecursiveMode::Recursive) {
            tracing::error!(share = %policy.name, "cannot watch {} ({e}); relying on periodic reconciles", policy.path.display());
        }
    }
    reconcile(&policy, &counters).await;
    let mut timer = tokio::time::interval(inner.settings.reconcile_every);
    timer.tick().await;
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => {
                reconcile(&policy, &counters).await;
                continue;
            }
            s = rx.recv() => match s {
                Some(s) => s,
                None => return,
            },
        };
        // Debounce: gather what arrives in the next moments.
        let mut rescan = matches!(first, Signal::Rescan);
        let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
        if let Signal::Paths(p) = first {
            paths.extend(p);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
        loop {
            let quiet = tokio::time::sleep(Duration::from_millis(25));
            tokio::select! {
                _ = quiet => break,
                _ = tokio::time::sleep_until(deadline) => break,
                s = rx.recv() => match s {
                    Some(Signal::Paths(p)) => paths.extend(p),
                    Some(Signal::Rescan) => rescan = true,
                    None => return,
                },
            }
        }
        if rescan {
            tracing::warn!(share = %policy.name, "event queue overflowed: full reconcile");
            reconcile(&policy, &counters).await;
            continue;
        }
        // Relative paths; drop those below another collected path (its walk covers them).
        let mut rels: Vec<String> = paths.iter().filter_map(|p| policy.relative(p)).collect();
        rels.sort();
        let mut kept: Vec<String> = Vec::new();
        for r in rels {
            if !kept
                .iter()
                .any(|k| k.is_empty() || r == *k || r.starts_with(&format!("{k}/")))
            {
                kept.push(r);
            }
        }
        let p = policy.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut total = Report {
                share: p.name.clone(),
                ..Report::default()
            };
            for rel in kept {
                match sharekeep_policies::run_below(&p, WalkMode::Apply, &rel) {
                    Ok(r) => {
                        total.checked += r.checked;
                        total.changed += r.changed;
                        total.errors.extend(r.errors);
                    }
                    Err(e) => tracing::warn!(share = %p.name, path = %rel, "{e}"),
                }
            }
            total
        })
        .await;
        if let Ok(report) = result {
            record(&counters, &report, false);
        }
    }
}
