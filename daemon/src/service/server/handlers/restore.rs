//! `restore`: who writes depends on the grant (see `authz.rs`).
//!
//! ```text
//! Writer::Caller  (a copy --to DIR by anyone but root, or root asking for it): the selection,
//!                 filtered to what the caller may read, is streamed (`sharekeep::send_selection`)
//!                 and `sharekeepctl` writes it with the caller's own rights
//! Writer::Daemon  in place (root, admins, members where they may write today), or root's
//!                 --to: plan; for a member drop what they may not read and refuse if any
//!                 entry to write is not writable for them today; in place, only a snapshot
//!                 of the share's own folder; entries are written owned by the share's owner
//!                 without privileged bits or old ACLs, then today's policy rights are applied
//!                 to everything restored (rights removed since never come back)
//! ```

use super::{error_response, Ctx};
use crate::service::server::authz::{Role, Writer};
use crate::service::server::framing::{send, stream_frames};
use crate::service::server::SendHalf;
use sharekeep::protocol::{frame, Response, RestoreResult};
use sharekeep::{NodeKind, Overwrite, RestoreOptions, Target, Visibility};
use std::sync::Arc;

#[allow(clippy::too_many_arguments)]
pub(super) async fn restore(
    ctx: &Ctx<'_>,
    snapshot: String,
    paths: Vec<String>,
    to: Option<String>,
    overwrite: String,
    dry_run: bool,
    w: &mut SendHalf,
) -> Option<Response> {
    let overwrite = match overwrite.as_str() {
        "never" => Overwrite::Never,
        "if-changed" => Overwrite::IfChanged,
        "always" => Overwrite::Always,
        other => {
            return Some(Response::error(
                "bad_request",
                format!("overwrite {other:?}: never, if-changed or always"),
            ))
        }
    };
    ctx.audit(
        if dry_run {
            "restore (dry run)"
        } else {
            "restore"
        },
        &snapshot,
        &paths,
    );
    match ctx.grant.writer {
        Writer::Caller => streamed(ctx, snapshot, paths, dry_run, w).await,
        Writer::Daemon => Some(by_daemon(ctx, snapshot, paths, to, overwrite, dry_run, w).await),
    }
}

/// A copy written by the caller: a `stream` line, then the entries and their content.
async fn streamed(
    ctx: &Ctx<'_>,
    snapshot: String,
    paths: Vec<String>,
    dry_run: bool,
    w: &mut SendHalf,
) -> Option<Response> {
    let policy = ctx.policy();
    let view = ctx.view();
    let (repo, snap) = match super::open_snapshot(ctx, snapshot).await {
        Ok(x) => x,
        Err(r) => return Some(r),
    };
    let header = Response::Stream {
        snapshot: snap.id.to_hex(),
        root: snap.root().to_string(),
    };
    if send(w, &header).await.is_err() {
        return None;
    }
    let cancel = sharekeep::CancelToken::new();
    ctx.inner.running.lock().expect("lock").push(cancel.clone());
    let c = cancel.clone();
    let sent = stream_frames(w, move |sink| {
        let r = view.with(|visible| {
            let opts = sharekeep::StreamOptions {
                with_data: !dry_run,
                visibility: visible,
            };
            sharekeep::send_selection(&repo, &snap, &paths, opts, sink, &c)
        });
        if let Err(e) = &r {
            let _ = sink(
                frame::ERROR,
                serde_json::to_vec(&error_response(e)).expect("json"),
            );
        }
        r
    })
    .await;
    ctx.inner
        .running
        .lock()
        .expect("lock")
        .retain(|t| !t.same_as(&cancel));
    match sent {
        Ok(Ok(end)) => tracing::info!(
            uid = ctx.who.uid,
            share = %policy.name,
            entries = end.entries,
            bytes = end.bytes,
            "restore stream sent"
        ),
        Ok(Err(e)) => {
            tracing::warn!(uid = ctx.who.uid, share = %policy.name, "restore stream failed: {e}")
        }
        Err(e) => {
            tracing::info!(uid = ctx.who.uid, share = %policy.name, "restore stream: client gone ({e})")
        }
    }
    None
}

