//! The share that defends itself: an attacker simulated as a real member over the real smbd
//! (`smbclient`) rewrites the scale-0.05 department folder with random bytes, renames each
//! file to `*.locked` and drops a ransom note in each folder; sharekeepd's guard sees it
//! through fanotify, attributes it to that member, and takes their write away. A working day
//! of edits at full speed raises nothing.

use crate::daemon::{eventually, Daemon, PATIENCE};
use sharekeep_tests::dataset;
use sharekeep_tests::servers::{nt_status, Smbd};
use sharekeep_tests::users::Accounts;
use sharekeep_tests::{bin, example_commercial, open_scratch};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "Mot-de-passe-1";

/// The department's share (the scale-0.05 folder in Propositions, where members write),
/// its policy with `[guard]` in `dir/policies`.
fn department(a: &Accounts, dir: &Path) -> PathBuf {
    let share = dir.join("commercial");
    fs::create_dir_all(share.join("Tarifs")).unwrap();
    dataset::create(&share.join("Propositions"), 0.05, 91).unwrap();
    fs::create_dir_all(dir.join("policies")).unwrap();
    let mut policy = example_commercial(a, &share, &dir.join("repo"));
    if !policy.contains("[guard]") {
        policy += "\n[guard]\n";
    }
    fs::write(dir.join("policies/commercial.toml"), policy).unwrap();
    share
}

fn guard_status(d: &Daemon) -> serde_json::Value {
    let r = d.ctl(&["guard", "status", "--share", "commercial", "--json"]);
    assert!(r.code == 0 || r.code == 3, "{}{}", r.stdout, r.stderr);
    r.json()
}

/// Waits until the guard watches the share and the rights were applied once.
fn ready(d: &Daemon) {
    eventually("the guard watching", PATIENCE, || {
        guard_status(d)["watching"] == "fanotify"
    });
    eventually("the first reconcile", PATIENCE, || {
        d.ctl(&["status", "--json"]).json()[0]["last_reconcile"].is_string()
    });
}

