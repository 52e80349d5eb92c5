//! The Debian package, built with `scripts/deb.sh` and installed into this machine with dpkg:
//! files in place with their modes, the binaries on PATH, every man page rendering without a
//! warning, the bash completion, `sharekeepd --check-config` on the installed files, removal
//! keeping the admin's configuration, reinstall keeping an edited conffile, purge never
//! touching policies, lintian without errors. It changes the machine (as CI does, as root):
//! it runs only under CI or with SHAREKEEP_TEST_DEB=1.

use sharekeep_tests::sh;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn mode(path: &str) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

fn dpkg(args: &[&str]) -> String {
    let out = Command::new("dpkg").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dpkg {args:?}: {text}");
    text
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "sharekeep"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// The policy example, made to pass on this machine: root's share in `dir`.
fn usable_policy(dir: &Path, name: &str) -> String {
    let example =
        std::fs::read_to_string("/usr/share/doc/sharekeep/examples/commercial.toml").unwrap();
    let share = dir.join(name);
    std::fs::create_dir_all(share.join("Tarifs")).unwrap();
    std::fs::create_dir_all(share.join("Propositions")).unwrap();
    example
        .replace("name = \"commercial\"", &format!("name = \"{name}\""))
        .replace("group = \"commercial\"", "group = \"root\"")
        .replace("/srv/partages/commercial", share.to_str().unwrap())
        .replace(
            "/var/backups/sharekeep/commercial",
            dir.join(format!("{name}-repo")).to_str().unwrap(),
        )
        .replace("\"adjoint\"", "\"root\"")
        .replace("\"@commercial\"", "\"@root\"")
        .replace("\"@dsi\"", "\"@root\"")
}

#[test]
fn the_debian_package_installs_upgrades_and_removes_cleanly() {
    if std::env::var_os("CI").is_none() && std::env::var_os("SHAREKEEP_TEST_DEB").is_none() {
        eprintln!(
            "skipped: installs a package into this machine; SHAREKEEP_TEST_DEB=1 runs it (CI does)"
        );
        return;
    }
    let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = Command::new("bash")
        .arg(top.join("scripts/deb.sh"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&built.stdout).into_owned()
        + &String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "scripts/deb.sh failed:\n{log}");
    let deb = log
        .lines()
        .rev()
        .find(|l| l.ends_with(".deb"))
        .map(|l| top.join(l.trim()))
        .unwrap_or_else(|| panic!("no package named in:\n{log}"));
    let deb = deb.to_str().unwrap().to_string();

    // lintian: no errors (warnings are reported, not fatal).
    let lint = Command::new("lintian").arg(&deb).output().unwrap();
    let lint = String::from_utf8_lossy(&lint.stdout).into_owned();
    let errors: Vec<&str> = lint.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{lint}");

    if installed() {
        dpkg(&["--purge", "sharekeep"]);
    }
    dpkg(&["-i", &deb]);
    for (path, want) in [
        ("/usr/sbin/sharekeepd", 0o755),
        ("/usr/bin/sharekeepctl", 0o755),
        ("/etc/sharekeep/sharekeepd.toml", 0o644),
        ("/etc/sharekeep/policies", 0o755),
        ("/lib/systemd/system/sharekeepd.service", 0o644),
        ("/usr/share/doc/sharekeep/examples/commercial.toml", 0o644),
        ("/usr/share/doc/sharekeep/README.md", 0o644),
        ("/usr/share/bash-completion/completions/sharekeepctl", 0o644),
        ("/usr/share/zsh/vendor-completions/_sharekeepctl", 0o644),
        (
            "/usr/share/fish/vendor_completions.d/sharekeepctl.fish",
            0o644,
        ),
    ] {
        assert_eq!(mode(path), want, "{path}");
    }
    let unit = std::fs::read_to_string("/lib/systemd/system/sharekeepd.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/sharekeepd\n"), "{unit}");
    assert!(unit.contains("--check-config"), "{unit}");
    assert!(!unit.contains("/usr/local"), "{unit}");
    // The service is enabled where systemd would start it.
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/sharekeepd.service").exists(),
        "not enabled"
    );

    // On PATH.
    let version = sh("sharekeepctl", &["--version"]).ok().stdout;
    assert!(
        version.starts_with("sharekeepctl ") && version.contains(env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    let version = sh("sharekeepd", &["--version"]).ok().stdout;
    assert!(version.starts_with("sharekeepd "), "{version}");

    // Every man page renders, without a warning.
    let mut pages = Vec::new();
    for (dir, prefix) in [
        ("/usr/share/man/man1", "sharekeepctl"),
        ("/usr/share/man/man5", "sharekeep-policy"),
        ("/usr/share/man/man8", "sharekeepd"),
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with(prefix) {
                pages.push(p);
            }
        }
    }
    for want in [
        "sharekeepctl.1.gz",
        "sharekeepctl-restore.1.gz",
        "sharekeepctl-policy-apply.1.gz",
        "sharekeepctl-completions.1.gz",
        "sharekeep-policy.5.gz",
        "sharekeepd.8.gz",
    ] {
        assert!(
            pages.iter().any(|p| p.ends_with(want)),
            "no {want} among {pages:?}"
        );
    }
    assert!(!pages
        .iter()
        .any(|p| p.to_string_lossy().contains("generate-man")));
    for p in &pages {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(p)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let (text, warnings) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{}: {warnings}", p.display());
        assert!(warnings.trim().is_empty(), "{}: {warnings}", p.display());
        assert!(text.contains("NAME"), "{}: {text}", p.display());
    }
    let restore = Command::new("man")
        .args(["-l", "/usr/share/man/man1/sharekeepctl-restore.1.gz"])
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let restore = String::from_utf8_lossy(&restore.stdout);
    assert!(restore.contains("sharekeepctl restore"), "{restore}");
    assert!(restore.contains("--overwrite"), "{restore}");
    let policy = Command::new("man")
        .args(["-l", "/usr/share/man/man5/sharekeep-policy.5.gz"])
        .output()
        .unwrap();
    let policy = String::from_utf8_lossy(&policy.stdout);
    for key in [
        "keep_min_days",
        "previous_versions",
        "drill_sample",
        "admins",
    ] {
        assert!(policy.contains(key), "sharekeep-policy(5) lacks {key}");
    }

    // Tab completion.
    let complete = sh(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/completions/sharekeepctl; complete -p sharekeepctl",
        ],
    )
    .ok()
    .stdout;
    assert!(complete.contains("sharekeepctl"), "{complete}");
    assert!(complete.starts_with("complete "), "{complete}");

    // --check-config on the installed configuration: a usable policy passes, a broken one is
    // named with its line.
    let tmp = sharekeep_tests::open_scratch();
    let policies = tmp.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("ventes.toml"),
        usable_policy(tmp.path(), "ventes"),
    )
    .unwrap();
    let check = |dir: &Path| {
        Command::new("sharekeepd")
            .args(["--config", "/etc/sharekeep/sharekeepd.toml", "--policies"])
            .arg(dir)
            .arg("--check-config")
            .output()
            .unwrap()
    };
    let good = check(&policies);
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{text}");
    assert!(
        text.contains("ok: ") && text.contains("share `ventes`"),
        "{text}"
    );
    std::fs::write(
        policies.join("achats.toml"),
        usable_policy(tmp.path(), "achats").replace("\n[access]", "\nreed = [\"root\"]\n[access]"),
    )
    .unwrap();
    let bad = check(&policies);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains("achats.toml:") && text.contains("reed"),
        "{text}"
    );

    // The admin edits the configuration and writes a policy; removal keeps both.
    let conf = "/etc/sharekeep/sharekeepd.toml";
    let edited = std::fs::read_to_string(conf).unwrap() + "\nlog_level = \"debug\"\n";
    std::fs::write(conf, &edited).unwrap();
    std::fs::write(
        "/etc/sharekeep/policies/ventes.toml",
        usable_policy(tmp.path(), "ventes"),
    )
    .unwrap();
    dpkg(&["-r", "sharekeep"]);
    assert!(!Path::new("/usr/sbin/sharekeepd").exists());
    assert!(!Path::new("/usr/bin/sharekeepctl").exists());
    assert_eq!(std::fs::read_to_string(conf).unwrap(), edited);
    assert!(Path::new("/etc/sharekeep/policies/ventes.toml").exists());

    // Reinstall: the edited conffile stays as the admin left it.
    dpkg(&["-i", &deb]);
    assert_eq!(std::fs::read_to_string(conf).unwrap(), edited);
    assert!(Path::new("/usr/sbin/sharekeepd").exists());

    // Purge: the package's own files go, the admin's policy stays.
    dpkg(&["--purge", "sharekeep"]);
    assert!(!Path::new(conf).exists());
    assert!(Path::new("/etc/sharekeep/policies/ventes.toml").exists());
    std::fs::remove_dir_all("/etc/sharekeep").unwrap();
}
