//! One handler per request, each given the caller, what [`authorize`](super::authz::authorize)
//! granted, and the share's policy. Filesystem and repository work runs on the blocking pool;
//! every request that reveals or changes content is logged with caller, share, snapshot and
//! paths.

mod backup;
mod guard;
mod history;
mod maintenance;
mod restore;
mod status;

use super::authz::{self, Grant, Scope};
use super::framing::with_progress;
use super::Caller;
use crate::service::server::SendHalf;
use crate::service::Inner;
use sharekeep::protocol::{Request, Response};
use sharekeep::{Repository, Snapshot, Visibility};
use sharekeep_policies::{Policy, Rights};
use std::sync::Arc;

/// What a handler knows of its request.
pub(crate) struct Ctx<'a> {
    pub(crate) inner: &'a Arc<Inner>,
    pub(crate) who: &'a Caller,
    pub(crate) grant: Grant,
    /// The share's policy (requests about a share).
    pub(crate) policy: Option<Arc<Policy>>,
}

impl Ctx<'_> {
    fn policy(&self) -> Arc<Policy> {
        self.policy
            .clone()
            .expect("authorized share requests have a policy")
    }

    /// What the caller may see, owned (for the blocking pool).
    fn view(&self) -> View {
        View {
            policy: self.policy(),
            caller: self.who.clone(),
            everything: self.grant.scope == Scope::Everything,
        }
    }

    /// Logs a request that reveals or changes content.
    fn audit(&self, op: &str, snapshot: &str, paths: &[String]) {
        tracing::info!(
            uid = self.who.uid,
            share = %self.policy().name,
            snapshot,
            paths = ?paths,
            "{op}"
        );
    }
}

/// What a caller may see of a share's history.
#[derive(Clone)]
pub(crate) struct View {
    policy: Arc<Policy>,
    caller: Caller,
    everything: bool,
}

impl View {
    /// Runs `f` with the visibility function (paths relative to the share root).
    fn with<R>(&self, f: impl FnOnce(&dyn Fn(&str, bool) -> Visibility) -> R) -> R {
        if self.everything {
            return f(&|_, _| Visibility::Visible);
        }
        let rights = Rights::new(&self.policy);
        f(&|rel: &str, is_dir: bool| {
            authz::visibility(self.caller.access(&rights, rel, is_dir), is_dir)
        })
    }

    /// Whether a caller limited to what they may read may use `snap`: only snapshots of the
    /// share's own folder (a root's copy elsewhere, saved before a restore, is not theirs).
    fn check_snapshot(&self, snap: &Snapshot) -> Result<(), sharekeep::Error> {
        if self.everything || std::path::Path::new(snap.root()) == self.policy.path {
            Ok(())
        } else {
            Err(sharekeep::Error::SnapshotNotFound {
                selector: snap.id.short(),
            })
        }
    }

    /// The snapshots the caller may use.
    fn snapshots(&self, repo: &Repository) -> Result<Vec<Snapshot>, sharekeep::Error> {
        let all = repo.snapshots()?;
        Ok(all
            .into_iter()
            .filter(|s| self.check_snapshot(s).is_ok())
            .collect())
    }

    fn find(&self, repo: &Repository, selector: &str) -> Result<Snapshot, sharekeep::Error> {
        if self.everything {
            return repo.find_snapshot(selector);
        }
        // `latest`, `@TIME` and id prefixes among the share's own snapshots.
        let snaps = self.snapshots(repo)?;
        sharekeep::Selector::parse(selector)?
            .select(&snaps, selector)
            .cloned()
    }
}

/// An engine error as a response.
pub(crate) fn error_response(e: &sharekeep::Error) -> Response {
    Response::Error {
        kind: e.kind().into(),
        message: e.to_string(),
        path: match e {
            sharekeep::Error::Io { path, .. } | sharekeep::Error::Corrupt { path, .. } => {
                Some(path.display().to_string())
            }
            _ => None,
        },
    }
}

fn no_plan(policy: &Policy) -> Response {
    Response::error(
        "not_found",
        format!(
            "share `{}` has no [backup] plan in {}",
            policy.name,
            policy.file.display()
        ),
    )
}

