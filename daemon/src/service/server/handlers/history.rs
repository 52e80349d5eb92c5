//! Reading a share's history: `snapshots`, `versions`, `diff`, `ls` and `cat`. For a member,
//! everything is filtered to what the policy lets them read today: a name they may not read
//! is never sent, and only snapshots of the share's own folder are theirs.

use super::{error_response, in_repo, Ctx};
use crate::service::server::framing::{send, stream_frames};
use crate::service::server::SendHalf;
use sharekeep::protocol::{frame, LsEntry, Response, SnapshotEntry, VersionEntry};
use sharekeep::{NodeKind, Visibility};

pub(super) async fn snapshots(ctx: &Ctx<'_>) -> Response {
    let policy = ctx.policy();
    let Some(plan) = policy.backup.clone() else {
        return super::no_plan(&policy);
    };
    let env = ctx.inner.settings.plan_env();
    let view = ctx.view();
    let everything = view.everything;
    let listed =
        tokio::task::spawn_blocking(move || -> Result<Vec<SnapshotEntry>, sharekeep::Error> {
            let repo = sharekeep::open_plan_repository(&plan, sharekeep::IndexScope::All, &env)?;
            Ok(view
                .snapshots(&repo)?
                .iter()
                .map(|s| {
                    let mut e = SnapshotEntry::from_snapshot(s);
                    if !everything {
                        // Totals count files the member may not read.
                        e.total_bytes = None;
                    }
                    e
                })
                .collect())
        })
        .await;
    match listed {
        Ok(Ok(snapshots)) => Response::Snapshots { snapshots },
        Ok(Err(e)) => error_response(&e),
        Err(e) => Response::error("io", e.to_string()),
    }
}

pub(super) async fn versions(ctx: &Ctx<'_>, path: String, w: &mut SendHalf) -> Response {
    ctx.audit("versions", "*", std::slice::from_ref(&path));
    let view = ctx.view();
    in_repo(ctx, w, "versions", move |repo, _, _| {
        let snaps = view.snapshots(&repo)?;
        let versions = sharekeep::versions(&repo, &snaps, &path)?;
        Ok(Response::Versions {
            versions: versions.iter().map(VersionEntry::from_version).collect(),
        })
    })
    .await
}

pub(super) async fn diff(ctx: &Ctx<'_>, from: String, to: String, w: &mut SendHalf) -> Response {
    ctx.audit("diff", &format!("{from}..{to}"), &[]);
    let view = ctx.view();
    in_repo(ctx, w, "diff", move |repo, _, _| {
        let a = view.find(&repo, &from)?;
        let b = view.find(&repo, &to)?;
        let mut changes = sharekeep::diff(&repo, &a, &b)?;
        view.with(|visible| changes.retain(|c| visible(&c.path, c.dir) != Visibility::Hidden));
        Ok(Response::Diff {
            from: a.id.to_hex(),
            to: b.id.to_hex(),
            changes,
        })
    })
    .await
}

pub(super) async fn ls(
    ctx: &Ctx<'_>,
    snapshot: String,
    path: String,
    w: &mut SendHalf,
) -> Response {
    ctx.audit("ls", &snapshot, std::slice::from_ref(&path));
    let view = ctx.view();
    in_repo(ctx, w, "ls", move |repo, _, _| {
        let snap = view.find(&repo, &snapshot)?;
        let mut entries = Vec::new();
        view.with(|visible| {
            sharekeep::list(&repo, &snap, &path, &mut |e| {
                let is_dir = e.node.kind == NodeKind::Dir;
                if visible(&e.path, is_dir) != Visibility::Hidden {
                    let mut node = e.node;
                    node.content.clear();
                    node.subtree = None;
                    entries.push(LsEntry { path: e.path, node });
                }
            })
        })?;
        Ok(Response::Ls {
            snapshot: snap.id.to_hex(),
            root: snap.root().to_string(),
            entries,
        })
    })
    .await
}

/// Streams a file's content: a `stream` line, then DATA frames and END.
pub(super) async fn cat(
    ctx: &Ctx<'_>,
    snapshot: String,
    path: String,
    w: &mut SendHalf,
) -> Option<Response> {
    ctx.audit("cat", &snapshot, std::slice::from_ref(&path));
    let (repo, snap) = match super::open_snapshot(ctx, snapshot).await {
        Ok(x) => x,
        Err(r) => return Some(r),
    };
    let view = ctx.view();
    let found = tokio::task::spawn_blocking(move || {
        let rel = repo.relative_components(&snap, &path)?.join("/");
        let node = repo.find_node(&snap, &path)?;
        let node = match node {
            Some(n) if n.kind == NodeKind::File => n,
            other => {
                return Err(sharekeep::Error::WrongKind {
                    path: path.clone(),
                    snapshot: snap.id.short(),
                    found: other.map_or("directory", |n| n.kind.word()),
                    expected: "file",
                })
            }
        };
        if view.with(|visible| visible(&rel, false)) != Visibility::Visible {
            return Err(sharekeep::Error::PathNotInSnapshot {
                path,
                snapshot: snap.id.short(),
                root: snap.root().to_string(),
            });
        }
        Ok((repo, snap, node))
    })
    .await;
    let (repo, snap, node) = match found {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Some(error_response(&e)),
        Err(e) => return Some(Response::error("io", e.to_string())),
    };
    let header = Response::Stream {
        snapshot: snap.id.to_hex(),
        root: snap.root().to_string(),
    };
    if send(w, &header).await.is_err() {
        return None;
    }
    let _ = stream_frames(w, move |sink| {
        let mut end = frame::End::default();
        for id in &node.content {
            let r = repo
                .read_blob(id)
                .map_err(|e| error_response(&e))
                .and_then(|data| {
                    end.bytes += data.len() as u64;
                    sink(frame::DATA, data).map_err(|e| Response::error("io", e.to_string()))
                });
            if let Err(resp) = r {
                let _ = sink(frame::ERROR, serde_json::to_vec(&resp).expect("json"));
                return;
            }
        }
        end.entries = 1;
        let _ = sink(frame::END, serde_json::to_vec(&end).expect("json"));
    })
    .await;
    None
}
