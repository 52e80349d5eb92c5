//! `guard` (a share's locks and incidents) and `guard release` (write given back, the policy's
//! rights applied again): root and the share's admins (the authorisation table refuses
//! members).

use super::Ctx;
use sharekeep::protocol::{GuardReport, Response};

pub(super) async fn status(ctx: &Ctx<'_>) -> Response {
    let policy = ctx.policy();
    let watching = {
        let shares = ctx.inner.shares.lock().expect("lock");
        shares
            .get(&policy.name)
            .map(|s| s.counters.lock().expect("lock").guard.clone())
            .map(|g| g.lock().expect("lock").clone())
            .unwrap_or_default()
    };
    let state = ctx.inner.settings.state.clone();
    let name = policy.name.clone();
    let st = tokio::task::spawn_blocking(move || {
        crate::service::guard::state::load_counted(&state, &name)
    })
    .await
    .unwrap_or_default();
    Response::Guard(Box::new(GuardReport {
        share: policy.name.clone(),
        enabled: policy.guard.is_some(),
        watching: if policy.guard.is_none() {
            "off: the policy has no [guard]".into()
        } else if watching.is_empty() {
            "starting".into()
        } else {
            watching
        },
        locks: st.locks,
        incidents: st.incidents,
    }))
}

pub(super) async fn release(ctx: &Ctx<'_>, user: Option<String>) -> Response {
    let policy = ctx.policy();
    let state = ctx.inner.settings.state.clone();
    let name = policy.name.clone();
    let u = user.clone();
    let lifted = tokio::task::spawn_blocking(move || {
        crate::service::guard::release(&state, &name, u.as_deref())
    })
    .await;
    match lifted {
        Ok(Ok(locks)) => {
            // The guard judges them again from now on.
            let watch = ctx
                .inner
                .shares
                .lock()
                .expect("lock")
                .get(&policy.name)
                .and_then(|s| s.counters.lock().expect("lock").guard_watch.clone());
            if let Some(w) = watch {
                w.released(&locks.iter().map(|l| l.uid).collect::<Vec<_>>());
            }
            let who: Vec<String> = locks
                .iter()
                .map(|l| l.user.clone().unwrap_or_else(|| "everyone".into()))
                .collect();
            tracing::warn!(uid = ctx.who.uid, share = %policy.name, "guard: write given back to {}", who.join(", "));
            // The policy's rights again: the share restarts without the lockdown.
            crate::service::reload(ctx.inner).await;
            Response::Ok {
                message: format!(
                    "write given back to {} on share `{}`: the policy's rights apply again",
                    who.join(", "),
                    policy.name
                ),
            }
        }
        Ok(Err(e)) => Response::error("not_found", e),
        Err(e) => Response::error("io", e.to_string()),
    }
}

/// `rollback`: the incident's changes undone from the pinned snapshot (see
/// `service/guard/rollback.rs`), with progress lines while it runs.
pub(super) async fn rollback(
    ctx: &Ctx<'_>,
    incident: String,
    dry_run: bool,
    w: &mut crate::service::server::SendHalf,
) -> Response {
    use crate::service::guard::rollback::Failure;
    let policy = ctx.policy();
    ctx.audit(
        if dry_run {
            "rollback (dry run)"
        } else {
            "rollback"
        },
        &incident,
        &[],
    );
    let live = std::sync::Arc::new(sharekeep::LiveProgress::default());
    let progress = live.clone();
    let inner = ctx.inner.clone();
    let writing = (!dry_run).then(|| super::writing(ctx)).flatten();
    let done = super::cancellable(ctx, w, "rollback", &live, move |c| {
        let _writing = writing;
        crate::service::guard::rollback::rollback(
            &inner, &policy, &incident, dry_run, &*progress, c,
        )
    })
    .await;
    match done {
        Ok(Ok(r)) => Response::Rollback(Box::new(r)),
        Ok(Err(Failure::NotFound(m))) => Response::error("not_found", m),
        Ok(Err(Failure::Invalid(m))) => Response::error("invalid", m),
        Ok(Err(Failure::Engine(e))) => super::error_response(&e),
        Err(e) => Response::error("io", e.to_string()),
    }
}
