//! The control channel on Unix: a socket file every local user may connect to (what they may
//! do is decided per request), the caller known by `SO_PEERCRED` at accept time and their
//! groups looked up in NSS after hello.

use super::Caller;
use sharekeep_policies::Policy;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::net::UnixListener;

/// The read half of a connection.
pub(crate) type RecvHalf = tokio::net::unix::OwnedReadHalf;
/// The write half of a connection.
pub(crate) type SendHalf = tokio::net::unix::OwnedWriteHalf;

/// The listening socket.
pub(crate) struct Listener(UnixListener);

/// Who connected, as the kernel tells it.
pub(crate) struct Peer {
    pub(crate) uid: u32,
    gid: u32,
}

/// Binds the socket (its directory is created; a stale socket is replaced; a live one is an
/// error: another service runs; any other kind of file there is never removed).
pub(crate) fn bind(path: &Path) -> anyhow::Result<Listener> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("{}: another sharekeepd is listening there", path.display());
            }
            std::fs::remove_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        Ok(_) => anyhow::bail!(
            "{}: exists and is not a socket; sharekeepd will not remove it: move it away or give another --socket",
            path.display()
        ),
        Err(_) => {}
    }
    let l = UnixListener::bind(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Everyone may connect; what they may do is decided per request from their credentials.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(Listener(l))
}

/// Removes the socket file when the service stops.
pub(crate) fn unbind(path: &Path) {
    let _ = std::fs::remove_file(path);
}

impl Listener {
    /// The next connection and who made it (`None`: one whose credentials could not be read,
    /// dropped).
    pub(crate) async fn accept(
        &mut self,
        _policies: &BTreeMap<String, Arc<Policy>>,
    ) -> std::io::Result<Option<(RecvHalf, SendHalf, Peer)>> {
        let (stream, _) = self.0.accept().await?;
        let Ok(cred) = stream.peer_cred() else {
            return Ok(None);
        };
        let (r, w) = stream.into_split();
        Ok(Some((
            r,
            w,
            Peer {
                uid: cred.uid(),
                gid: cred.gid(),
            },
        )))
    }
}

/// A uid's groups from NSS (blocking); `fallback` when the uid has no account.
pub(crate) fn groups_of_uid(uid: u32, fallback: Vec<u32>) -> Vec<u32> {
    match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => sharekeep_policies::groups_of(&sharekeep_policies::User {
            name: u.name,
            uid,
            gid: u.gid.as_raw(),
        }),
        _ => fallback,
    }
}

impl Peer {
    /// The caller with their groups, looked up off the runtime (NSS may block).
    pub(crate) async fn caller(&self) -> Caller {
        let (uid, gid) = (self.uid, self.gid);
        let groups = tokio::task::spawn_blocking(move || groups_of_uid(uid, vec![gid]))
            .await
            .unwrap_or_else(|_| vec![gid]);
        Caller { uid, groups }
    }
}
