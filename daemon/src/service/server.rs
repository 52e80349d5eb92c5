//! The control socket: a Unix socket speaking the JSON-lines protocol of `protocol.rs`.
//!
//! Connections are capped (one over the cap gets a `busy` error and is closed), lines are
//! capped at `MAX_LINE` (a longer one gets an error, the connection goes on), malformed lines
//! get a `bad_request` error, never a crash. The caller is identified by SO_PEERCRED: root and
//! a share's admins may do everything on it; anyone else is refused with a clear message.

use super::Inner;
use crate::protocol::{Request, Response, SnapshotEntry, MAX_LINE, PROTOCOL_VERSION};
use sharekeep_policies::{Policy, Principal};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// Binds the socket (its directory is created; a stale socket file is replaced; a live one is
/// an error: another service runs).
pub(crate) fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("{}: another sharekeepd is listening there", path.display());
        }
        std::fs::remove_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Everyone may connect; what they may do is decided per request from their credentials.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// Accepts connections until aborted.
pub(crate) async fn serve(inner: Arc<Inner>, listener: UnixListener) {
    let slots = Arc::new(Semaphore::new(inner.settings.max_connections));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let inner = inner.clone();
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    if let Err(e) = connection(inner, stream).await {
                        tracing::debug!("connection ended: {e}");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let (_, mut w) = stream.into_split();
                    let _ = send(
                        &mut w,
                        &Response::error("busy", "too many connections; try again in a moment"),
                    )
                    .await;
                });
            }
        }
    }
}

async fn send(w: &mut OwnedWriteHalf, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_string(r).expect("responses serialize");
    line.push('\n');
    w.write_all(line.as_bytes()).await
}

/// One line read with a cap.
enum Line {
    Text(String),
    TooLong,
}

/// Reads one line of at most `MAX_LINE` bytes; a longer one is read to its end, discarded,
/// and reported as [`Line::TooLong`]. `None` at the end of the stream.
async fn read_line(r: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Option<Line>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok((!buf.is_empty() || too_long).then(|| finish(buf, too_long)));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE {
                too_long = true;
                buf = Vec::new();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(finish(buf, too_long)));
        }
    }
}

