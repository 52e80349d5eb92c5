//! Command-line arguments (clap derive). Parsing only: no behaviour lives here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Where sharekeepd listens: its Unix socket, or its named pipe on Windows.
#[cfg(unix)]
pub const DEFAULT_SOCKET: &str = "/run/sharekeep/ctl.sock";
/// Where sharekeepd listens: its Unix socket, or its named pipe on Windows.
#[cfg(windows)]
pub const DEFAULT_SOCKET: &str = r"\\.\pipe\sharekeepd";

const EXIT_CODES: &str = "\
Exit status:
  0    success
  1    error (nothing, or nothing more, was done; the message says why)
  2    `policy plan`: the folders' rights differ from the policies
  3    finished, with warnings (entries that could not be read or restored are listed)
  130  interrupted (Ctrl-C or SIGTERM); nothing partial was recorded

Snapshots are named by an id prefix (4+ hex digits), `latest`, or `@TIME`: the newest
snapshot at or before a local time, e.g. @2026-11-28T18:00, or @2026-11-28 (end of that day).
Paths inside a snapshot may be given relative to the backed-up folder or as the original
absolute path.";

/// sharekeepctl: back up, browse and restore a service folder's history.
#[derive(Debug, Parser)]
#[command(name = "sharekeepctl", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Repository (offline mode): a folder, s3://BUCKET/PREFIX?endpoint=URL&region=NAME (keys in
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or sftp://USER@HOST:PORT/PATH.
    #[arg(
        long,
        short = 'r',
        global = true,
        env = "SHAREKEEP_REPO",
        value_name = "REPO"
    )]
    pub repo: Option<String>,
    /// The key file of an encrypted repository (or a passphrase in SHAREKEEP_PASSWORD).
    #[arg(long, global = true, env = "SHAREKEEP_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// sharekeepd's control socket (commands without --repo go there; on Windows its named
    /// pipe).
    #[arg(
        long,
        global = true,
        env = "SHAREKEEP_SOCKET",
        value_name = "PATH",
        default_value = DEFAULT_SOCKET
    )]
    pub socket: PathBuf,
    /// Print only errors and warnings.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// More log output (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty repository at --repo.
    Init {
        /// Encrypt it (required on S3 and SFTP): its first key is --key-file or the passphrase
        /// in SHAREKEEP_PASSWORD.
        #[arg(long)]
        encrypt: bool,
    },
    /// Copy snapshots to another repository (off site: S3, SFTP), sending only what it lacks.
    Copy(CopyArgs),
    /// An encrypted repository's keys: list, add, remove; generate a key file.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The service's shares: policy state, rights fixed, last and next backup (via sharekeepd).
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make sharekeepd reload the policies.
    Reload,
    /// Back up a folder into a new snapshot (only changed files are read).
    Backup(BackupArgs),
    /// List snapshots, oldest first.
    Snapshots(SnapshotsArgs),
    /// List the entries of a snapshot (below PATH).
    Ls(LsArgs),
    /// Show what changed between two snapshots.
    Diff(DiffArgs),
    /// Write a file from a snapshot to standard output.
    Cat(CatArgs),
    /// The distinct versions a file has had, newest first.
    Versions(VersionsArgs),
    /// Restore files from a snapshot, in place or elsewhere; nothing is lost.
    Restore(RestoreArgs),
    /// Remove snapshots the retention rules do not keep (then `--prune` to free space).
    Forget(ForgetArgs),
    /// Free the space of data no snapshot references.
    Prune(PruneArgs),
    /// Verify the repository: structure, and with --read-data every blob.
    Check(CheckArgs),
    /// Restore drill: restore a sample of a snapshot's files into a scratch folder, check them
    /// against the snapshot, remove them (exit 1 when a file does not restore identical)
    Drill(DrillArgs),
    /// The share's guard against mass changes (ransomware): locks and incidents; give write
    /// back (root and the share's admins, via sharekeepd).
    #[command(subcommand)]
    Guard(GuardCommand),
    /// Undo what an incident's user changed, from the snapshot the guard pinned: what they
    /// changed, renamed or deleted brought back, what they made removed, later work by others
    /// left alone; what is replaced or removed is saved first in a pre-restore snapshot (root
    /// and the share's admins, via sharekeepd)
    Rollback(RollbackArgs),
    /// Repair the repository.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Remove stale locks (those of processes that are gone are removed automatically).
    Unlock {
        /// Remove every lock, even of running processes.
        #[arg(long)]
        remove_all: bool,
    },
    /// Browse the snapshots as a read-only folder (FUSE): snapshots/, latest, tags/
    #[cfg(unix)]
    Mount(MountArgs),
    /// The report for the client: rights, Samba exposure, backups, retention, drills (root)
    Report(ReportArgs),
    /// Samba: the smb.conf include for the policies, and a check of the running smbd.
    #[command(subcommand)]
    Samba(SambaCommand),
    /// Windows SMB shares for the policies (NetShareAdd): export, check, remove.
    #[cfg(windows)]
    #[command(subcommand)]
    Share(ShareCommand),
    /// Share policies: check them, plan and apply their rights, explain, matrix.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (sharekeepctl.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    GenerateMan {
        /// Where to write them.
        dir: PathBuf,
    },
}

