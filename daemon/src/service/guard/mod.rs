//! The share that defends itself (`[guard]` in its policy): mass changes noticed as they
//! happen, attributed to the member who makes them, and write taken away from them within a
//! moment.
//!
//! ```text
//! thread guard-<share>:  fanotify on the share's filesystem (fanotify.rs)
//!   each change inside the share, by a process other than root's and ours:
//!     written -> its first and last 4 KiB sampled by handle (sample.rs)
//!     -> the detector (detect.rs): per user, a sliding minute against the [guard] limits
//!   a limit reached -> Trigger to the task below; that user's later changes follow it
//! task:
//!   Trigger -> incident recorded (<state>/guard/<share>.json, its changes in .jsonl);
//!              with action = "lock": a lock for the user (everyone when unknown), then the
//!              policies reloaded: the share's policy carries the lockdown (its ACLs name the
//!              user read-only, the Samba include lists them in `read list`), and a full
//!              reconcile applies it at once
//!   status shows the lock; the alert `share_locked` fires; `guard release` lifts it
//! ```

pub(crate) mod detect;
#[cfg(unix)]
mod fanotify;
pub(crate) mod rollback;
mod sample;
pub(crate) mod state;

use super::config::GuardWatch;
use super::Inner;
use detect::{Change, Detector, Kind, Trigger};
#[cfg(unix)]
use fanotify::{Fanotify, RawEvent};
use sharekeep::protocol::{GuardLock, Incident};
use sharekeep_policies::{GuardAction, Policy};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the reader thread tells the task.
enum Note {
    /// A limit reached.
    Trigger(Trigger),
    /// More changes by a triggered user (for their incident's record).
    More(Option<u32>, Vec<Change>),
    /// How the share is watched.
    Watching(String),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Whether a regular file's first and last 4 KiB look encrypted for its name's extension.
fn judge(file: std::fs::File, name: &str) -> bool {
    use sharekeep::sys::read_exact_at;
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let size = meta.len();
    let mut head = vec![0u8; sample::SAMPLE.min(size as usize)];
    if read_exact_at(&file, &mut head, 0).is_err() {
        return false;
    }
    let tail_len = sample::SAMPLE.min(size as usize);
    let mut tail = vec![0u8; tail_len];
    if read_exact_at(&file, &mut tail, size - tail_len as u64).is_err() {
        return false;
    }
    sample::looks_encrypted(&sample::extension(name), &head, &tail)
}

#[cfg(unix)]
const READ_FLAGS: i32 = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

/// Reads a written file's ends by its handle (never by name: it may be renamed already).
#[cfg(unix)]
fn sample(fan: &Fanotify, ev: &RawEvent, name: &str) -> bool {
    let Some(h) = &ev.file else { return false };
    // Its type first, through a descriptor that opens nothing (a device's open could act);
    // a handle names one inode, whose type never changes: the second open is of the same
    // regular file.
    let regular = fan
        .open(h, libc::O_PATH | libc::O_NOFOLLOW)
        .ok()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata().ok())
        .is_some_and(|m| m.is_file());
    if !regular {
        return false;
    }
    match fan.open(h, READ_FLAGS) {
        Ok(fd) => judge(std::fs::File::from(fd), name),
        Err(_) => false,
    }
}

/// Reads a written file's ends by its path below the share root (inotify and
/// ReadDirectoryChangesW name no inode): every folder entered from the root by descriptor or
/// handle without following a link, the file checked regular and read through that very
/// handle.
fn sample_at(root: &Path, rel: &str) -> bool {
    let name = rel.rsplit_once('/').map_or(rel, |(_, n)| n);
    match sharekeep::sys::open_regular_beneath(root, rel) {
        Ok(f) => judge(f, name),
        Err(_) => false,
    }
}

#[cfg(unix)]
fn join(dir: &Path, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if dir.as_os_str().is_empty() {
        name.into_owned()
    } else {
        format!("{}/{name}", dir.to_string_lossy())
    }
}

