//! The control socket: a Unix socket speaking the JSON-lines protocol of
//! `sharekeep::protocol`, open to every local user (members restore their own files through
//! it), so it must never let one of them hold or misuse the daemon.
//!
//! ```text
//! accept -> SO_PEERCRED (who) before anything is spent on the caller
//!        -> admission: a non-root uid holds at most `max_connections_per_user` connections,
//!           non-root callers together at most `max_connections` minus the slots kept for
//!           root; over that: a `busy` error and the connection is closed
//!        -> hello within HELLO_TIMEOUT, then each request within IDLE_TIMEOUT of the last
//!        -> each request: authorize (authz.rs, one pure function) -> its handler (handlers/)
//! ```
//! Lines are capped at `MAX_LINE` (a longer one gets an error, the connection goes on);
//! malformed lines get a `bad_request` error, never a crash.

pub(crate) mod authz;
mod framing;
mod handlers;
#[cfg(unix)]
#[path = "transport_unix.rs"]
mod transport;
#[cfg(windows)]
#[path = "transport_windows.rs"]
mod transport;

use super::Inner;
use framing::{read_line, send, Line};
use sharekeep::protocol::{Request, Response, MAX_LINE, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::BufReader;
#[cfg(unix)]
pub(crate) use transport::groups_of_uid;
pub(crate) use transport::{bind, unbind, Listener, SendHalf};
use transport::{Peer, RecvHalf};

/// A connection that has not said hello within this is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection idle this long between requests is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections kept for root whatever other users hold.
const ROOT_RESERVED: usize = 2;

/// Who is calling (SO_PEERCRED and the user's groups from NSS; on Windows the numbers of the
/// SIDs in the client's token).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) uid: u32,
    pub(crate) groups: Vec<u32>,
}

/// Connection slots, counted per uid.
struct Admission {
    max: usize,
    per_user: usize,
    held: Mutex<(usize, HashMap<u32, usize>)>,
}

/// A slot, given back when dropped.
struct Slot {
    admission: Arc<Admission>,
    uid: u32,
}

impl Admission {
    fn admit(self: &Arc<Self>, uid: u32) -> Option<Slot> {
        let mut held = self.held.lock().expect("lock");
        let mine = held.1.get(&uid).copied().unwrap_or(0);
        let ok = if uid == 0 {
            held.0 < self.max
        } else {
            held.0 < self.max.saturating_sub(ROOT_RESERVED) && mine < self.per_user
        };
        if !ok {
            return None;
        }
        held.0 += 1;
        *held.1.entry(uid).or_default() += 1;
        Some(Slot {
            admission: self.clone(),
            uid,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.admission.held.lock().expect("lock");
        held.0 -= 1;
        if let Some(n) = held.1.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                held.1.remove(&self.uid);
            }
        }
    }
}

/// Accepts connections until aborted.
pub(crate) async fn serve(inner: Arc<Inner>, mut listener: Listener) {
    let admission = Arc::new(Admission {
        max: inner.settings.max_connections,
        per_user: inner.settings.max_connections_per_user,
        held: Mutex::new((0, HashMap::new())),
    });
    loop {
        let (r, mut w, peer) = match listener.accept(&inner.policies()).await {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let uid = peer.uid;
        match admission.admit(uid) {
            Some(slot) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(inner, r, w, peer).await {
                        tracing::debug!("connection ended: {e}");
                    }
                    drop(slot);
                });
            }
            None => {
                tracing::debug!(uid, "connection refused: too many connections");
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        send(
                            &mut w,
                            &Response::error(
                                "busy",
                                "too many connections (yours, or everyone's); try again in a moment",
                            ),
                        ),
                    )
                    .await;
                });
            }
        }
    }
}

async fn connection(
    inner: Arc<Inner>,
    r: RecvHalf,
    mut w: SendHalf,
    peer: Peer,
) -> std::io::Result<()> {
    let mut r = BufReader::new(r);
    let mut who: Option<Caller> = None;
    loop {
        let limit = if who.is_none() {
            HELLO_TIMEOUT
        } else {
            IDLE_TIMEOUT
        };
        let line = match tokio::time::timeout(limit, read_line(&mut r)).await {
            Err(_) => {
                let _ = send(
                    &mut w,
                    &Response::error("timeout", format!("nothing said for {limit:?}; closed")),
                )
                .await;
                return Ok(());
            }
            Ok(line) => line?,
        };
        let Some(line) = line else {
            return Ok(());
        };
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
        let Some(caller) = &who else {
            match req {
                Request::Hello { version } if version == PROTOCOL_VERSION => {
                    who = Some(peer.caller().await);
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
                            format!(
                            "say hello first: {{\"op\":\"hello\",\"version\":{PROTOCOL_VERSION}}}"
                        ),
                        ),
                    )
                    .await?
                }
            }
            continue;
        };
        if matches!(req, Request::Hello { .. }) {
            send(&mut w, &Response::error("bad_request", "already greeted")).await?;
            continue;
        }
        let policies = inner.policies();
        match authz::authorize(caller, &req, &policies) {
            authz::Decision::Refused { kind, message } => {
                tracing::info!(
                    uid = caller.uid,
                    request = req.name(),
                    share = req.share().unwrap_or(""),
                    "refused: {message}"
                );
                send(&mut w, &Response::error(kind, message)).await?;
            }
            authz::Decision::Allowed(grant) => {
                let policy = req.share().and_then(|s| policies.get(s).cloned());
                let ctx = handlers::Ctx {
                    inner: &inner,
                    who: caller,
                    grant,
                    policy,
                };
                if let Some(answer) = handlers::handle(&ctx, req, &mut w).await {
                    send(&mut w, &answer).await?;
                }
            }
        }
    }
}
