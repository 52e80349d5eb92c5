//! `forget` (the share's own retention rules) and `check`, for root and the share's admins.

use super::{in_repo, Ctx};
use crate::service::server::SendHalf;
use sharekeep::protocol::{DecisionEntry, Response};

pub(super) async fn forget(ctx: &Ctx<'_>, dry_run: bool, w: &mut SendHalf) -> Response {
    tracing::info!(uid = ctx.who.uid, share = %ctx.policy().name, dry_run, "forget requested");
    in_repo(ctx, w, "forget", move |repo, policy, _| {
        let keep = policy
            .backup
            .as_ref()
            .and_then(|b| b.keep.clone())
            .ok_or_else(|| {
                sharekeep::Error::Invalid(format!(
                    "share `{}` has no `keep` rules in {}: nothing to forget",
                    policy.name,
                    policy.file.display()
                ))
            })?;
        let rules = sharekeep::KeepRules::from_policy(
            &keep,
            policy.backup.as_ref().map_or(0, |b| b.keep_min_days),
        );
        let decisions = sharekeep::forget(&repo, &rules, dry_run)?;
        Ok(Response::Forget {
            decisions: decisions.iter().map(DecisionEntry::from_decision).collect(),
            dry_run,
        })
    })
    .await
}

pub(super) async fn drill(ctx: &Ctx<'_>, sample: Option<usize>, w: &mut SendHalf) -> Response {
    let policy = ctx.policy();
    let (state, env) = (
        ctx.inner.settings.state.clone(),
        ctx.inner.settings.plan_env(),
    );
    tracing::info!(uid = ctx.who.uid, share = %policy.name, "drill requested");
    let live = sharekeep::LiveProgress::default();
    let done = super::cancellable(ctx, w, "drill", &live, move |c| {
        crate::service::drills::run(&state, &env, &policy, sample, c)
    })
    .await;
    match done {
        Ok(Ok(r)) => Response::Drill(Box::new(r)),
        Ok(Err(e)) => Response::error("drill", e),
        Err(e) => Response::error("io", e.to_string()),
    }
}

pub(super) async fn report(
    ctx: &Ctx<'_>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Response {
    let policy = ctx.policy();
    let (state, env) = (
        ctx.inner.settings.state.clone(),
        ctx.inner.settings.plan_env(),
    );
    tracing::info!(uid = ctx.who.uid, share = %policy.name, "report requested");
    let built = tokio::task::spawn_blocking(move || {
        sharekeep::report::from_state(&policy, &state, &env, from, to, chrono::Local::now())
    })
    .await;
    match built {
        Ok(Ok(r)) => Response::Report(Box::new(r)),
        Ok(Err(e)) => super::error_response(&e),
        Err(e) => Response::error("io", e.to_string()),
    }
}

pub(super) async fn check(ctx: &Ctx<'_>, read_data: Option<f64>, w: &mut SendHalf) -> Response {
    in_repo(ctx, w, "check", move |repo, _, _| {
        Ok(Response::Check(Box::new(sharekeep::check(
            &repo,
            &sharekeep::CheckOptions { read_data },
        )?)))
    })
    .await
}