/// The changes one event stands for (none when outside the share, or by root or us).
#[cfg(unix)]
fn changes(
    fan: &mut Fanotify,
    owners: &mut fanotify::Owners,
    root: &Path,
    me: i32,
    ev: &RawEvent,
) -> Vec<Change> {
    let mut out = Vec::new();
    if ev.pid == me {
        return out;
    }
    if ev.is(libc::FAN_ONDIR) {
        if ev.is(libc::FAN_RENAME) {
            // Paths below the folder changed.
            fan.forget_paths();
        }
        return out;
    }
    let Some((dir, name)) = &ev.dir else {
        return out;
    };
    let Some(rel_dir) = fan.dir_path(dir, root) else {
        tracing::trace!(?dir, "guard: outside");
        return out;
    };
    let uid = owners.uid(ev.pid);
    if uid == Some(0) {
        return out;
    }
    let path = join(&rel_dir, name);
    let at_ms = now_ms();
    let mut push = |kind| {
        out.push(Change {
            at_ms,
            uid,
            path: path.clone(),
            kind,
        })
    };
    if ev.is(libc::FAN_CREATE) {
        push(Kind::Created);
    }
    if ev.is(libc::FAN_RENAME) {
        let from = ev
            .old
            .as_ref()
            .and_then(|(d, n)| fan.dir_path(d, root).map(|p| join(&p, n)));
        match from {
            Some(from) => push(Kind::Renamed { from }),
            // Moved in from outside the share: new here.
            None => push(Kind::Created),
        }
    }
    if ev.is(libc::FAN_CLOSE_WRITE) {
        let suspicious = sample(fan, ev, &String::from_utf8_lossy(name));
        push(Kind::Written { suspicious });
    }
    if ev.is(libc::FAN_DELETE) {
        push(Kind::Deleted);
    }
    out
}

/// The reader thread: fanotify -> detector -> the task, until `stop`.
#[allow(clippy::too_many_arguments)]
fn watch(
    root: PathBuf,
    guard: sharekeep_policies::Guard,
    already: Vec<Option<u32>>,
    tx: mpsc::UnboundedSender<Note>,
    stop: Arc<AtomicBool>,
    how: GuardWatch,
    own: Arc<OwnWrites>,
    releases: Releases,
) {
    #[cfg(windows)]
    {
        let _ = how;
        watch_changes(root, guard, already, tx, stop, own, releases)
    }
    #[cfg(unix)]
    {
        let fanotify = match how {
            GuardWatch::Auto => Fanotify::new(&root),
            GuardWatch::Inotify => Err(std::io::Error::other("guard_watch = \"inotify\"")),
        };
        match fanotify {
            Ok(fan) => watch_fanotify(fan, root, guard, already, tx, stop, releases),
            Err(e) => {
                tracing::warn!(
                    "guard: fanotify refused ({e}): inotify instead, which cannot tell who writes"
                );
                watch_changes(root, guard, already, tx, stop, own, releases)
            }
        }
    }
}

/// The reader thread on fanotify: every change attributed to its process's user.
#[cfg(unix)]
fn watch_fanotify(
    mut fan: Fanotify,
    root: PathBuf,
    guard: sharekeep_policies::Guard,
    already: Vec<Option<u32>>,
    tx: mpsc::UnboundedSender<Note>,
    stop: Arc<AtomicBool>,
    releases: Releases,
) {
    let _ = tx.send(Note::Watching("fanotify".into()));
    let mut judge = Judge::new(guard, already, tx, releases);
    let me = std::process::id() as i32;
    let mut owners = fanotify::Owners::default();
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        judge.take_releases();
        let events = match fan.read(&mut buf, 200) {
            Ok(e) => e,
            Err(e) => {
                let _ = judge.tx.send(Note::Watching(format!("stopped: {e}")));
                return;
            }
        };
        for ev in &events {
            tracing::trace!(mask = ev.mask, pid = ev.pid, "guard: event");
            for c in changes(&mut fan, &mut owners, &root, me, ev) {
                tracing::trace!(?c, "guard: change");
                judge.observe(c);
            }
        }
        judge.send_more();
    }
}

/// The detector as both readers (fanotify, inotify) drive it: users released since the last
/// look judged again, each change observed, a trigger sent once, and the later changes of a
/// user who triggered collected for their incident's record.
struct Judge {
    detector: Detector,
    /// Users whose changes go on being recorded for their incident.
    triggered: HashSet<Option<u32>>,
    more: HashMap<Option<u32>, Vec<Change>>,
    tx: mpsc::UnboundedSender<Note>,
    releases: Releases,
}

