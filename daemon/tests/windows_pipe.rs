//! sharekeepd on Windows (under Wine in CI), reached through its named pipe with the same
//! JSON-lines protocol as the Unix socket: the greeting rules, the line cap, `status` of a
//! managed share, its watcher fixing the rights of a file made after the start, a backup on
//! request, its snapshots, and an in-place restore that saves what it replaces first; with
//! `samba_manage`, the SMB share of a policy that exports one (under Wine, which has no
//! server service, the refusal is logged naming the call).
#![cfg(windows)]

use sharekeep::protocol::{Request, Response, MAX_LINE, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The service, killed when the test ends (whatever its outcome).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Conn {
    reader: BufReader<std::fs::File>,
    writer: std::fs::File,
}

impl Conn {
    /// Opens the pipe, waiting for the service to create it (bounded).
    fn open(pipe: &str, daemon: &mut Daemon) -> Conn {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(pipe)
            {
                Ok(f) => {
                    return Conn {
                        reader: BufReader::new(f.try_clone().unwrap()),
                        writer: f,
                    }
                }
                Err(e) => {
                    if let Some(status) = daemon.0.try_wait().unwrap() {
                        panic!("sharekeepd exited ({status}) before creating {pipe}");
                    }
                    assert!(Instant::now() < deadline, "{pipe}: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn send_line(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
        self.writer.flush().unwrap();
    }

    /// The next response that is not progress.
    fn answer(&mut self) -> Response {
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "pipe closed");
            let r: Response = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            if !matches!(r, Response::Progress { .. }) {
                return r;
            }
        }
    }

    fn call(&mut self, req: &Request) -> Response {
        self.send_line(&serde_json::to_string(req).unwrap());
        self.answer()
    }

    fn status(&mut self) -> sharekeep::protocol::ShareStatus {
        match self.call(&Request::Status) {
            Response::Status { mut shares } => {
                assert_eq!(shares.len(), 1, "{shares:?}");
                shares.remove(0)
            }
            other => panic!("status: {other:?}"),
        }
    }
}

fn error_kind(r: &Response) -> (&str, &str) {
    match r {
        Response::Error { kind, message, .. } => (kind, message),
        other => panic!("not an error: {other:?}"),
    }
}

fn policy(dir: &Path, share: &Path, repo: &Path) {
    let me = std::env::var("USERNAME").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    // Wine here keeps no security descriptor on folders (it shows their Unix mode, 0775, as
    // Everyone may read): the repository's privacy check is Windows' (README, "verified only
    // on Windows").
    std::fs::write(
        dir.join("commercial.toml"),
        format!(
            "[share]\nname = \"commercial\"\npath = '{}'\nowner = '{me}'\ngroup = \"@Users\"\n\n\
             [access]\nread = [\"@Users\"]\nwrite = ['{me}']\n\n\
             [backup]\nschedule = \"0 0 3 * * *\"\nrepository = '{}'\nrepository_private = false\n",
            share.display(),
            repo.display()
        ),
    )
    .unwrap();
}

#[test]
fn the_service_answers_on_its_pipe_watches_backs_up_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("Commercial");
    std::fs::create_dir_all(share.join("Tarifs")).unwrap();
    std::fs::write(share.join("Tarifs/grille.csv"), "prix;2026").unwrap();
    let policies = tmp.path().join("policies");
    policy(&policies, &share, &tmp.path().join("depot"));
    let pipe = format!(r"\\.\pipe\sharekeepd-test-{}", std::process::id());
    let mut daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_sharekeepd"))
            .arg("--policies")
            .arg(&policies)
            .arg("--state")
            .arg(tmp.path().join("state"))
            .arg("--socket")
            .arg(&pipe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut c = Conn::open(&pipe, &mut daemon);

    // Hello first; a request before it is refused, the connection goes on.
    let early = c.call(&Request::Status);
    let (kind, message) = error_kind(&early);
    assert_eq!(kind, "bad_request", "{message}");
    assert!(message.contains("say hello first"), "{message}");
    match c.call(&Request::Hello {
        version: PROTOCOL_VERSION,
    }) {
        Response::Hello { version, server } => {
            assert_eq!(version, PROTOCOL_VERSION);
            assert!(server.starts_with("sharekeepd "), "{server}");
        }
        other => panic!("hello: {other:?}"),
    }
    // A line over the cap: an error, and the connection still answers.
    c.send_line(&"x".repeat(MAX_LINE + 10));
    let too_long = c.answer();
    let (kind, message) = error_kind(&too_long);
    assert_eq!(kind, "bad_request");
    assert!(message.contains("longer than"), "{message}");

    // The share, managed and watched; the first reconcile is done once `last_reconcile` is
    // set.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let s = c.status();
        if s.last_reconcile.is_some() {
            break s;
        }
        assert!(Instant::now() < deadline, "no reconcile: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(first.name, "commercial");
    assert_eq!(first.policy, "ok", "{:?}", first.problems);
    assert_eq!(first.watches, 1, "one recursive watch of the share");
    // A file made now: the watcher reports it, its rights are checked (without the watch,
    // nothing is checked before the hourly reconcile).
    std::fs::write(share.join("Tarifs/nouveau.csv"), "x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.status();
        if s.checked > first.checked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new file was never checked: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A backup on request, then its snapshot listed.
    let snapshot = match c.call(&Request::Backup {
        share: "commercial".into(),
    }) {
        Response::BackupDone { snapshot, .. } => snapshot["id"].as_str().unwrap().to_string(),
        other => panic!("backup: {other:?}"),
    };
    match c.call(&Request::Snapshots {
        share: "commercial".into(),
    }) {
        Response::Snapshots { snapshots } => {
            assert_eq!(snapshots.len(), 1);
            assert!(
                snapshot.starts_with(&snapshots[0].id) || snapshots[0].id.starts_with(&snapshot),
                "{snapshot} vs {snapshots:?}"
            );
        }
        other => panic!("snapshots: {other:?}"),
    }

    // In place: the changed file brought back, what it replaced saved first.
    std::fs::write(share.join("Tarifs/grille.csv"), "prix;2027").unwrap();
    let restore = Request::Restore {
        share: "commercial".into(),
        snapshot: "latest".into(),
        paths: vec!["Tarifs/grille.csv".into()],
        to: None,
        overwrite: "if-changed".into(),
        dry_run: false,
        stream: false,
    };
    match c.call(&restore) {
        Response::Restore(r) => {
            assert_eq!(r.replaced, 1, "{r:?}");
            assert!(r.warnings.is_empty(), "{r:?}");
        }
        other => panic!("restore: {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(share.join("Tarifs/grille.csv")).unwrap(),
        "prix;2026"
    );
    match c.call(&Request::Snapshots {
        share: "commercial".into(),
    }) {
        Response::Snapshots { snapshots } => {
            assert_eq!(snapshots.len(), 2, "{snapshots:?}");
            assert!(
                snapshots[1]
                    .tags
                    .iter()
                    .any(|t| t == sharekeep::PRE_RESTORE_TAG),
                "{snapshots:?}"
            );
        }
        other => panic!("snapshots: {other:?}"),
    }
}

#[test]
fn with_samba_manage_the_service_exports_the_policy_s_smb_share() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("Commercial");
    std::fs::create_dir_all(&share).unwrap();
    let policies = tmp.path().join("policies");
    policy(&policies, &share, &tmp.path().join("depot"));
    let file = policies.join("commercial.toml");
    let body = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("{body}\n[samba]\nexport = true\nname = \"SkPipeTest\"\n"),
    )
    .unwrap();
    let config = tmp.path().join("sharekeepd.toml");
    std::fs::write(&config, "samba_manage = true\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sharekeepd"))
        .arg("--config")
        .arg(&config)
        .arg("--policies")
        .arg(&policies)
        .arg("--state")
        .arg(tmp.path().join("state"))
        .arg("--socket")
        .arg(format!(
            r"\\.\pipe\sharekeepd-shares-{}",
            std::process::id()
        ))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _daemon = Daemon(child);
    // Its log, line by line, until the share's line (the policies are loaded at the start).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("SMB share SkPipeTest") => break l,
            Ok(l) => seen.push(l),
            Err(e) => panic!("no line about the share ({e}): {seen:#?}"),
        }
    };
    if Command::new("winepath")
        .arg("-u")
        .arg(r"C:\")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(line.contains("NetShareAdd"), "{line}");
    } else {
        assert!(
            line.contains("Added") && line.contains(&share.display().to_string()),
            "{line}"
        );
        let _ = Command::new("net")
            .args(["share", "SkPipeTest", "/delete"])
            .status();
    }
}
