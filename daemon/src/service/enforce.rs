//! Keeping a share's rights applied: the share's watches (`watch.rs`, a thread of their own)
//! report what changed; a full reconcile runs at start, periodically (every 5 minutes while
//! the watch budget is exceeded) and when the kernel's event queue overflowed.
//!
//! ```text
//! loop:
//!   wait for a signal, the reconcile timer, or stop
//!   signals are gathered for a short window (25 ms after the last, 250 ms at most), then,
//!   on the blocking pool, coalesced so the work is proportional to what changed:
//!     Walk(p)       the policy applied to p and everything below it (new folders, moved in)
//!     Moved(a, b)   a folder renamed within rights that do not change below it: b alone is
//!                   checked; otherwise b is walked
//!     One(p)        p alone is checked (a chmod, a new or changed file)
//!   a path inside a walked one is skipped
//!   Rescan: the whole share
//! ```
//! The service's own changes raise attribute events too; the next check finds nothing to
//! change and raises none, so there is no loop.

use super::watches::{self, Signal, Watches};
use super::{Counters, Inner};
use sharekeep_policies::{Policy, Report, WalkMode};
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Coalesces what the watcher reported: entries to walk (with everything below), and entries
/// to check alone that no walked one covers.
fn coalesce(policy: &Policy, signals: Vec<Signal>) -> (Vec<String>, Vec<String>) {
    let mut walk: BTreeSet<String> = BTreeSet::new();
    let mut one: BTreeSet<String> = BTreeSet::new();
    for s in signals {
        match s {
            Signal::Walk(p) => walk.extend(p),
            Signal::One(p) => one.extend(p),
            Signal::Moved { from, to } => {
                if policy.same_rights_below(&from, &to) {
                    one.insert(to);
                } else {
                    walk.insert(to);
                }
            }
            Signal::Rescan | Signal::Budget | Signal::Changes(_) => {}
        }
    }
    let covers = |k: &String, r: &String| k.is_empty() || r == k || r.starts_with(&format!("{k}/"));
    let mut kept: Vec<String> = Vec::new();
    for r in walk {
        if !kept.iter().any(|k| covers(k, &r)) {
            kept.push(r);
        }
    }
    let one = one
        .into_iter()
        .filter(|r| !kept.iter().any(|k| covers(k, r)))
        .collect();
    (kept, one)
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
    let watching = Arc::new(AtomicBool::new(false));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let count = counters.lock().expect("lock").watches.clone();
    match Watches::new(
        &policy.path,
        inner.settings.max_watches,
        &policy.name,
        count,
    ) {
        Ok(w) => {
            let (tx, stop_watch) = (tx.clone(), stop_watch.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("watch-{}", policy.name))
                .spawn(move || watches::run(w, tx, stop_watch));
            match spawned {
                Ok(_) => watching.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(e) => {
                    tracing::error!(share = %policy.name, "cannot watch the share ({e}); relying on periodic reconciles")
                }
            }
        }
        Err(e) => {
            tracing::error!(share = %policy.name, "cannot watch the share ({e}); relying on periodic reconciles")
        }
    }
    // The watcher thread stops when this task ends (stop, reload, or the share removed).
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let _stop_watch = StopOnDrop(stop_watch);
    drop(tx);
    reconcile(&policy, &counters).await;
    let mut every = inner.settings.reconcile_every;
    if !watching.load(std::sync::atomic::Ordering::Relaxed) {
        every = every.min(Duration::from_secs(300));
    }
    let mut timer = tokio::time::interval(every);
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
                None => {
                    // The watcher ended: periodic reconciles only.
                    std::future::pending::<()>().await;
                    return;
                }
            },
        };
        // Debounce: gather what arrives in the next moments.
        let mut signals = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
        loop {
            let quiet = tokio::time::sleep(Duration::from_millis(25));
            tokio::select! {
                _ = quiet => break,
                _ = tokio::time::sleep_until(deadline) => break,
                s = rx.recv() => match s {
                    Some(s) => signals.push(s),
                    None => break,
                },
            }
        }
        if signals.iter().any(|s| matches!(s, Signal::Budget)) && every > Duration::from_secs(300) {
            every = Duration::from_secs(300);
            timer = tokio::time::interval(every);
            timer.tick().await;
        }
        if signals.iter().any(|s| matches!(s, Signal::Rescan)) {
            tracing::warn!(share = %policy.name, "event queue overflowed: full reconcile");
            reconcile(&policy, &counters).await;
            continue;
        }
        let (walk, one) = coalesce(&policy, signals);
        if walk.is_empty() && one.is_empty() {
            continue;
        }
        let p = policy.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut total = Report {
                share: p.name.clone(),
                ..Report::default()
            };
            let runs = walk
                .iter()
                .map(|r| (r, true))
                .chain(one.iter().map(|r| (r, false)));
            for (rel, below) in runs {
                let r = if below {
                    sharekeep_policies::run_below(&p, WalkMode::Apply, rel)
                } else {
                    sharekeep_policies::run_one(&p, WalkMode::Apply, rel)
                };
                match r {
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