fn finish(buf: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        Line::TooLong
    } else {
        Line::Text(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Who is calling.
struct Caller {
    uid: u32,
    groups: Vec<u32>,
}

impl Caller {
    fn is_root(&self) -> bool {
        self.uid == 0
    }
    fn is_admin(&self, p: &Policy) -> bool {
        self.is_root()
            || p.admins.iter().any(|a| match a {
                Principal::User(u) => u.uid == self.uid,
                Principal::Group(g) => self.groups.contains(&g.gid),
            })
    }
}

fn caller(stream: &UnixStream) -> std::io::Result<Caller> {
    let cred = stream.peer_cred()?;
    let uid = cred.uid();
    let groups = match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => sharekeep_policies::groups_of(&sharekeep_policies::User {
            name: u.name,
            uid,
            gid: u.gid.as_raw(),
        }),
        _ => vec![cred.gid()],
    };
    Ok(Caller { uid, groups })
}

async fn connection(inner: Arc<Inner>, stream: UnixStream) -> std::io::Result<()> {
    let who = caller(&stream)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut greeted = false;
    while let Some(line) = read_line(&mut r).await? {
        let line = match line {
            Line::Text(l) => l,
            Line::TooLong => {
                send(
                    &mut w,
                    &Response::error(
                        "bad_request",
                        format!("line longer than {MAX_LINE} bytes; refused"),
                    ),
                )
                .await?;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                send(
                    &mut w,
                    &Response::error("bad_request", format!("not a request: {e}")),
                )
                .await?;
                continue;
            }
        };
        if !greeted {
            match req {
                Request::Hello { version } if version == PROTOCOL_VERSION => {
                    greeted = true;
                    send(
                        &mut w,
                        &Response::Hello {
                            version: PROTOCOL_VERSION,
                            server: format!("sharekeepd {}", env!("CARGO_PKG_VERSION")),
                        },
                    )
                    .await?;
                }
                Request::Hello { version } => {
                    send(&mut w, &Response::error("version", format!("protocol version {version} is not supported (this sharekeepd speaks {PROTOCOL_VERSION}); use a matching sharekeepctl"))).await?;
                    return Ok(());
                }
                _ => {
                    send(
                        &mut w,
                        &Response::error(
                            "bad_request",
                            "say hello first: {\"op\":\"hello\",\"version\":1}",
                        ),
                    )
                    .await?
                }
            }
            continue;
        }
        let answer = handle(&inner, &who, req, &mut w).await;
        send(&mut w, &answer).await?;
    }
    Ok(())
}

fn find_policy(inner: &Inner, share: &str) -> Result<Arc<Policy>, Response> {
    let shares = inner.shares.lock().expect("lock");
    match shares.get(share).and_then(|s| s.policy.clone()) {
        Some(p) => Ok(p),
        None => Err(Response::error(
            "not_found",
            format!("no managed share named `{share}`; `sharekeepctl status` lists them"),
        )),
    }
}

/// Runs `work` on the blocking pool with the share's repository, for root and the share's
/// admins only.
async fn in_repo(
    inner: &Arc<Inner>,
    who: &Caller,
    share: &str,
    w: &mut OwnedWriteHalf,
    what: &str,
    work: impl FnOnce(
            crate::Repository,
            Arc<Policy>,
            &crate::LiveProgress,
        ) -> Result<Response, crate::Error>
        + Send
        + 'static,
) -> Response {
    let policy = match find_policy(inner, share) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !who.is_admin(&policy) {
        return refused(share);
    }
    let Some(plan) = policy.backup.clone() else {
        return Response::error(
            "not_found",
            format!(
                "share `{share}` has no [backup] plan in {}",
                policy.file.display()
            ),
        );
    };
    let live = Arc::new(crate::LiveProgress::default());
    let progress = live.clone();
    let task = tokio::task::spawn_blocking(move || {
        let repo = crate::Repository::open_local(&plan.repository)?;
        work(repo, policy, &progress)
    });
    let done = with_progress(w, &live, what, task).await;
    match done {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Response::Error {
            kind: e.kind().into(),
            message: e.to_string(),
            path: match &e {
                crate::Error::Io { path, .. } | crate::Error::Corrupt { path, .. } => {
                    Some(path.display().to_string())
                }
                _ => None,
            },
        },
        Err(e) => Response::error("io", e.to_string()),
    }
}

fn refused(share: &str) -> Response {
    Response::error(
        "refused",
        format!(
            "you are not an admin of share `{share}`: only root and the share's admins may do this"
        ),
    )
}

/// Sends a progress line every 250 ms until `work` is done; returns its result.
async fn with_progress<T>(
    w: &mut OwnedWriteHalf,
    live: &crate::LiveProgress,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = tick.tick() => {
                // A client that went away does not stop the work.
                let _ = send(w, &Response::Progress { message: live.describe(what) }).await;
            }
        }
    }
}

