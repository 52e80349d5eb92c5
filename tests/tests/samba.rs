//! The department scenario end to end over real SMB: the example policy applied to a folder,
//! exported to a real `smbd` on 127.0.0.1 (its own port and state folders), and used through
//! `smbclient` by the assistant, two members and an outsider; a backup; a proposal overwritten
//! by mistake; the admin finds the version and restores it; the member reads it back. The test
//! writes the "compte rendu des tests" (markdown: step, user, expected, observed).

use sharekeep_tests::servers::{nt_status, Smbd};
use sharekeep_tests::users::Accounts;
use sharekeep_tests::{bin, ctl, open_scratch};
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped (sharekeepd).
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sharekeepctl(args: &[&str]) -> std::process::Output {
    Command::new(bin("sharekeepctl"))
        .args(args)
        .env_remove("SHAREKEEP_REPO")
        .output()
        .unwrap()
}

struct Report {
    rows: String,
    failures: Vec<String>,
}

impl Report {
    fn step(&mut self, step: &str, user: &str, expected: &str, ok: bool, observed: &str) {
        let observed = observed
            .lines()
            .find(|l| l.contains("NT_STATUS"))
            .unwrap_or(observed.lines().next().unwrap_or(""))
            .trim()
            .replace('|', "/");
        let mark = if ok { "✅" } else { "❌" };
        writeln!(
            self.rows,
            "| {step} | {user} | {expected} | {mark} {observed} |"
        )
        .unwrap();
        if !ok {
            self.failures.push(format!(
                "{step} ({user}): expected {expected}, observed {observed}"
            ));
        }
    }
}

