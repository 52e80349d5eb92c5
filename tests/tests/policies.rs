//! Share policies on real folders, real users and real ACLs: the example `commercial.toml`
//! applied to a folder, then checked by processes running as each user; attacks by links;
//! a corpus of broken policy files, each with its located message.

use sharekeep_tests::users::Accounts;
use sharekeep_tests::{bin, open_scratch, sh, Run};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn policy(args: &[&str]) -> Run {
    let out = Command::new(bin("sharekeepctl"))
        .arg("policy")
        .args(args)
        .env_remove("SHAREKEEP_POLICIES")
        .stdin(Stdio::null())
        .output()
        .expect("run sharekeepctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw: out.stdout,
    }
}

fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies/examples")
        .join(name);
    fs::read_to_string(&p).unwrap()
}

struct Commercial {
    accounts: Accounts,
    _dir: tempfile::TempDir,
    share: PathBuf,
    policy: PathBuf,
    outside: PathBuf,
}

/// The example policy with its names prefixed (real test accounts) and its paths redirected.
fn commercial() -> Commercial {
    let a = Accounts::department();
    let dir = open_scratch();
    let share = dir.path().join("commercial");
    for d in ["Tarifs", "Propositions", "Divers/Archives"] {
        fs::create_dir_all(share.join(d)).unwrap();
    }
    fs::write(share.join("Tarifs/grille-2026.csv"), "produit;prix\n").unwrap();
    fs::write(share.join("Propositions/devis-dupont.docx"), "devis").unwrap();
    fs::write(share.join("Divers/note.txt"), "note").unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let text = sharekeep_tests::example_commercial(&a, &share, &dir.path().join("repo"));
    let policy = dir.path().join("commercial.toml");
    fs::write(&policy, text).unwrap();
    Commercial {
        accounts: a,
        _dir: dir,
        share,
        policy,
        outside,
    }
}

fn can(a: &Accounts, user: &str, script: &str) -> bool {
    a.sh_as(user, script).0
}

#[test]
fn example_commercial_policy_gives_each_user_exactly_their_rights() {
    let c = commercial();
    let (a, s, p) = (
        &c.accounts,
        c.share.display().to_string(),
        c.policy.to_str().unwrap(),
    );
    policy(&["check", p]).ok();
    let plan = policy(&["plan", p]).expect_code(2);
    assert!(
        plan.stdout.contains("Tarifs/grille-2026.csv"),
        "{}",
        plan.stdout
    );
    let apply = policy(&["apply", p]).ok();
    assert!(apply.stdout.contains("changed"), "{}", apply.stdout);
    // Idempotent: a second run changes nothing and says so; plan finds no drift.
    let again = policy(&["apply", p]).ok();
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
    policy(&["plan", p]).ok();

    // A member reads Tarifs but can neither change nor create there.
    assert!(
        can(a, "alice", &format!("cat '{s}/Tarifs/grille-2026.csv'")),
        "member cannot read Tarifs"
    );
    assert!(
        can(a, "alice", &format!("ls '{s}/Tarifs'")),
        "member cannot list Tarifs"
    );
    assert!(
        !can(
            a,
            "alice",
            &format!("echo x >> '{s}/Tarifs/grille-2026.csv'")
        ),
        "member could change a price list"
    );
    assert!(
        !can(a, "alice", &format!("touch '{s}/Tarifs/nouveau.csv'")),
        "member could create in Tarifs"
    );
    assert!(
        !can(a, "alice", &format!("rm -f '{s}/Tarifs/grille-2026.csv'")),
        "member could delete in Tarifs"
    );
    // A member writes in Propositions; another member reads and edits that new file.
    assert!(
        can(
            a,
            "alice",
            &format!("umask 077; echo proposition > '{s}/Propositions/alice.docx'")
        ),
        "member cannot write in Propositions"
    );
    assert!(
        can(
            a,
            "bob",
            &format!(
                "cat '{s}/Propositions/alice.docx' && echo relu >> '{s}/Propositions/alice.docx'"
            )
        ),
        "another member cannot edit the new proposal"
    );
    assert!(can(
        a,
        "bob",
        &format!("mkdir '{s}/Propositions/dossier' && echo y > '{s}/Propositions/dossier/f.txt'")
    ));
    assert!(
        can(
            a,
            "alice",
            &format!("echo z >> '{s}/Propositions/dossier/f.txt'")
        ),
        "new sub-folders inherit the rights"
    );
    // Elsewhere in the share, members only read.
    assert!(can(a, "alice", &format!("cat '{s}/Divers/note.txt'")));
    assert!(!can(a, "alice", &format!("touch '{s}/Divers/x'")));
    // The owner writes everywhere.
    for d in ["", "Tarifs", "Propositions", "Divers/Archives"] {
        assert!(
            can(a, "adjoint", &format!("echo o > '{s}/{d}/owner.txt'")),
            "owner cannot write in {d:?}"
        );
    }
    // An outsider cannot even list the share.
    assert!(
        !can(a, "eve", &format!("ls '{s}'")),
        "outsider can list the share"
    );
    assert!(!can(a, "eve", &format!("cat '{s}/Tarifs/grille-2026.csv'")));
    // explain says why.
    let e = policy(&[
        "explain",
        p,
        "--user",
        &a.name("alice"),
        &format!("{s}/Tarifs/grille-2026.csv"),
    ])
    .ok()
    .stdout;
    assert!(
        e.contains(": read") && e.contains("member of @") && e.contains("the ACLs agree"),
        "{e}"
    );
    let e = policy(&["explain", p, "--user", &a.name("eve"), &s])
        .ok()
        .stdout;
    assert!(
        e.contains(": none") && e.contains("not even listing"),
        "{e}"
    );
    // matrix lists everyone.
    let m = policy(&["matrix", p, "--csv"]).ok().stdout;
    let alice_row = m
        .lines()
        .find(|l| l.contains(&a.name("alice")))
        .expect("alice in the matrix");
    assert!(alice_row.ends_with("read,read,write"), "{m}");
}

