//! `sharekeepctl report`: the account an admin hands to the client — who may do what, the
//! Samba exposure, how the backups went (calendar, charts, every run), retention, restore
//! drills, open problems — as one self-contained HTML page or JSON. Read from the policy, the
//! service's state folder and the share's repository (root).

mod html;

use crate::args::ReportArgs;
use crate::Outcome;
use anyhow::{bail, Result};
use chrono::{Duration, Local, NaiveDate};
use sharekeep::report;
use std::io::Write;
use std::path::Path;

pub fn run(a: ReportArgs, socket: &Path, out: &mut dyn Write) -> Result<Outcome> {
    let now = Local::now();
    let to = a.to.unwrap_or_else(|| now.date_naive());
    let from = a.from.unwrap_or(to - Duration::days(30));
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    if !a.json && a.html.is_none() {
        bail!("say what to write: --html FILE and/or --json");
    }
    let report = if a.offline {
        let source = a
            .policies
            .clone()
            .unwrap_or_else(crate::policy::default_source);
        let all = crate::policy::load(&source)?;
        let Some(policy) = all.into_iter().find(|p| p.name == a.share) else {
            bail!("no share `{}` in {}", a.share, source.display());
        };
        report::from_state(
            &policy,
            &a.state,
            &sharekeep::PlanEnv::default(),
            from,
            to,
            now,
        )?
    } else {
        crate::remote::report(socket, &a.share, from, to)?
    };
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(file) = &a.html {
        let lang = match a.lang.as_deref() {
            Some("fr") => html::Lang::Fr,
            Some(_) => html::Lang::En,
            None => html::Lang::from_env(),
        };
        sharekeep::write_atomic(file, html::render(&report, lang).as_bytes(), 0o644)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        if !a.json {
            writeln!(
                out,
                "report of share {} ({from} → {to}, {} run(s)) written to {}",
                report.share,
                report.runs.len(),
                file.display()
            )?;
        }
    }
    Ok(Outcome::Ok)
}

/// Parses `YYYY-MM-DD`.
pub fn date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("`{s}`: {e} (write YYYY-MM-DD)"))
}

// Their policy names Unix accounts (root, nobody) and a Unix repository path.
#[cfg(all(test, unix))]
mod tests {
    use chrono::{Local, NaiveDate, TimeZone};
    use sharekeep::report::{build, Drill, Inputs, Outcome, Run};

    fn policy(dir: &std::path::Path) -> sharekeep_policies::Policy {
        std::fs::create_dir_all(dir.join("share/Tarifs")).unwrap();
        let f = dir.join("p.toml");
        std::fs::write(
            &f,
            format!(
                "[share]\nname = \"c\"\npath = '{}'\nowner = \"root\"\ngroup = \"root\"\n\n[access]\nread = [\"nobody\"]\n\n[[rule]]\npath = \"Tarifs\"\nwrite = [\"nobody\"]\n\n[backup]\nschedule = \"0 30 18 * * *\"\nrepository = \"/var/r\"\nkeep = {{ daily = 7 }}\nkeep_min_days = 30\n\n[samba]\nexport = true\n",
                dir.join("share").display()
            ),
        )
        .unwrap();
        sharekeep_policies::load_file(&f).unwrap()
    }

    fn run(day: u32, error: Option<&str>, warnings: usize, fixed: u64) -> Run {
        Run {
            start: Local.with_ymd_and_hms(2026, 11, day, 18, 30, 0).unwrap(),
            seconds: 2.0 + f64::from(day),
            trigger: "schedule".into(),
            error: error.map(str::to_string),
            files_new: 3,
            files_changed: 1,
            bytes_added: 1 << 20,
            warnings,
            growth: 1 << 20,
            repository_bytes: Some(u64::from(day) << 20),
            rights_fixed_since_start: fixed,
        }
    }