/// `copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy from (default: --repo).
    #[arg(long, value_name = "REPO")]
    pub from: Option<String>,
    /// The repository to copy to.
    #[arg(long, value_name = "REPO")]
    pub to: String,
    /// The destination's key file when it differs from the source's (or a passphrase in
    /// SHAREKEEP_TO_PASSWORD); the source's key is --key-file / SHAREKEEP_PASSWORD.
    #[arg(long, env = "SHAREKEEP_TO_KEY_FILE", value_name = "FILE")]
    pub to_key_file: Option<PathBuf>,
    /// Create the destination if it does not exist (encrypted with its key).
    #[arg(long)]
    pub init: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// The snapshots to copy (id prefixes, latest, @TIME); all by default.
    pub snapshots: Vec<String>,
}

/// `guard`.
#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Locks in place and incidents (who, when, why, how many files, examples).
    Status {
        /// The share.
        #[arg(long)]
        share: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give write back: the policy's rights apply again (to USER only with --user).
    Release {
        /// The share.
        #[arg(long)]
        share: String,
        /// Only this user's lock (a name or a uid).
        #[arg(long)]
        user: Option<String>,
    },
}

/// `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The share.
    #[arg(long)]
    pub share: String,
    /// The incident (`guard status` lists them).
    #[arg(long)]
    pub incident: String,
    /// Print what would be brought back, removed and left, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `key`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// The repository's keys (passphrases and key files), the one in use marked.
    List,
    /// Add a key: the key file --new-key-file, or the passphrase in SHAREKEEP_NEW_PASSWORD.
    Add {
        /// The new key's file (make one with `key generate`).
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
    /// Remove a key (by name or prefix; not the one in use).
    Remove {
        /// The key's name, as `key list` shows it.
        name: String,
    },
    /// Write a new random key file (mode 0600; never overwrites). No repository needed.
    Generate {
        /// Where to write it.
        file: PathBuf,
    },
}

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The share.
    #[arg(long)]
    pub share: String,
    /// Read the policy, the service's state folder and the repository directly (root)
    /// instead of asking sharekeepd.
    #[arg(long)]
    pub offline: bool,
    /// With --offline: the policies (default: $SHAREKEEP_POLICIES or /etc/sharekeep/policies).
    #[arg(long, value_name = "FILE|DIR")]
    pub policies: Option<PathBuf>,
    /// With --offline: sharekeepd's state folder (its run reports and drills).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/sharekeep")]
    pub state: PathBuf,
    /// First day (YYYY-MM-DD; default: 30 days before --to).
    #[arg(long, value_parser = crate::report::date)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (YYYY-MM-DD; default: today).
    #[arg(long, value_parser = crate::report::date)]
    pub to: Option<chrono::NaiveDate>,
    /// Write the page (self-contained HTML) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print the report's data as JSON.
    #[arg(long)]
    pub json: bool,
    /// Language of the page (default: from LANG).
    #[arg(long, value_parser = ["fr", "en"])]
    pub lang: Option<String>,
}

#[cfg(unix)]
/// `mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// An empty folder to mount on; Ctrl-C (or `umount MOUNTPOINT`) unmounts.
    pub mountpoint: PathBuf,
    /// This share's snapshots, from the repository its policy names (instead of --repo).
    #[arg(long)]
    pub share: Option<String>,
    /// The policies, with --share (default: $SHAREKEEP_POLICIES or /etc/sharekeep/policies).
    #[arg(long, value_name = "FILE|DIR")]
    pub policies: Option<PathBuf>,
}

