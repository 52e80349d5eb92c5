//! `status` (each caller sees only the shares they are named in; a policy file's path and
//! problems only root and that share's admins) and `reload`.

use super::Ctx;
use crate::service::server::authz::Role;
use sharekeep::protocol::Response;

pub(super) fn status(ctx: &Ctx<'_>) -> Response {
    let who = ctx.who;
    let shares = ctx.inner.status(&|policy| match policy {
        // A file that never loaded names no one: root only.
        None => (who.uid == 0).then_some(true),
        Some(p) => match who.role(p) {
            Role::Root | Role::Admin => Some(true),
            Role::Member => Some(false),
            Role::Outsider => None,
        },
    });
    Response::Status { shares }
}

pub(super) async fn reload(ctx: &Ctx<'_>) -> Response {
    tracing::info!(uid = ctx.who.uid, "reload requested");
    crate::service::reload(ctx.inner).await;
    let n = ctx.inner.shares.lock().expect("lock").len();
    Response::Ok {
        message: format!("policies reloaded: {n} share(s)"),
    }
}
