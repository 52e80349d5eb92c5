//! The real `sharekeepd` on temporary folders, state and socket: rights applied to new, nested
//! and moved-in entries within 2 s; on-demand, scheduled and caught-up backups; a broken policy
//! and SIGHUP; SIGTERM during a backup; callers refused; garbage on the socket.

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

#[test]
fn new_nested_and_moved_in_entries_get_their_rights_within_two_seconds() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let _d = Daemon::start(dir.path());
    let s = share.display().to_string();
    let can_read = |p: &str| a.sh_as("member", &format!("cat '{s}/{p}'")).0;
    eventually("the initial reconcile", Duration::from_secs(5), || {
        a.sh_as("member", &format!("ls '{s}/Docs'")).0
    });
    // A file created with umask 077.
    Command::new("sh")
        .args([
            "-c",
            &format!("umask 077; echo secret > '{s}/Docs/new.txt'"),
        ])
        .status()
        .unwrap();
    let t = eventually(
        "a file created with umask 077",
        Duration::from_secs(2),
        || can_read("Docs/new.txt"),
    );
    eprintln!("umask 077 file readable after {t:?}");
    // A nested folder created with files in it at once.
    Command::new("sh")
        .args(["-c", &format!("umask 077; mkdir -p '{s}/A/B/C' && echo 1 > '{s}/A/B/C/deep.txt' && echo 2 > '{s}/A/top.txt'")])
        .status()
        .unwrap();
    eventually(
        "a nested folder made at once",
        Duration::from_secs(2),
        || can_read("A/B/C/deep.txt") && can_read("A/top.txt"),
    );
    // A file moved in from elsewhere with mode 600.
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, "moved").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&outside, share.join("Docs/moved.txt")).unwrap();
    eventually("a file moved in", Duration::from_secs(2), || {
        can_read("Docs/moved.txt")
    });
    // chmod by someone: fixed again.
    fs::set_permissions(
        share.join("Docs/new.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    eventually("a chmod-ed file", Duration::from_secs(2), || {
        can_read("Docs/new.txt")
    });
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
    eventually("scheduled backups", Duration::from_secs(8), || {
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
    // Each run wrote a report.
    let reports = fs::read_dir(dir.path().join("state/reports/team"))
        .unwrap()
        .count();
    assert!(reports >= 3, "{reports} reports");
}

#[test]
fn a_missed_run_is_caught_up_after_restart() {
    let mut a = Accounts::new();
    // Every day at 03:00: the machine was off the last two nights.
    let (dir, share) = setup(&mut a, "0 0 3 * * *");
    fs::write(share.join("Docs/a.txt"), "a").unwrap();
    let two_days_ago = Command::new("date")
        .args(["-d", "2 days ago", "--iso-8601=seconds"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&two_days_ago.stdout)
        .trim()
        .to_string();
    fs::create_dir_all(dir.path().join("state")).unwrap();
    fs::write(
        dir.path().join("state/team.json"),
        format!("{{\"last_success\": \"{t}\", \"first_seen\": \"{t}\"}}"),
    )
    .unwrap();
    let d = Daemon::start(dir.path());
    let repo = dir.path().join("repo");
    eventually("the catch-up backup", Duration::from_secs(10), || {
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
    eventually("the initial reconcile", Duration::from_secs(5), || {
        a.sh_as("member", &format!("ls '{s}/Docs'")).0
    });
    let file = dir.path().join("policies/team.toml");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, text.replace("[access]", "[access\n")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("the broken policy noticed", Duration::from_secs(5), || {
        d.ctl(&["status", "--json"]).stdout.contains("stale")
    });
    let st = d.ctl(&["status"]);
    assert!(
        st.stdout.contains("team.toml:8:"),
        "the problem is located: {}",
        st.stdout
    );
    // Still running, still enforcing the last good version.
    Command::new("sh")
        .args(["-c", &format!("umask 077; echo x > '{s}/Docs/after.txt'")])
        .status()
        .unwrap();
    eventually(
        "the last good policy enforced",
        Duration::from_secs(2),
        || a.sh_as("member", &format!("cat '{s}/Docs/after.txt'")).0,
    );
    // Fixed again: back to ok.
    fs::write(&file, &text).unwrap();
    d.ctl(&["reload"]);
    eventually("the fixed policy", Duration::from_secs(5), || {
        d.ctl(&["status", "--json"]).json()[0]["policy"] == "ok"
    });
}

#[test]
fn sigterm_during_a_backup_exits_0_and_the_repository_checks_clean() {
    let mut a = Accounts::new();
    let (dir, share) = setup(&mut a, YEARLY);
    let mut f = fs::File::open("/dev/urandom").unwrap();
    for i in 0..10 {
        let mut v = vec![0u8; 16 << 20];
        std::io::Read::read_exact(&mut f, &mut v).unwrap();
        fs::write(share.join(format!("Docs/big{i}.bin")), v).unwrap();
    }
    let mut d = Daemon::start(dir.path());
    let socket = d.socket.clone();
    let requester = std::thread::spawn(move || {
        Command::new(bin("sharekeepctl"))
            .arg("--socket")
            .arg(&socket)
            .args(["backup", "--share", "team"])
            .output()
            .unwrap()
    });
    let repo = dir.path().join("repo");
    eventually("the backup started", Duration::from_secs(10), || {
        repo.join("config").exists()
    });
    std::thread::sleep(Duration::from_millis(50));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(d.wait(Duration::from_secs(10)), 0, "{}", d.log());
    let _ = requester.join();
    let c = ctl(&repo, &["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    // Either it finished before the signal, or nothing partial was recorded.
    let n = ctl(&repo, &["snapshots", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .len();
    assert!(n <= 1);
    if n == 1 {
        ctl(
            &repo,
            &[
                "restore",
                "latest",
                "--to",
                dir.path().join("out").to_str().unwrap(),
            ],
        )
        .ok();
    }
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
    assert!(l.contains("version"), "{l}");
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
    let done = d.ctl(&[
        "restore",
        "--share",
        "team",
        &first[..8],
        "Docs/devis.docx",
        "--json",
    ]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(fs::read(&file).unwrap(), b"version 1");
    assert!(done.json()["pre_restore"].is_string());
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
    for i in 0..12 {
        let mut v = vec![0u8; 16 << 20];
        std::io::Read::read_exact(&mut f, &mut v).unwrap();
        fs::write(share.join(format!("Docs/big{i}.bin")), v).unwrap();
    }
    let d = Daemon::start(dir.path());
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
    eventually("the new share managed", Duration::from_secs(5), || {
        d.ctl(&["status"]).stdout.contains("share other")
    });
    // A broken file that never loaded leaves its share unmanaged, and the others untouched.
    fs::write(dir.path().join("policies/broken.toml"), "[share]\nname = \"broken\"\npath = \"/nonexistent-sk\"\nowner = \"root\"\ngroup = \"root\"\n").unwrap();
    eventually("the broken file reported", Duration::from_secs(5), || {
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