/// Paths that can be quoted in an smbclient or sh command line as they are.
fn quotable(files: Vec<PathBuf>) -> impl Iterator<Item = PathBuf> {
    files.into_iter().filter(|p| {
        let t = p.to_string_lossy();
        !t.contains(['"', '\'', ';', '\\'])
    })
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = dataset::Rng::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn a_member_encrypting_the_share_over_smb_is_locked_out_within_seconds() {
    let a = Accounts::department();
    let tmp = open_scratch();
    let d = tmp.path();
    let share = department(&a, d);
    let props = share.join("Propositions");
    let originals: Vec<(PathBuf, Vec<u8>)> = quotable(dataset::all_files(&props).unwrap())
        .take(500)
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    assert_eq!(originals.len(), 500);

    fs::create_dir_all(d.join("samba")).unwrap();
    let include = d.join("samba/sharekeep.conf");
    let export = Command::new(bin("sharekeepctl"))
        .args(["samba", "export"])
        .arg(d.join("policies/commercial.toml"))
        .arg("-o")
        .arg(&include)
        .output()
        .unwrap();
    assert!(export.status.success());
    let users: Vec<String> = ["adjoint", "alice", "bob", "eve"]
        .iter()
        .map(|u| a.name(u))
        .collect();
    let smbd = Smbd::start(d, &include, &users, PASSWORD);
    let alerts = d.join("alerts.jsonl");
    let daemon = Daemon::start_with(
        d,
        Some(&format!(
            "samba_manage = true\nsamba_include = {:?}\nsamba_conf = {:?}\n[alerts]\ncommand = \"cat >> {}\"\ncheck_every_secs = 1\n",
            include.display().to_string(),
            smbd.conf.display().to_string(),
            alerts.display()
        )),
    );
    ready(&daemon);
    let (alice, bob) = (a.name("alice"), a.name("bob"));
    let smb = |user: &str, commands: &str| smbd.client("commercial", user, PASSWORD, commands);
    let local = |name: &str, data: &[u8]| {
        let f = d.join(name);
        fs::write(&f, data).unwrap();
        f.display().to_string()
    };
    // Last night's backup: the one the guard pins.
    let night = daemon.ctl(&["backup", "--share", "commercial", "--json"]);
    assert_eq!(night.code, 0, "{}{}", night.stdout, night.stderr);
    let night_time = night.json()["time"].as_str().unwrap().to_string();
    // Positive control: alice writes in Propositions before the attack.
    let before = local("before.txt", b"un devis de plus");
    let (ok, out) = smb(
        &alice,
        &format!("put \"{before}\" \"Propositions/avant.txt\""),
    );
    assert!(ok, "alice may write before the attack: {out}");

    // The attack: 10 files per connection, as fast as smbclient goes.
    let payload = local("payload.bin", &random_bytes(64 * 1024, 5));
    let note = local(
        "note.txt",
        b"Vos fichiers sont chiffres. Payez pour les recuperer.\n",
    );
    let mut noted = std::collections::HashSet::new();
    let start = Instant::now();
    let mut stopped = None;
    for chunk in originals.chunks(10) {
        let mut cmds = String::new();
        for (p, _) in chunk {
            let rel = p.strip_prefix(&share).unwrap().display().to_string();
            cmds += &format!("put \"{payload}\" \"{rel}\"; rename \"{rel}\" \"{rel}.locked\"; ");
            let folder = Path::new(&rel).parent().unwrap().display().to_string();
            if noted.insert(folder.clone()) {
                cmds += &format!("put \"{note}\" \"{folder}/LISEZ-MOI-RANCON.txt\"; ");
            }
        }
        let (ok, out) = smb(&alice, &cmds);
        if !ok {
            assert_eq!(
                nt_status(&out),
                Some("NT_STATUS_ACCESS_DENIED"),
                "a refusal, not another failure: {out}"
            );
            stopped = Some(start.elapsed());
            break;
        }
    }
    let stopped = stopped.expect("the attacker was never stopped");
    let damaged = originals
        .iter()
        .filter(|(p, data)| fs::read(p).ok().as_ref() != Some(data))
        .count();
    eprintln!("guard: attacker refused after {stopped:?}, {damaged} of 500 files damaged");
    assert!(stopped < Duration::from_secs(5), "locked after {stopped:?}");
    assert!(damaged < 100, "{damaged} files damaged before the lock");
    assert!(damaged > 0, "the attack did start");

    // The member's next write is refused over SMB; she may still read; bob still writes.
    let (ok, out) = smb(
        &alice,
        &format!("put \"{before}\" \"Propositions/apres.txt\""),
    );
    assert!(
        !ok && nt_status(&out) == Some("NT_STATUS_ACCESS_DENIED"),
        "{out}"
    );
    assert!(!props.join("apres.txt").exists());
    let got = d.join("got.txt");
    let (ok, out) = smb(
        &alice,
        &format!("get \"Propositions/avant.txt\" \"{}\"", got.display()),
    );
    assert!(ok, "alice still reads: {out}");
    let (ok, out) = smb(&bob, &format!("put \"{before}\" \"Propositions/bob.txt\""));
    assert!(ok, "bob still writes: {out}");

    // status (red words), the guard's record, the alert.
    let status = daemon.ctl(&["status"]);
    assert_eq!(status.code, 3, "a lock is a warning: {}", status.stdout);
    assert!(
        status
            .stdout
            .contains(&format!("LOCKED: write taken away from {alice}")),
        "{}",
        status.stdout
    );
    let g = guard_status(&daemon);
    assert_eq!(g["locks"][0]["user"], alice.as_str(), "{g}");
    let incident = &g["incidents"][0];
    assert_eq!(incident["user"], alice.as_str(), "{g}");
    assert_eq!(incident["locked"], true);
    assert!(incident["examples"].as_array().unwrap().len() >= 3, "{g}");
    let id = incident["id"].as_str().unwrap().to_string();
    let record =
        fs::read_to_string(d.join("state/guard/commercial").join(format!("{id}.jsonl"))).unwrap();
    assert!(record.contains(".locked"), "the renames are recorded");
    eventually("the share_locked alert", PATIENCE, || {
        fs::read_to_string(&alerts)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("\"share_locked\"") && l.contains(&alice))
    });

    // The last good snapshot is pinned (tag guard: retention keeps it), and the damage is
    // backed up apart (tag incident).
    let snapshots = || {
        daemon
            .ctl(&["snapshots", "--share", "commercial", "--json"])
            .json()
            .as_array()
            .unwrap()
            .clone()
    };
    let tagged = |list: &[serde_json::Value], tag: &str| {
        list.iter()
            .filter(|s| {
                s["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == tag))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    eventually("the incident backup", PATIENCE, || {
        !tagged(&snapshots(), "incident").is_empty()
    });
    let list = snapshots();
    let pinned = tagged(&list, "guard");
    assert_eq!(pinned.len(), 1, "{list:?}");
    assert_eq!(
        pinned[0]["time"],
        night_time.as_str(),
        "the night's snapshot is the one pinned"
    );
    assert_eq!(
        guard_status(&daemon)["incidents"][0]["pinned"],
        pinned[0]["id"],
        "the incident names it"
    );
    let forget = daemon.ctl(&["forget", "--share", "commercial", "--dry-run", "--json"]);
    assert!(
        forget.stdout.contains("pinned by the guard"),
        "{}{}",
        forget.stdout,
        forget.stderr
    );

    // Meanwhile bob puts his own version of a file the attack renamed away: the rollback
    // leaves it as he left it.
    let (kept, _) = originals
        .iter()
        .find(|(p, _)| !p.exists())
        .expect("a file renamed by the attack");
    let kept_rel = kept.strip_prefix(&share).unwrap().display().to_string();
    let bobs = local("bobs.txt", b"la version de bob, refaite de memoire");
    let (ok, out) = smb(&bob, &format!("put \"{bobs}\" \"{kept_rel}\""));
    assert!(ok, "bob writes his version: {out}");

    // rollback: members may not; a dry run changes nothing; then the incident is undone.
    let rollback = |extra: &[&str]| {
        let mut args = vec!["rollback", "--share", "commercial", "--incident", &id];
        args.extend_from_slice(extra);
        daemon.ctl(&args)
    };
    let (ok, out) = a.sh_as(
        "bob",
        &format!(
            "{} --socket {} rollback --share commercial --incident {id}",
            bin("sharekeepctl").display(),
            daemon.socket.display()
        ),
    );
    assert!(!ok && out.contains("only root and the admins"), "{out}");
    let debris_list = || {
        dataset::all_files(&share)
            .unwrap()
            .into_iter()
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.ends_with(".locked") || n == "LISEZ-MOI-RANCON.txt"
            })
            .collect::<Vec<_>>()
    };
    let locked_copies = || debris_list().len();
    let debris = locked_copies();
    assert!(debris > damaged, "copies and notes are there: {debris}");
    let dry = rollback(&["--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    let plan = dry.json();
    assert_eq!(plan["snapshot"], pinned[0]["id"], "{plan}");
    let step = |path: &str| {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("no step for {path}: {plan}"))
    };
    assert_eq!(step(&kept_rel)["action"], "leave", "{plan}");
    assert_eq!(step(&format!("{kept_rel}.locked"))["action"], "remove");
    assert_eq!(plan["restore"], damaged - 1, "{plan}");
    assert_eq!(locked_copies(), debris, "a dry run changes nothing");
    let done = rollback(&["--json"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let result = done.json();
    eprintln!("rollback: {result}");
    for (p, data) in &originals {
        if p == kept {
            assert_eq!(
                fs::read(p).unwrap(),
                fs::read(&bobs).unwrap(),
                "bob's version kept"
            );
        } else {
            assert!(
                fs::read(p).ok().as_ref() == Some(data),
                "{} brought back byte for byte",
                p.display()
            );
        }
    }
    assert!(
        debris_list().is_empty(),
        "every .locked copy and every note removed: {:?} left; {result}\n{}",
        debris_list(),
        daemon.log()
    );
    assert!(props.join("bob.txt").exists(), "bob's own file untouched");
    let pre = result["pre_restore"]
        .as_str()
        .expect("a pre-restore snapshot");
    assert!(
        tagged(&snapshots(), "pre-restore")
            .iter()
            .any(|s| s["id"] == pre),
        "what was replaced or removed is kept"
    );
    assert!(guard_status(&daemon)["incidents"][0]["rolled_back"].is_string());
    let text = rollback(&["--dry-run"]);
    assert!(
        text.stdout.contains(&format!("leave   {kept_rel}")),
        "bob's version is still left alone: {}",
        text.stdout
    );

    // A member may not release; an admin (root here) gives write back.
    let (ok, out) = a.sh_as(
        "bob",
        &format!(
            "{} --socket {} guard release --share commercial",
            bin("sharekeepctl").display(),
            daemon.socket.display()
        ),
    );
    assert!(!ok && out.contains("only root and the admins"), "{out}");
    let released = daemon.ctl(&[
        "guard",
        "release",
        "--share",
        "commercial",
        "--user",
        &alice,
    ]);
    assert_eq!(released.code, 0, "{}{}", released.stdout, released.stderr);
    eventually("alice writes again", PATIENCE, || {
        smb(
            &alice,
            &format!("put \"{before}\" \"Propositions/apres.txt\""),
        )
        .0
    });
    assert!(guard_status(&daemon)["incidents"][0]["released"].is_string());
}

#[test]
fn a_working_day_of_edits_at_full_speed_raises_nothing() {
    let a = Accounts::department();
    let tmp = open_scratch();
    let d = tmp.path();
    let share = department(&a, d);
    let daemon = Daemon::start(d);
    ready(&daemon);
    // The assistant (the share's owner) works through a day at full speed.
    let props = share.join("Propositions");
    let (ok, out) = a.sh_as(
        "adjoint",
        &format!(
            "{} edit '{}' --round 1",
            bin("sk-dataset").display(),
            props.display()
        ),
    );
    assert!(ok, "{out}");
    // Positive control, after the day in the same event stream: bob renames 30 documents to
    // one new extension (20 trigger). When his incident is recorded, the day was seen whole.
    let files: Vec<PathBuf> = quotable(dataset::all_files(&props).unwrap())
        .take(30)
        .collect();
    let script: String = files
        .iter()
        .map(|p| format!("mv '{}' '{}.crypt'; ", p.display(), p.display()))
        .collect();
    // (The last ones may be refused already: the lock can come before the 30th.)
    a.sh_as("bob", &script);
    eventually("bob's incident", PATIENCE, || {
        !guard_status(&daemon)["incidents"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let g = guard_status(&daemon);
    let incidents = g["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "the day raised nothing: {g}");
    assert_eq!(incidents[0]["user"], a.name("bob").as_str(), "{g}");
    assert!(
        incidents[0]["reason"]
            .as_str()
            .unwrap()
            .contains("renamed to .crypt"),
        "{g}"
    );
}

/// The rollback benchmark (`bench/rollback.sh` runs it on the release binaries): a member (a
/// local process as them) rewrites every file of a folder of `SK_ROLLBACK_FILES` small files
/// (default 10,000) with random bytes and renames it to `*.locked`, a note in each folder,
/// with `action = "alert"` so that the attack runs to its end and every change is in the
/// incident. The incident is then rolled back (timed; target ≤ 10 s) and every file checked
/// byte for byte. For scale, restic 0.14 restores the same folder from its own backup into
/// an empty one (what a restic user starts with, before sorting damaged from intact by hand).
#[test]
#[ignore = "a benchmark: bench/rollback.sh"]
fn rollback_benchmark() {
    let files: u64 = std::env::var("SK_ROLLBACK_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let slow = Duration::from_secs(600);
    let a = Accounts::department();
    let tmp = open_scratch();
    let d = tmp.path();
    let share = d.join("commercial");
    fs::create_dir_all(share.join("Tarifs")).unwrap();
    let props = share.join("Propositions");
    dataset::create_small(&props, files, 17).unwrap();
    fs::create_dir_all(d.join("policies")).unwrap();
    let policy = example_commercial(&a, &share, &d.join("repo"))
        .replace("[guard]", "[guard]\naction = \"alert\"");
    fs::write(d.join("policies/commercial.toml"), policy).unwrap();
    let originals: Vec<(PathBuf, Vec<u8>)> = dataset::all_files(&props)
        .unwrap()
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    let daemon = Daemon::start(d);
    ready(&daemon);
    let night = daemon.ctl(&["backup", "--share", "commercial"]);
    assert_eq!(night.code, 0, "{}{}", night.stdout, night.stderr);
    // restic's backup of the same folder, for the comparison.
    let restic_repo = d.join("restic");
    let restic = |args: &[&str]| {
        let out = Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", &restic_repo)
            .env("RESTIC_PASSWORD", "bench")
            .output()
            .expect("restic");
        assert!(out.status.success(), "restic {args:?}: {out:?}");
    };
    restic(&["init", "-q"]);
    restic(&["backup", "-q", &props.display().to_string()]);

    let attack = format!(
        r#"python3 - '{}' <<'PY'
import os, sys
for folder, _, names in os.walk(sys.argv[1]):
    for n in names:
        p = os.path.join(folder, n)
        with open(p, 'wb') as f:
            f.write(os.urandom(4096))
        os.rename(p, p + '.locked')
    with open(os.path.join(folder, 'LISEZ-MOI-RANCON.txt'), 'w') as f:
        f.write('Payez.\n')
PY"#,
        props.display()
    );
    let t = Instant::now();
    let (ok, out) = a.sh_as("alice", &attack);
    assert!(ok, "{out}");
    eprintln!(
        "attack: {} files rewritten and renamed in {:.2} s",
        originals.len(),
        t.elapsed().as_secs_f64()
    );
    let changes = 2 * originals.len() as u64;
    eventually(
        "every change in the incident, the pin and the incident backup",
        slow,
        || {
            let g = guard_status(&daemon);
            let i = &g["incidents"][0];
            i["changes"].as_u64().unwrap_or(0) >= changes
                && i["pinned"].is_string()
                && daemon
                    .ctl(&["snapshots", "--share", "commercial", "--json"])
                    .stdout
                    .contains("\"incident\"")
        },
    );
    let id = guard_status(&daemon)["incidents"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let t = Instant::now();
    let dry = daemon.ctl(&[
        "rollback",
        "--share",
        "commercial",
        "--incident",
        &id,
        "--dry-run",
        "--json",
    ]);
    let planned = t.elapsed();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    let t = Instant::now();
    let done = daemon.ctl(&[
        "rollback",
        "--share",
        "commercial",
        "--incident",
        &id,
        "--json",
    ]);
    let took = t.elapsed();
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let r = done.json();
    for (p, data) in &originals {
        assert!(
            fs::read(p).ok().as_ref() == Some(data),
            "{} brought back",
            p.display()
        );
    }
    let debris = dataset::all_files(&props).unwrap().len() - originals.len();
    assert_eq!(debris, 0, "no copy nor note left");

    let target = d.join("restic-restore");
    let t = Instant::now();
    restic(&[
        "restore",
        "-q",
        "latest",
        "--target",
        &target.display().to_string(),
    ]);
    let restic_took = t.elapsed();
    eprintln!(
        "rollback: {} files: {} brought back, {} removed in {:.2} s (plan alone, dry run: {:.2} s; target <= 10 s); restic restore of the folder into an empty one: {:.2} s; ratio {:.2}x",
        originals.len(),
        r["restore"],
        r["remove"],
        took.as_secs_f64(),
        planned.as_secs_f64(),
        restic_took.as_secs_f64(),
        took.as_secs_f64() / restic_took.as_secs_f64()
    );
}

/// Where fanotify is refused (forced here with `guard_watch = "inotify"`), the guard counts
/// with inotify, which cannot tell who writes: a limit reached makes the whole share
/// read-only, for the member who attacked and everyone else. Given write back, the share is
/// judged again: the service's own writes (a rollback removing more files than the deletion
/// limit) are not counted, a member's deletions are.
#[test]
fn without_fanotify_inotify_counts_and_a_limit_locks_the_whole_share() {
    let a = Accounts::department();
    let tmp = open_scratch();
    let d = tmp.path();
    let share = department(&a, d);
    let file = d.join("policies/commercial.toml");
    let policy = fs::read_to_string(&file)
        .unwrap()
        .replace("[guard]", "[guard]\ndeletions_per_minute = 10");
    fs::write(&file, policy).unwrap();
    let daemon = Daemon::start_with(d, Some("guard_watch = \"inotify\"\n"));
    eventually("the guard watching with inotify", PATIENCE, || {
        guard_status(&daemon)["watching"]
            .as_str()
            .is_some_and(|w| w.starts_with("inotify"))
    });
    eventually("the first reconcile", PATIENCE, || {
        daemon.ctl(&["status", "--json"]).json()[0]["last_reconcile"].is_string()
    });
    let night = daemon.ctl(&["backup", "--share", "commercial"]);
    assert_eq!(night.code, 0, "{}{}", night.stdout, night.stderr);
    let props = share.join("Propositions");
    let write = |who: &str, name: &str| {
        a.sh_as(who, &format!("echo x > '{}'", props.join(name).display()))
            .0
    };
    let files: Vec<(PathBuf, Vec<u8>)> = quotable(dataset::all_files(&props).unwrap())
        .take(30)
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    assert!(write("bob", "bob-avant.txt"), "bob writes before");

    // alice renames 30 documents to one new extension (20 trigger).
    let script: String = files
        .iter()
        .map(|(p, _)| format!("mv '{}' '{}.crypt'; ", p.display(), p.display()))
        .collect();
    a.sh_as("alice", &script);
    eventually("the whole share locked", PATIENCE, || {
        !write("bob", "bob-pendant.txt")
    });
    assert!(!write("alice", "alice-pendant.txt"), "alice too");
    let g = guard_status(&daemon);
    assert!(g["locks"][0]["user"].is_null(), "everyone: {g}");
    assert!(g["incidents"][0]["user"].is_null(), "{g}");
    let status = daemon.ctl(&["status"]);
    assert_eq!(status.code, 3, "{}", status.stdout);
    let id = g["incidents"][0]["id"].as_str().unwrap().to_string();

    // Write given back; then the rollback removes the 30 copies (more than the 10 deletions
    // a minute allowed): the service's own writes, not counted.
    let released = daemon.ctl(&["guard", "release", "--share", "commercial"]);
    assert_eq!(released.code, 0, "{}{}", released.stdout, released.stderr);
    eventually("bob writes again", PATIENCE, || {
        write("bob", "bob-apres.txt")
    });
    let done = daemon.ctl(&["rollback", "--share", "commercial", "--incident", &id]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    for (p, data) in &files {
        assert!(
            fs::read(p).ok().as_ref() == Some(data),
            "{} back",
            p.display()
        );
        assert!(!Path::new(&format!("{}.crypt", p.display())).exists());
    }
    // Positive control: a member deleting files is counted again (until an incident).
    let victims: Vec<PathBuf> = quotable(dataset::all_files(&props).unwrap())
        .filter(|p| !p.to_string_lossy().ends_with(".txt"))
        .skip(100)
        .collect();
    let mut next = victims.iter();
    eventually("a second incident, for the deletions", PATIENCE, || {
        let batch: String = next
            .by_ref()
            .take(11)
            .map(|p| format!("rm -f '{}'; ", p.display()))
            .collect();
        a.sh_as("alice", &batch);
        guard_status(&daemon)["incidents"].as_array().unwrap().len() >= 2
    });
    let g = guard_status(&daemon);
    let incidents = g["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2, "the rollback raised nothing: {g}");
    assert!(
        incidents[1]["reason"].as_str().unwrap().contains("deleted"),
        "{g}"
    );
    assert!(
        !incidents[1]["examples"].to_string().contains(".crypt"),
        "not the rollback's removals: {g}"
    );
}
