//! The service's settings: `/etc/sharekeep/sharekeepd.toml` (every key optional), overridden
//! by command-line flags. Every setting has a working default.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default configuration file.
#[cfg(unix)]
pub const DEFAULT_CONFIG: &str = "/etc/sharekeep/sharekeepd.toml";
/// The default configuration file.
#[cfg(windows)]
pub const DEFAULT_CONFIG: &str = r"C:\ProgramData\sharekeep\sharekeepd.toml";
/// The default state folder.
#[cfg(unix)]
pub const DEFAULT_STATE: &str = "/var/lib/sharekeep";
/// The default state folder.
#[cfg(windows)]
pub const DEFAULT_STATE: &str = r"C:\ProgramData\sharekeep\state";

/// The configuration file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Policies directory.
    pub policies: Option<PathBuf>,
    /// State directory (last runs, reports).
    pub state: Option<PathBuf>,
    /// Control socket.
    pub socket: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace).
    pub log_level: Option<String>,
    /// Seconds between full reconciles of every share's rights.
    pub reconcile_every_secs: Option<u64>,
    /// Days between prunes of a share's repository (after its retention).
    pub prune_every_days: Option<u64>,
    /// Maximum simultaneous connections on the socket.
    pub max_connections: Option<usize>,
    /// Connections one non-root user may hold at once.
    pub max_connections_per_user: Option<usize>,
    /// Folders watched per share at most.
    pub max_watches: Option<usize>,
    /// Milliseconds between the progress lines of a long request (default 250).
    pub progress_interval_ms: Option<u64>,
    /// Write the Samba include for the exported shares and reload smbd when it changes (on
    /// Windows: keep this machine's SMB shares, NetShareAdd, instead).
    pub samba_manage: Option<bool>,
    /// Where the include goes (default /etc/samba/sharekeep.conf; smb.conf must include it).
    pub samba_include: Option<PathBuf>,
    /// The smb.conf of the smbd to reload (default: Samba's own).
    pub samba_conf: Option<PathBuf>,
    /// Where problems are sent: a command and/or email.
    pub alerts: Option<AlertsConfig>,
    /// A file of `NAME=VALUE` lines with the credentials of remote stores (`copy_to`):
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, SHAREKEEP_SSH_IDENTITY; private to root.
    pub remote_credentials: Option<PathBuf>,
    /// How the guard watches a share: `auto` (fanotify, which tells who writes; inotify,
    /// which cannot, where fanotify is refused) or `inotify`.
    pub guard_watch: Option<GuardWatch>,
}

/// `guard_watch`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GuardWatch {
    /// fanotify, else inotify.
    #[default]
    Auto,
    /// inotify only: changes are not attributed, a limit reached locks everyone.
    Inotify,
}

/// `[alerts]`: how admins learn about a failed backup or drill, a broken policy, a backup too
/// old, without reading logs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Run with `sh -c`, the event as JSON on standard input (one run per event).
    pub command: Option<String>,
    /// Email through SMTP.
    pub email: Option<EmailConfig>,
    /// Seconds between two looks at the shares' state (default 60).
    pub check_every_secs: Option<u64>,
    /// Hours before a problem that lasts is sent again (default 24).
    pub repeat_hours: Option<u64>,
}

/// `[alerts.email]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server.
    pub host: String,
    /// Its port (default 25, or 587 with STARTTLS).
    pub port: Option<u16>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Upgrade the connection with STARTTLS (required when set).
    #[serde(default)]
    pub starttls: bool,
    /// A root-only file (mode 0600) holding `user` and `password` on two lines.
    pub credentials: Option<PathBuf>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Policies directory.
    pub policies: PathBuf,
    /// State directory.
    pub state: PathBuf,
    /// Control socket.
    pub socket: PathBuf,
    /// Log level.
    pub log_level: String,
    /// Full reconcile interval.
    pub reconcile_every: Duration,
    /// Prune interval.
    pub prune_every: Duration,
    /// Connection cap.
    pub max_connections: usize,
    /// Connections one non-root user may hold at once (root has slots kept for it).
    pub max_connections_per_user: usize,
    /// Folders watched per share at most (beyond: periodic reconciles every 5 minutes).
    pub max_watches: usize,
    /// Between the progress lines of a long request.
    pub progress_every: Duration,
    /// Samba management: the include file to keep, and the smb.conf of the smbd to reload.
    pub samba: Option<(PathBuf, Option<PathBuf>)>,
    /// Alerts, when configured.
    pub alerts: Option<AlertsConfig>,
    /// The credentials file for remote stores (else the service's environment).
    pub remote_credentials: Option<PathBuf>,
    /// How the guard watches.
    pub guard_watch: GuardWatch,
}

impl Settings {
    /// What opening the shares' repositories takes: the credentials file, the cache folder
    /// (`<state>/cache`, root's).
    pub fn plan_env(&self) -> sharekeep::PlanEnv {
        sharekeep::PlanEnv {
            credentials: self.remote_credentials.clone(),
            cache: Some(self.state.join("cache")),
        }
    }

    /// Reads the configuration file (`None`: the default one, which may be absent).
    pub fn load(file: Option<&Path>) -> Result<RawConfig, String> {
        let (path, required) = match file {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(RawConfig::default())
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Defaults, then the file, then the flags (given as a `RawConfig`).
    pub fn resolve(file: RawConfig, flags: RawConfig) -> Settings {
        Settings {
            policies: flags
                .policies
                .or(file.policies)
                .unwrap_or_else(|| sharekeep_policies::DEFAULT_POLICY_DIR.into()),
            state: flags
                .state
                .or(file.state)
                .unwrap_or_else(|| DEFAULT_STATE.into()),
            socket: flags
                .socket
                .or(file.socket)
                .unwrap_or_else(|| sharekeep::protocol::DEFAULT_SOCKET.into()),
            log_level: flags
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            reconcile_every: Duration::from_secs(
                flags
                    .reconcile_every_secs
                    .or(file.reconcile_every_secs)
                    .unwrap_or(3600)
                    .max(1),
            ),
            prune_every: Duration::from_secs(
                flags
                    .prune_every_days
                    .or(file.prune_every_days)
                    .unwrap_or(7)
                    * 86400,
            ),
            max_connections: flags
                .max_connections
                .or(file.max_connections)
                .unwrap_or(32)
                .max(2),
            max_connections_per_user: flags
                .max_connections_per_user
                .or(file.max_connections_per_user)
                .unwrap_or(4)
                .max(1),
            max_watches: flags
                .max_watches
                .or(file.max_watches)
                .unwrap_or(65_536)
                .max(1),
            progress_every: Duration::from_millis(
                flags
                    .progress_interval_ms
                    .or(file.progress_interval_ms)
                    .unwrap_or(250)
                    .max(10),
            ),
            alerts: flags.alerts.or(file.alerts),
            remote_credentials: flags.remote_credentials.or(file.remote_credentials),
            guard_watch: flags.guard_watch.or(file.guard_watch).unwrap_or_default(),
            samba: flags
                .samba_manage
                .or(file.samba_manage)
                .unwrap_or(false)
                .then(|| {
                    (
                        flags
                            .samba_include
                            .or(file.samba_include)
                            .unwrap_or_else(|| "/etc/samba/sharekeep.conf".into()),
                        flags.samba_conf.or(file.samba_conf),
                    )
                }),
        }
    }
}