impl Judge {
    fn new(
        guard: sharekeep_policies::Guard,
        already: Vec<Option<u32>>,
        tx: mpsc::UnboundedSender<Note>,
        releases: Releases,
    ) -> Judge {
        let mut detector = Detector::new(guard);
        for uid in &already {
            detector.set_triggered(*uid);
        }
        Judge {
            detector,
            triggered: already.into_iter().collect(),
            more: HashMap::new(),
            tx,
            releases,
        }
    }

    /// Users given write back since the last look are judged again from an empty window.
    fn take_releases(&mut self) {
        for uid in std::mem::take(&mut *self.releases.lock().expect("lock")) {
            self.detector.release(uid);
            self.triggered.remove(&uid);
        }
    }

    fn observe(&mut self, c: Change) {
        if self.triggered.contains(&c.uid) {
            self.more.entry(c.uid).or_default().push(c.clone());
        }
        if let Some(t) = self.detector.observe(c) {
            self.triggered.insert(t.uid);
            let _ = self.tx.send(Note::Trigger(t));
        }
    }

    /// Sends the changes collected for triggered users since the last call.
    fn send_more(&mut self) {
        for (uid, list) in self.more.drain() {
            let _ = self.tx.send(Note::More(uid, list));
        }
    }
}

/// Users given write back since the reader last looked (see [`Watch::released`]).
type Releases = Arc<Mutex<Vec<Option<u32>>>>;

/// The reader thread where fanotify is refused, and on Windows: the enforcement's watcher
/// (inotify watches of every folder; ReadDirectoryChangesW on Windows), reporting changes
/// too, which cannot tell who changed what. Every change counts under an unknown writer, so a
/// limit reached makes the whole share read-only; the service's own writes (restores,
/// rollbacks) are not counted.
fn watch_changes(
    root: PathBuf,
    guard: sharekeep_policies::Guard,
    already: Vec<Option<u32>>,
    tx: mpsc::UnboundedSender<Note>,
    stop: Arc<AtomicBool>,
    own: Arc<OwnWrites>,
    releases: Releases,
) {
    use crate::service::watches::{self, FsChange, Signal};
    let w = match watches::Watches::new(&root, usize::MAX, "guard", Default::default()) {
        Ok(w) => w.for_guard(),
        Err(e) => {
            let _ = tx.send(Note::Watching(format!(
                "not watched: neither fanotify nor {} ({e})",
                watches::HOW
            )));
            return;
        }
    };
    let _ = tx.send(Note::Watching(format!(
        "{}: changes are not attributed; a limit reached makes the whole share read-only",
        if cfg!(windows) {
            watches::HOW
        } else {
            "inotify (fanotify refused)"
        }
    )));
    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel::<Signal>();
    let stop2 = stop.clone();
    let reader = std::thread::Builder::new()
        .name("guard-inotify".into())
        .spawn(move || watches::run(w, sig_tx, stop2));
    if reader.is_err() {
        return;
    }
    let mut judge = Judge::new(guard, already, tx, releases);
    while let Some(signal) = sig_rx.blocking_recv() {
        let Signal::Changes(list) = signal else {
            continue;
        };
        judge.take_releases();
        let at_ms = now_ms();
        if own.quiet(at_ms) {
            continue;
        }
        for fc in list {
            let (path, kind) = match fc {
                FsChange::Created(p) => (p, Kind::Created),
                FsChange::Deleted(p) => (p, Kind::Deleted),
                FsChange::Renamed { from, to } => (to, Kind::Renamed { from }),
                FsChange::Written(p) => {
                    let suspicious = sample_at(&root, &p);
                    (p, Kind::Written { suspicious })
                }
            };
            judge.observe(Change {
                at_ms,
                uid: None,
                path,
                kind,
            });
        }
        judge.send_more();
    }
}

/// The service's own writes into a share (restores, rollbacks), which a guard watching with
/// inotify could not tell from a member's: while one runs, and a moment after, its changes are
/// not counted. (fanotify tells them apart by process: it needs none of this.)
#[derive(Debug, Default)]
pub(crate) struct OwnWrites {
    running: std::sync::atomic::AtomicUsize,
    until_ms: std::sync::atomic::AtomicU64,
}

/// Held while the service writes into a share.
pub(crate) struct Writing(Arc<OwnWrites>);

impl OwnWrites {
    /// The service starts writing into the share.
    pub(crate) fn begin(self: &Arc<Self>) -> Writing {
        self.running.fetch_add(1, Ordering::SeqCst);
        Writing(self.clone())
    }