#[test]
fn file_moved_in_with_mode_600_is_fixed_by_the_next_apply() {
    let c = commercial();
    let (a, s, p) = (
        &c.accounts,
        c.share.display().to_string(),
        c.policy.to_str().unwrap(),
    );
    policy(&["apply", p]).ok();
    let tmp = c.outside.join("moved.docx");
    fs::write(&tmp, "moved in").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&tmp, c.share.join("Propositions/moved.docx")).unwrap();
    assert!(
        !can(a, "bob", &format!("cat '{s}/Propositions/moved.docx'")),
        "precondition: unreadable"
    );
    let plan = policy(&["plan", p, "--json"]).expect_code(2).json();
    assert_eq!(
        plan[0]["drift"][0]["path"], "Propositions/moved.docx",
        "{plan}"
    );
    policy(&["apply", p]).ok();
    assert!(can(
        a,
        "bob",
        &format!("cat '{s}/Propositions/moved.docx' && echo more >> '{s}/Propositions/moved.docx'")
    ));
}

fn acl_of(path: &Path) -> String {
    sh("getfacl", &["-cp", path.to_str().unwrap()]).stdout
}

#[test]
fn planted_links_never_carry_rights_outside_the_share() {
    let c = commercial();
    let p = c.policy.to_str().unwrap();
    // A root-only file and a folder outside the share.
    let secret = c.outside.join("secret.txt");
    fs::write(&secret, "root only").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let outdir = c.outside.join("dir");
    fs::create_dir(&outdir).unwrap();
    fs::set_permissions(&outdir, fs::Permissions::from_mode(0o700)).unwrap();
    let (secret_acl, dir_acl) = (acl_of(&secret), acl_of(&outdir));
    // A symlink to the file, a symlink to the folder, a hard link to the file.
    symlink(&secret, c.share.join("Tarifs/lien.csv")).unwrap();
    symlink(&outdir, c.share.join("Propositions/dossier-lien")).unwrap();
    fs::hard_link(&secret, c.share.join("Propositions/dur.docx")).unwrap();
    let run = policy(&["apply", p]).ok();
    assert!(
        run.stdout.contains("refused Propositions/dur.docx") && run.stdout.contains("hard links"),
        "{}",
        run.stdout
    );
    assert_eq!(
        acl_of(&secret),
        secret_acl,
        "the outside file's rights changed"
    );
    assert_eq!(
        acl_of(&outdir),
        dir_acl,
        "the outside folder's rights changed"
    );
    assert!(
        !c.accounts
            .sh_as(
                "alice",
                &format!("cat '{}'", c.share.join("Propositions/dur.docx").display())
            )
            .0
    );
}

