//! `sharekeepd`'s service: keeps each share's rights applied and runs its backup plan.
//!
//! ```text
//! run(settings, shutdown):
//!   load every policy (a broken file keeps its last good version, or stays unmanaged)
//!   per managed share, two tasks:
//!     enforce: one inotify watch per folder, kept by a thread (watches.rs) that adds them by
//!              descriptor walk, never across a link or a mount, within a budget; created,
//!              moved-in and chmod-ed entries get their rights within a debounce window, work
//!              proportional to what changed (enforce.rs); a full reconcile at start, hourly
//!              (every 5 minutes beyond the watch budget), and on queue overflow
//!     schedule: sleeps until the next cron occurrence (or runs at once when one was missed),
//!               or until a request; runs backup, retention, prune (every few days); triggers
//!               during a run merge into one next run
//!   the control socket (server.rs); SIGHUP, `reload` or a change in the policies directory
//!   reload the policies; the shutdown token stops everything, cancelling a running backup
//!   (no partial snapshot is ever written)
//! ```
//! All filesystem work runs on the blocking pool, never on the async runtime.

mod alerts;
pub mod config;
mod drills;
mod enforce;
mod guard;
mod jobs;
pub mod schedule;
mod server;
pub mod state;
#[cfg(unix)]
mod versions;
/// Previous Versions are Samba's and FUSE's (validation refuses them on Windows): nothing is
/// mounted, nothing held.
#[cfg(windows)]
mod versions {
    /// Where a share's mounted Previous Versions are held on Unix: on Windows never any.
    pub(crate) type Slot = std::sync::Arc<std::sync::Mutex<Option<std::convert::Infallible>>>;
}
mod watches;
#[cfg(windows)]
mod windows_shares;

use config::Settings;
use sharekeep::protocol::ShareStatus;
use sharekeep::CancelToken;
use sharekeep_policies::Policy;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The outcome of one backup run, broadcast to whoever asked for it.
#[derive(Debug, Clone)]
pub(crate) struct RunOutcome {
    /// Increases with every finished run.
    pub(crate) generation: u64,
    /// The snapshot (as JSON) and the warnings, or the error.
    pub(crate) result: Result<(serde_json::Value, Vec<String>), String>,
}

/// Live counters and state of one share.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) checked: u64,
    pub(crate) fixed: u64,
    pub(crate) last_reconcile: Option<chrono::DateTime<chrono::Local>>,
    pub(crate) next_backup: Option<chrono::DateTime<chrono::Local>>,
    pub(crate) running: bool,
    /// Progress of the running backup.
    pub(crate) progress: Arc<sharekeep::LiveProgress>,
    /// Folders watched (set by the share's watcher thread).
    pub(crate) watches: Arc<std::sync::atomic::AtomicU64>,
    /// How the guard watches the share (`fanotify`, or why it does not).
    pub(crate) guard: Arc<Mutex<String>>,
    /// Tags the next backup carries (the guard's `incident`), taken by the run.
    pub(crate) next_tags: Vec<String>,
    /// The guard's watch of the share, kept across restarts of its tasks.
    pub(crate) guard_watch: Option<Arc<guard::Watch>>,
    /// The service's own writes into the share (a guard on inotify does not count them).
    pub(crate) own_writes: Arc<guard::OwnWrites>,
}

/// A share the service manages (or knows about but cannot manage).
pub(crate) struct Share {
    pub(crate) file: PathBuf,
    /// The last good policy (`None`: the file never loaded).
    pub(crate) policy: Option<Arc<Policy>>,
    /// The file's current problems.
    pub(crate) problems: Vec<String>,
    pub(crate) counters: Arc<Mutex<Counters>>,
    pub(crate) trigger: Arc<Notify>,
    pub(crate) outcomes: watch::Receiver<RunOutcome>,
    /// The hash of the policy file's content when it was loaded.
    fingerprint: String,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
    /// The share's Previous Versions, while mounted: held so that dropping the share unmounts them.
    _versions: versions::Slot,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What every task shares.
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    /// Shares by name (a broken never-loaded file is listed under its file name).
    pub(crate) shares: Mutex<BTreeMap<String, Share>>,
    /// Cancellation of running backups on shutdown.
    pub(crate) running: Mutex<Vec<CancelToken>>,
    pub(crate) shutdown: CancellationToken,
}

impl Inner {
    /// The managed shares' policies by name.
    pub(crate) fn policies(&self) -> BTreeMap<String, Arc<Policy>> {
        let shares = self.shares.lock().expect("lock");
        shares
            .iter()
            .filter_map(|(n, s)| s.policy.clone().map(|p| (n.clone(), p)))
            .collect()
    }