    fn quiet(&self, now_ms: u64) -> bool {
        self.running.load(Ordering::SeqCst) > 0 || now_ms <= self.until_ms.load(Ordering::SeqCst)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        // Events reach the reader a moment after the writes.
        self.0
            .until_ms
            .fetch_max(now_ms() + 2_000, Ordering::SeqCst);
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A share's reader thread and what must outlive the share's tasks: a lock reloads the
/// policy, which restarts them, and the watch must go on through it (the attacker's changes
/// until the lock lands are part of the incident, and a rollback undoes them).
pub(crate) struct Watch {
    /// What the thread watches with: a different root or `[guard]` needs a new thread.
    key: (PathBuf, sharekeep_policies::Guard),
    notes: tokio::sync::Mutex<mpsc::UnboundedReceiver<Note>>,
    /// The incident each triggered user's later changes go to.
    open: Mutex<HashMap<Option<u32>, String>>,
    /// Users given write back, for the reader to judge again.
    releases: Releases,
    /// Stops the thread when the last holder lets go (the share removed, its guard changed).
    _stop: StopOnDrop,
}

impl Watch {
    /// `uids` were given write back: their changes are judged again (and no longer recorded
    /// in their incident).
    pub(crate) fn released(&self, uids: &[Option<u32>]) {
        let mut open = self.open.lock().expect("lock");
        for uid in uids {
            open.remove(uid);
        }
        self.releases.lock().expect("lock").extend_from_slice(uids);
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("root", &self.key.0).finish()
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Starts the reader thread of `policy`'s share.
fn start_watch(
    policy: &Policy,
    g: sharekeep_policies::Guard,
    st: &state::GuardState,
    watching: &Arc<Mutex<String>>,
    how: GuardWatch,
    own: Arc<OwnWrites>,
) -> Option<Watch> {
    let (tx, rx) = mpsc::unbounded_channel::<Note>();
    let stop = Arc::new(AtomicBool::new(false));
    // After a restart of the service: the locked users' changes still go to their incident.
    let already: Vec<Option<u32>> = st.locks.iter().map(|l| l.uid).collect();
    let open = st
        .locks
        .iter()
        .map(|l| (l.uid, l.incident.clone()))
        .collect();
    let releases: Releases = Default::default();
    let (root, stop2, g2, r2) = (
        policy.path.clone(),
        stop.clone(),
        g.clone(),
        releases.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name(format!("guard-{}", policy.name))
        .spawn(move || watch(root, g2, already, tx, stop2, how, own, r2));
    if let Err(e) = spawned {
        *watching.lock().expect("lock") = format!("not watched: {e}");
        return None;
    }
    Some(Watch {
        key: (policy.path.clone(), g),
        notes: tokio::sync::Mutex::new(rx),
        open: Mutex::new(open),
        releases,
        _stop: StopOnDrop(stop),
    })
}

/// The guard task of one share (started when its policy has `[guard]`): the share's watch
/// (kept in its counters across restarts of its tasks) read, and answered.
pub(crate) async fn guard(
    inner: Arc<Inner>,
    policy: Arc<Policy>,
    counters: Arc<Mutex<super::Counters>>,
    stop: CancellationToken,
) {
    let Some(g) = policy.guard.clone() else {
        return;
    };
    let state_dir = inner.settings.state.clone();
    let st = {
        let (s, n) = (state_dir.clone(), policy.name.clone());
        tokio::task::spawn_blocking(move || state::load(&s, &n))
            .await
            .unwrap_or_default()
    };
    let watching = counters.lock().expect("lock").guard.clone();
    let key = (policy.path.clone(), g.clone());
    let existing = counters
        .lock()
        .expect("lock")
        .guard_watch
        .clone()
        .filter(|w| w.key == key);
    let watch = match existing {
        Some(w) => w,
        None => {
            let own = counters.lock().expect("lock").own_writes.clone();
            let how = inner.settings.guard_watch;
            let Some(w) = start_watch(&policy, g, &st, &watching, how, own) else {
                return;
            };
            let w = Arc::new(w);
            counters.lock().expect("lock").guard_watch = Some(w.clone());
            w
        }
    };
    loop {
        // The receiver stays in the watch when this task is stopped: notes not yet read
        // are read by the next one.
        let note = {
            let mut notes = watch.notes.lock().await;
            tokio::select! {
                _ = stop.cancelled() => return,
                n = notes.recv() => match n {
                    Some(n) => n,
                    None => return,
                },
            }
        };
        match note {
            Note::Watching(how) => {
                if how != "fanotify" {
                    tracing::error!(share = %policy.name, "guard: {how}");
                }
                *watching.lock().expect("lock") = how;
            }
            Note::Trigger(t) => {
                let (inner2, p) = (inner.clone(), policy.clone());
                let (uid, first_ms) = (t.uid, t.first_ms);
                match tokio::task::spawn_blocking(move || respond(&inner2, &p, t)).await {
                    Ok(Ok((id, locked))) => {
                        watch.open.lock().expect("lock").insert(uid, id.clone());
                        // First the lock: the policy reloaded with the lockdown (this task
                        // among the share's is restarted by it); then the last good snapshot
                        // pinned, and the damage backed up apart.
                        let (inner, p) = (inner.clone(), policy.clone());
                        tokio::spawn(async move {
                            if locked {
                                super::reload(&inner).await;
                            }
                            if p.backup.is_some() {
                                let (i2, p2) = (inner.clone(), p.clone());
                                let _ = tokio::task::spawn_blocking(move || {
                                    record_pin(&i2, &p2, &id, first_ms)
                                })
                                .await;
                                incident_backup(&inner, &p.name);
                            }
                        });
                    }
                    Ok(Err(e)) => {
                        tracing::error!(share = %policy.name, "guard: cannot record the incident: {e}")
                    }
                    Err(e) => tracing::error!(share = %policy.name, "guard: {e}"),
                }
            }
            Note::More(uid, list) => {
                let Some(id) = watch.open.lock().expect("lock").get(&uid).cloned() else {
                    continue;
                };
                let (s, n) = (state_dir.clone(), policy.name.clone());
                let _ = tokio::task::spawn_blocking(move || record_more(&s, &n, &id, &list)).await;
            }
        }
    }
}

/// Asks the share's scheduler for a backup now, tagged `incident`: the damage is recorded
/// apart from the pinned snapshot, so nothing is lost either way.
fn incident_backup(inner: &Inner, share: &str) {
    let shares = inner.shares.lock().expect("lock");
    if let Some(s) = shares.get(share) {
        s.counters
            .lock()
            .expect("lock")
            .next_tags
            .push(sharekeep::INCIDENT_TAG.into());
        s.trigger.notify_one();
    }
}

/// Tags the newest snapshot of the share older than `before_ms` (the attack's first change)
/// `guard`: retention keeps it until an admin removes the tag. Its id, if there is one.
fn pin(inner: &Inner, policy: &Policy, before_ms: u64) -> Result<Option<String>, String> {
    let Some(plan) = &policy.backup else {
        return Ok(None);
    };
    let e = |e: sharekeep::Error| e.to_string();
    let Some(repo) = sharekeep::open_plan_repository_if_any(
        plan,
        sharekeep::IndexScope::All,
        &inner.settings.plan_env(),
    )
    .map_err(e)?
    else {
        return Ok(None);
    };
    let before = chrono::DateTime::from_timestamp_millis(before_ms as i64).unwrap_or_default();
    let good = repo
        .snapshots()
        .map_err(e)?
        .into_iter()
        .filter(|s| {
            Path::new(s.root()) == policy.path
                && !s.has_tag(sharekeep::PRE_RESTORE_TAG)
                && !s.has_tag(sharekeep::INCIDENT_TAG)
                && s.time < before
        })
        .max_by_key(|s| s.time);
    match good {
        Some(s) => {
            let tagged = sharekeep::add_tag(&repo, &s, sharekeep::GUARD_TAG).map_err(e)?;
            Ok(Some(tagged.id.to_hex()))
        }
        None => Ok(None),
    }
}

/// Pins the last good snapshot and records it in the incident.
fn record_pin(inner: &Inner, policy: &Policy, id: &str, first_ms: u64) {
    match pin(inner, policy, first_ms) {
        Ok(Some(snap)) => {
            tracing::warn!(share = %policy.name, incident = %id, "guard: snapshot {} pinned (tag guard)", &snap[..8]);
            let state_dir = &inner.settings.state;
            let mut st = state::load(state_dir, &policy.name);
            if let Some(i) = st.incidents.iter_mut().find(|i| i.id == id) {
                i.pinned = Some(snap);
            }
            if let Err(e) = state::save(state_dir, &policy.name, &st) {
                tracing::error!(share = %policy.name, "guard: {e}");
            }
        }
        Ok(None) => {
            tracing::warn!(share = %policy.name, incident = %id, "guard: no snapshot before the attack to pin")
        }
        Err(e) => {
            tracing::error!(share = %policy.name, incident = %id, "guard: cannot pin the last good snapshot: {e}")
        }
    }
}

/// Adds changes to an open incident's record (its count is the record's length:
/// [`state::load_counted`]).
fn record_more(state_dir: &Path, share: &str, id: &str, list: &[Change]) {
    if let Err(e) = state::append_changes(state_dir, share, id, list) {
        tracing::error!(share, "guard: cannot record changes of incident {id}: {e}");
    }
}

fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.with_timezone(&chrono::Local).to_rfc3339())
        .unwrap_or_default()
}

/// Records the incident and, with `action = "lock"`, the lock; (incident id, locked).
fn respond(inner: &Inner, policy: &Policy, t: Trigger) -> std::io::Result<(String, bool)> {
    let state_dir = &inner.settings.state;
    let now = chrono::Local::now();
    let user = t.uid.and_then(sharekeep_policies::user_of_id);
    let name = user.as_ref().map(|u| u.name.clone());
    let who = match (&name, t.uid) {
        (Some(n), _) => n.clone(),
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => "an unknown process".into(),
    };
    let id = format!(
        "{}-{}",
        now.format("%Y%m%d-%H%M%S"),
        name.clone()
            .or(t.uid.map(|u| u.to_string()))
            .unwrap_or_else(|| "unknown".into())
    );
    let locked = policy.guard.as_ref().map(|g| g.action) == Some(GuardAction::Lock);
    let mut examples: Vec<String> = Vec::new();
    for c in t.changes.iter().rev() {
        if !examples.contains(&c.path) {
            examples.push(c.path.clone());
        }
        if examples.len() == 5 {
            break;
        }
    }
    let incident = Incident {
        id: id.clone(),
        user: name.clone(),
        uid: t.uid,
        reason: t.reason.clone(),
        started: rfc3339_ms(t.first_ms),
        detected: now.to_rfc3339(),
        locked,
        changes: t.changes.len() as u64,
        examples,
        released: None,
        pinned: None,
        rolled_back: None,
    };
    state::append_changes(state_dir, &policy.name, &id, &t.changes)?;
    let mut st = state::load(state_dir, &policy.name);
    st.incidents.push(incident);
    if locked {
        st.locks.push(GuardLock {
            // A uid that does not resolve cannot get a named ACL entry: everyone is locked.
            user: name.clone(),
            uid: if name.is_some() { t.uid } else { None },
            since: now.to_rfc3339(),
            incident: id.clone(),
        });
    }
    state::save(state_dir, &policy.name, &st)?;
    if locked {
        tracing::error!(
            share = %policy.name,
            incident = %id,
            "guard: {} by {who}: write taken away from {}",
            t.reason,
            if name.is_some() { who.as_str() } else { "everyone" }
        );
    } else {
        tracing::error!(share = %policy.name, incident = %id, "guard: {} by {who} (action = alert: nothing locked)", t.reason);
    }
    Ok((id, locked))
}

/// Lifts the share's locks (all, or `user`'s: a name or a uid); what was lifted.
pub(crate) fn release(
    state_dir: &Path,
    share: &str,
    user: Option<&str>,
) -> Result<Vec<GuardLock>, String> {
    let mut st = state::load(state_dir, share);
    let (lifted, kept): (Vec<GuardLock>, Vec<GuardLock>) =
        st.locks.drain(..).partition(|l| match user {
            None => true,
            Some(u) => {
                l.user.as_deref() == Some(u) || l.uid.map(|n| n.to_string()).as_deref() == Some(u)
            }
        });
    if lifted.is_empty() {
        return Err(match user {
            Some(u) => format!("no lock on share `{share}` for `{u}`"),
            None => format!("share `{share}` has no lock"),
        });
    }
    st.locks = kept;
    let now = chrono::Local::now().to_rfc3339();
    for l in &lifted {
        if let Some(i) = st.incidents.iter_mut().find(|i| i.id == l.incident) {
            i.released = Some(now.clone());
        }
    }
    state::save(state_dir, share, &st).map_err(|e| e.to_string())?;
    Ok(lifted)
}