#[test]
fn directory_swapped_for_a_link_during_the_walk_is_never_followed() {
    let c = commercial();
    let p = c.policy.to_str().unwrap().to_string();
    let outdir = c.outside.join("target");
    fs::create_dir(&outdir).unwrap();
    fs::write(outdir.join("f.txt"), "x").unwrap();
    fs::set_permissions(&outdir, fs::Permissions::from_mode(0o700)).unwrap();
    let before = (acl_of(&outdir), acl_of(&outdir.join("f.txt")));
    let prop = c.share.join("Propositions");
    let sub = prop.join("sub");
    fs::create_dir(&sub).unwrap();
    for i in 0..200 {
        fs::write(sub.join(format!("f{i}")), "x").unwrap();
    }
    symlink(&outdir, prop.join("sub-link")).unwrap();
    // An attacker watching with inotify: when the walk opens a file of Propositions (it has
    // listed the folder by then), `sub` becomes a link to a folder outside the share.
    let mut swapper = Command::new(bin("sk-swap-on-open"))
        .arg(&prop)
        .args(["devis-dupont.docx", "sub", "sub-link"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(swapper.stdout.take().unwrap());
    let mut line = || {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut out, &mut l).unwrap();
        l.trim().to_string()
    };
    assert_eq!(line(), "armed");
    let mut met = None;
    // The swap races the walk: most walks meet it, some pass before it (a CI run once saw
    // none in 20); 100 tries, stopping at the first that meets it.
    for walk in 0..100 {
        let r = policy(&["apply", &p]);
        assert!(r.code == 0 || r.code == 3, "{}{}", r.stdout, r.stderr);
        assert_eq!(line(), "swapped", "the walk opened the trigger file");
        std::io::Write::write_all(swapper.stdin.as_mut().unwrap(), b"\n").unwrap();
        assert_eq!(line(), "restored");
        assert_eq!(line(), "armed");
        let text = format!("{}{}", r.stdout, r.stderr);
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("Propositions/sub") && l.contains("during the walk"))
        {
            met = Some((walk, l.to_string()));
            break;
        }
    }
    let _ = swapper.kill();
    let _ = swapper.wait();
    let (walk, l) = met.expect("a walk met the swapped folder and said so");
    eprintln!("walk {walk} met the swap: {l}");
    assert_eq!(
        (acl_of(&outdir), acl_of(&outdir.join("f.txt"))),
        before,
        "rights changed outside the share"
    );
}