/// Where the policies are: a file, or a directory of `*.toml` files.
#[derive(Debug, Args)]
pub struct PolicySource {
    /// Policy file or directory (default: $SHAREKEEP_POLICIES or /etc/sharekeep/policies).
    #[arg(value_name = "FILE|DIR")]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Report every problem in the policies at once (exit 1 if any).
    Check(PolicySource),
    /// Show where the folders' rights differ from the policies; change nothing
    /// (exit 0: nothing differs, 2: something does, 1: error).
    Plan {
        #[command(flatten)]
        source: PolicySource,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the folders' rights match the policies (idempotent).
    Apply {
        #[command(flatten)]
        source: PolicySource,
        /// Print what would change; change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A user's effective rights on a path, and why.
    Explain {
        /// [FILE|DIR] PATH: the policies (optional) and the path to explain.
        #[arg(required = true, num_args = 1..=2, value_name = "[FILE|DIR] PATH")]
        args: Vec<PathBuf>,
        /// The user.
        #[arg(long, short = 'u')]
        user: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Users and groups × folders with read/write/none.
    Matrix {
        #[command(flatten)]
        source: PolicySource,
        /// Print as CSV.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The folder to back up (offline mode, with --repo).
    pub dir: Option<PathBuf>,
    /// Back up this share now, through sharekeepd (without --repo).
    #[arg(long, value_name = "NAME", conflicts_with = "dir")]
    pub share: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Leave out names or paths matching GLOB (repeatable): `*.tmp` matches a name anywhere,
    /// `archives/*.img` a path from the folder.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Host name to record.
    #[arg(long)]
    pub host: Option<String>,
    /// Read every file, even those unchanged since the last snapshot.
    #[arg(long)]
    pub force: bool,
    /// Record this local time instead of now (e.g. `2026-11-28 18:30:00`), when importing history.
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// This share's snapshots, through sharekeepd (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// Snapshot (id prefix, latest, @TIME).
    pub snapshot: String,
    /// Path inside the snapshot.
    pub path: Option<String>,
    /// Show type, mode, owner, size and time.
    #[arg(long, short = 'l')]
    pub long: bool,
    /// Print as JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// The older snapshot.
    pub from: String,
    /// The newer snapshot.
    pub to: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// Snapshot (id prefix, latest, @TIME).
    pub snapshot: String,
    /// File inside the snapshot.
    pub path: String,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// File (relative to the backed-up folder, or its original absolute path).
    pub path: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverwriteArg {
    /// Leave existing entries.
    Never,
    /// Replace entries that differ, after saving them in a pre-restore snapshot.
    IfChanged,
    /// Replace every existing entry, after saving it.
    Always,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// Snapshot (id prefix, latest, @TIME).
    pub snapshot: String,
    /// Paths inside the snapshot (default: everything).
    pub paths: Vec<String>,
    /// Restore under DIR instead of the original location.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// What to do with entries that exist.
    #[arg(long, value_enum, default_value_t = OverwriteArg::IfChanged)]
    pub overwrite: OverwriteArg,
    /// Print what would be created, replaced or left; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print the plan or result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// … days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// … ISO weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// … months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// … years.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot newer than DURATION (e.g. 2d, 36h, 1y6m).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable).
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
    /// Legal floor: never remove a snapshot younger than N days, whatever the rules say.
    #[arg(long, value_name = "N")]
    pub keep_min_days: Option<u32>,
    /// Take the rules from a share policy's [backup] keep and keep_min_days.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within", "keep_tags", "keep_min_days"])]
    pub policy: Option<PathBuf>,
    /// Then prune.
    #[arg(long)]
    pub prune: bool,
    /// List every snapshot with keep/remove and the rules that keep it; remove nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Repack packs with more than PERCENT unused (0-100).
    #[arg(long, value_name = "PERCENT", default_value_t = 30.0)]
    pub repack_threshold: f64,
    /// Report what would be freed; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Through sharekeepd, for this share (without --repo).
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// Also read and verify blob data: every pack, or a random PERCENT of them (--read-data=10).
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100", require_equals = true)]
    pub read_data: Option<f64>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Through sharekeepd, for this share's latest snapshot (without --repo); recorded in its
    /// status.
    #[arg(long, value_name = "NAME")]
    pub share: Option<String>,
    /// The snapshot to drill (default: the newest).
    #[arg(default_value = "latest")]
    pub snapshot: String,
    /// Files drawn at random, the largest file joining them (default 50, or the policy's
    /// drill_sample through sharekeepd).
    #[arg(long = "sample", value_name = "N")]
    pub sample_given: Option<usize>,
    /// Seed of the draw (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the sample is restored (then removed); default: $TMPDIR or /tmp.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index from the packs' own headers.
    Index,
}

/// `samba`'s counterpart on a Windows workstation: the shares are this machine's own
/// (`NetShareAdd` / `NetShareSetInfo`, level 502).
#[cfg(windows)]
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Add or update one SMB share per policy with `[samba] export = true`: its folder,
    /// remark and share permissions (Change for those who write somewhere, Read for those who
    /// only read, NTFS doing the rest).
    Export {
        #[command(flatten)]
        source: PolicySource,
        /// Say what would be added or updated; change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Compare this machine's shares with the policies (exit 0: they agree, 2: they differ,
    /// 1: error).
    Check {
        #[command(flatten)]
        source: PolicySource,
    },
    /// Stop sharing NAME (its folder and files stay).
    Remove {
        /// The share's name on the network.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SambaCommand {
    /// Print the smb.conf include: one section per policy with `[samba] export = true`.
    Export {
        #[command(flatten)]
        source: PolicySource,
        /// Write it to FILE (atomically) instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// sharekeepd's state folder (its versions/ holds the Previous Versions mounts).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/sharekeep")]
        state: PathBuf,
    },
    /// Compare the running smbd's configuration (`testparm -s`) with the policies
    /// (exit 0: they agree, 2: they differ, 1: error).
    Check {
        #[command(flatten)]
        source: PolicySource,
        /// smb.conf to read (default: Samba's own).
        #[arg(long, value_name = "FILE")]
        smb_conf: Option<PathBuf>,
        /// sharekeepd's state folder (its versions/ holds the Previous Versions mounts).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/sharekeep")]
        state: PathBuf,
    },
}
