//! `sharekeepctl policy …`: check, plan, apply, explain, matrix. Policies are loaded and
//! validated whole before anything is read or changed on disk.

use crate::args::{PolicyCommand, PolicySource};
use crate::output;
use crate::Outcome;
use anyhow::{anyhow, bail, Result};
use sharekeep_policies::{self as policies, Policy, Report};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) fn source_path(s: &PolicySource) -> PathBuf {
    s.source.clone().unwrap_or_else(default_source)
}

pub(crate) fn default_source() -> PathBuf {
    std::env::var_os("SHAREKEEP_POLICIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(policies::DEFAULT_POLICY_DIR))
}

/// Loads and validates; every problem is printed, then the command fails.
pub(crate) fn load(path: &Path) -> Result<Vec<Policy>> {
    match policies::load(path) {
        Ok(p) if p.is_empty() => bail!("{}: no policy file (*.toml) found", path.display()),
        Ok(p) => Ok(p),
        Err(problems) => {
            eprintln!("{problems}");
            let files: std::collections::BTreeSet<_> = problems.0.iter().map(|p| &p.file).collect();
            Err(anyhow!(
                "{} problem(s) in {} file(s); nothing was changed",
                problems.0.len(),
                files.len()
            ))
        }
    }
}

/// Runs a policy command.
pub fn run(cmd: PolicyCommand, quiet: bool) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match cmd {
        PolicyCommand::Check(s) => {
            let list = load(&source_path(&s))?;
            if !quiet {
                for p in &list {
                    writeln!(
                        out,
                        "ok  {}: share `{}` at {} ({} rules)",
                        p.file.display(),
                        p.name,
                        p.path.display(),
                        p.rules.len() - 1
                    )?;
                }
            }
            Ok(Outcome::Ok)
        }
        PolicyCommand::Plan { source, json } => {
            let list = load(&source_path(&source))?;
            let reports = walk(&list, policies::WalkMode::Plan)?;
            print_reports(&mut out, &reports, json, true)?;
            let drift = reports.iter().any(|r| !r.drift.is_empty());
            Ok(if drift { Outcome::Drift } else { Outcome::Ok })
        }
        PolicyCommand::Apply {
            source,
            dry_run,
            json,
        } => {
            let list = load(&source_path(&source))?;
            let mode = if dry_run {
                policies::WalkMode::Plan
            } else {
                policies::WalkMode::Apply
            };
            let reports = walk(&list, mode)?;
            print_reports(&mut out, &reports, json, dry_run)?;
            let errors = reports.iter().any(|r| !r.errors.is_empty());
            Ok(if errors {
                Outcome::Warnings
            } else {
                Outcome::Ok
            })
        }
        PolicyCommand::Explain { args, user, json } => {
            let (src, path) = match args.as_slice() {
                [p] => (default_source(), p.clone()),
                [s, p] => (s.clone(), p.clone()),
                _ => unreachable!("clap takes one or two"),
            };
            let list = load(&src)?;
            let user = policies::resolve_user(&user)
                .map_err(|e| anyhow!("{}; {}", e.describe().0, e.describe().1))?;
            let abs = if path.is_absolute() {
                path.clone()
            } else {
                std::env::current_dir()?.join(&path)
            };
            let policy = match list.iter().find(|p| abs.starts_with(&p.path)) {
                Some(p) => p,
                None if list.len() == 1 && !path.is_absolute() => &list[0],
                None => bail!("{} is in no share of {}", path.display(), src.display()),
            };
            let target = if abs.starts_with(&policy.path) {
                abs
            } else {
                path
            };
            let e = policies::explain(policy, &user, &target).map_err(|m| anyhow!(m))?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
            } else {
                writeln!(
                    out,
                    "{} on {}/{} ({}): {}",
                    e.user.name,
                    policy.path.display(),
                    e.path,
                    if e.is_dir { "folder" } else { "file" },
                    e.access.word()
                )?;
                writeln!(out, "  rule: {}", e.rule)?;
                for r in &e.reasons {
                    writeln!(out, "  {r}")?;
                }
                match e.on_disk {
                    Some(a) if a == e.access => {
                        writeln!(out, "  on disk: {} (the ACLs agree)", a.word())?
                    }
                    Some(a) => writeln!(
                        out,
                        "  on disk: {} — differs from the policy; run `sharekeepctl policy apply`",
                        a.word()
                    )?,
                    None => writeln!(out, "  on disk: not readable")?,
                }
            }
            Ok(Outcome::Ok)
        }
        PolicyCommand::Matrix { source, csv, json } => {
            let list = load(&source_path(&source))?;
            let matrices: Vec<_> = list.iter().map(policies::matrix).collect();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&matrices)?)?;
                return Ok(Outcome::Ok);
            }
            for m in &matrices {
                if csv {
                    writeln!(
                        out,
                        "share,who,{}",
                        m.columns
                            .iter()
                            .map(|c| csv_field(c))
                            .collect::<Vec<_>>()
                            .join(",")
                    )?;
                    for r in &m.rows {
                        let cells: Vec<&str> = r.access.iter().map(|a| a.word()).collect();
                        writeln!(
                            out,
                            "{},{},{}",
                            csv_field(&m.share),
                            csv_field(&r.who),
                            cells.join(",")
                        )?;
                    }
                } else {
                    writeln!(out, "share {}:", m.share)?;
                    let mut header = vec!["who"];
                    header.extend(m.columns.iter().map(String::as_str));
                    let rows: Vec<Vec<String>> = m
                        .rows
                        .iter()
                        .map(|r| {
                            std::iter::once(r.who.clone())
                                .chain(r.access.iter().map(|a| a.word().to_string()))
                                .collect()
                        })
                        .collect();
                    write!(out, "{}", output::table(&header, &rows))?;
                }
            }
            Ok(Outcome::Ok)
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn walk(list: &[Policy], mode: policies::WalkMode) -> Result<Vec<Report>> {
    list.iter()
        .map(|p| policies::run(p, mode).map_err(|e| anyhow!("share `{}`: {e}", p.name)))
        .collect()
}