    fn inputs(p: &sharekeep_policies::Policy, runs: Vec<Run>) -> Inputs<'_> {
        Inputs {
            policy: p,
            runs,
            snapshots: vec![Local.with_ymd_and_hms(2026, 11, 2, 18, 30, 0).unwrap()],
            drill: Some(Drill {
                time: Local.with_ymd_and_hms(2026, 11, 8, 20, 0, 0).unwrap(),
                ok: true,
                summary: "ok: 51 of 16013 files restored identical".into(),
            }),
            drills: vec![
                Drill {
                    time: Local.with_ymd_and_hms(2026, 11, 3, 20, 0, 0).unwrap(),
                    ok: false,
                    summary: "FAILED: 1 file(s) do not restore (a.pdf)".into(),
                },
                Drill {
                    time: Local.with_ymd_and_hms(2026, 11, 8, 20, 0, 0).unwrap(),
                    ok: true,
                    summary: "ok: 51 of 16013 files restored identical".into(),
                },
            ],
            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 7).unwrap(),
            now: Local.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_model_from_run_reports() {
        let t = tempfile::tempdir().unwrap();
        let p = policy(t.path());
        let runs = vec![
            run(1, None, 0, 10),
            run(2, None, 2, 12),
            run(4, Some("disk full"), 0, 3), // the service restarted: its count began again
            run(5, None, 0, 5),
            run(9, None, 0, 9), // outside the period
        ];
        let r = build(inputs(&p, runs));
        let days: Vec<Outcome> = r.days.iter().map(|d| d.1).collect();
        use Outcome as O;
        assert_eq!(
            days,
            [
                O::Ok,
                O::Warnings,
                O::Missed,
                O::Failed,
                O::Ok,
                O::Missed,
                O::Missed
            ]
        );
        assert_eq!(r.runs.len(), 4);
        assert_eq!(r.drift_fixed, 10 + 2 + 3 + 2);
        assert_eq!(r.keep.as_deref(), Some("daily 7"));
        assert_eq!(r.drills.len(), 1, "the drills of the period only");
        assert!(!r.drills[0].ok);
        assert_eq!(r.floor_days, 30);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("3 planned backup day(s) without a run")),
            "{:?}",
            r.problems
        );
        let samba = r.samba.as_ref().unwrap();
        assert_eq!(samba["write list"], "nobody root");
        // The matrix: nobody writes Tarifs, reads the root.
        let col = r.matrix.columns.iter().position(|c| c == "Tarifs").unwrap();
        let nobody = r.matrix.rows.iter().find(|x| x.who == "nobody").unwrap();
        assert_eq!(nobody.access[col], sharekeep_policies::Access::Write);
        assert_eq!(nobody.access[0], sharekeep_policies::Access::Read);
    }

    #[test]
    fn the_page_and_its_charts_for_0_1_and_400_runs() {
        let t = tempfile::tempdir().unwrap();
        let p = policy(t.path());
        for n in [0usize, 1, 400] {
            let runs: Vec<Run> = (0..n)
                .map(|i| {
                    let mut r = run(1 + (i % 7) as u32, None, 0, 0);
                    r.start += chrono::Duration::seconds(i as i64);
                    r
                })
                .collect();
            let r = build(inputs(&p, runs));
            for lang in [super::html::Lang::Fr, super::html::Lang::En] {
                let page = super::html::render(&r, lang);
                assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
                assert!(
                    !page.contains("http://") && !page.contains("https://"),
                    "self-contained"
                );
                assert_eq!(page.matches("class=\"pt\"").count(), n, "one point per run");
                assert_eq!(page.matches("class=\"bar\"").count(), n, "one bar per run");
                assert_eq!(page.matches("class=\"day ").count(), 7, "one cell per day");
                assert!(page.contains("@media print"));
                if lang == super::html::Lang::Fr {
                    assert!(page.contains("Qui peut faire quoi"));
                } else {
                    assert!(page.contains("Who may do what"));
                }
                if n == 0 {
                    assert!(
                        page.contains("No backup in the period.")
                            || page.contains("Aucune sauvegarde")
                    );
                }
            }
        }
    }
}