async fn handle(
    inner: &Arc<Inner>,
    who: &Caller,
    req: Request,
    w: &mut OwnedWriteHalf,
) -> Response {
    match req {
        Request::Hello { .. } => Response::error("bad_request", "already greeted"),
        Request::Status => {
            let shares = inner.status(&|p| who.is_admin(p));
            if shares.is_empty() && !who.is_root() {
                return Response::error("refused", "you are not an admin of any share");
            }
            Response::Status { shares }
        }
        Request::Reload => {
            let any_admin = who.is_root()
                || inner
                    .shares
                    .lock()
                    .expect("lock")
                    .values()
                    .any(|s| s.policy.as_deref().is_some_and(|p| who.is_admin(p)));
            if !any_admin {
                return Response::error(
                    "refused",
                    "only root and share admins may reload the policies",
                );
            }
            super::reload(inner).await;
            let n = inner.shares.lock().expect("lock").len();
            Response::Ok {
                message: format!("policies reloaded: {n} share(s)"),
            }
        }
        Request::Backup { share } => {
            let policy = match find_policy(inner, &share) {
                Ok(p) => p,
                Err(r) => return r,
            };
            if !who.is_admin(&policy) {
                return refused(&share);
            }
            if policy.backup.is_none() {
                return Response::error(
                    "not_found",
                    format!(
                        "share `{share}` has no [backup] plan in {}",
                        policy.file.display()
                    ),
                );
            }
            let (trigger, mut outcomes, counters) = {
                let shares = inner.shares.lock().expect("lock");
                let s = &shares[&share];
                (s.trigger.clone(), s.outcomes.clone(), s.counters.clone())
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
            match with_progress(w, &live, "backup", wait).await {
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
        Request::Versions { share, path } => {
            in_repo(inner, who, &share, w, "versions", move |repo, _, _| {
                let snaps = repo.snapshots()?;
                let versions = crate::versions(&repo, &snaps, &path)?;
                Ok(Response::Versions {
                    versions: versions
                        .iter()
                        .map(crate::protocol::VersionEntry::from_version)
                        .collect(),
                })
            })
            .await
        }
        Request::Diff { share, from, to } => {
            in_repo(inner, who, &share, w, "diff", move |repo, _, _| {
                let a = repo.find_snapshot(&from)?;
                let b = repo.find_snapshot(&to)?;
                let changes = crate::diff(&repo, &a, &b)?;
                Ok(Response::Diff {
                    from: a.id.to_hex(),
                    to: b.id.to_hex(),
                    changes,
                })
            })
            .await
        }
        Request::Restore {
            share,
            snapshot,
            paths,
            to,
            overwrite,
            dry_run,
        } => {
            let overwrite = match overwrite.as_str() {
                "never" => crate::Overwrite::Never,
                "if-changed" => crate::Overwrite::IfChanged,
                "always" => crate::Overwrite::Always,
                other => {
                    return Response::error(
                        "bad_request",
                        format!("overwrite {other:?}: never, if-changed or always"),
                    )
                }
            };
            in_repo(
                inner,
                who,
                &share,
                w,
                "restore",
                move |repo, _, progress| {
                    let snap = repo.find_snapshot(&snapshot)?;
                    let opts = crate::RestoreOptions {
                        paths,
                        target: match to {
                            Some(d) => crate::Target::Dir(d.into()),
                            None => crate::Target::InPlace,
                        },
                        overwrite,
                        threads: 0,
                    };
                    let plan = crate::plan_restore(&repo, &snap, &opts)?;
                    if dry_run {
                        return Ok(Response::Restore(Box::new(
                            crate::protocol::RestoreResult::from_plan(&plan),
                        )));
                    }
                    let report =
                        crate::restore(&repo, &plan, 0, progress, &crate::CancelToken::new())?;
                    Ok(Response::Restore(Box::new(
                        crate::protocol::RestoreResult::from_report(&plan, &report),
                    )))
                },
            )
            .await
        }
        Request::Forget { share, dry_run } => {
            in_repo(inner, who, &share, w, "forget", move |repo, policy, _| {
                let keep = policy
                    .backup
                    .as_ref()
                    .and_then(|b| b.keep.clone())
                    .ok_or_else(|| {
                        crate::Error::Invalid(format!(
                            "share `{}` has no `keep` rules in {}: nothing to forget",
                            policy.name,
                            policy.file.display()
                        ))
                    })?;
                let rules = super::jobs::keep_rules(
                    &keep,
                    policy.backup.as_ref().map_or(0, |b| b.keep_min_days),
                );
                let decisions = crate::forget(&repo, &rules, dry_run)?;
                Ok(Response::Forget {
                    decisions: decisions
                        .iter()
                        .map(crate::protocol::DecisionEntry::from_decision)
                        .collect(),
                    dry_run,
                })
            })
            .await
        }
        Request::Check { share, read_data } => {
            in_repo(inner, who, &share, w, "check", move |repo, _, _| {
                Ok(Response::Check(Box::new(crate::check(
                    &repo,
                    &crate::CheckOptions { read_data },
                )?)))
            })
            .await
        }
        Request::Snapshots { share } => {
            let policy = match find_policy(inner, &share) {
                Ok(p) => p,
                Err(r) => return r,
            };
            if !who.is_admin(&policy) {
                return refused(&share);
            }
            let Some(plan) = policy.backup.clone() else {
                return Response::error(
                    "not_found",
                    format!("share `{share}` has no [backup] plan"),
                );
            };
            let listed =
                tokio::task::spawn_blocking(move || -> Result<Vec<SnapshotEntry>, crate::Error> {
                    let repo = crate::Repository::open_local(&plan.repository)?;
                    Ok(repo
                        .snapshots()?
                        .into_iter()
                        .map(|s| SnapshotEntry {
                            id: s.id.to_hex(),
                            time: s.time.to_rfc3339(),
                            host: s.host,
                            tags: s.tags,
                            paths: s.paths,
                            total_bytes: s.summary.total_bytes,
                        })
                        .collect())
                })
                .await;
            match listed {
                Ok(Ok(snapshots)) => Response::Snapshots { snapshots },
                Ok(Err(e)) => Response::error(e.kind(), e.to_string()),
                Err(e) => Response::error("io", e.to_string()),
            }
        }
    }
}