/// The share's repository and the snapshot `selector` names among those the caller may use,
/// opened on the blocking pool; an error response otherwise.
async fn open_snapshot(
    ctx: &Ctx<'_>,
    selector: String,
) -> Result<(Repository, Snapshot), Response> {
    let policy = ctx.policy();
    let Some(plan) = policy.backup.clone() else {
        return Err(no_plan(&policy));
    };
    let env = ctx.inner.settings.plan_env();
    let view = ctx.view();
    let found = tokio::task::spawn_blocking(move || {
        let repo = sharekeep::open_plan_repository(&plan, sharekeep::IndexScope::All, &env)?;
        let snap = view.find(&repo, &selector)?;
        Ok::<_, sharekeep::Error>((repo, snap))
    })
    .await;
    match found {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(error_response(&e)),
        Err(e) => Err(Response::error("io", e.to_string())),
    }
}

/// Runs `work` on the blocking pool with a cancel token the service's shutdown reaches
/// (registered while it runs), sending `live`'s progress as `what` lines meanwhile.
async fn cancellable<T: Send + 'static>(
    ctx: &Ctx<'_>,
    w: &mut SendHalf,
    what: &str,
    live: &sharekeep::LiveProgress,
    work: impl FnOnce(&sharekeep::CancelToken) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let cancel = sharekeep::CancelToken::new();
    ctx.inner.running.lock().expect("lock").push(cancel.clone());
    let c = cancel.clone();
    let task = tokio::task::spawn_blocking(move || work(&c));
    let done = with_progress(w, ctx.inner.settings.progress_every, live, what, task).await;
    ctx.inner
        .running
        .lock()
        .expect("lock")
        .retain(|t| !t.same_as(&cancel));
    done
}

/// Marks the service writing into the ctx's share until the value is dropped (a guard on
/// inotify does not count those writes).
fn writing(ctx: &Ctx<'_>) -> Option<crate::service::guard::Writing> {
    let shares = ctx.inner.shares.lock().expect("lock");
    let share = shares.get(&ctx.policy().name)?;
    let own = share.counters.lock().expect("lock").own_writes.clone();
    Some(own.begin())
}

/// Runs `work` on the blocking pool with the share's repository, sending progress lines.
async fn in_repo(
    ctx: &Ctx<'_>,
    w: &mut SendHalf,
    what: &str,
    work: impl FnOnce(
            Repository,
            Arc<Policy>,
            &sharekeep::LiveProgress,
        ) -> Result<Response, sharekeep::Error>
        + Send
        + 'static,
) -> Response {
    let policy = ctx.policy();
    let Some(plan) = policy.backup.clone() else {
        return no_plan(&policy);
    };
    let env = ctx.inner.settings.plan_env();
    let live = Arc::new(sharekeep::LiveProgress::default());
    let progress = live.clone();
    let task = tokio::task::spawn_blocking(move || {
        let repo = sharekeep::open_plan_repository(&plan, sharekeep::IndexScope::All, &env)?;
        work(repo, policy, &progress)
    });
    match with_progress(w, ctx.inner.settings.progress_every, &live, what, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(e) => Response::error("io", e.to_string()),
    }
}

/// Answers one authorized request; `None` when the handler has already answered (streams).
pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request, w: &mut SendHalf) -> Option<Response> {
    Some(match req {
        Request::Hello { .. } => Response::error("bad_request", "already greeted"),
        Request::Status => status::status(ctx),
        Request::Reload => status::reload(ctx).await,
        Request::Backup { .. } => backup::backup(ctx, w).await,
        Request::Snapshots { .. } => history::snapshots(ctx).await,
        Request::Versions { path, .. } => history::versions(ctx, path, w).await,
        Request::Diff { from, to, .. } => history::diff(ctx, from, to, w).await,
        Request::Ls { snapshot, path, .. } => history::ls(ctx, snapshot, path, w).await,
        Request::Cat { snapshot, path, .. } => return history::cat(ctx, snapshot, path, w).await,
        Request::Restore {
            snapshot,
            paths,
            to,
            overwrite,
            dry_run,
            ..
        } => return restore::restore(ctx, snapshot, paths, to, overwrite, dry_run, w).await,
        Request::Forget { dry_run, .. } => maintenance::forget(ctx, dry_run, w).await,
        Request::Check { read_data, .. } => maintenance::check(ctx, read_data, w).await,
        Request::Drill { sample, .. } => maintenance::drill(ctx, sample, w).await,
        Request::Report { from, to, .. } => maintenance::report(ctx, from, to).await,
        Request::Guard { .. } => guard::status(ctx).await,
        Request::GuardRelease { user, .. } => guard::release(ctx, user).await,
        Request::Rollback {
            incident, dry_run, ..
        } => guard::rollback(ctx, incident, dry_run, w).await,
    })
}
