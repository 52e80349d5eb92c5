//! Members helping themselves through the real `sharekeepd`, within today's rights, and the
//! daemon's trust boundary: every check runs `sharekeepctl` as a real user (`setpriv`), and
//! every refusal has its positive control.

use crate::daemon::{eventually, Daemon};
use sharekeep_tests::users::Accounts;
use sharekeep_tests::{bin, open_scratch};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The department: `adjoint` owns the share; `@team` (member, other) reads everything and
/// writes `Propositions` (which `outsider` may read until the policy changes); `Paie` is for
/// `paie` alone; `@admins` (admin) manage it; `stranger` is named nowhere.
struct Dept {
    a: Accounts,
    dir: tempfile::TempDir,
    share: PathBuf,
    d: Daemon,
}

fn policy_text(a: &Accounts, share: &Path, repo: &Path, extra_reader: Option<&str>) -> String {
    let extra = extra_reader
        .map(|u| format!(", \"{}\"", a.name(u)))
        .unwrap_or_default();
    format!(
        r#"[share]
name = "dept"
path = {share:?}
owner = "{adjoint}"
group = "{team}"
admins = ["@{admins}"]

[access]
read = ["@{team}", "@{admins}"]
write = ["{adjoint}"]

[[rule]]
path = "Propositions"
read = ["@{team}"{extra}]
write = ["@{team}"]

[[rule]]
path = "Propositions/Archives"
read = ["@{team}"]
write = ["{adjoint}"]

[[rule]]
path = "Paie"
read = ["{paie}"]
write = ["{adjoint}"]

[backup]
schedule = "0 0 0 1 1 *"
repository = {repo:?}
keep = {{ last = 50 }}
"#,
        share = share.display().to_string(),
        repo = repo.display().to_string(),
        adjoint = a.name("adjoint"),
        team = a.name("team"),
        admins = a.name("admins"),
        paie = a.name("paie"),
    )
}

impl Dept {
    fn new() -> Dept {
        let mut a = Accounts::new();
        a.group("team");
        a.group("admins");
        a.user("adjoint", &["team"]);
        a.user("member", &["team"]);
        a.user("other", &["team"]);
        a.user("paie", &[]);
        a.user("admin", &["admins"]);
        a.user("outsider", &[]);
        a.user("stranger", &[]);
        let dir = open_scratch();
        let share = dir.path().join("share");
        for d in ["Propositions/Archives", "Tarifs", "Paie"] {
            fs::create_dir_all(share.join(d)).unwrap();
        }
        fs::create_dir_all(dir.path().join("policies")).unwrap();
        let repo = dir.path().join("repo");
        fs::write(
            dir.path().join("policies/dept.toml"),
            policy_text(&a, &share, &repo, Some("outsider")),
        )
        .unwrap();
        let d = Daemon::start(dir.path());
        let s = share.display().to_string();
        eventually("the initial reconcile", crate::daemon::PATIENCE, || {
            a.sh_as("member", &format!("ls '{s}/Tarifs'")).0
        });
        Dept { a, dir, share, d }
    }