fn print_reports(
    out: &mut dyn Write,
    reports: &[Report],
    json: bool,
    planning: bool,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(reports)?)?;
        return Ok(());
    }
    for r in reports {
        for d in &r.drift {
            writeln!(
                out,
                "{} {} ({}): {}",
                if planning { "~" } else { "fixed" },
                d.path,
                d.kind,
                d.changes.join(", ")
            )?;
            let line = |s: &policies::StateView| {
                let mut t = format!("{}:{} {} {}", s.owner, s.group, s.mode, s.acl);
                if let Some(d) = &s.default_acl {
                    t.push_str(&format!(" default {d}"));
                }
                t
            };
            if let (Some(before), Some(after)) = (&d.before, &d.after) {
                writeln!(out, "    before: {}", line(before))?;
                writeln!(out, "    after:  {}", line(after))?;
            }
        }
        for x in &r.refused {
            writeln!(out, "refused {}: {}", x.path, x.reason)?;
        }
        for x in &r.errors {
            eprintln!("error {}: {}", x.path, x.reason);
        }
        let verb = if planning { "differ" } else { "changed" };
        let n = if planning {
            r.drift.len() as u64
        } else {
            r.changed
        };
        if n == 0 {
            writeln!(out, "share {}: {} entries checked, nothing to change, {} refused, {} skipped (links, fifos…)", r.share, r.checked, r.refused.len(), r.skipped)?;
        } else {
            writeln!(
                out,
                "share {}: {} entries checked, {} {verb}, {} refused, {} skipped (links, fifos…)",
                r.share,
                r.checked,
                n,
                r.refused.len(),
                r.skipped
            )?;
        }
    }
    Ok(())
}

/// `sharekeepctl samba …`.
pub fn samba(cmd: crate::args::SambaCommand) -> Result<Outcome> {
    use crate::args::SambaCommand;
    match cmd {
        SambaCommand::Export {
            source,
            output,
            state,
        } => {
            let list = load(&source_path(&source))?;
            let text = policies::samba_export(&list, &state.join("versions"));
            match output {
                None => print!("{text}"),
                Some(file) => sharekeep::write_atomic(&file, text.as_bytes(), 0o644)
                    .map_err(|e| anyhow!("{}: {e}", file.display()))?,
            }
            Ok(Outcome::Ok)
        }
        SambaCommand::Check {
            source,
            smb_conf,
            state,
        } => {
            let list = load(&source_path(&source))?;
            let mut cmd = std::process::Command::new("testparm");
            cmd.arg("-s");
            if let Some(c) = &smb_conf {
                cmd.arg(c);
            }
            let out = cmd
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| {
                    anyhow!(
                        "cannot run testparm ({e}); is Samba installed (apt-get install samba)?"
                    )
                })?;
            if !out.status.success() {
                bail!(
                    "testparm failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let diffs = policies::samba_compare(
                &list,
                &String::from_utf8_lossy(&out.stdout),
                &state.join("versions"),
            );
            for d in &diffs {
                println!("differs: {d}");
            }
            let exported = list.iter().filter(|p| p.samba.export).count();
            if diffs.is_empty() {
                println!("smbd agrees with the policies ({exported} exported share(s))");
                Ok(Outcome::Ok)
            } else {
                println!("{} difference(s); regenerate with `sharekeepctl samba export -o FILE` and reload smbd", diffs.len());
                Ok(Outcome::Drift)
            }
        }
    }
}