#[test]
fn apply_refuses_a_directory_of_policies_with_one_broken_file_and_changes_nothing() {
    let c = commercial();
    let dir = c.policy.parent().unwrap().join("policies");
    fs::create_dir(&dir).unwrap();
    fs::copy(&c.policy, dir.join("commercial.toml")).unwrap();
    fs::write(
        dir.join("broken.toml"),
        "[share]\nname = \"b\"\npath = \"/nonexistent-sk\"\nowner = \"root\"\ngroup = \"root\"\n",
    )
    .unwrap();
    let before = acl_of(&c.share.join("Tarifs/grille-2026.csv"));
    let run = policy(&["apply", dir.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr.contains("broken.toml:5:8") || run.stderr.contains("broken.toml:3:8"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(
        acl_of(&c.share.join("Tarifs/grille-2026.csv")),
        before,
        "a bad policy half-applied"
    );
}

#[test]
fn second_example_with_several_groups_and_a_confidential_folder() {
    let mut a = Accounts::new();
    for g in ["compta", "direction", "audit", "dsi"] {
        a.group(g);
    }
    a.user("adjoint", &["compta"]);
    a.user("chef-comptable", &["compta"]);
    a.user("gestionnaire-paie", &[]);
    a.user("dg", &["direction"]);
    a.user("auditeur", &["audit"]);
    let dir = open_scratch();
    let share = dir.path().join("comptabilite");
    for d in ["Clotures/2025", "Paie/Bulletins", "Courant"] {
        fs::create_dir_all(share.join(d)).unwrap();
    }
    fs::write(share.join("Paie/Bulletins/janvier.pdf"), "bulletin").unwrap();
    fs::write(share.join("Paie/recap.xlsx"), "recap").unwrap();
    fs::write(share.join("Clotures/2025/bilan.pdf"), "bilan").unwrap();
    let mut text = example("comptabilite.toml")
        .replace(
            "\"/srv/partages/comptabilite\"",
            &format!("{:?}", share.display().to_string()),
        )
        .replace(
            "\"/var/backups/sharekeep/comptabilite\"",
            &format!("{:?}", dir.path().join("repo").display().to_string()),
        );
    for name in ["adjoint", "chef-comptable", "gestionnaire-paie"] {
        text = text.replace(&format!("\"{name}\""), &format!("\"{}\"", a.name(name)));
    }
    for g in ["compta", "direction", "audit", "dsi"] {
        text = text.replace(&format!("\"@{g}\""), &format!("\"@{}\"", a.name(g)));
    }
    text = text.replace(
        "group = \"compta\"",
        &format!("group = \"{}\"", a.name("compta")),
    );
    let p = dir.path().join("comptabilite.toml");
    fs::write(&p, text).unwrap();
    let p = p.to_str().unwrap();
    policy(&["apply", p]).ok();
    let s = share.display().to_string();
    assert!(can(
        &a,
        "chef-comptable",
        &format!("echo x > '{s}/Courant/f.txt'")
    ));
    assert!(
        !can(&a, "chef-comptable", &format!("ls '{s}/Paie'")),
        "accountants do not see payroll"
    );
    assert!(
        !can(
            &a,
            "chef-comptable",
            &format!("touch '{s}/Clotures/2025/x'")
        ),
        "closed years are read-only"
    );
    assert!(can(&a, "dg", &format!("cat '{s}/Paie/recap.xlsx'")));
    assert!(
        !can(&a, "dg", &format!("cat '{s}/Paie/Bulletins/janvier.pdf'")),
        "payslips are for the payroll officer"
    );
    assert!(can(
        &a,
        "gestionnaire-paie",
        &format!(
            "cat '{s}/Paie/Bulletins/janvier.pdf' && echo y > '{s}/Paie/Bulletins/fevrier.pdf'"
        )
    ));
    assert!(
        can(
            &a,
            "auditeur",
            &format!("cat '{s}/Clotures/2025/bilan.pdf'")
        ),
        "auditors read closed years"
    );
    assert!(
        !can(&a, "auditeur", &format!("ls '{s}'")),
        "auditors pass through the root without listing it"
    );
    assert!(!can(&a, "auditeur", &format!("cat '{s}/Courant/f.txt'")));
}

#[test]
fn broken_policy_corpus_each_gives_its_located_message() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/broken-policies");
    let dir = open_scratch();
    let share = dir.path().join("share");
    fs::create_dir_all(share.join("A")).unwrap();
    fs::write(share.join("file.txt"), "x").unwrap();
    fs::create_dir(dir.path().join("elsewhere")).unwrap();
    fs::create_dir(dir.path().join("elsewhere/inside")).unwrap();
    symlink(dir.path().join("elsewhere"), share.join("link")).unwrap();
    let mut files: Vec<PathBuf> = fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .expect("first line: # expect: …")
            .to_string();
        let target = dir.path().join(f.file_name().unwrap());
        fs::write(&target, text.replace("@SHARE@", share.to_str().unwrap())).unwrap();
        let run = policy(&["check", target.to_str().unwrap()]);
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        if run.code != 1 {
            failures.push(format!("{name}: exit {} (expected 1)", run.code));
            continue;
        }
        for part in expect.split('|') {
            let located = part
                .split(':')
                .next()
                .is_some_and(|l| l.parse::<u32>().is_ok());
            let want = if located {
                format!("{name}:{part}")
            } else {
                part.to_string()
            };
            if !run.stderr.contains(&want) {
                failures.push(format!("{name}: expected {want:?} in:\n{}", run.stderr));
            }
        }
        if !run.stderr.contains("hint:") {
            failures.push(format!("{name}: no hint in:\n{}", run.stderr));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} broken policies misreported:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn overlapping_shares_and_duplicate_names_are_reported_across_files() {
    let dir = open_scratch();
    let (outer, inner) = (
        dir.path().join("partages"),
        dir.path().join("partages/commercial"),
    );
    fs::create_dir_all(&inner).unwrap();
    let pol = dir.path().join("policies");
    fs::create_dir(&pol).unwrap();
    let one = |name: &str, path: &Path| {
        format!(
            "[share]\nname = \"{name}\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n",
            path.display().to_string()
        )
    };
    fs::write(pol.join("a.toml"), one("tout", &outer)).unwrap();
    fs::write(pol.join("b.toml"), one("tout", &inner)).unwrap();
    let run = policy(&["check", pol.to_str().unwrap()]).expect_code(1);
    assert!(run.stderr.contains("overlaps share"), "{}", run.stderr);
    assert!(
        run.stderr.contains("share name `tout` is also used"),
        "{}",
        run.stderr
    );
}

#[test]
fn samba_values_that_would_inject_smb_conf_settings_are_refused_with_their_line() {
    let c = commercial();
    let good = fs::read_to_string(&c.policy).unwrap();
    // Positive control: a plain name and comment are exported, and testparm reads them.
    let clean = good.replace(
        "[samba]\nexport = true",
        "[samba]\nexport = true\nname = \"Ventes 2026\"\ncomment = \"Dossiers du service commercial (100%)\"",
    );
    assert_ne!(clean, good, "the example has a [samba] table");
    fs::write(&c.policy, &clean).unwrap();
    policy(&["check", &c.policy.display().to_string()]).expect_code(0);
    // testparm reads the export as the one share it is, with its comment.
    let include = c.policy.with_file_name("export.conf");
    let e = Command::new(bin("sharekeepctl"))
        .args(["samba", "export"])
        .arg(&c.policy)
        .arg("-o")
        .arg(&include)
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let conf = c.policy.with_file_name("smb.conf");
    fs::write(
        &conf,
        format!(
            "[global]\n   server role = standalone server\ninclude = {}\n",
            include.display()
        ),
    )
    .unwrap();
    let t = Command::new("testparm")
        .arg("-s")
        .arg(&conf)
        .output()
        .unwrap();
    let parsed = String::from_utf8_lossy(&t.stdout);
    assert!(
        t.status.success(),
        "{parsed}{}",
        String::from_utf8_lossy(&t.stderr)
    );
    assert!(
        parsed.contains("[Ventes 2026]")
            && parsed.contains("comment = Dossiers du service commercial (100%)"),
        "{parsed}"
    );
    for (key, value) in [
        ("name", r#""x]\nroot preexec = /tmp/own.sh\n[y""#),
        ("comment", r#""ok\n   force user = root""#),
        ("name", r#""a[b""#),
    ] {
        let bad = good.replace(
            "[samba]\nexport = true",
            &format!("[samba]\nexport = true\n{key} = {value}"),
        );
        fs::write(&c.policy, &bad).unwrap();
        let r = policy(&["check", &c.policy.display().to_string()]);
        let samba = bad.lines().position(|l| l == "[samba]").unwrap();
        let line = bad
            .lines()
            .skip(samba)
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            + samba
            + 1;
        assert_eq!(r.code, 1, "{key} = {value}: {}{}", r.stdout, r.stderr);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            all.contains(&format!("commercial.toml:{line}:"))
                && all.contains(&format!(
                    "Samba {}",
                    if key == "name" {
                        "share name"
                    } else {
                        "comment"
                    }
                )),
            "{key} = {value}: {all}"
        );
        // The export refuses to write it too.
        let e = Command::new(bin("sharekeepctl"))
            .args(["samba", "export"])
            .arg(&c.policy)
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&e.stdout).contains("root preexec")
                && !String::from_utf8_lossy(&e.stdout).contains("force user"),
            "{}",
            String::from_utf8_lossy(&e.stdout)
        );
    }
}

#[test]
fn folders_with_latin1_names_get_their_rights() {
    let c = commercial();
    // An old Windows copy: `café` in Latin-1 (not UTF-8), holding a private file.
    let name = std::ffi::OsStr::from_bytes(b"Divers/caf\xe9");
    let folder = c.share.join(name);
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("menu.txt"), "plat du jour").unwrap();
    fs::set_permissions(folder.join("menu.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o700)).unwrap();
    let share = c.share.display().to_string();
    let read = |who: &str| {
        c.accounts.sh_as(
            who,
            &format!("cat \"{share}/Divers/$(printf 'caf\\351')/menu.txt\""),
        )
    };
    assert!(!read("alice").0, "readable before the policy is applied");
    let plan = policy(&["plan", &c.policy.display().to_string()]);
    assert_eq!(
        plan.code, 2,
        "plan shows the drift: {}{}",
        plan.stdout, plan.stderr
    );
    policy(&["apply", &c.policy.display().to_string()]).expect_code(0);
    let (ok, out) = read("alice");
    assert!(ok && out.contains("plat du jour"), "{out}");
    assert!(!read("eve").0, "the outsider still cannot");
}
