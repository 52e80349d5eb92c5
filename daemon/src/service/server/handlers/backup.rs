//! `backup`: triggers the share's scheduler (merged with a running or queued run) and waits
//! for the run's outcome, streaming progress lines.

use super::{no_plan, Ctx};
use crate::service::server::framing::with_progress;
use crate::service::server::SendHalf;
use sharekeep::protocol::Response;

pub(super) async fn backup(ctx: &Ctx<'_>, w: &mut SendHalf) -> Response {
    let policy = ctx.policy();
    if policy.backup.is_none() {
        return no_plan(&policy);
    }
    tracing::info!(uid = ctx.who.uid, share = %policy.name, "backup requested");
    let found = {
        let shares = ctx.inner.shares.lock().expect("lock");
        shares
            .get(&policy.name)
            .map(|s| (s.trigger.clone(), s.outcomes.clone(), s.counters.clone()))
    };
    let Some((trigger, mut outcomes, counters)) = found else {
        return Response::error("not_found", "the share was just removed");
    };
    let live = counters.lock().expect("lock").progress.clone();
    let before = outcomes.borrow().generation;
    trigger.notify_one();
    let wait = async {
        loop {
            if outcomes.changed().await.is_err() {
                return None;
            }
            let o = outcomes.borrow().clone();
            if o.generation > before {
                return Some(o);
            }
        }
    };
    match with_progress(w, ctx.inner.settings.progress_every, &live, "backup", wait).await {
        None => Response::error(
            "interrupted",
            "the service is stopping or the share was reloaded",
        ),
        Some(o) => match o.result {
            Ok((snapshot, warnings)) => Response::BackupDone { snapshot, warnings },
            Err(e) => Response::error("backup", e),
        },
    }
}