    /// Writes a file as root with mode 600 (the service's rights fix it within a second).
    fn put(&self, rel: &str, content: &str) {
        let p = self.share.join(rel);
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// `sharekeepctl ARGS` as `who` through the daemon: (success, stdout+stderr).
    fn ctl_as(&self, who: &str, args: &str) -> (bool, String) {
        self.a.sh_as(
            who,
            &format!(
                "{} --socket '{}' {args}",
                bin("sharekeepctl").display(),
                self.d.socket.display()
            ),
        )
    }

    fn backup(&self) -> String {
        let r = self.d.ctl(&["backup", "--share", "dept", "--json"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        r.json()["id"].as_str().unwrap()[..8].to_string()
    }

    /// A private folder of `who` (mode 700), as their home would be.
    fn home_of(&self, who: &str) -> PathBuf {
        let h = self.dir.path().join(format!("home-{who}"));
        fs::create_dir_all(&h).unwrap();
        let uid = self.a.uid(who);
        nix::unistd::chown(&h, Some(uid.into()), None).unwrap();
        fs::set_permissions(&h, fs::Permissions::from_mode(0o700)).unwrap();
        h
    }
}

fn owner_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().uid()
}

#[test]
fn member_restores_in_place_where_they_may_write_with_todays_rights() {
    let t = Dept::new();
    let file = t.share.join("Propositions/offre.docx");
    t.put("Propositions/offre.docx", "offre v1");
    let s = t.share.display().to_string();
    // Rights of the first snapshot: `outsider` may read Propositions (policy v1).
    eventually("outsider reads v1", crate::daemon::PATIENCE, || {
        t.a.sh_as("outsider", &format!("cat '{s}/Propositions/offre.docx'"))
            .0
    });
    let first = t.backup();
    // The policy changes: outsider loses access.
    fs::write(
        t.dir.path().join("policies/dept.toml"),
        policy_text(&t.a, &t.share, &t.dir.path().join("repo"), None),
    )
    .unwrap();
    assert_eq!(t.d.ctl(&["reload"]).code, 0);
    eventually("outsider loses access", crate::daemon::PATIENCE, || {
        !t.a.sh_as("outsider", &format!("cat '{s}/Propositions/offre.docx'"))
            .0
    });
    // The member overwrites the proposal by mistake, then finds and restores it.
    let (ok, out) = t.a.sh_as(
        "member",
        &format!("echo 'oops, overwritten' > '{s}/Propositions/offre.docx'"),
    );
    assert!(ok, "member may write Propositions: {out}");
    t.backup();
    let (ok, out) = t.ctl_as("member", "versions --share dept Propositions/offre.docx");
    assert!(ok && out.contains(&first), "{out}");
    let (ok, out) = t.ctl_as(
        "member",
        &format!("restore --share dept {first} Propositions/offre.docx --json"),
    );
    assert!(ok, "{out}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "offre v1");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pre = json["pre_restore"]
        .as_str()
        .expect("a pre-restore snapshot");
    assert!(json["rights_applied"].as_u64().unwrap_or(0) >= 1, "{json}");
    // What it replaced is kept, and the member may see it.
    let (ok, out) = t.ctl_as("member", "snapshots --share dept --json");
    assert!(
        ok && out.contains(pre) && out.contains("pre-restore"),
        "{out}"
    );
    // Today's rights: the share's owner, the team may write, the outsider (named in the
    // snapshot's time) may not read.
    assert_eq!(owner_of(&file), t.a.uid("adjoint"));
    assert!(
        t.a.sh_as(
            "other",
            &format!("echo more >> '{s}/Propositions/offre.docx'")
        )
        .0
    );
    let (ok, out) =
        t.a.sh_as("outsider", &format!("cat '{s}/Propositions/offre.docx'"));
    assert!(!ok, "rights removed since came back: {out}");
}

/// A member's restore that comes while the repository is held alone (the nightly
/// retention, a prune) waits for it to be let go instead of failing.
#[test]
fn a_members_restore_waits_while_the_repository_is_held_alone() {
    let t = Dept::new();
    let file = t.share.join("Propositions/offre.docx");
    t.put("Propositions/offre.docx", "offre v1");
    let first = t.backup();
    fs::write(&file, "oops").unwrap();
    // A live process's exclusive lock, as the service's retention holds one.
    let mut holder = Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(
        t.dir.path().join("repo/locks/retention"),
        sharekeep_tests::lock_file(holder.id(), "exclusive", "forget"),
    )
    .unwrap();
    std::thread::scope(|s| {
        let restore = s.spawn(|| {
            t.ctl_as(
                "member",
                &format!("restore --share dept {first} Propositions/offre.docx"),
            )
        });
        eventually("the restore waiting", crate::daemon::PATIENCE, || {
            t.d.log()
                .contains("waits up to 60 s for the repository: an exclusive lock held by `forget`")
        });
        assert!(!restore.is_finished(), "it waits");
        assert_eq!(fs::read_to_string(&file).unwrap(), "oops");
        // The retention ends (its process is gone: its lock is stale).
        holder.kill().unwrap();
        holder.wait().unwrap();
        let (ok, out) = restore.join().unwrap();
        assert!(ok, "{out}");
    });
    assert_eq!(fs::read_to_string(&file).unwrap(), "offre v1");
}

#[test]
fn member_is_refused_in_place_in_a_read_only_folder_but_gets_a_copy_of_their_own() {
    let t = Dept::new();
    let file = t.share.join("Tarifs/grille.csv");
    t.put("Tarifs/grille.csv", "tarifs 2025");
    let first = t.backup();
    t.put("Tarifs/grille.csv", "tarifs 2026, new");
    t.backup();
    // Positive control: an admin may restore it in place (not done; dry run).
    let (ok, out) = t.ctl_as(
        "admin",
        &format!("restore --share dept {first} Tarifs/grille.csv --dry-run"),
    );
    assert!(ok && out.contains("replace"), "{out}");
    // The member may read but not write Tarifs: refused, naming the right, nothing changed.
    let (ok, out) = t.ctl_as(
        "member",
        &format!("restore --share dept {first} Tarifs/grille.csv"),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("you may read but not write `Tarifs/grille.csv`: restore a copy with --to"),
        "{out}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "tarifs 2026, new");
    // A copy into their home: theirs.
    let home = t.home_of("member");
    let (ok, out) = t.ctl_as(
        "member",
        &format!(
            "restore --share dept {first} Tarifs/grille.csv --to '{}'",
            home.display()
        ),
    );
    assert!(ok, "{out}");
    let copy = home.join("Tarifs/grille.csv");
    assert_eq!(fs::read_to_string(&copy).unwrap(), "tarifs 2025");
    assert_eq!(owner_of(&copy), t.a.uid("member"));
    assert_eq!(owner_of(&home.join("Tarifs")), t.a.uid("member"));
    // No ACL of the share came with it.
    let acl = Command::new("getfacl")
        .args(["-c", "--omit-header"])
        .arg(&copy)
        .output()
        .unwrap();
    let acl = String::from_utf8_lossy(&acl.stdout);
    let named = acl
        .lines()
        .any(|l| l.split(':').nth(1).is_some_and(|who| !who.is_empty()) && !l.starts_with('#'));
    assert!(!named, "the share's ACL came with the copy:\n{acl}");
    // Again: the existing copy differs (it was edited), so it is kept aside, never lost.
    fs::write(&copy, "my notes").unwrap();
    let (ok, out) = t.ctl_as(
        "member",
        &format!(
            "restore --share dept {first} Tarifs/grille.csv --to '{}'",
            home.display()
        ),
    );
    assert!(ok && out.contains("kept the previous"), "{out}");
    assert_eq!(fs::read_to_string(&copy).unwrap(), "tarifs 2025");
    let kept: Vec<_> = fs::read_dir(home.join("Tarifs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("grille.csv.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        fs::read_to_string(home.join("Tarifs").join(&kept[0])).unwrap(),
        "my notes"
    );
}

#[test]
fn member_never_sees_names_they_may_not_read() {
    let t = Dept::new();
    t.put("Tarifs/grille.csv", "tarifs");
    t.put("Paie/bulletin-secret.txt", "salaire 1");
    let first = t.backup();
    t.put("Paie/bulletin-secret.txt", "salaire 2, plus");
    t.put("Tarifs/grille.csv", "tarifs, changed");
    let second = t.backup();
    let secret = ["Paie", "bulletin-secret"];
    // Positive control: the admin sees it all.
    let (ok, out) = t.ctl_as("admin", &format!("ls --share dept {second}"));
    assert!(ok && out.contains("Paie/bulletin-secret.txt"), "{out}");
    let (ok, out) = t.ctl_as("admin", &format!("diff --share dept {first} {second}"));
    assert!(ok && out.contains("Paie/bulletin-secret.txt"), "{out}");
    let (ok, out) = t.ctl_as(
        "paie",
        &format!("cat --share dept {second} Paie/bulletin-secret.txt"),
    );
    assert!(
        ok && out.contains("salaire 2"),
        "the payroll user reads it: {out}"
    );
    // The member: ls, diff, snapshots, versions, cat, restore.
    let (ok, out) = t.ctl_as("member", &format!("ls --share dept {second} -l"));
    assert!(ok && out.contains("Tarifs/grille.csv"), "{out}");
    let (ok2, diff) = t.ctl_as("member", &format!("diff --share dept {first} {second}"));
    assert!(ok2 && diff.contains("Tarifs/grille.csv"), "{diff}");
    let (ok3, snaps) = t.ctl_as("member", "snapshots --share dept --json");
    assert!(ok3, "{snaps}");
    assert!(!snaps.contains("total_bytes"), "{snaps}");
    for text in [&out, &diff] {
        for s in secret {
            assert!(!text.contains(s), "{s} shown to the member:\n{text}");
        }
    }
    let (ok, out) = t.ctl_as("member", "versions --share dept Paie/bulletin-secret.txt");
    assert!(
        !ok && out.contains("you may not read `Paie/bulletin-secret.txt`"),
        "{out}"
    );
    let (ok, out) = t.ctl_as(
        "member",
        &format!("cat --share dept {second} Paie/bulletin-secret.txt"),
    );
    assert!(!ok && !out.contains("salaire"), "{out}");
    let (ok, out) = t.ctl_as(
        "member",
        &format!("cat --share dept {second} Tarifs/grille.csv"),
    );
    assert!(ok && out.contains("tarifs, changed"), "{out}");
    // A copy of everything: only what they may read.
    let home = t.home_of("member");
    let (ok, out) = t.ctl_as(
        "member",
        &format!("restore --share dept {second} --to '{}'", home.display()),
    );
    assert!(ok, "{out}");
    assert!(home.join("Tarifs/grille.csv").exists());
    assert!(home.join("Propositions").is_dir());
    assert!(!home.join("Paie").exists(), "Paie copied for the member");
    // The payroll user's copy of the same: Paie only (the root passes through).
    let home = t.home_of("paie");
    let (ok, out) = t.ctl_as(
        "paie",
        &format!("restore --share dept {second} --to '{}'", home.display()),
    );
    assert!(ok, "{out}");
    assert_eq!(
        fs::read_to_string(home.join("Paie/bulletin-secret.txt")).unwrap(),
        "salaire 2, plus"
    );
    assert!(!home.join("Tarifs").exists());
}

#[test]
fn an_outsider_gets_nothing() {
    let t = Dept::new();
    t.put("Tarifs/grille.csv", "tarifs");
    let first = t.backup();
    let (ok, out) = t.ctl_as("stranger", "status");
    assert!(ok && !out.contains("dept"), "{out}");
    let home = t.home_of("stranger");
    for args in [
        "snapshots --share dept".to_string(),
        "versions --share dept Tarifs/grille.csv".to_string(),
        format!("ls --share dept {first}"),
        format!("cat --share dept {first} Tarifs/grille.csv"),
        format!("diff --share dept {first} {first}"),
        format!("restore --share dept {first} --to '{}'", home.display()),
    ] {
        let (ok, out) = t.ctl_as("stranger", &args);
        assert!(
            !ok && out.contains("not named in share `dept`"),
            "{args}: {out}"
        );
        assert!(!out.contains("grille"), "{args}: {out}");
    }
    assert_eq!(fs::read_dir(&home).unwrap().count(), 0);
    // Positive control: a member is served.
    let (ok, out) = t.ctl_as("member", "snapshots --share dept");
    assert!(ok && out.contains(&first), "{out}");
}

#[test]
fn a_non_root_admins_copy_is_written_with_their_own_rights() {
    let t = Dept::new();
    t.put("Paie/bulletin-secret.txt", "salaire");
    let first = t.backup();
    // A root-only folder (think /etc/cron.hourly), and another share's folder.
    let root_only = t.dir.path().join("cron.hourly");
    fs::create_dir_all(&root_only).unwrap();
    fs::set_permissions(&root_only, fs::Permissions::from_mode(0o700)).unwrap();
    let other_share = t.dir.path().join("other-share");
    fs::create_dir_all(&other_share).unwrap();
    fs::set_permissions(&other_share, fs::Permissions::from_mode(0o750)).unwrap();
    for target in [&root_only, &other_share] {
        let (ok, out) = t.ctl_as(
            "admin",
            &format!(
                "restore --share dept {first} Paie --to '{}'",
                target.display()
            ),
        );
        assert!(!ok && out.contains("Permission denied"), "{out}");
        assert_eq!(
            fs::read_dir(target).unwrap().count(),
            0,
            "{}",
            target.display()
        );
    }
    // A decoy over a root-only file: a snapshot holding a `shadow` of the same name restored
    // over the real one would, as root, first back the victim up. Written as the admin, it
    // cannot even look.
    let etc = t.dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(etc.join("shadow"), "root:$6$victim").unwrap();
    fs::set_permissions(etc.join("shadow"), fs::Permissions::from_mode(0o600)).unwrap();
    t.put("Paie/shadow", "decoy:$6$xxxxx");
    let decoy = t.backup();
    let before = sharekeep_tests::ctl(&t.dir.path().join("repo"), &["snapshots", "--json"])
        .ok()
        .json();
    let (ok, out) = t.ctl_as(
        "admin",
        &format!(
            "restore --share dept {decoy} Paie/shadow --to '{}' --overwrite always",
            etc.display()
        ),
    );
    assert!(!ok && out.contains("Permission denied"), "{out}");
    assert_eq!(
        fs::read_to_string(etc.join("shadow")).unwrap(),
        "root:$6$victim"
    );
    let after = sharekeep_tests::ctl(&t.dir.path().join("repo"), &["snapshots", "--json"])
        .ok()
        .json();
    assert_eq!(
        before, after,
        "no snapshot may have been written of the victim"
    );
    // Positive control: root's own copy there succeeds.
    let r = t.d.ctl(&[
        "restore",
        "--share",
        "dept",
        &first,
        "Paie",
        "--to",
        &root_only.display().to_string(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(root_only.join("Paie/bulletin-secret.txt").exists());
    // The admin's own copy: theirs.
    let home = t.home_of("admin");
    let (ok, out) = t.ctl_as(
        "admin",
        &format!(
            "restore --share dept {first} Paie --to '{}'",
            home.display()
        ),
    );
    assert!(ok, "{out}");
    assert_eq!(
        owner_of(&home.join("Paie/bulletin-secret.txt")),
        t.a.uid("admin")
    );
}

#[test]
fn a_privileged_file_in_a_snapshot_never_comes_back_privileged_for_a_non_root_caller() {
    let t = Dept::new();
    // Root backs up, into the share's repository, a folder holding a setuid-root copy of a
    // program and a root-only secret (what a pre-restore snapshot of root's copy holds).
    let elsewhere = t.dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::copy("/bin/true", elsewhere.join("tool")).unwrap();
    fs::set_permissions(elsewhere.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(elsewhere.join("shadow"), "root:secret").unwrap();
    fs::set_permissions(elsewhere.join("shadow"), fs::Permissions::from_mode(0o600)).unwrap();
    let repo = t.dir.path().join("repo");
    t.backup();
    let snap = sharekeep_tests::ctl(
        &repo,
        &["backup", &elsewhere.display().to_string(), "--json"],
    )
    .ok()
    .json()["id"]
        .as_str()
        .unwrap()[..8]
        .to_string();
    // In place, it would write outside the share: refused for the admin.
    let (ok, out) = t.ctl_as("admin", &format!("restore --share dept {snap}"));
    assert!(
        !ok && out.contains("only root may restore it in place"),
        "{out}"
    );
    assert_eq!(
        fs::metadata(elsewhere.join("tool")).unwrap().mode() & 0o7777,
        0o4755
    );
    // A member does not even see that snapshot.
    let (ok, out) = t.ctl_as("member", &format!("ls --share dept {snap}"));
    assert!(!ok && out.contains("no snapshot"), "{out}");
    // The admin's copy: their own files, without the setuid bit.
    let home = t.home_of("admin");
    let (ok, out) = t.ctl_as(
        "admin",
        &format!("restore --share dept {snap} --to '{}'", home.display()),
    );
    assert!(ok, "{out}");
    let tool = fs::metadata(home.join("tool")).unwrap();
    assert_eq!(tool.uid(), t.a.uid("admin"));
    assert_eq!(
        tool.mode() & 0o6000,
        0,
        "setuid came back: {:o}",
        tool.mode()
    );
    assert_eq!(owner_of(&home.join("shadow")), t.a.uid("admin"));
}

#[test]
fn one_users_idle_connections_never_lock_out_root_or_another_member() {
    let t = Dept::new();
    t.put("Tarifs/grille.csv", "tarifs");
    let first = t.backup();
    let uid = t.a.uid("member");
    let mut holder = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(bin("sk-hold-connections"))
        .arg(&t.d.socket)
        .args(["32", "15"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held 32");
    // Root and another member are still answered while the 32 connections are held.
    let r = t.d.ctl(&["status"]);
    assert!(
        r.code == 0 && r.stdout.contains("share dept"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let (ok, o) = t.ctl_as("other", "snapshots --share dept");
    assert!(ok && o.contains(&first), "{o}");
    // The holder got `busy` beyond its own cap, and its silent connections were closed for
    // not saying hello.
    let words: Vec<String> = out.lines().map(|l| l.unwrap()).collect();
    assert!(holder.wait().unwrap().success());
    let busy = words.iter().filter(|w| *w == "busy").count();
    let timeout = words.iter().filter(|w| *w == "timeout").count();
    assert_eq!(words.len(), 32, "{words:?}");
    assert!(busy >= 28, "{words:?}");
    assert_eq!(busy + timeout, 32, "{words:?}");
}

#[test]
fn an_in_place_restore_touching_a_read_only_folder_below_is_refused_whole() {
    let t = Dept::new();
    t.put("Propositions/offre.docx", "offre v1");
    t.put("Propositions/Archives/2025.docx", "archive v1");
    let first = t.backup();
    t.put("Propositions/offre.docx", "offre v2, longer");
    t.put("Propositions/Archives/2025.docx", "archive v2, longer");
    t.backup();
    // Propositions is writable for the member, its Archives folder is not.
    let (ok, out) = t.ctl_as(
        "member",
        &format!("restore --share dept {first} Propositions"),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("you may read but not write `Propositions/Archives"),
        "{out}"
    );
    let read = |rel: &str| fs::read_to_string(t.share.join(rel)).unwrap();
    assert_eq!(read("Propositions/offre.docx"), "offre v2, longer");
    assert_eq!(
        read("Propositions/Archives/2025.docx"),
        "archive v2, longer"
    );
    // Positive control: the file they may write is restored.
    let (ok, out) = t.ctl_as(
        "member",
        &format!("restore --share dept {first} Propositions/offre.docx"),
    );
    assert!(ok, "{out}");
    assert_eq!(read("Propositions/offre.docx"), "offre v1");
}

#[test]
fn status_shows_each_caller_their_shares_and_problems_only_to_admins() {
    let t = Dept::new();
    // A broken file that never loaded names no one: root only.
    fs::write(
        t.dir.path().join("policies/zz-secret-project.toml"),
        "[share]\nname = \"projet-fusion\"\npath = \"/nonexistent\"\n",
    )
    .unwrap();
    // The department's file breaks: it keeps its last good version, with problems.
    let file = t.dir.path().join("policies/dept.toml");
    let good = fs::read_to_string(&file).unwrap();
    fs::write(&file, format!("{good}\n[oops]\nbad = 1\n")).unwrap();
    assert_eq!(t.d.ctl(&["reload"]).code, 0);
    let r = t.d.ctl(&["status"]);
    assert!(
        r.stdout.contains("projet-fusion"),
        "root sees every file: {}",
        r.stdout
    );
    assert!(r.stdout.contains("oops"), "{}", r.stdout);
    let (_, admin) = t.ctl_as("admin", "status");
    assert!(
        admin.contains("share dept") && admin.contains("oops"),
        "{admin}"
    );
    assert!(!admin.contains("projet-fusion"), "{admin}");
    let (_, member) = t.ctl_as("member", "status");
    assert!(member.contains("share dept"), "{member}");
    for hidden in ["oops", "projet-fusion", "dept.toml"] {
        assert!(
            !member.contains(hidden),
            "{hidden} shown to a member:\n{member}"
        );
    }
    let (_, stranger) = t.ctl_as("stranger", "status");
    assert!(
        !stranger.contains("dept") && !stranger.contains("projet"),
        "{stranger}"
    );
}
