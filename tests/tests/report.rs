//! `sharekeepctl report`: the page an admin hands to the client, rendered by a real browser
//! (headless Chromium, Debian's `chromium`): a screenshot that is not blank (compared with a
//! blank page's, same size), a PDF, and in the DOM the browser built, one chart point per run
//! and the rights matrix's cells.

use crate::daemon::Daemon;
use sharekeep_tests::users::Accounts;
use sharekeep_tests::{bin, open_scratch};
use std::fs;
use std::path::Path;
use std::process::Command;

fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (apt-get install chromium)")
}

#[test]
fn the_report_renders_in_a_real_browser_with_its_charts_and_matrix() {
    let mut a = Accounts::new();
    a.group("team");
    a.user("member", &["team"]);
    let dir = open_scratch();
    let d = dir.path();
    let share = d.join("share");
    fs::create_dir_all(share.join("Docs")).unwrap();
    fs::create_dir_all(d.join("policies")).unwrap();
    fs::write(
        d.join("policies/team.toml"),
        format!(
            "[share]\nname = \"team\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n\n[access]\nread = [\"@{}\"]\n\n[[rule]]\npath = \"Docs\"\nwrite = [\"{}\"]\n\n[backup]\nschedule = \"0 0 0 1 1 *\"\nrepository = {:?}\n\n[samba]\nexport = true\n",
            share.display().to_string(),
            a.name("team"),
            a.name("member"),
            d.join("repo").display().to_string()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(d);
    for i in 0..3 {
        fs::write(share.join(format!("Docs/f{i}.txt")), format!("{i}")).unwrap();
        assert_eq!(daemon.ctl(&["backup", "--share", "team"]).code, 0);
    }
    // Through the service (root and the share's admins) and offline: the same report.
    let mut via_service = daemon.ctl(&["report", "--share", "team", "--json"]).json();
    let offline = Command::new(bin("sharekeepctl"))
        .args([
            "report",
            "--offline",
            "--share",
            "team",
            "--json",
            "--policies",
        ])
        .arg(d.join("policies"))
        .arg("--state")
        .arg(d.join("state"))
        .output()
        .unwrap();
    let mut offline: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    via_service["generated"] = serde_json::Value::Null;
    offline["generated"] = serde_json::Value::Null;
    assert_eq!(via_service, offline);
    assert_eq!(
        via_service["runs"].as_array().unwrap().len(),
        3,
        "{via_service}"
    );
    let (ok, out) = a.sh_as(
        "member",
        &format!(
            "{} --socket '{}' report --share team --json",
            bin("sharekeepctl").display(),
            daemon.socket.display()
        ),
    );
    assert!(!ok && out.contains("only root and the admins"), "{out}");
    drop(daemon);
    let page = d.join("rapport.html");
    let out = Command::new(bin("sharekeepctl"))
        .args([
            "report",
            "--offline",
            "--share",
            "team",
            "--lang",
            "en",
            "--html",
        ])
        .arg(&page)
        .arg("--policies")
        .arg(d.join("policies"))
        .arg("--state")
        .arg(d.join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The DOM as the browser built it.
    let dom = String::from_utf8_lossy(&chromium(&["--dump-dom"], &page).stdout).into_owned();
    assert_eq!(
        dom.matches("class=\"pt\"").count(),
        3,
        "one point per run: {dom}"
    );
    assert!(dom.contains("Who may do what"), "{dom}");
    let member = a.name("member");
    let row = dom
        .split("<tr>")
        .find(|r| r.contains(&format!("<th>{member}</th>")))
        .unwrap_or_else(|| panic!("a row for {member}: {dom}"));
    assert!(
        row.contains("<td class=\"read\">read</td><td class=\"write\">write</td>"),
        "reads the root, writes Docs: {row}"
    );
    // A screenshot that is not blank: far bigger than a blank page's at the same size.
    let blank = d.join("blank.html");
    fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let shot = |p: &Path, png: &Path| {
        chromium(
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1000,1400",
            ],
            p,
        );
        fs::metadata(png).map(|m| m.len()).unwrap_or(0)
    };
    let (ours, empty) = (
        shot(&page, &d.join("rapport.png")),
        shot(&blank, &d.join("blank.png")),
    );
    assert!(empty > 0, "chromium took the blank page's screenshot");
    assert!(
        ours > 5 * empty,
        "the page is not blank: {ours} bytes vs {empty} for a blank page"
    );
    // And a PDF, as it prints (A4).
    let pdf = d.join("rapport.pdf");
    chromium(
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
        &page,
    );
    let bytes = fs::read(&pdf).expect("the PDF");
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
}
