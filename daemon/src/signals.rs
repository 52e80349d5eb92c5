//! What stops and reloads sharekeepd when it runs in a terminal or under systemd: SIGTERM and
//! SIGINT stop it, SIGHUP reloads the policies; on Windows, a console's Ctrl-C, Ctrl-Break,
//! close or log-off stops it (as a service, the service control manager does: `winsvc.rs`).

use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

/// Connects the signals to `stop` and `reload` (called inside the runtime).
#[cfg(unix)]
pub(crate) fn wire(stop: CancellationToken, reload: Sender<()>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM"); stop.cancel(); }
                _ = int.recv() => { tracing::info!("SIGINT"); stop.cancel(); }
                _ = hup.recv() => { let _ = reload.send(()).await; }
            }
        }
    });
    Ok(())
}

/// Connects the console's control events to `stop` (a reload is `sharekeepctl reload`, or a
/// change to a policy file).
#[cfg(windows)]
pub(crate) fn wire(stop: CancellationToken, _reload: Sender<()>) -> std::io::Result<()> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};
    let mut c = ctrl_c()?;
    let mut brk = ctrl_break()?;
    let mut close = ctrl_close()?;
    let mut logoff = ctrl_logoff()?;
    let mut shutdown = ctrl_shutdown()?;
    tokio::spawn(async move {
        tokio::select! {
            _ = c.recv() => tracing::info!("Ctrl-C"),
            _ = brk.recv() => tracing::info!("Ctrl-Break"),
            _ = close.recv() => tracing::info!("console closed"),
            _ = logoff.recv() => tracing::info!("log-off"),
            _ = shutdown.recv() => tracing::info!("system shutdown"),
        }
        stop.cancel();
    });
    Ok(())
}
