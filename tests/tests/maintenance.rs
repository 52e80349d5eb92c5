//! Retention, prune, check, repair and locks on real repositories: forget keeps what the rules
//! say, prune frees space and every kept snapshot still restores, damage of every kind is named
//! precisely by `check` while what is undamaged still restores, a full disk leaves the
//! repository consistent, and stale locks never block.

use crate::scratch;
use sharekeep_tests::{ctl, write};
use std::fs;
use std::path::{Path, PathBuf};

fn random(len: usize) -> Vec<u8> {
    let mut f = fs::File::open("/dev/urandom").unwrap();
    let mut v = vec![0u8; len];
    std::io::Read::read_exact(&mut f, &mut v).unwrap();
    v
}

fn id_of(run: &sharekeep_tests::Run) -> String {
    run.json()["id"].as_str().unwrap().to_string()
}

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in fs::read_dir(repo.join("data")).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

fn size_of(dir: &Path) -> u64 {
    packs(dir)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn forget_keeps_what_the_rules_say_and_explains_why() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    for day in 1..=10 {
        write(&src.join("jour.txt"), format!("jour {day}").as_bytes());
        ctl(
            &repo,
            &["backup", s, "--time", &format!("2026-03-{day:02} 18:30")],
        )
        .ok();
    }
    ctl(
        &repo,
        &[
            "backup",
            s,
            "--tag",
            "cloture",
            "--time",
            "2026-03-05 19:00",
        ],
    )
    .ok();
    let err = ctl(&repo, &["forget"]).expect_code(1);
    assert!(
        err.stderr.contains("refusing to remove every snapshot"),
        "{}",
        err.stderr
    );
    let dry = ctl(
        &repo,
        &[
            "forget",
            "--keep-daily",
            "3",
            "--keep-tag",
            "cloture",
            "--dry-run",
            "--json",
        ],
    )
    .ok()
    .json();
    let kept: Vec<&serde_json::Value> = dry
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .collect();
    assert_eq!(kept.len(), 4, "three days and the tagged one: {dry}");
    assert!(kept.iter().any(|d| d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "tag cloture")));
    assert_eq!(
        ctl(&repo, &["snapshots", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        11,
        "dry run removes nothing"
    );
    // The legal floor wins over every rule: nothing younger than N days goes.
    let floor = ctl(
        &repo,
        &[
            "forget",
            "--keep-last",
            "1",
            "--keep-min-days",
            "100000",
            "--json",
        ],
    )
    .ok()
    .json();
    assert!(
        floor.as_array().unwrap().iter().all(|d| d["keep"] == true),
        "{floor}"
    );
    ctl(
        &repo,
        &["forget", "--keep-daily", "3", "--keep-tag", "cloture"],
    )
    .ok();
    assert_eq!(
        ctl(&repo, &["snapshots", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn forget_reads_the_rules_from_a_policy() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    fs::create_dir_all(&src).unwrap();
    ctl(&repo, &["init"]).ok();
    for day in 1..=5 {
        write(&src.join("a.txt"), format!("{day}").as_bytes());
        ctl(
            &repo,
            &[
                "backup",
                src.to_str().unwrap(),
                "--time",
                &format!("2026-01-{day:02} 18:30"),
            ],
        )
        .ok();
    }
    let policy = tmp.path().join("p.toml");
    fs::write(&policy, format!("[share]\nname = \"p\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n\n[backup]\nschedule = \"0 30 18 * * *\"\nrepository = {:?}\nkeep = {{ last = 2 }}\n", src.display().to_string(), repo.display().to_string())).unwrap();
    let run = ctl(
        &repo,
        &["forget", "--policy", policy.to_str().unwrap(), "--json"],
    )
    .ok()
    .json();
    assert_eq!(
        run.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["keep"] == true)
            .count(),
        2
    );
}

#[test]
fn prune_frees_the_space_of_forgotten_data_and_kept_snapshots_still_restore() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    write(&src.join("garde.bin"), &random(3_000_000));
    write(&src.join("gros.bin"), &random(20_000_000));
    ctl(&repo, &["backup", s]).ok();
    fs::remove_file(src.join("gros.bin")).unwrap();
    write(&src.join("nouveau.bin"), &random(2_000_000));
    let keep = id_of(&ctl(&repo, &["backup", "--json", s]).ok());
    let before = size_of(&repo);
    let dry = ctl(&repo, &["prune", "--dry-run", "--json"]).ok().json();
    assert_eq!(size_of(&repo), before, "dry run changes nothing");
    assert_eq!(
        dry["unused_blobs"], 0,
        "every blob is still used by the first snapshot"
    );
    ctl(&repo, &["forget", "--keep-last", "1", "--prune"]).ok();
    let after = size_of(&repo);
    assert!(
        after < before - 15_000_000,
        "prune freed {} of {} bytes",
        before - after,
        before
    );
    ctl(&repo, &["check", "--read-data"]).ok();
    let out = tmp.path().join("out");
    ctl(
        &repo,
        &["restore", &keep[..8], "--to", out.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        fs::read(out.join("garde.bin")).unwrap(),
        fs::read(src.join("garde.bin")).unwrap()
    );
    assert_eq!(
        fs::read(out.join("nouveau.bin")).unwrap(),
        fs::read(src.join("nouveau.bin")).unwrap()
    );
}

#[test]
fn prune_repacks_packs_that_are_mostly_unused() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    // One pack holding a small file that stays and a big one that goes.
    write(&src.join("reste.bin"), &random(1_000_000));
    write(&src.join("part.bin"), &random(9_000_000));
    ctl(&repo, &["backup", s]).ok();
    fs::remove_file(src.join("part.bin")).unwrap();
    ctl(&repo, &["backup", s]).ok();
    ctl(&repo, &["forget", "--keep-last", "1"]).ok();
    let r = ctl(&repo, &["prune", "--json"]).ok().json();
    assert!(r["packs_repacked"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["bytes_after"].as_u64().unwrap() < 3_000_000, "{r}");
    ctl(&repo, &["check", "--read-data"]).ok();
    assert_eq!(
        ctl(&repo, &["cat", "latest", "reste.bin"]).ok().raw,
        fs::read(src.join("reste.bin")).unwrap()
    );
}

/// A repository with two snapshots of two files each in its own pack-sized chunk of data.
fn two_snapshots(tmp: &Path) -> (PathBuf, PathBuf, String, String, Vec<PathBuf>) {
    let (src, repo) = (tmp.join("src"), tmp.join("repo"));
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    write(&src.join("a/premier.bin"), &random(18_000_000));
    let first = id_of(&ctl(&repo, &["backup", "--json", s]).ok());
    let first_packs = packs(&repo);
    write(&src.join("b/second.bin"), &random(18_000_000));
    let second = id_of(&ctl(&repo, &["backup", "--json", s]).ok());
    (src, repo, first, second, first_packs)
}

#[test]
fn flipped_byte_in_a_pack_is_named_with_the_files_it_affects_and_the_rest_restores() {
    let tmp = scratch();
    let (src, repo, first, second, _) = two_snapshots(tmp.path());
    ctl(&repo, &["check"]).ok();
    // Damage premier.bin's first blob, where the repository's index says it is.
    let blob = sharekeep_tests::blobs_of(&repo, &first, "a/premier.bin")[0].clone();
    sharekeep_tests::flip_byte_in(&blob);
    let first_pack = blob.0;
    // Structure alone cannot see it; reading the data does.
    let run = ctl(&repo, &["check", "--read-data"]).expect_code(1);
    let name = first_pack
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        run.stdout.contains(&name),
        "the pack is named: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("a/premier.bin"),
        "the file is named: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&second[..8]),
        "the snapshots are named: {}",
        run.stdout
    );
    // What is undamaged still restores.
    let out = tmp.path().join("out");
    let r = ctl(
        &repo,
        &["restore", &second[..8], "--to", out.to_str().unwrap()],
    )
    .expect_code(3);
    assert!(r.stderr.contains("a/premier.bin"), "{}", r.stderr);
    assert_eq!(
        fs::read(out.join("b/second.bin")).unwrap(),
        fs::read(src.join("b/second.bin")).unwrap()
    );
}

#[test]
fn truncated_index_is_reported_and_repair_index_rebuilds_it() {
    let tmp = scratch();
    let (src, repo, _first, second, _) = two_snapshots(tmp.path());
    let index: Vec<PathBuf> = fs::read_dir(repo.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let victim = index
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let bytes = fs::read(victim).unwrap();
    fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let run = ctl(&repo, &["check"]).expect_code(1);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        run.stdout.contains(&name) && run.stdout.contains("repair index"),
        "{}",
        run.stdout
    );
    let fixed = ctl(&repo, &["repair", "index"]).ok();
    assert!(fixed.stdout.contains("index rebuilt"), "{}", fixed.stdout);
    ctl(&repo, &["check", "--read-data"]).ok();
    assert_eq!(
        ctl(&repo, &["cat", &second[..8], "b/second.bin"]).ok().raw,
        fs::read(src.join("b/second.bin")).unwrap()
    );
}

#[test]
fn deleted_pack_is_reported_and_other_files_restore() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    write(&src.join("a/premier.bin"), &random(18_000_000));
    let first = id_of(&ctl(&repo, &["backup", "--json", s]).ok());
    write(&src.join("b/second.bin"), &random(18_000_000));
    let second = id_of(&ctl(&repo, &["backup", "--json", s]).ok());
    // The pack of second.bin's first blob, as the index says; the first snapshot's data is in
    // packs of its own backup.
    let victim = sharekeep_tests::blobs_of(&repo, &second, "b/second.bin")[0]
        .0
        .clone();
    let firsts: Vec<PathBuf> = sharekeep_tests::blobs_of(&repo, &first, "a/premier.bin")
        .into_iter()
        .map(|b| b.0)
        .collect();
    assert!(
        !firsts.contains(&victim),
        "packs are not shared between the backups"
    );
    fs::remove_file(&victim).unwrap();
    let run = ctl(&repo, &["check"]).expect_code(1);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        run.stdout.contains(&name) && run.stdout.contains("missing"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("b/second.bin"),
        "the file is named: {}",
        run.stdout
    );
    // The first snapshot does not need that pack.
    let out = tmp.path().join("out");
    ctl(
        &repo,
        &["restore", &first[..8], "--to", out.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        fs::read(out.join("a/premier.bin")).unwrap(),
        fs::read(src.join("a/premier.bin")).unwrap()
    );
    // The second restores what it can and names what it cannot.
    let out2 = tmp.path().join("out2");
    let r = ctl(
        &repo,
        &["restore", &second[..8], "--to", out2.to_str().unwrap()],
    )
    .expect_code(3);
    assert!(
        r.stderr.contains("b/second.bin") && r.stderr.contains("missing"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read(out2.join("a/premier.bin")).unwrap(),
        fs::read(src.join("a/premier.bin")).unwrap()
    );
}

#[test]
fn garbage_snapshot_file_is_reported_and_the_other_snapshots_restore() {
    let tmp = scratch();
    let (src, repo, first, second, _) = two_snapshots(tmp.path());
    fs::write(repo.join("snapshots").join(&second), b"{ not a snapshot").unwrap();
    let run = ctl(&repo, &["check"]).expect_code(1);
    assert!(
        run.stdout.contains(&second) && run.stdout.contains("damaged"),
        "{}",
        run.stdout
    );
    let list = ctl(&repo, &["snapshots"]).expect_code(3);
    assert!(list.stdout.contains(&first[..8]), "{}", list.stdout);
    assert_eq!(
        ctl(&repo, &["cat", &first[..8], "a/premier.bin"]).ok().raw,
        fs::read(src.join("a/premier.bin")).unwrap()
    );
    // Prune refuses to run while a snapshot cannot be read (its data would look unused).
    let p = ctl(&repo, &["prune"]).expect_code(1);
    assert!(
        p.stderr.contains("prune would remove its data"),
        "{}",
        p.stderr
    );
}

#[test]
fn stale_lock_of_a_dead_process_is_cleared_and_a_live_one_blocks_prune() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("a.txt"), b"a");
    ctl(&repo, &["init"]).ok();
    let lock = |pid: u32, kind: &str| sharekeep_tests::lock_file(pid, kind, "prune");
    // A crash in the night left an exclusive lock: the next backup clears it and runs.
    fs::write(repo.join("locks/dead"), lock(4_000_000, "exclusive")).unwrap();
    let run = ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    assert!(
        run.stderr.contains("removing stale lock"),
        "logged: {}",
        run.stderr
    );
    assert!(!repo.join("locks/dead").exists());
    // A running backup (here: a live process's shared lock) blocks prune, with who holds it.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    fs::write(repo.join("locks/live"), lock(sleeper.id(), "shared")).unwrap();
    let p = ctl(&repo, &["prune"]).expect_code(1);
    assert!(
        p.stderr.contains("locked") && p.stderr.contains(&sleeper.id().to_string()),
        "{}",
        p.stderr
    );
    let u = ctl(&repo, &["unlock"]).ok();
    assert!(
        u.stdout.contains("1 left"),
        "a live process's lock stays: {}",
        u.stdout
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    ctl(&repo, &["prune"]).ok();
}

#[test]
fn full_disk_during_backup_is_a_clear_error_and_the_repository_stays_consistent() {
    let tmp = scratch();
    let mnt = tmp.path().join("small");
    fs::create_dir(&mnt).unwrap();
    sharekeep_tests::sh(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=40m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ],
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let (src, repo) = (tmp.path().join("src"), mnt.join("repo"));
    write(&src.join("petit.bin"), &random(2_000_000));
    ctl(&repo, &["init"]).ok();
    let first = id_of(&ctl(&repo, &["backup", "--json", src.to_str().unwrap()]).ok());
    write(&src.join("enorme.bin"), &random(60_000_000));
    let run = ctl(&repo, &["backup", src.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert_eq!(
        ctl(&repo, &["snapshots", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1,
        "no partial snapshot"
    );
    fs::remove_file(src.join("enorme.bin")).unwrap();
    let c = ctl(&repo, &["check", "--read-data"]).ok();
    assert!(c.stdout.contains("no damage found"), "{}", c.stdout);
    assert_eq!(
        ctl(&repo, &["cat", &first[..8], "petit.bin"]).ok().raw,
        fs::read(src.join("petit.bin")).unwrap()
    );
    // The failed backup completed two 16 MiB packs before the disk filled; no index lists them.
    // Prune frees them, and that space holds new data: a file about as large as what was freed
    // backs up on the otherwise full filesystem.
    let before = size_of(&repo);
    let p = ctl(&repo, &["prune"]).ok();
    let after = size_of(&repo);
    assert!(
        after + 30_000_000 < before,
        "prune freed too little: {before} -> {after} bytes\n{}",
        p.stdout
    );
    write(
        &src.join("moyen.bin"),
        &random(((before - after) * 7 / 10) as usize),
    );
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    let latest = ctl(&repo, &["cat", "latest", "moyen.bin"]).ok();
    assert_eq!(latest.raw, fs::read(src.join("moyen.bin")).unwrap());
}

#[test]
fn retention_buckets_follow_local_time_across_dst_changes() {
    // Europe/Paris: 2026-03-29 02:00 jumps to 03:00; 2026-10-25 03:00 falls back to 02:00.
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("a.txt"), b"a");
    let paris = |args: &[&str]| {
        let out = std::process::Command::new(sharekeep_tests::bin("sharekeepctl"))
            .arg("--repo")
            .arg(&repo)
            .args(args)
            .env("TZ", "Europe/Paris")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    paris(&["init"]);
    let times = [
        "2026-03-28 23:30", // Saturday
        "2026-03-29 01:30", // Sunday, before the jump
        "2026-03-29 03:30", // Sunday, after it (one real hour later)
        "2026-03-29 04:30",
        "2026-10-25 01:30", // the day the clocks go back
        "2026-10-25 02:30", // first 02:30 (summer time)
        "2026-10-25 04:00",
    ];
    for t in times {
        paris(&["backup", src.to_str().unwrap(), "--time", t]);
    }
    let decisions: serde_json::Value = serde_json::from_str(&paris(&[
        "forget",
        "--keep-hourly",
        "4",
        "--keep-daily",
        "3",
        "--dry-run",
        "--json",
    ]))
    .unwrap();
    let kept: Vec<String> = decisions
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["time"].as_str().unwrap()[..16].to_string())
        .collect();
    // Hourly: the 4 newest local hours (04h, 02h, 01h of Oct 25, 04h of Mar 29); daily: the
    // newest of Oct 25, Mar 29 and Mar 28, in local days.
    assert_eq!(
        kept,
        vec![
            "2026-03-28T23:30",
            "2026-03-29T04:30",
            "2026-10-25T01:30",
            "2026-10-25T02:30",
            "2026-10-25T04:00"
        ],
        "{decisions}"
    );
}

/// Copies every file of `dir` (one level, or two for `data/`) into a map path -> bytes.
fn snapshot_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_prune_after_one_killed_before_it_removed_the_old_index_never_deletes_what_it_indexes() {
    // The state a prune killed right after writing its new index leaves: the old index files
    // and the repacked packs are still there next to the new ones. The next prune repacks the
    // same blobs into a pack of the very same name, which it must not then delete as an orphan.
    // Which index wins for a blob depends on the files' names: several rounds.
    for round in 0..6 {
        let tmp = scratch();
        let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
        let s = src.display().to_string();
        write(&src.join("kept.bin"), &random(300_000));
        write(&src.join("changed.bin"), &random(200_000));
        ctl(&repo, &["init"]).ok();
        ctl(&repo, &["backup", &s]).ok();
        write(&src.join("changed.bin"), &random(200_000));
        ctl(&repo, &["backup", &s]).ok();
        ctl(&repo, &["forget", "--keep-last", "1"]).ok();
        let before: Vec<(PathBuf, Vec<u8>)> = snapshot_files(&repo.join("index"))
            .into_iter()
            .chain(snapshot_files(&repo.join("data")))
            .collect();
        ctl(&repo, &["prune", "--repack-threshold", "0"]).ok();
        // Put back what the completed prune removed: as if it had been killed just after
        // writing its index.
        for (p, bytes) in &before {
            if !p.exists() {
                fs::write(p, bytes).unwrap();
            }
        }
        ctl(&repo, &["check", "--read-data"]).ok();
        ctl(&repo, &["prune", "--repack-threshold", "0"]).ok();
        let c = ctl(&repo, &["check", "--read-data"]);
        assert!(
            c.code == 0 && c.stdout.contains("no damage found"),
            "round {round}: {}{}",
            c.stdout,
            c.stderr
        );
        let out = ctl(&repo, &["cat", "latest", "kept.bin"]).ok();
        assert_eq!(out.raw, fs::read(src.join("kept.bin")).unwrap());
    }
}

#[test]
fn a_drill_restores_a_sample_passes_when_healthy_and_names_damaged_files() {
    let tmp = scratch();
    let (src, repo, work) = (
        tmp.path().join("src"),
        tmp.path().join("repo"),
        tmp.path().join("work"),
    );
    for i in 0..30 {
        write(
            &src.join(format!("dossier/f{i:02}.txt")),
            format!("fichier {i}").as_bytes(),
        );
    }
    write(&src.join("archives/gros.bin"), &random(6_000_000));
    ctl(&repo, &["init"]).ok();
    let snap = id_of(&ctl(&repo, &["backup", "--json", src.to_str().unwrap()]).ok());
    fs::create_dir_all(&work).unwrap();
    let w = work.to_str().unwrap();
    // Healthy: a sample of 5 plus the largest file, all identical.
    let r = ctl(
        &repo,
        &[
            "drill",
            "--sample",
            "5",
            "--seed",
            "7",
            "--scratch",
            w,
            "--json",
        ],
    )
    .ok();
    let j = r.json();
    assert_eq!(j["files_in_snapshot"], 31, "{j}");
    assert_eq!(j["files_checked"], 6, "{j}");
    assert_eq!(j["problems"], serde_json::json!([]), "{j}");
    assert!(
        j["bytes_checked"].as_u64().unwrap() >= 6_000_000,
        "the largest file joins: {j}"
    );
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "the scratch copy is removed"
    );
    // The same seed draws the same files; another draws others.
    let again = ctl(
        &repo,
        &[
            "drill",
            "--sample",
            "5",
            "--seed",
            "7",
            "--scratch",
            w,
            "--json",
        ],
    )
    .ok();
    assert_eq!(again.json()["bytes_checked"], j["bytes_checked"]);
    // A damaged blob of the largest file: the drill fails and names it, the others pass.
    let blob = sharekeep_tests::blobs_of(&repo, &snap, "archives/gros.bin")[0].clone();
    sharekeep_tests::flip_byte_in(&blob);
    let bad = ctl(&repo, &["drill", "--sample", "100", "--scratch", w]).expect_code(1);
    assert!(
        bad.stdout.contains("DAMAGED archives/gros.bin")
            && bad.stdout.contains("FAILED: 1 file(s)"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("30 of 31 files restored and checked"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stderr.contains("restore drill failed"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "removed after a failed drill too"
    );
}