/// A restore written by the daemon.
async fn by_daemon(
    ctx: &Ctx<'_>,
    snapshot: String,
    paths: Vec<String>,
    to: Option<String>,
    overwrite: Overwrite,
    dry_run: bool,
    w: &mut SendHalf,
) -> Response {
    let policy = ctx.policy();
    let Some(plan) = policy.backup.clone() else {
        return super::no_plan(&policy);
    };
    let env = ctx.inner.settings.plan_env();
    let view = ctx.view();
    let role = ctx.grant.role;
    let live = Arc::new(sharekeep::LiveProgress::default());
    let progress = live.clone();
    let writing = super::writing(ctx);
    let work = move |c: &sharekeep::CancelToken| -> Result<Response, sharekeep::Error> {
        let _writing = writing;
        let repo = sharekeep::open_plan_repository(&plan, sharekeep::IndexScope::All, &env)?;
        let snap = view.find(&repo, &snapshot)?;
        let in_place = to.is_none();
        let target = match to {
            Some(d) => Target::Dir(d.into()),
            None => Target::InPlace,
        };
        if in_place && role != Role::Root && std::path::Path::new(snap.root()) != policy.path {
            return Err(sharekeep::Error::Invalid(format!(
                "snapshot {} is of {}, not of share `{}`'s folder: only root may restore it in place",
                snap.id.short(),
                snap.root(),
                policy.name
            )));
        }
        let opts = RestoreOptions {
            paths: paths.clone(),
            target,
            overwrite,
            threads: 0,
        };
        let mut rplan = sharekeep::plan_restore(&repo, &snap, &opts)?;
        let into_share = rplan.target_root.starts_with(&policy.path);
        if !view.everything {
            let rights = sharekeep_policies::Rights::new(&policy);
            let access =
                |rel: &str, kind: NodeKind| view.caller.access(&rights, rel, kind == NodeKind::Dir);
            rplan.retain(&repo, |rel, kind| {
                crate::service::server::authz::visibility(access(rel, kind), kind == NodeKind::Dir)
                    != Visibility::Hidden
            })?;
            if let Some(p) = rplan.first_unwritable(&repo, |rel, kind| {
                access(rel, kind) == sharekeep_policies::Access::Write
            })? {
                return Err(sharekeep::Error::Invalid(format!(
                    "you may read but not write `{p}`: restore a copy with --to DIR"
                )));
            }
        }
        if into_share {
            rplan.for_share(policy.owner.uid, policy.group.gid);
        }
        if dry_run {
            return Ok(Response::Restore(Box::new(RestoreResult::from_plan(
                &rplan, &repo,
            )?)));
        }
        let report = sharekeep::restore(&repo, &rplan, 0, &*progress, c)?;
        let mut result = RestoreResult::from_report(&rplan, &report);
        if into_share {
            // Today's rights on everything restored.
            let rels: Vec<String> = if paths.is_empty() {
                let below = rplan
                    .target_root
                    .strip_prefix(&policy.path)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                vec![below]
            } else {
                let base = rplan
                    .target_root
                    .strip_prefix(&policy.path)
                    .unwrap_or(std::path::Path::new(""));
                paths
                    .iter()
                    .filter_map(|p| repo.relative_components(&snap, p).ok())
                    .map(|c| base.join(c.join("/")).to_string_lossy().into_owned())
                    .collect()
            };
            let mut applied = 0;
            for rel in rels {
                match sharekeep_policies::run_below(
                    &policy,
                    sharekeep_policies::WalkMode::Apply,
                    &rel,
                ) {
                    Ok(r) => applied += r.checked,
                    Err(e) => result.warnings.push((
                        rel.clone(),
                        format!("today's rights could not be applied: {e}"),
                    )),
                }
            }
            result.rights_applied = Some(applied);
        }
        Ok(Response::Restore(Box::new(result)))
    };
    let done = super::cancellable(ctx, w, "restore", &live, work).await;
    match done {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(e) => Response::error("io", e.to_string()),
    }
}
