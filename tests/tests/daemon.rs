//! The real `sharekeepd` on temporary folders, state and socket: rights applied to new, nested
//! and moved-in entries within 2 s; on-demand, scheduled and caught-up backups; a broken policy
//! and SIGHUP; SIGTERM during a backup; callers refused; garbage on the socket.

use sharekeep_tests::generate_key;
use sharekeep_tests::users::Accounts;
use sharekeep_tests::{bin, ctl, open_scratch};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Daemon {
    child: Option<Child>,
    pub(crate) socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(dir: &Path) -> Daemon {
        Daemon::start_with(dir, None)
    }

    /// Starts the service with `config` as its sharekeepd.toml, if given.
    pub(crate) fn start_with(dir: &Path, config: Option<&str>) -> Daemon {
        let socket = dir.join("ctl.sock");
        let log = dir.join("sharekeepd.log");
        let mut cmd = Command::new(bin("sharekeepd"));
        if let Some(text) = config {
            let file = dir.join("sharekeepd.toml");
            fs::write(&file, text).unwrap();
            cmd.arg("--config").arg(file);
        }
        let child = cmd
            .arg("--policies")
            .arg(dir.join("policies"))
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--socket")
            .arg(&socket)
            .arg("--log-level")
            .arg("info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sharekeepd");
        let d = Daemon {
            child: Some(child),
            socket,
            log,
        };
        let start = Instant::now();
        while UnixStream::connect(&d.socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sharekeepd did not start:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// The service's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// CPU seconds (user + system) the service has used so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which is in parentheses).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn ctl(&self, args: &[&str]) -> sharekeep_tests::Run {
        let out = Command::new(bin("sharekeepctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_remove("SHAREKEEP_REPO")
            .output()
            .unwrap();
        sharekeep_tests::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            raw: out.stdout,
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Waits for the process to exit; its exit code.
    fn wait(&mut self, limit: Duration) -> i32 {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < limit,
                "sharekeepd did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A share (`share/`) with a policy readable by `@<prefix>team`, and its repository.
fn setup(a: &mut Accounts, schedule: &str) -> (tempfile::TempDir, PathBuf) {
    a.group("team");
    a.user("member", &["team"]);
    a.group("admins");
    a.user("admin", &["admins"]);
    a.user("outsider", &[]);
    let dir = open_scratch();
    let share = dir.path().join("share");
    fs::create_dir_all(share.join("Docs")).unwrap();
    // Closed to everyone but root until sharekeepd's first reconcile opens them.
    fs::set_permissions(&share, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(share.join("Docs"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    fs::write(
        dir.path().join("policies/team.toml"),
        format!(
            "[share]\nname = \"team\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\nadmins = [\"@{}\"]\n\n[access]\nread = [\"@{}\"]\nwrite = [\"root\"]\n\n[backup]\nschedule = \"{schedule}\"\nrepository = {:?}\nkeep = {{ last = 50 }}\n",
            share.display().to_string(),
            a.name("admins"),
            a.name("team"),
            dir.path().join("repo").display().to_string()
        ),
    )
    .unwrap();
    (dir, share)
}

pub(crate) fn eventually(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const YEARLY: &str = "0 0 0 1 1 *";

/// Writes the share `team`'s state as if its last backup succeeded `ago` (`date -d` words),
/// and the service first saw it then.
fn last_success_was(dir: &Path, ago: &str) {
    let out = Command::new("date")
        .args(["-d", ago, "--iso-8601=seconds"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
    fs::create_dir_all(dir.join("state")).unwrap();
    fs::write(
        dir.join("state/team.json"),
        format!("{{\"last_success\": \"{t}\", \"first_seen\": \"{t}\"}}"),
    )
    .unwrap();
}

/// How long a test waits for the service to do something, on a loaded 2-core CI machine:
/// generous, since tests check that it happens; how fast is measured by the benchmarks
/// (bench/enforce.sh), not here.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `script` with `sh -c` as root; panics if it fails.
fn sh_root(script: &str) {
    let st = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(st.success(), "{script}");
}

#[test]
fn new_nested_and_moved_in_entries_get_their_rights_while_the_service_runs() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let s = share.display().to_string();
    let can_read = |p: &str| a.sh_as("member", &format!("cat '{s}/{p}'")).0;
    // The share is closed (0700) until the service's first reconcile.
    assert!(!a.sh_as("member", &format!("ls '{s}/Docs'")).0);
    let _d = Daemon::start(dir.path());
    eventually("the initial reconcile", PATIENCE, || {
        a.sh_as("member", &format!("ls '{s}/Docs'")).0
    });
    // A file made private after its creation: the default ACL the first reconcile set cannot
    // help (chmod 600 empties the ACL mask); only the service's enforcement opens it again.
    sh_root(&format!(
        "echo secret > '{s}/Docs/new.txt' && chmod 600 '{s}/Docs/new.txt'"
    ));
    let t = eventually("a file chmod-ed 600 after creation", PATIENCE, || {
        can_read("Docs/new.txt")
    });
    eprintln!("chmod 600 file readable after {t:?}");
    // A nested folder created with files in it at once, every level made private.
    sh_root(&format!(
        "mkdir -p '{s}/A/B/C' && echo 1 > '{s}/A/B/C/deep.txt' && echo 2 > '{s}/A/top.txt' && \
         chmod 600 '{s}/A/B/C/deep.txt' '{s}/A/top.txt' && chmod 700 '{s}/A/B/C' '{s}/A/B' '{s}/A'"
    ));
    eventually("a nested folder made at once", PATIENCE, || {
        can_read("A/B/C/deep.txt") && can_read("A/top.txt")
    });
    // A file moved in from elsewhere with mode 600.
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, "moved").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&outside, share.join("Docs/moved.txt")).unwrap();
    eventually("a file moved in", PATIENCE, || can_read("Docs/moved.txt"));
    // chmod by someone: fixed again.
    fs::set_permissions(
        share.join("Docs/new.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    eventually("a chmod-ed file", PATIENCE, || can_read("Docs/new.txt"));
    // The outsider still sees nothing.
    assert!(!a.sh_as("outsider", &format!("ls '{s}'")).0);
}

#[test]
fn on_demand_and_scheduled_backups_produce_snapshots() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, "*/2 * * * * *");
    fs::write(share.join("Docs/a.txt"), "a").unwrap();
    let d = Daemon::start(dir.path());
    let run = d.ctl(&["backup", "--share", "team", "--json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let id = run.json()["id"].as_str().unwrap().to_string();
    let repo = dir.path().join("repo");
    assert_eq!(ctl(&repo, &["cat", &id[..8], "Docs/a.txt"]).ok().raw, b"a");
    eventually("scheduled backups", PATIENCE, || {
        ctl(&repo, &["snapshots", "--json"])
            .json()
            .as_array()
            .map_or(0, |a| a.len())
            >= 3
    });
    let status = d.ctl(&["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let st = status.json();
    assert!(
        st[0]["last_backup"].is_string() && st[0]["next_backup"].is_string(),
        "{st}"
    );
    let listed = d.ctl(&["snapshots", "--share", "team"]).stdout;
    assert!(listed.contains(&id[..8]), "{listed}");
    // Each run wrote a report: when, why, what it wrote, how much the repository grew. A
    // report is written once its snapshot is saved, so the third may still be on its way.
    let reports_dir = dir.path().join("state/reports/team");
    // (Only `.json` files: a report being written is a temporary file beside them.)
    let report_files = || -> Vec<std::path::PathBuf> {
        fs::read_dir(&reports_dir).map_or(Vec::new(), |d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
    };
    eventually("three run reports", PATIENCE, || report_files().len() >= 3);
    let mut reports: Vec<serde_json::Value> = report_files()
        .iter()
        .map(|p| serde_json::from_slice(&fs::read(p).unwrap()).unwrap())
        .collect();
    assert!(reports.len() >= 3, "{} reports", reports.len());
    reports.sort_by_key(|r| r["start"].as_str().unwrap_or("").to_string());
    let by_request = reports
        .iter()
        .find(|r| r["snapshot"].as_str() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no report for {id}: {reports:?}"));
    assert_eq!(by_request["share"], "team");
    // A request that lands as a scheduled run starts is merged into it (the schedule fires
    // every 2 s here): either word, never anything else.
    assert!(
        by_request["trigger"] == "request" || by_request["trigger"] == "schedule",
        "{by_request}"
    );
    assert!(by_request["error"].is_null(), "{by_request}");
    assert_eq!(
        by_request["warnings"],
        serde_json::json!([]),
        "{by_request}"
    );
    assert_eq!(by_request["summary"]["files_new"], 1, "{by_request}");
    assert!(
        by_request["repository_growth"].as_u64().unwrap() > 0,
        "{by_request}"
    );
    let (start, end) = (
        chrono::DateTime::parse_from_rfc3339(by_request["start"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(by_request["end"].as_str().unwrap()).unwrap(),
    );
    assert!(
        start <= end && end - start < chrono::TimeDelta::minutes(5),
        "{by_request}"
    );
    assert!(
        reports
            .iter()
            .filter(|r| r["trigger"] == "schedule")
            .count()
            >= 2,
        "scheduled runs reported: {reports:?}"
    );
}

#[test]
fn a_missed_run_is_caught_up_after_restart() {
    let mut a = Accounts::new();
    // Every day at 03:00: the machine was off the last two nights.
    let (dir, share) = setup(&mut a, "0 0 3 * * *");
    fs::write(share.join("Docs/a.txt"), "a").unwrap();
    last_success_was(dir.path(), "2 days ago");
    let d = Daemon::start(dir.path());
    let repo = dir.path().join("repo");
    eventually("the catch-up backup", PATIENCE, || {
        repo.join("config").exists()
            && ctl(&repo, &["snapshots", "--json"])
                .json()
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    assert!(d.log().contains("missed"), "{}", d.log());
}

#[test]
fn broken_policy_and_sighup_keep_the_last_good_policy_enforced() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let d = Daemon::start(dir.path());
    let s = share.display().to_string();
    eventually("the initial reconcile", PATIENCE, || {
        a.sh_as("member", &format!("ls '{s}/Docs'")).0
    });
    let file = dir.path().join("policies/team.toml");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, text.replace("[access]", "[access\n")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("the broken policy noticed", PATIENCE, || {
        d.ctl(&["status", "--json"]).stdout.contains("stale")
    });
    let st = d.ctl(&["status"]);
    assert!(
        st.stdout.contains("team.toml:8:"),
        "the problem is located: {}",
        st.stdout
    );
    // Still running, still enforcing the last good version (a private file is opened).
    sh_root(&format!(
        "echo x > '{s}/Docs/after.txt' && chmod 600 '{s}/Docs/after.txt'"
    ));
    eventually("the last good policy enforced", PATIENCE, || {
        a.sh_as("member", &format!("cat '{s}/Docs/after.txt'")).0
    });
    // Fixed again: back to ok.
    fs::write(&file, &text).unwrap();
    d.ctl(&["reload"]);
    eventually("the fixed policy", PATIENCE, || {
        d.ctl(&["status", "--json"]).json()[0]["policy"] == "ok"
    });
}

#[test]
fn sigterm_during_a_backup_interrupts_it_records_nothing_and_exits_0() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let mut f = fs::File::open("/dev/urandom").unwrap();
    for i in 0..10 {
        let mut v = vec![0u8; 16 << 20];
        std::io::Read::read_exact(&mut f, &mut v).unwrap();
        fs::write(share.join(format!("Docs/big{i}.bin")), v).unwrap();
    }
    // Progress every 20 ms: the first line says the backup is under way.
    let mut d = Daemon::start_with(dir.path(), Some("progress_interval_ms = 20\n"));
    let mut requester = Command::new(bin("sharekeepctl"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["backup", "--share", "team"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(requester.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        assert!(
            err.read_line(&mut l).unwrap() > 0,
            "the requester ended before any progress: {seen}\n{}",
            d.log()
        );
        seen.push_str(&l);
        if l.contains("backup: ") {
            break;
        }
    }
    // The backup is running (a progress line came): stop the service now.
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(d.wait(Duration::from_secs(30)), 0, "{}", d.log());
    std::io::Read::read_to_string(&mut err, &mut seen).unwrap();
    let status = requester.wait().unwrap();
    assert!(
        !status.success(),
        "the requester was told it succeeded: {seen}"
    );
    assert!(
        seen.contains("interrupted; nothing partial was recorded"),
        "the requester is told why: {seen}"
    );
    let repo = dir.path().join("repo");
    let c = ctl(&repo, &["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    let snapshots = ctl(&repo, &["snapshots", "--json"]).ok().json();
    assert_eq!(snapshots, serde_json::json!([]), "nothing partial recorded");
    let tmp: Vec<_> = fs::read_dir(repo.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    assert!(
        d.log().contains("interrupted") || d.log().contains("cancel"),
        "{}",
        d.log()
    );
}

#[test]
fn callers_who_are_not_admins_are_refused_and_admins_are_served() {
    let mut a = Accounts::new();
    let (dir, _share) = setup(&mut a, YEARLY);
    let d = Daemon::start(dir.path());
    let as_user = |who: &str, args: &str| {
        a.sh_as(
            who,
            &format!(
                "{} --socket '{}' {args}",
                bin("sharekeepctl").display(),
                d.socket.display()
            ),
        )
    };
    // An outsider's status shows nothing; anything about the share is refused.
    let (ok, out) = as_user("outsider", "status");
    assert!(ok && !out.contains("team"), "{out}");
    let (ok, out) = as_user("outsider", "backup --share team");
    assert!(!ok && out.contains("not named in share `team`"), "{out}");
    // A member may not run maintenance.
    let (ok, out) = as_user("member", "backup --share team");
    assert!(
        !ok && out.contains("only root and the admins of share `team`"),
        "{out}"
    );
    let (ok, out) = as_user("member", "status");
    assert!(ok && out.contains("share team"), "{out}");
    let (ok, out) = as_user("admin", "status");
    assert!(ok && out.contains("share team"), "{out}");
}

#[test]
fn garbage_and_oversized_lines_get_errors_and_the_service_keeps_serving() {
    let mut a = Accounts::new();
    let (dir, _share) = setup(&mut a, YEARLY);
    let d = Daemon::start(dir.path());
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut answer = || {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        serde_json::from_str::<serde_json::Value>(&l).unwrap()
    };
    s.write_all(b"this is not json\n").unwrap();
    assert_eq!(answer()["kind"], "bad_request");
    s.write_all(&vec![b'x'; 200_000]).unwrap();
    s.write_all(b"\n").unwrap();
    let a1 = answer();
    assert_eq!(a1["kind"], "bad_request", "{a1}");
    assert!(
        a1["message"].as_str().unwrap().contains("longer than"),
        "{a1}"
    );
    s.write_all(b"{\"op\":\"status\"}\n").unwrap();
    assert!(
        answer()["message"].as_str().unwrap().contains("hello"),
        "hello comes first"
    );
    s.write_all(
        format!(
            "{{\"op\":\"hello\",\"version\":{}}}\n",
            sharekeep::protocol::PROTOCOL_VERSION
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(answer()["type"], "hello");
    s.write_all(b"{\"op\":\"status\"}\n").unwrap();
    assert_eq!(answer()["type"], "status");
    // Others are served meanwhile.
    assert_eq!(d.ctl(&["status"]).code, 0);
    let mut v2 = UnixStream::connect(&d.socket).unwrap();
    v2.write_all(b"{\"op\":\"hello\",\"version\":99}\n")
        .unwrap();
    let mut l = String::new();
    BufReader::new(v2).read_line(&mut l).unwrap();
    let refused: serde_json::Value = serde_json::from_str(&l).unwrap();
    assert_eq!(refused["type"], "error", "{l}");
    assert_eq!(refused["kind"], "version", "{l}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("protocol version 99 is not supported"),
        "{l}"
    );
}

#[test]
fn versions_diff_restore_forget_and_check_through_the_service() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let d = Daemon::start(dir.path());
    let file = share.join("Docs/devis.docx");
    fs::write(&file, "version 1").unwrap();
    let first = d.ctl(&["backup", "--share", "team", "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(&file, "version 2, longer").unwrap();
    let second = d.ctl(&["backup", "--share", "team", "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let repo = dir.path().join("repo");
    // versions: the same table as offline.
    let remote = d.ctl(&["versions", "--share", "team", "Docs/devis.docx"]);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let offline = ctl(&repo, &["versions", "Docs/devis.docx"]).ok();
    assert_eq!(
        remote.stdout, offline.stdout,
        "same output through the service"
    );
    // diff
    let diff = d.ctl(&["diff", "--share", "team", &first[..8], &second[..8]]);
    assert!(
        diff.stdout.contains("M    Docs/devis.docx"),
        "{}{}",
        diff.stdout,
        diff.stderr
    );
    // restore: dry run, then in place; what it replaced is kept.
    fs::write(&file, "oops").unwrap();
    let plan = d.ctl(&[
        "restore",
        "--share",
        "team",
        &first[..8],
        "Docs/devis.docx",
        "--dry-run",
    ]);
    assert!(
        plan.stdout.contains("replace") && plan.stdout.contains("nothing was changed"),
        "{}{}",
        plan.stdout,
        plan.stderr
    );
    assert_eq!(fs::read(&file).unwrap(), b"oops");
    restore_in_place(&d, &first, &file, b"version 1");
    // forget applies the share's policy (keep last 50: nothing goes); check passes.
    let f = d.ctl(&["forget", "--share", "team", "--dry-run"]);
    assert!(
        f.stdout.contains("0 would be removed"),
        "{}{}",
        f.stdout,
        f.stderr
    );
    let c = d.ctl(&["check", "--share", "team", "--read-data"]);
    assert!(
        c.code == 0 && c.stdout.contains("no damage found"),
        "{}{}",
        c.stdout,
        c.stderr
    );
    // Members see the versions of what they may read (self-service is tested in
    // self_service.rs); an outsider is refused.
    let as_user = |who: &str| {
        a.sh_as(
            who,
            &format!(
                "{} --socket '{}' versions --share team Docs/devis.docx",
                bin("sharekeepctl").display(),
                d.socket.display()
            ),
        )
    };
    let (ok, out) = as_user("member");
    assert!(ok && out.contains(&first[..8]), "{out}");
    let (ok, out) = as_user("outsider");
    assert!(!ok && out.contains("not named in share `team`"), "{out}");
}

#[test]
fn long_operations_stream_progress_lines() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let mut f = fs::File::open("/dev/urandom").unwrap();
    for i in 0..4 {
        let mut v = vec![0u8; 16 << 20];
        std::io::Read::read_exact(&mut f, &mut v).unwrap();
        fs::write(share.join(format!("Docs/big{i}.bin")), v).unwrap();
    }
    // A line every 10 ms (the service's floor): any backup lasts longer than that.
    let d = Daemon::start_with(dir.path(), Some("progress_interval_ms = 10\n"));
    let run = d.ctl(&["backup", "--share", "team"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("backup: ") && run.stderr.contains("MiB"),
        "progress lines on stderr: {}",
        run.stderr
    );
    let quiet = d.ctl(&["-q", "backup", "--share", "team"]);
    assert!(
        quiet.stderr.is_empty(),
        "--quiet hides them: {}",
        quiet.stderr
    );
}

#[test]
fn a_change_in_the_policies_directory_reloads_without_a_signal() {
    let mut a = Accounts::new();
    let (dir, _share) = setup(&mut a, YEARLY);
    let d = Daemon::start(dir.path());
    // A new share appears when its file is written.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(
        dir.path().join("policies/other.toml"),
        format!(
            "[share]\nname = \"other\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n",
            other.display().to_string()
        ),
    )
    .unwrap();
    eventually("the new share managed", PATIENCE, || {
        d.ctl(&["status"]).stdout.contains("share other")
    });
    // A broken file that never loaded leaves its share unmanaged, and the others untouched.
    fs::write(dir.path().join("policies/broken.toml"), "[share]\nname = \"broken\"\npath = \"/nonexistent-sk\"\nowner = \"root\"\ngroup = \"root\"\n").unwrap();
    eventually("the broken file reported", PATIENCE, || {
        d.ctl(&["status", "--json"]).stdout.contains("unmanaged")
    });
    let st = d.ctl(&["status", "--json"]).json();
    let policies: Vec<(String, String)> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["policy"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        policies.contains(&("team".into(), "ok".into()))
            && policies.contains(&("other".into(), "ok".into())),
        "{policies:?}"
    );
    assert!(
        policies.contains(&("broken".into(), "unmanaged".into())),
        "{policies:?}"
    );
}

#[test]
fn a_file_at_the_socket_path_is_never_removed_and_start_refuses() {
    let mut a = Accounts::new();
    let (dir, _share) = setup(&mut a, YEARLY);
    let socket = dir.path().join("ctl.sock");
    fs::write(&socket, "an admin's notes").unwrap();
    let out = Command::new(bin("sharekeepd"))
        .arg("--policies")
        .arg(dir.path().join("policies"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(fs::read_to_string(&socket).unwrap(), "an admin's notes");
    // Positive control: a stale socket left by a killed service is replaced.
    fs::remove_file(&socket).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let d = Daemon::start(dir.path());
    assert_eq!(d.ctl(&["status"]).code, 0);
}

#[test]
fn restore_drills_run_on_request_show_in_status_and_name_damaged_files() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let file = dir.path().join("policies/team.toml");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        text.replace("keep = {", "drill = \"weekly\"\ndrill_sample = 3\nkeep = {"),
    )
    .unwrap();
    for i in 0..10 {
        fs::write(share.join(format!("Docs/f{i}.txt")), format!("note {i}")).unwrap();
    }
    fs::write(
        share.join("Docs/gros.bin"),
        sharekeep_tests::noise(3_000_000, 9),
    )
    .unwrap();
    let d = Daemon::start(dir.path());
    let st = d.ctl(&["status"]).stdout;
    assert!(st.contains("restore drill: last never (-), next "), "{st}");
    let snap = d.ctl(&["backup", "--share", "team", "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = d.ctl(&["drill", "--share", "team", "--json"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let j = ok.json();
    // Three drawn at random (the service seeds from the clock), plus the largest unless drawn.
    let checked = j["files_checked"].as_u64().unwrap();
    assert!(checked == 3 || checked == 4, "{j}");
    assert!(
        j["bytes_checked"].as_u64().unwrap() >= 3_000_000,
        "the largest joins: {j}"
    );
    assert_eq!(j["files_in_snapshot"], 11, "{j}");
    let st = d.ctl(&["status"]).stdout;
    assert!(
        st.contains("restore drill: last today")
            && st.contains(&format!("(ok: {checked} of 11 files restored identical)")),
        "{st}"
    );
    // Members may not run one.
    let (okm, out) = a.sh_as(
        "member",
        &format!(
            "{} --socket '{}' drill --share team",
            bin("sharekeepctl").display(),
            d.socket.display()
        ),
    );
    assert!(!okm && out.contains("only root and the admins"), "{out}");
    // Damage: the drill fails, names the file, in its answer, the status and the log.
    let repo = dir.path().join("repo");
    let blob = sharekeep_tests::blobs_of(&repo, &snap, "Docs/gros.bin")[0].clone();
    sharekeep_tests::flip_byte_in(&blob);
    let bad = d.ctl(&["drill", "--share", "team"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("DAMAGED Docs/gros.bin"),
        "{}",
        bad.stdout
    );
    let st = d.ctl(&["status"]).stdout;
    assert!(
        st.contains("FAILED: 1 file(s) do not restore (Docs/gros.bin)"),
        "{st}"
    );
    assert!(
        d.log().contains("restore drill FAILED") && d.log().contains("Docs/gros.bin"),
        "{}",
        d.log()
    );
    // Nothing left in the scratch folder.
    let drills = dir.path().join("state/drills");
    assert_eq!(fs::read_dir(&drills).map(|r| r.count()).unwrap_or(0), 0);
}

/// An SMTP server on loopback (aiosmtpd, Debian's python3-aiosmtpd) writing what it receives
/// to a Maildir; killed on drop.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("smtp.log")).unwrap())
            .spawn()
            .expect("aiosmtpd (apt-get install python3-aiosmtpd)");
        let s = Smtp {
            child,
            port,
            maildir,
        };
        eventually("the SMTP server", PATIENCE, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        s
    }

    /// Every message received, oldest first.
    fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = fs::read_dir(self.maildir.join("new"))
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_failed_backup_is_emailed_once_and_its_resolution_too() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    fs::write(share.join("Docs/a.txt"), "a").unwrap();
    let smtp = Smtp::start(dir.path());
    let events = dir.path().join("events.jsonl");
    let d = Daemon::start_with(
        dir.path(),
        Some(&format!(
            "[alerts]\ncheck_every_secs = 1\ncommand = \"cat >> '{}'\"\n\n[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"sharekeep@poste.example\"\nto = [\"admin@example.fr\"]\n",
            events.display(),
            smtp.port
        )),
    );
    assert_eq!(d.ctl(&["backup", "--share", "team"]).code, 0);
    // The repository made read-only (immutable locks folder: even root cannot write there).
    let locks = dir.path().join("repo/locks");
    struct Mutable(PathBuf);
    impl Drop for Mutable {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }
    let guard = Mutable(locks.clone());
    assert!(Command::new("chattr")
        .arg("+i")
        .arg(&locks)
        .status()
        .unwrap()
        .success());
    let failed = d.ctl(&["backup", "--share", "team"]);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    eventually("the alert email", PATIENCE, || !smtp.messages().is_empty());
    let m = &smtp.messages()[0];
    assert!(
        m.contains("Subject: [sharekeep] backup failed, share team"),
        "{m}"
    );
    assert!(
        m.contains(&share.display().to_string()),
        "the share's path: {m}"
    );
    assert!(m.contains("locks"), "the error names where: {m}");
    let ev: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&events).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            ev["kind"].as_str(),
            ev["state"].as_str(),
            ev["share"].as_str()
        ),
        (Some("backup_failed"), Some("firing"), Some("team"))
    );
    // Fixed: the next backup works and the resolution is sent.
    drop(guard);
    assert_eq!(d.ctl(&["backup", "--share", "team"]).code, 0);
    eventually("the resolved email", PATIENCE, || {
        smtp.messages().len() >= 2
    });
    let all = smtp.messages();
    assert!(
        all[1].contains("Subject: [sharekeep] RESOLVED: backup failed, share team"),
        "{}",
        all[1]
    );
    // One message per event: the problem was not sent again while it lasted.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(smtp.messages().len(), 2, "{:?}", smtp.messages());
    assert_eq!(fs::read_to_string(&events).unwrap().lines().count(), 2);
    // A damaged pack: the next drill fails, and its alert names the file.
    fs::write(
        share.join("Docs/gros.bin"),
        sharekeep_tests::noise(2_000_000, 4),
    )
    .unwrap();
    let snap = d.ctl(&["backup", "--share", "team", "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let blob =
        sharekeep_tests::blobs_of(&dir.path().join("repo"), &snap, "Docs/gros.bin")[0].clone();
    sharekeep_tests::flip_byte_in(&blob);
    assert_eq!(
        d.ctl(&["drill", "--share", "team", "--sample", "100"]).code,
        1
    );
    eventually("the drill alert", PATIENCE, || smtp.messages().len() >= 3);
    let m = &smtp.messages()[2];
    assert!(
        m.contains("Subject: [sharekeep] restore drill failed, share team"),
        "{m}"
    );
    assert!(
        m.contains("Docs/gros.bin"),
        "the damaged file is named: {m}"
    );
    // A policy that no longer loads is an alert too.
    let file = dir.path().join("policies/team.toml");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, text.replace("[access]", "[access\n")).unwrap();
    eventually("the policy alert", PATIENCE, || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("Subject: [sharekeep] policy no longer loads, share team"))
    });
    let m = smtp
        .messages()
        .into_iter()
        .find(|m| m.contains("policy no longer loads"))
        .unwrap();
    assert!(m.contains("team.toml:8"), "the problem is located: {m}");
}

#[test]
fn a_backup_older_than_max_age_is_an_alert_until_one_succeeds() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    fs::write(share.join("Docs/a.txt"), "a").unwrap();
    let file = dir.path().join("policies/team.toml");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        text.replace("keep = {", "max_age = \"2d\"\nkeep = {"),
    )
    .unwrap();
    // The last backup succeeded three days ago.
    last_success_was(dir.path(), "3 days ago");
    let events = dir.path().join("events.jsonl");
    let d = Daemon::start_with(
        dir.path(),
        Some(&format!(
            "[alerts]\ncheck_every_secs = 1\ncommand = \"cat >> '{}'\"\n",
            events.display()
        )),
    );
    let lines = || {
        fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    eventually("the too-old alert", PATIENCE, || !lines().is_empty());
    let first = &lines()[0];
    assert_eq!(first["kind"], "backup_too_old", "{first}");
    assert_eq!(first["state"], "firing");
    assert!(
        first["message"].as_str().unwrap().contains("max_age: 48 h"),
        "{first}"
    );
    // A backup succeeds: the problem is resolved.
    assert_eq!(d.ctl(&["backup", "--share", "team"]).code, 0);
    eventually("the resolution", PATIENCE, || {
        lines()
            .iter()
            .any(|e| e["kind"] == "backup_too_old" && e["state"] == "resolved")
    });
}

#[test]
fn backups_are_copied_off_site_encrypted_and_a_failed_copy_is_reported_and_alerted() {
    use sharekeep_tests::ctl_url;
    use sharekeep_tests::servers::Garage;
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, "0 0 3 1 1 *");
    let mut garage = Garage::start(&dir.path().join("garage"), "offsite");
    fs::write(share.join("Docs/a.txt"), "first").unwrap();
    let key = dir.path().join("team.key");
    generate_key(&key);
    let url = garage.url("team");
    let policy = dir.path().join("policies/team.toml");
    let mut text = fs::read_to_string(&policy).unwrap();
    text += &format!(
        "key_file = {:?}\ncopy_to = {url:?}\ncopy_keep = {{ last = 1 }}\n",
        key.display().to_string()
    );
    fs::write(&policy, text).unwrap();
    let creds = credentials_file(dir.path(), &garage);
    let alerts = dir.path().join("alerts.jsonl");
    let d = Daemon::start_with(
        dir.path(),
        Some(&format!(
            "remote_credentials = {:?}\n[alerts]\ncommand = \"cat >> {}\"\ncheck_every_secs = 1\n",
            creds.display().to_string(),
            alerts.display()
        )),
    );

    let run = d.ctl(&["backup", "--share", "team"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let status = d.ctl(&["status"]).stdout;
    assert!(
        status.contains("off-site copy to s3://offsite/team")
            && status.contains("ok: 1 snapshot(s) copied"),
        "{status}\ndaemon:\n{}",
        d.log()
    );
    assert!(
        !status.contains(&garage.secret),
        "no secret in status: {status}"
    );
    // The local repository is encrypted with the plan's key too (created by the service).
    let local = dir.path().join("repo");
    assert!(fs::read(local.join("config")).unwrap().starts_with(b"SKE1"));
    let key_env = vec![("SHAREKEEP_KEY_FILE".to_string(), key.display().to_string())];
    let s3 = [garage.env(), key_env.clone()].concat();
    let out = dir.path().join("out");
    ctl_url(
        &url,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &s3,
    )
    .ok();
    assert_eq!(fs::read_to_string(out.join("Docs/a.txt")).unwrap(), "first");

    // A second backup: the copy keeps one snapshot (copy_keep), the local repository both.
    fs::write(share.join("Docs/a.txt"), "second").unwrap();
    assert_eq!(d.ctl(&["backup", "--share", "team"]).code, 0);
    let count = |repo: &str, env: &[(String, String)]| {
        ctl_url(repo, &["snapshots", "--json"], env)
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&url, &s3), 1);
    assert_eq!(count(local.to_str().unwrap(), &key_env), 2);
    assert!(d.ctl(&["status"]).stdout.contains("1 removed by copy_keep"));

    // The store is down: the backup still succeeds; the copy's failure is shown and alerted.
    garage.kill();
    fs::write(share.join("Docs/a.txt"), "third").unwrap();
    let run = d.ctl(&["backup", "--share", "team"]);
    assert_eq!(
        run.code, 0,
        "the local backup succeeds: {}{}",
        run.stdout, run.stderr
    );
    assert_eq!(count(local.to_str().unwrap(), &key_env), 3);
    let status = d.ctl(&["status"]).stdout;
    assert!(
        status.contains("off-site copy to s3://offsite/team") && status.contains(": failed: "),
        "{status}"
    );
    assert!(status.contains("did not answer after retries"), "{status}");
    eventually("the copy_failed alert", PATIENCE, || {
        fs::read_to_string(&alerts)
            .unwrap_or_default()
            .contains("\"copy_failed\"")
    });
    let alert = fs::read_to_string(&alerts).unwrap();
    assert!(
        alert.contains("the local backup itself succeeded"),
        "{alert}"
    );
    assert!(!alert.contains(&garage.secret), "{alert}");
}

/// Restores `Docs/devis.docx` (at `file`) of share `team` from `snapshot` in place through the
/// service: it holds `want` again, and what it replaced is kept in a pre-restore snapshot.
fn restore_in_place(d: &Daemon, snapshot: &str, file: &Path, want: &[u8]) {
    let done = d.ctl(&[
        "restore",
        "--share",
        "team",
        &snapshot[..8],
        "Docs/devis.docx",
        "--json",
    ]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(fs::read(file).unwrap(), want);
    assert!(done.json()["pre_restore"].is_string());
}

/// sharekeepd.toml's `remote_credentials` for `garage`: a private NAME=VALUE file.
fn credentials_file(dir: &Path, garage: &sharekeep_tests::servers::Garage) -> PathBuf {
    let creds = dir.join("remote.env");
    fs::write(
        &creds,
        format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            garage.key_id, garage.secret
        ),
    )
    .unwrap();
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o600)).unwrap();
    creds
}

#[test]
fn a_share_backed_up_straight_to_an_object_store_is_served_like_a_local_one() {
    use sharekeep_tests::ctl_url;
    use sharekeep_tests::servers::Garage;
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let garage = Garage::start(&dir.path().join("garage"), "primary");
    let key = dir.path().join("team.key");
    generate_key(&key);
    let url = garage.url("team");
    // The policy's repository is the store (the setup's local one is replaced).
    let policy = dir.path().join("policies/team.toml");
    let local = dir.path().join("repo").display().to_string();
    let text = fs::read_to_string(&policy)
        .unwrap()
        .replace(&format!("{local:?}"), &format!("{url:?}"))
        + &format!("key_file = {:?}\n", key.display().to_string());
    fs::write(&policy, text).unwrap();
    let creds = credentials_file(dir.path(), &garage);
    let check = Command::new(bin("sharekeepd"))
        .arg("--check-config")
        .arg("--policies")
        .arg(dir.path().join("policies"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(&format!("backed up to {url}")),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let d = Daemon::start_with(
        dir.path(),
        Some(&format!(
            "remote_credentials = {:?}\n",
            creds.display().to_string()
        )),
    );
    let file = share.join("Docs/devis.docx");
    fs::write(&file, "version 1").unwrap();
    let first = d.ctl(&["backup", "--share", "team", "--json"]);
    assert_eq!(
        first.code,
        0,
        "{}{}\n{}",
        first.stdout,
        first.stderr,
        d.log()
    );
    let first = first.json()["id"].as_str().unwrap().to_string();
    fs::write(&file, "version 2, longer").unwrap();
    assert_eq!(d.ctl(&["backup", "--share", "team"]).code, 0);
    assert!(
        !dir.path().join("repo").exists(),
        "nothing written to the old local path"
    );
    // The store holds the repository: read directly with the key.
    let s3 = [
        garage.env(),
        vec![("SHAREKEEP_KEY_FILE".to_string(), key.display().to_string())],
    ]
    .concat();
    let listed = ctl_url(&url, &["snapshots", "--json"], &s3).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // Through the service: snapshots, versions, an in-place restore (what it replaced kept),
    // a drill; the same as with a local repository.
    let snaps = d.ctl(&["snapshots", "--share", "team", "--json"]);
    assert_eq!(
        snaps.json().as_array().unwrap().len(),
        2,
        "{}",
        snaps.stderr
    );
    let versions = d.ctl(&["versions", "--share", "team", "Docs/devis.docx"]);
    assert!(
        versions.stdout.contains("2 version(s)"),
        "{}{}",
        versions.stdout,
        versions.stderr
    );
    fs::write(&file, "oops").unwrap();
    restore_in_place(&d, &first, &file, b"version 1");
    let drill = d.ctl(&["drill", "--share", "team", "--json"]);
    assert_eq!(drill.code, 0, "{}{}", drill.stdout, drill.stderr);
    assert_eq!(drill.json()["files_in_snapshot"], 1, "{}", drill.stdout);
    let status = d.ctl(&["status"]).stdout;
    assert!(!status.contains(&garage.secret), "{status}");
    assert!(!d.log().contains(&garage.secret), "no secret in the log");
}