#[test]
fn department_scenario_over_real_smb() {
    let a = Accounts::department();
    let dir = open_scratch();
    let d = dir.path();
    let share = d.join("commercial");
    fs::create_dir_all(share.join("Tarifs")).unwrap();
    fs::create_dir_all(share.join("Propositions")).unwrap();
    fs::write(share.join("Tarifs/grille-2026.csv"), "produit;prix\nA;10\n").unwrap();
    let repo = d.join("repo");
    let policy = sharekeep_tests::example_commercial(&a, &share, &repo);
    let policy_file = d.join("commercial.toml");
    fs::write(&policy_file, policy).unwrap();
    let p = policy_file.to_str().unwrap();
    assert!(sharekeepctl(&["policy", "apply", p]).status.success());

    // smbd with its own folders, on loopback, an unprivileged port.
    let include = d.join("samba/sharekeep.conf");
    fs::create_dir_all(d.join("samba")).unwrap();
    assert!(
        sharekeepctl(&["samba", "export", p, "-o", include.to_str().unwrap()])
            .status
            .success()
    );
    let password = "Mot-de-passe-1";
    let users: Vec<String> = ["adjoint", "alice", "bob", "eve"]
        .iter()
        .map(|u| a.name(u))
        .collect();
    let smbd = Smbd::start(d, &include, &users, password);
    let conf = smbd.conf.clone();
    let smb = |user: &str, password: &str, commands: &str| {
        smbd.client("commercial", user, password, commands)
    };
    let login_ok = |user: &str, password: &str| smbd.login_ok(user, password);
    let check = sharekeepctl(&["samba", "check", p, "--smb-conf", conf.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "smbd and the policy disagree: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    let (alice, bob, eve, adjoint) = (
        a.name("alice"),
        a.name("bob"),
        a.name("eve"),
        a.name("adjoint"),
    );
    let local = |name: &str, content: &str| {
        let f = d.join(name);
        fs::write(&f, content).unwrap();
        f.display().to_string()
    };
    let mut r = Report {
        rows: String::new(),
        failures: Vec::new(),
    };
    let got = d.join("got.txt");
    let got_s = got.display().to_string();
    // Every refusal below names its status: a login failure or a wrong path is not a refusal.
    let denied = |ok: bool, out: &str| !ok && nt_status(out) == Some("NT_STATUS_ACCESS_DENIED");

    // 1. Rights over SMB.
    let (ok, out) = smb(
        &alice,
        password,
        &format!("get Tarifs/grille-2026.csv {got_s}"),
    );
    r.step(
        "1. read the price list",
        &alice,
        "allowed",
        ok && fs::read_to_string(&got)
            .unwrap_or_default()
            .contains("prix"),
        &out,
    );
    let (ok, out) = smb(
        &alice,
        password,
        &format!("put {} Tarifs/grille-2026.csv", local("x.csv", "changed")),
    );
    r.step(
        "1. change the price list",
        &alice,
        "refused (ACCESS_DENIED), file unchanged",
        denied(ok, &out)
            && fs::read_to_string(share.join("Tarifs/grille-2026.csv")).unwrap()
                == "produit;prix\nA;10\n",
        &out,
    );
    let (ok, out) = smb(
        &alice,
        password,
        &format!("put {} Tarifs/nouveau.csv", local("y.csv", "new")),
    );
    r.step(
        "1. create in Tarifs",
        &alice,
        "refused (ACCESS_DENIED), nothing created",
        denied(ok, &out) && !share.join("Tarifs/nouveau.csv").exists(),
        &out,
    );
    let v1 = "Proposition Dupont, version relue";
    let (ok, out) = smb(
        &alice,
        password,
        &format!(
            "put {} Propositions/proposition-dupont.docx",
            local("p1.docx", "Proposition Dupont, brouillon")
        ),
    );
    r.step("1. write a proposal", &alice, "allowed", ok, &out);
    let (ok, out) = smb(&bob, password, &format!("get Propositions/proposition-dupont.docx {got_s}; put {} Propositions/proposition-dupont.docx", local("p2.docx", v1)));
    r.step(
        "1. open and edit the colleague's proposal",
        &bob,
        "allowed",
        ok,
        &out,
    );
    let (ok, out) = smb(&eve, password, "ls");
    r.step(
        "1. list the share",
        &eve,
        "refused (ACCESS_DENIED)",
        denied(ok, &out),
        &out,
    );
    // The positive control: eve's login itself is accepted (only the share is closed to her).
    r.step(
        "1. log in to the server",
        &eve,
        "allowed",
        login_ok(&eve, password),
        "",
    );
    let (ok, out) = smb(
        &eve,
        password,
        &format!("put {} Tarifs/eve.csv", local("e.csv", "eve")),
    );
    r.step(
        "1. write in the share",
        &eve,
        "refused (ACCESS_DENIED), nothing created",
        denied(ok, &out) && !share.join("Tarifs/eve.csv").exists(),
        &out,
    );
    let (ok, out) = smb(
        &adjoint,
        password,
        &format!(
            "put {} Tarifs/grille-2026.csv",
            local("g.csv", "produit;prix\nA;11\n")
        ),
    );
    r.step("1. update the price list", &adjoint, "allowed", ok, &out);

    // 2. The evening backup.
    ctl(&repo, &["init"]).ok();
    // Dated yesterday evening: its Previous Version gets a name of its own (one per second).
    let yesterday = chrono::Local::now() - chrono::TimeDelta::days(1);
    let backup = ctl(
        &repo,
        &[
            "backup",
            "--json",
            share.to_str().unwrap(),
            "--time",
            &yesterday.format("%Y-%m-%d 18:30:00").to_string(),
        ],
    );
    r.step(
        "2. backup",
        "root (sharekeep)",
        "snapshot written",
        backup.code == 0,
        &format!(
            "snapshot {}",
            &backup.json()["id"].as_str().unwrap_or("?")[..8]
        ),
    );

    // 3. Overwritten by mistake, over SMB.
    let (ok, out) = smb(
        &alice,
        password,
        &format!(
            "put {} Propositions/proposition-dupont.docx",
            local("oops.docx", "oops, wrong file")
        ),
    );
    r.step(
        "3. overwrite the proposal by mistake",
        &alice,
        "allowed (the mistake)",
        ok,
        &out,
    );

    // 4. The admin finds the version and restores it.
    let versions = ctl(
        &repo,
        &["versions", "Propositions/proposition-dupont.docx", "--json"],
    );
    let good = versions
        .json()
        .as_array()
        .and_then(|v| v.first().cloned())
        .unwrap_or_default();
    let snap = good["last"]["id"].as_str().unwrap_or("").to_string();
    r.step(
        "4. find the version",
        "admin",
        "the reviewed version is listed",
        good["size"] == v1.len() && !snap.is_empty(),
        &format!(
            "{} bytes in snapshot {}",
            good["size"],
            snap.get(..8).unwrap_or("?")
        ),
    );
    let restore = ctl(
        &repo,
        &[
            "restore",
            snap.get(..8).unwrap_or("none"),
            "Propositions/proposition-dupont.docx",
            "--json",
        ],
    );
    r.step(
        "4. restore it in place",
        "admin",
        "restored, overwritten copy kept",
        restore.code == 0 && restore.json()["pre_restore"].is_string(),
        restore
            .stdout
            .lines()
            .find(|l| l.contains("pre_restore"))
            .unwrap_or(""),
    );

    // 5. The member reads the restored content over SMB.
    let _ = fs::remove_file(&got);
    let (ok, out) = smb(
        &alice,
        password,
        &format!("get Propositions/proposition-dupont.docx {got_s}"),
    );
    let content = fs::read_to_string(&got).unwrap_or_default();
    r.step(
        "5. read the restored proposal",
        &alice,
        "the reviewed version",
        ok && content == v1,
        &if ok { format!("{content:?}") } else { out },
    );

    // sharekeepd manages the include: written when it changes, smbd told to reload.
    fs::create_dir_all(d.join("policies")).unwrap();
    fs::copy(&policy_file, d.join("policies/commercial.toml")).unwrap();
    fs::remove_file(&include).unwrap();
    let daemon_conf = d.join("sharekeepd.toml");
    fs::write(
        &daemon_conf,
        format!(
            "samba_manage = true\nsamba_include = {:?}\nsamba_conf = {:?}\n",
            include.display().to_string(),
            conf.display().to_string()
        ),
    )
    .unwrap();
    let log = d.join("sharekeepd.log");
    let daemon = Command::new(bin("sharekeepd"))
        .arg("--config")
        .arg(&daemon_conf)
        .arg("--policies")
        .arg(d.join("policies"))
        .arg("--state")
        .arg(d.join("state"))
        .arg("--socket")
        .arg(d.join("ctl.sock"))
        .arg("--log-level")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Killed(daemon); // killed on drop, also when a step fails
                                     // The Previous Versions mount goes with the test, even when a step fails (a killed
                                     // sharekeepd cannot unmount it); declared after the daemon, so dropped first.
    struct Detach(PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            if fs::read_to_string("/proc/self/mountinfo")
                .is_ok_and(|m| m.contains(&format!(" {} ", self.0.display())))
            {
                let _ = Command::new("umount").arg("-l").arg(&self.0).status();
            }
        }
    }
    let _detach = Detach(d.join("state/versions/commercial"));
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what}; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("the include written by sharekeepd", &|| {
        fs::read_to_string(&include).is_ok_and(|t| t.contains("[commercial]"))
    });
    // The policy changes: a comment, the Previous Versions, and a folder for the owner alone.
    fs::create_dir(share.join("Direction")).unwrap();
    fs::write(share.join("Direction/notes.txt"), "notes de la direction").unwrap();
    let text = fs::read_to_string(d.join("policies/commercial.toml")).unwrap();
    fs::write(
        d.join("policies/commercial.toml"),
        text.replace(
            "export = true",
            "export = true\ncomment = \"Service commercial (sharekeep)\"\nprevious_versions = true",
        ) + &format!(
            "\n[[rule]]\npath = \"Direction\"\nread = [\"{adjoint}\"]\nwrite = [\"{adjoint}\"]\n"
        ),
    )
    .unwrap();
    wait_for("the include updated after the policy changed", &|| {
        fs::read_to_string(&include).is_ok_and(|t| t.contains("Service commercial (sharekeep)"))
    });
    wait_for("smbd reloaded", &|| {
        fs::read_to_string(&log).is_ok_and(|t| t.matches("smbd reloaded").count() >= 2)
    });
    let check = sharekeepctl(&[
        "samba",
        "check",
        d.join("policies").to_str().unwrap(),
        "--smb-conf",
        conf.to_str().unwrap(),
        "--state",
        d.join("state").to_str().unwrap(),
    ]);
    r.step(
        "6. policy changed: share re-exported",
        "sharekeepd",
        "smbd agrees",
        check.status.success(),
        &String::from_utf8_lossy(&check.stdout),
    );

    // 7. Previous Versions: the share's snapshots, mounted by sharekeepd, through shadow_copy2.
    let versions = d.join("state/versions/commercial");
    wait_for("the Previous Versions mounted", &|| {
        fs::read_dir(&versions).is_ok_and(|mut e| e.next().is_some())
    });
    // Tonight's work on the proposal, then tonight's backup.
    let v2 = "Proposition Dupont, version du soir";
    let (ok, out) = smb(
        &bob,
        password,
        &format!(
            "put {} Propositions/proposition-dupont.docx",
            local("soir.docx", v2)
        ),
    );
    assert!(ok, "{out}");
    let socket = d.join("ctl.sock");
    let evening = Command::new(bin("sharekeepctl"))
        .arg("--socket")
        .arg(&socket)
        .args(["backup", "--share", "commercial", "--json"])
        .output()
        .unwrap();
    assert!(
        evening.status.success(),
        "{}",
        String::from_utf8_lossy(&evening.stderr)
    );
    let gmt_of = |id: &str| {
        let list = ctl(&repo, &["snapshots", "--json"]).json();
        let t = list
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"].as_str().unwrap().starts_with(id))
            .unwrap_or_else(|| panic!("snapshot {id}"))["time"]
            .as_str()
            .unwrap()
            .to_string();
        chrono::DateTime::parse_from_rfc3339(&t)
            .unwrap()
            .with_timezone(&chrono::Utc)
            .format("@GMT-%Y.%m.%d-%H.%M.%S")
            .to_string()
    };
    let first_id = backup.json()["id"].as_str().unwrap().to_string();
    let (old, new) = (
        gmt_of(&first_id),
        gmt_of(
            serde_json::from_slice::<serde_json::Value>(&evening.stdout).unwrap()["id"]
                .as_str()
                .unwrap(),
        ),
    );
    let listed = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.starts_with("@GMT-"))
            .map(str::to_string)
            .collect()
    };
    // Overwritten again by mistake; the member looks at its Previous Versions and takes
    // yesterday's back herself.
    let (ok, out) = smb(
        &alice,
        password,
        &format!(
            "put {} Propositions/proposition-dupont.docx",
            local("again.docx", "brouillon 3")
        ),
    );
    assert!(ok, "{out}");
    let (ok, out) = smb(
        &alice,
        password,
        "allinfo Propositions/proposition-dupont.docx",
    );
    let before = listed(&out);
    r.step(
        "7. Previous Versions of the proposal",
        &alice,
        "yesterday's and tonight's versions listed",
        ok && before.contains(&old) && before.contains(&new),
        &format!("{} version(s): {}", before.len(), before.join(" ")),
    );
    let _ = fs::remove_file(&got);
    let (ok, out) = smb(
        &alice,
        password,
        &format!("get {old}/Propositions/proposition-dupont.docx {got_s}"),
    );
    r.step(
        "7. open the evening's version",
        &alice,
        "its content",
        ok && fs::read_to_string(&got).unwrap_or_default() == v1,
        &out,
    );
    let (ok, out) = smb(
        &alice,
        password,
        &format!("put {got_s} Propositions/proposition-dupont.docx"),
    );
    r.step(
        "7. put it back over the current file",
        &alice,
        "restored",
        ok && fs::read_to_string(share.join("Propositions/proposition-dupont.docx")).unwrap() == v1,
        &out,
    );
    // The owner reads a file of a folder only they may read, in tonight's version...
    let (ok, out) = smb(
        &adjoint,
        password,
        &format!("get {new}/Direction/notes.txt {got_s}.dir"),
    );
    r.step(
        "7. the same file",
        &adjoint,
        "its content",
        ok && fs::read_to_string(d.join("got.txt.dir")).unwrap_or_default()
            == "notes de la direction",
        &out,
    );
    // ... which does not exist for a member who may not read it today.
    let (ok, out) = smb(
        &alice,
        password,
        &format!("get {new}/Direction/notes.txt {got_s}.alice"),
    );
    // smbd refuses it from the share's rights of today before it reaches the snapshot; on the
    // mount itself, the folder does not exist for her.
    let status = nt_status(&out).unwrap_or("").to_string();
    let on_mount = a
        .sh_as(
            "alice",
            &format!("ls '{}'", versions.join(&new).join("Direction").display()),
        )
        .1;
    r.step(
        "7. a file in a folder she may not read",
        &alice,
        "refused; not there on the mount",
        !ok && [
            "NT_STATUS_ACCESS_DENIED",
            "NT_STATUS_OBJECT_PATH_NOT_FOUND",
            "NT_STATUS_OBJECT_NAME_NOT_FOUND",
        ]
        .contains(&status.as_str())
            && !d.join("got.txt.alice").exists()
            && on_mount.contains("No such file or directory"),
        &format!("{out} / {}", on_mount.trim()),
    );
    let (ok, out) = smb(
        &eve,
        password,
        &format!("allinfo {new}/Tarifs/grille-2026.csv"),
    );
    r.step(
        "7. Previous Versions of the price list",
        &eve,
        "refused (ACCESS_DENIED)",
        denied(ok, &out),
        &out,
    );
    // Forgotten snapshots leave the list, without restarting anything.
    ctl(&repo, &["forget", "--keep-last", "1"]).ok();
    let start = Instant::now();
    let mut after;
    loop {
        after = listed(
            &smb(
                &alice,
                password,
                "allinfo Propositions/proposition-dupont.docx",
            )
            .1,
        );
        if !after.contains(&old) || start.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    r.step(
        "7. after forget --keep-last 1",
        &alice,
        "only the newest version listed",
        after == [new.clone()],
        &format!("{} version(s): {}", after.len(), after.join(" ")),
    );

    // SIGTERM: sharekeepd stops and unmounts the Previous Versions.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = daemon.0.wait().unwrap();
    let mounted = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!(" {} ", versions.display()));
    r.step(
        "8. sharekeepd stops (SIGTERM)",
        "sharekeepd",
        "exits 0, Previous Versions unmounted",
        stopped.success() && !mounted,
        &format!("{stopped:?}, mounted: {mounted}"),
    );

    let report_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports");
    fs::create_dir_all(&report_dir).unwrap();
    let report = format!(
        "# Compte rendu des tests — partage commercial sur SMB\n\nsmbd {} on 127.0.0.1:{}, policy `policies/examples/commercial.toml`.\n\n| step | user | expected | observed |\n|---|---|---|---|\n{}",
        String::from_utf8_lossy(&Command::new("smbd").arg("--version").output().map(|o| o.stdout).unwrap_or_default()).trim(),
        smbd.port,
        r.rows
    );
    let path = report_dir.join("samba-scenario.md");
    fs::write(&path, &report).unwrap();
    eprintln!("test report: {}\n{report}", path.display());
    assert!(
        r.failures.is_empty(),
        "{} step(s) failed:\n{}\n\n{report}",
        r.failures.len(),
        r.failures.join("\n")
    );
}