    /// The status of the shares `shown` accepts: `None` hides a share, `Some(details)` shows
    /// it, with its policy file and problems only when `details`.
    pub(crate) fn status(
        &self,
        shown: &dyn Fn(Option<&Policy>) -> Option<bool>,
    ) -> Vec<ShareStatus> {
        let shares = self.shares.lock().expect("lock");
        shares
            .iter()
            .filter_map(|(name, s)| shown(s.policy.as_deref()).map(|d| (name, s, d)))
            .map(|(name, s, details)| {
                let c = s.counters.lock().expect("lock");
                let st = state::load(&self.settings.state, name);
                let drill = drills::load(&self.settings.state, name);
                ShareStatus {
                    name: name.clone(),
                    path: s
                        .policy
                        .as_ref()
                        .map(|p| p.path.display().to_string())
                        .unwrap_or_default(),
                    file: if details {
                        s.file.display().to_string()
                    } else {
                        String::new()
                    },
                    policy: match (&s.policy, s.problems.is_empty() || !details) {
                        (Some(_), true) => "ok",
                        (Some(_), false) => "stale",
                        (None, _) => "unmanaged",
                    }
                    .into(),
                    problems: if details {
                        s.problems.clone()
                    } else {
                        Vec::new()
                    },
                    drift_fixed: c.fixed,
                    watches: c.watches.load(std::sync::atomic::Ordering::Relaxed),
                    checked: c.checked,
                    last_reconcile: c.last_reconcile.map(|t| t.to_rfc3339()),
                    last_backup: st.last_success.map(|t| t.to_rfc3339()),
                    last_snapshot: st.last_snapshot,
                    last_result: st.last_result,
                    next_backup: c.next_backup.map(|t| t.to_rfc3339()),
                    running: c.running,
                    last_drill: drill.last.map(|t| t.to_rfc3339()),
                    last_drill_result: drill.last.map(|_| drill.summary.clone()),
                    next_drill: s
                        .policy
                        .as_ref()
                        .and_then(|p| p.backup.as_ref())
                        .and_then(|b| b.drill.as_ref())
                        .and_then(|d| schedule::next_after(d, chrono::Local::now()))
                        .map(|t| t.to_rfc3339()),
                    copy_to: s
                        .policy
                        .as_ref()
                        .and_then(|p| p.backup.as_ref())
                        .and_then(|b| b.copy_to.as_deref())
                        .map(sharekeep::redact_url),
                    last_copy: st.last_copy,
                    locks: if details {
                        guard::state::load(&self.settings.state, name).locks
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }
}

fn policy_fingerprint(p: &Policy) -> String {
    // Reloading restarts a share's tasks only when its policy file's content changed (the
    // hash is taken when the file is loaded and kept with the share).
    std::fs::read(&p.file)
        .map(|b| sharekeep::Id::hash(&b).to_hex())
        .unwrap_or_default()
}

/// Loads (or reloads) every policy file; starts, restarts or stops the shares' tasks.
pub(crate) async fn reload(inner: &Arc<Inner>) {
    let (dir, state) = (
        inner.settings.policies.clone(),
        inner.settings.state.clone(),
    );
    let loaded = tokio::task::spawn_blocking(move || load_all(&dir, Some(&state)))
        .await
        .expect("load task");
    let exported = update_shares(inner, loaded);
    #[cfg(unix)]
    if let (Some((include, conf)), Some(policies)) = (inner.settings.samba.clone(), exported) {
        let versions = inner.settings.state.join("versions");
        let _ = tokio::task::spawn_blocking(move || {
            manage_samba(&policies, &include, conf.as_deref(), &versions)
        })
        .await;
    }
    // On Windows the shares are the machine's own (the include and smb.conf are Samba's).
    #[cfg(windows)]
    if let Some(policies) = exported {
        let state = inner.settings.state.clone();
        let _ =
            tokio::task::spawn_blocking(move || windows_shares::manage(&policies, &state)).await;
    }
}

/// Replaces the shares with what was loaded; returns the managed policies when Samba is
/// managed.
fn update_shares(inner: &Arc<Inner>, loaded: Vec<Loaded>) -> Option<Vec<Policy>> {
    let mut shares = inner.shares.lock().expect("lock");
    let mut next: BTreeMap<String, Share> = BTreeMap::new();
    for item in loaded {
        match item {
            Loaded::Good(policy, fingerprint) => {
                let name = policy.name.clone();
                let old = shares.remove(&name);
                let share = match old {
                    Some(s) if s.fingerprint == fingerprint && !s.tasks.is_empty() => {
                        let mut s = s;
                        s.problems.clear();
                        s
                    }
                    old => {
                        let counters = old.as_ref().map(|s| s.counters.clone()).unwrap_or_default();
                        drop(old);
                        tracing::info!(share = %name, file = %policy.file.display(), "managing share at {}", policy.path.display());
                        let mut share = start_share(inner, Arc::new(*policy), counters);
                        share.fingerprint = fingerprint;
                        share
                    }
                };
                next.insert(name, share);
            }
            Loaded::Broken {
                file,
                name,
                problems,
            } => {
                for p in &problems {
                    tracing::error!("{p}");
                }
                // The share this file described, if it had loaded before, keeps its last good
                // policy; otherwise it stays unmanaged.
                let key = name
                    .clone()
                    .or_else(|| {
                        shares
                            .iter()
                            .find(|(_, s)| s.file == file)
                            .map(|(n, _)| n.clone())
                    })
                    .unwrap_or_else(|| file.display().to_string());
                match shares.remove(&key) {
                    Some(mut s) => {
                        if s.policy.is_some() {
                            tracing::warn!(share = %key, "policy file is broken: enforcing its last good version");
                        }
                        s.problems = problems;
                        next.insert(key, s);
                    }
                    None => {
                        let (_, rx) = watch::channel(RunOutcome {
                            generation: 0,
                            result: Err("never ran".into()),
                        });
                        next.insert(
                            key,
                            Share {
                                file,
                                policy: None,
                                problems,
                                counters: Default::default(),
                                trigger: Arc::new(Notify::new()),
                                outcomes: rx,
                                fingerprint: String::new(),
                                tasks: Vec::new(),
                                stop: CancellationToken::new(),
                                _versions: Default::default(),
                            },
                        );
                    }
                }
            }
        }
    }
    for (name, _) in std::mem::take(&mut *shares) {
        tracing::info!(share = %name, "policy removed: no longer managed");
    }
    *shares = next;
    inner.settings.samba.is_some().then(|| {
        shares
            .values()
            .filter_map(|s| s.policy.as_deref().cloned())
            .collect()
    })
}

/// Writes the Samba include when its content changed, then tells smbd to reload.
#[cfg(unix)]
fn manage_samba(
    policies: &[Policy],
    include: &std::path::Path,
    conf: Option<&std::path::Path>,
    versions: &std::path::Path,
) {
    let text = sharekeep_policies::samba_export(policies, versions);
    if std::fs::read_to_string(include).ok().as_deref() == Some(text.as_str()) {
        return;
    }
    if let Err(e) = sharekeep::write_atomic(include, text.as_bytes(), 0o644) {
        tracing::error!("cannot write the Samba include {}: {e}", include.display());
        return;
    }
    let mut cmd = std::process::Command::new("smbcontrol");
    if let Some(c) = conf {
        cmd.arg("-s").arg(c);
    }
    match cmd
        .args(["smbd", "reload-config"])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => {
            tracing::info!("Samba include {} updated; smbd reloaded", include.display())
        }
        Ok(o) => tracing::warn!(
            "Samba include {} updated; smbd did not reload: {}",
            include.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => tracing::warn!(
            "Samba include {} updated; cannot run smbcontrol: {e}",
            include.display()
        ),
    }
}

enum Loaded {
    Good(Box<Policy>, String),
    Broken {
        file: PathBuf,
        name: Option<String>,
        problems: Vec<String>,
    },
}

/// Every policy file, validated one by one (a broken file does not affect the others), then
/// the checks across files (a share overlapping an earlier one is refused).
fn load_all(dir: &std::path::Path, state: Option<&std::path::Path>) -> Vec<Loaded> {
    let files = match sharekeep_policies::policy_files(dir) {
        Ok(f) => f,
        Err(p) => {
            tracing::error!("{p}");
            return Vec::new();
        }
    };
    let mut good: Vec<Policy> = Vec::new();
    let mut out = Vec::new();
    for f in files {
        match sharekeep_policies::load_file(&f) {
            Ok(p) => {
                let clash = good.iter().find(|g| {
                    g.name == p.name || g.path.starts_with(&p.path) || p.path.starts_with(&g.path)
                });
                match clash {
                    Some(g) => out.push(Loaded::Broken {
                        file: f.clone(),
                        name: Some(p.name.clone()),
                        problems: vec![format!("{}: share `{}` clashes with share `{}` of {} (same name or overlapping folders)", f.display(), p.name, g.name, g.file.display())],
                    }),
                    None => good.push(p),
                }
            }
            Err(problems) => out.push(Loaded::Broken {
                name: share_name_guess(&f),
                file: f,
                problems: problems.0.iter().map(|p| p.to_string()).collect(),
            }),
        }
    }
    for mut p in good {
        // The guard's locks (kept in the state folder) overlay the policy; a lock taken or
        // lifted restarts the share with its new rights.
        let mut fp = policy_fingerprint(&p);
        if let Some(state) = state {
            p.lockdown = guard::state::lockdown(state, &p.name);
            if !p.lockdown.is_empty() {
                fp = format!("{fp}+{:?}", p.lockdown);
            }
        }
        out.push(Loaded::Good(Box::new(p), fp));
    }
    out
}

/// `sharekeepd --check-config`: the settings as resolved and every policy validated as the
/// service would load it (each file alone, then the clashes between files). Returns what to
/// print, one line each, and whether the service would start with every share.
pub fn check_config(settings: &Settings) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut ok = true;
    let mut problem = |lines: &mut Vec<String>, p: String| {
        ok = false;
        lines.push(format!("error: {p}"));
    };
    if tracing_subscriber::EnvFilter::try_new(&settings.log_level).is_err() {
        problem(
            &mut lines,
            format!(
                "log_level `{}`: use error, warn, info, debug or trace",
                settings.log_level
            ),
        );
    }
    if let Some(cfg) = &settings.alerts {
        for p in alerts::check(cfg) {
            problem(&mut lines, p);
        }
    }
    if let Some(f) = &settings.remote_credentials {
        if let Err(e) = sharekeep::Credentials::from_file(f) {
            problem(&mut lines, format!("remote_credentials: {e}"));
        }
    }
    match sharekeep_policies::policy_files(&settings.policies) {
        Err(e) => problem(&mut lines, e.to_string()),
        Ok(files) if files.is_empty() => lines.push(format!(
            "no policy in {} yet: the service starts and waits for one (see /usr/share/doc/sharekeep/examples)",
            settings.policies.display()
        )),
        Ok(_) => {
            for l in load_all(&settings.policies, None) {
                match l {
                    Loaded::Good(p, _) => {
                        if let Some(b) = &p.backup {
                            if let Err(e) = sharekeep::plan_secret(b) {
                                problem(&mut lines, format!("{}: [backup] key_file: {e}", p.file.display()));
                                continue;
                            }
                            let copy = b.copy_to.as_deref().map(str::parse::<sharekeep::Location>);
                            if let Err(e) = sharekeep::plan_location(b).and(copy.transpose()) {
                                problem(&mut lines, format!("{}: [backup]: {e}", p.file.display()));
                                continue;
                            }
                        }
                        lines.push(format!(
                            "ok: {}: share `{}` at {}{}",
                            p.file.display(),
                            p.name,
                            p.path.display(),
                            match &p.backup {
                                Some(b) => format!(
                                    ", backed up to {}{}",
                                    sharekeep::plan_repository_shown(b),
                                    b.copy_to
                                        .as_deref()
                                        .map(|c| format!(", copied to {}", sharekeep::redact_url(c)))
                                        .unwrap_or_default()
                                ),
                                None => String::new(),
                            }
                        ))
                    }
                    Loaded::Broken { problems, .. } => {
                        for p in problems {
                            problem(&mut lines, p);
                        }
                    }
                }
            }
        }
    }
    (lines, ok)
}

/// The `name = "…"` of a broken file's [share], when it can still be read.
fn share_name_guess(file: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    doc.get("share")?.get("name")?.as_str().map(str::to_string)
}

fn start_share(inner: &Arc<Inner>, policy: Arc<Policy>, counters: Arc<Mutex<Counters>>) -> Share {
    let stop = inner.shutdown.child_token();
    let trigger = Arc::new(Notify::new());
    let (tx, rx) = watch::channel(RunOutcome {
        generation: 0,
        result: Err("never ran".into()),
    });
    let mut tasks = vec![tokio::spawn(enforce::enforce(
        inner.clone(),
        policy.clone(),
        counters.clone(),
        stop.clone(),
    ))];
    if policy.guard.is_some() {
        tasks.push(tokio::spawn(guard::guard(
            inner.clone(),
            policy.clone(),
            counters.clone(),
            stop.clone(),
        )));
    } else {
        counters.lock().expect("lock").guard_watch = None;
    }
    let versions = versions::Slot::default();
    if policy.backup.is_some() {
        tasks.push(tokio::spawn(jobs::scheduler(
            inner.clone(),
            policy.clone(),
            counters.clone(),
            trigger.clone(),
            tx,
            stop.clone(),
            versions.clone(),
        )));
        if policy.backup.as_ref().is_some_and(|b| b.drill.is_some()) {
            tasks.push(tokio::spawn(drills::scheduler(
                inner.clone(),
                policy.clone(),
                stop.clone(),
            )));
        }
        #[cfg(unix)]
        if policy.samba.previous_versions {
            let (state, env, p, slot) = (
                inner.settings.state.clone(),
                inner.settings.plan_env(),
                policy.clone(),
                versions.clone(),
            );
            tokio::task::spawn_blocking(move || versions::ensure(&state, &env, &p, &slot));
        }
    }
    Share {
        file: policy.file.clone(),
        policy: Some(policy),
        problems: Vec::new(),
        counters,
        trigger,
        outcomes: rx,
        fingerprint: String::new(),
        tasks,
        stop,
        _versions: versions,
    }
}

/// Runs the service until `shutdown` is cancelled. `reload_requests` (SIGHUP) reload the
/// policies.
/// How long the service's requests and jobs wait for a repository lock that conflicts with
/// theirs (a restore while the nightly retention holds the repository alone, a prune while a
/// member restores) before reporting it: such holds last seconds, and a member's restore should
/// not fail because it came at the wrong moment.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub async fn run(
    settings: Settings,
    shutdown: CancellationToken,
    mut reload_requests: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    sharekeep::set_lock_wait(LOCK_WAIT);
    // The state (last runs, reports) is root's alone, whatever the umask: its files are 0600
    // and its folders 0700, except the state folder itself, 0711, which others may only cross
    // (not list) to reach versions/, where the Previous Versions are mounted for smbd.
    #[cfg(windows)]
    sharekeep::sys::private_dirs(&settings.state)
        .map_err(|e| anyhow::anyhow!("state directory {}: {e}", settings.state.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let state = &settings.state;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(state)
            .and_then(|()| std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o711)))
            .map_err(|e| anyhow::anyhow!("state directory {}: {e}", state.display()))?;
    }
    let (reload_tx, mut reload_rx) = mpsc::channel::<()>(4);
    let inner = Arc::new(Inner {
        settings: settings.clone(),
        shares: Mutex::new(BTreeMap::new()),
        running: Mutex::new(Vec::new()),
        shutdown: shutdown.clone(),
    });
    // The socket first: a start that cannot serve changes nothing.
    let listener = server::bind(&settings.socket)?;
    // Watch the policies before the first load: a change made while it runs is not missed.
    let _watch = watch_policies(&settings.policies, reload_tx.clone());
    reload(&inner).await;
    tracing::info!(socket = %settings.socket.display(), policies = %settings.policies.display(), "sharekeepd ready");
    let server = tokio::spawn(server::serve(inner.clone(), listener));
    if let Some(cfg) = settings.alerts.clone() {
        tokio::spawn(alerts::watch(inner.clone(), cfg, shutdown.clone()));
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reload_requests.recv() => {
                tracing::info!("reloading the policies (signal)");
                reload(&inner).await;
            }
            Some(()) = reload_rx.recv() => {
                // Coalesce a burst of file events into one reload.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                while reload_rx.try_recv().is_ok() {}
                tracing::info!("reloading the policies");
                reload(&inner).await;
            }
        }
    }
    tracing::info!("stopping: cancelling running work");
    for c in inner.running.lock().expect("lock").iter() {
        c.cancel();
    }
    server.abort();
    // Let running backups notice the cancellation and clean up (bounded).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !inner.running.lock().expect("lock").is_empty() && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    inner.shares.lock().expect("lock").clear();
    server::unbind(&settings.socket);
    tracing::info!("stopped");
    Ok(())
}

/// Reloads when a policy file is created, changed, moved or removed.
fn watch_policies(
    dir: &std::path::Path,
    tx: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            let relevant = ev
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|x| x == "toml"));
            if relevant && !matches!(ev.kind, notify::EventKind::Access(_)) {
                let _ = tx.try_send(());
            }
        }
    })
    .ok()?;
    match w.watch(dir, notify::RecursiveMode::NonRecursive) {
        Ok(()) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot watch {}: {e}; reload with SIGHUP or `sharekeepctl reload`",
                dir.display()
            );
            None
        }
    }
}
