//! Commands sent to sharekeepd over its control socket (JSON lines, see
//! `sharekeep::protocol`): status, reload, and a share's backup, history and restores by
//! name. A copy (`restore --to DIR`) by anyone but root arrives as a stream that this process,
//! running as the caller, writes with `sharekeep::CopyWriter`: the kernel checks every write
//! against the caller's own rights.

use crate::args::{Cli, Command};
use crate::render;
use crate::Outcome;
use anyhow::{anyhow, bail, Context, Result};
use sharekeep::protocol::{frame, Request, Response, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// The control channel: a Unix socket, or on Windows a named pipe opened as a file (the
/// service identifies the caller from its side of the pipe).
#[cfg(unix)]
type Channel = std::os::unix::net::UnixStream;
#[cfg(windows)]
type Channel = std::fs::File;

#[cfg(unix)]
fn open_channel(socket: &Path) -> std::io::Result<Channel> {
    Channel::connect(socket)
}

#[cfg(windows)]
fn open_channel(pipe: &Path) -> std::io::Result<Channel> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(pipe)
}

/// A connection to sharekeepd, greeted.
struct Client {
    reader: BufReader<Channel>,
    writer: Channel,
}

impl Client {
    fn connect(socket: &Path) -> Result<Client> {
        let stream = open_channel(socket).with_context(|| {
            format!(
                "cannot reach sharekeepd at {} (is it running? give --socket, or --repo DIR to work on a repository directly)",
                socket.display()
            )
        })?;
        let mut c = Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        match c.call(
            &Request::Hello {
                version: PROTOCOL_VERSION,
            },
            &mut |_| {},
        )? {
            Response::Hello { .. } => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Sends a request; progress lines go to `progress`; returns the final response.
    fn call(&mut self, req: &Request, progress: &mut dyn FnMut(&str)) -> Result<Response> {
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        loop {
            let mut buf = String::new();
            if self.reader.read_line(&mut buf)? == 0 {
                bail!("sharekeepd closed the connection");
            }
            let r: Response = serde_json::from_str(&buf)
                .with_context(|| format!("unreadable answer from sharekeepd: {buf:?}"))?;
            match r {
                Response::Progress { message } => progress(&message),
                e @ Response::Error { .. } => return Err(unexpected(e)),
                other => return Ok(other),
            }
        }
    }
}

impl Client {
    /// Reads the frames following a `stream` response, handing each to `on` until the end
    /// frame; an error frame becomes the error.
    fn frames(
        &mut self,
        cancel: &sharekeep::CancelToken,
        on: &mut dyn FnMut(u8, &[u8]) -> Result<()>,
    ) -> Result<frame::End> {
        // One thread reads the socket while this one writes: reading and writing overlap.
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<(u8, Vec<u8>)>>(8);
        let reader = &mut self.reader;
        std::thread::scope(|s| {
            s.spawn(move || loop {
                let mut buf = Vec::new();
                let r = frame::read(reader, &mut buf).map(|tag| (tag, buf));
                let last =
                    !matches!(&r, Ok((tag, _)) if *tag != frame::END && *tag != frame::ERROR);
                if tx.send(r).is_err() || last {
                    return;
                }
            });
            let result = (|| loop {
                if cancel.is_cancelled() {
                    return Err(sharekeep::Error::Interrupted.into());
                }
                let (tag, buf) = rx
                    .recv()
                    .context("the stream from sharekeepd broke off")?
                    .context("the stream from sharekeepd broke off")?;
                match tag {
                    frame::END => return Ok(serde_json::from_slice(&buf)?),
                    frame::ERROR => {
                        return Err(unexpected(serde_json::from_slice(&buf)?));
                    }
                    tag => on(tag, &buf)?,
                }
            })();
            if result.is_err() {
                // Unblock the reader: it stops when the socket closes.
                let _ = self_shutdown(&self.writer);
            }
            drop(rx);
            result
        })
    }
}

#[cfg(unix)]
fn self_shutdown(w: &Channel) -> std::io::Result<()> {
    w.shutdown(std::net::Shutdown::Both)
}

/// A pipe cannot be half closed: the reader stops at its next frame, which it can no longer
/// hand over.
#[cfg(windows)]
fn self_shutdown(_w: &Channel) -> std::io::Result<()> {
    Ok(())
}

/// An error answer as the error it reports (`path: message (kind)`); anything else as an
/// unexpected answer.
fn unexpected(r: Response) -> anyhow::Error {
    match r {
        Response::Error {
            kind,
            message,
            path,
        } => {
            let at = path.map(|p| format!("{p}: ")).unwrap_or_default();
            anyhow!("{at}{message} ({kind})")
        }
        other => anyhow!("unexpected answer from sharekeepd: {other:?}"),
    }
}

fn need_share(share: Option<String>) -> Result<String> {
    share.ok_or_else(|| {
        anyhow!("give --share NAME (through sharekeepd) or --repo DIR (directly on a repository)")
    })
}

/// Runs a command through the service.
/// The report of a share, built by sharekeepd (root and the share's admins).
pub fn report(
    socket: &Path,
    share: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<sharekeep::report::Report> {
    let mut client = Client::connect(socket)?;
    let req = Request::Report {
        share: share.to_string(),
        from,
        to,
    };
    let Response::Report(r) = client.call(&req, &mut |_: &str| {})? else {
        bail!("unexpected answer to report");
    };
    Ok(*r)
}

pub fn run(cli: Cli, cancel: &sharekeep::CancelToken) -> Result<Outcome> {
    let mut client = Client::connect(&cli.socket)?;
    let mut out = std::io::stdout().lock();
    let quiet = cli.quiet;
    let mut progress = |m: &str| {
        if !quiet {
            eprintln!("{m}");
        }
    };
    match cli.command {
        Command::Status { json } => {
            let Response::Status { shares } = client.call(&Request::Status, &mut progress)? else {
                bail!("unexpected answer to status");
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&shares)?)?;
                return Ok(Outcome::Ok);
            }
            if shares.is_empty() {
                writeln!(
                    out,
                    "no share: sharekeepd shows each user the shares whose policy names them"
                )?;
            }
            for s in &shares {
                writeln!(
                    out,
                    "share {} ({}): policy {}",
                    s.name,
                    if s.path.is_empty() { &s.file } else { &s.path },
                    s.policy
                )?;
                for p in &s.problems {
                    writeln!(out, "    {}", p.replace('\n', "\n    "))?;
                }
                writeln!(
                    out,
                    "    rights: {} entries checked, {} fixed; {} folders watched; last full reconcile {}",
                    s.checked,
                    s.drift_fixed,
                    s.watches,
                    s.last_reconcile
                        .as_deref()
                        .map_or("never".to_string(), crate::output::spoken_rfc3339)
                )?;
                let spoken = |t: &Option<String>, none: &str| {
                    t.as_deref()
                        .map_or(none.to_string(), crate::output::spoken_rfc3339)
                };
                writeln!(
                    out,
                    "    backup: last {} ({}), next {}{}",
                    spoken(&s.last_backup, "never"),
                    s.last_result.as_deref().unwrap_or("-"),
                    spoken(&s.next_backup, "-"),
                    if s.running { "; running now" } else { "" }
                )?;
                for l in &s.locks {
                    writeln!(
                        out,
                        "    LOCKED: write taken away from {} since {} by the guard (incident {}); `sharekeepctl guard status --share {}`",
                        l.user.as_deref().unwrap_or("EVERYONE"),
                        crate::output::spoken_rfc3339(&l.since),
                        l.incident,
                        s.name
                    )?;
                }
                if let Some(to) = &s.copy_to {
                    writeln!(
                        out,
                        "    off-site copy to {to}: {}",
                        s.last_copy.as_deref().unwrap_or("none yet")
                    )?;
                }
                if s.last_drill.is_some() || s.next_drill.is_some() {
                    writeln!(
                        out,
                        "    restore drill: last {} ({}), next {}",
                        spoken(&s.last_drill, "never"),
                        s.last_drill_result.as_deref().unwrap_or("-"),
                        spoken(&s.next_drill, "-"),
                    )?;
                }
            }
            let stale = shares
                .iter()
                .any(|s| s.policy != "ok" || !s.locks.is_empty());
            Ok(if stale {
                Outcome::Warnings
            } else {
                Outcome::Ok
            })
        }
        Command::Reload => {
            let r = client.call(&Request::Reload, &mut progress)?;
            if let Response::Ok { message } = r {
                if !quiet {
                    writeln!(out, "{message}")?;
                }
            }
            Ok(Outcome::Ok)
        }
        Command::Backup(a) => {
            let share = a.share.ok_or_else(|| anyhow!("without --repo, give --share NAME (the service backs up the share's folder into its repository)"))?;
            match client.call(&Request::Backup { share }, &mut progress)? {
                Response::BackupDone { snapshot, warnings } => {
                    render::backup(&mut out, &snapshot, &warnings, a.json, quiet)
                }
                other => Err(unexpected(other)),
            }
        }
        Command::Snapshots(a) => {
            let share = a
                .share
                .ok_or_else(|| anyhow!("without --repo, give --share NAME"))?;
            let Response::Snapshots { snapshots } =
                client.call(&Request::Snapshots { share }, &mut progress)?
            else {
                bail!("unexpected answer to snapshots");
            };
            if a.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&snapshots)?)?;
            } else {
                render::snapshots_table(&mut out, &snapshots)?;
            }
            Ok(Outcome::Ok)
        }
        Command::Versions(a) => {
            let share = need_share(a.share)?;
            let req = Request::Versions {
                share: share.clone(),
                path: a.path.clone(),
            };
            let Response::Versions { versions } = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to versions");
            };
            render::versions(
                &mut out,
                &a.path,
                &format!("share {share}"),
                &versions,
                a.json,
            )
        }
        Command::Diff(a) => {
            let share = need_share(a.share)?;
            let req = Request::Diff {
                share,
                from: a.from,
                to: a.to,
            };
            let Response::Diff { from, to, changes } = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to diff");
            };
            render::diff(&mut out, &from, &to, &changes, a.json)
        }
        Command::Restore(a) => {
            let share = need_share(a.share)?;
            let overwrite = match a.overwrite {
                crate::args::OverwriteArg::Never => "never",
                crate::args::OverwriteArg::IfChanged => "if-changed",
                crate::args::OverwriteArg::Always => "always",
            };
            let to = match &a.to {
                Some(d) => Some(std::path::absolute(d)?),
                None => None,
            };
            // A copy is written here, as the caller (root included: the service itself only
            // writes inside its shares, and its sandbox never limits where root copies to).
            let stream = to.is_some();
            let req = Request::Restore {
                share,
                snapshot: a.snapshot,
                paths: a.paths,
                to: to.as_ref().map(|d| d.display().to_string()),
                overwrite: overwrite.into(),
                dry_run: a.dry_run,
                stream,
            };
            match client.call(&req, &mut progress)? {
                Response::Restore(r) => render::restore(&mut out, &r, a.json, quiet),
                Response::Stream { snapshot, .. } => {
                    let target = to.expect("streams are copies");
                    let overwrite = match a.overwrite {
                        crate::args::OverwriteArg::Never => sharekeep::Overwrite::Never,
                        crate::args::OverwriteArg::IfChanged => sharekeep::Overwrite::IfChanged,
                        crate::args::OverwriteArg::Always => sharekeep::Overwrite::Always,
                    };
                    let mut writer =
                        sharekeep::CopyWriter::new(&target, &snapshot, overwrite, a.dry_run)?;
                    let bar = crate::progress::Bar::new("restore", quiet);
                    use sharekeep::Progress;
                    client.frames(cancel, &mut |tag, payload| {
                        match tag {
                            frame::ENTRY => writer.entry(serde_json::from_slice(payload)?),
                            frame::DATA => {
                                writer.data(payload);
                                bar.add_bytes(payload.len() as u64);
                            }
                            frame::FILE_END => writer.file_end(),
                            frame::WARNING => writer.warning(serde_json::from_slice(payload)?),
                            other => bail!("unexpected frame {other:?} from sharekeepd"),
                        }
                        Ok(())
                    })?;
                    bar.finish();
                    let r = writer.finish();
                    render::restore(&mut out, &r, a.json, quiet)
                }
                other => Err(unexpected(other)),
            }
        }
        Command::Ls(a) => {
            let share = need_share(a.share)?;
            let req = Request::Ls {
                share,
                snapshot: a.snapshot,
                path: a.path.unwrap_or_default(),
            };
            let Response::Ls { root, entries, .. } = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to ls");
            };
            let root = std::path::PathBuf::from(root);
            for e in &entries {
                render::ls_entry(&mut out, &root, &e.path, &e.node, a.json, a.long)?;
            }
            Ok(Outcome::Ok)
        }
        Command::Cat(a) => {
            let share = need_share(a.share)?;
            let req = Request::Cat {
                share,
                snapshot: a.snapshot,
                path: a.path,
            };
            let Response::Stream { .. } = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to cat");
            };
            client.frames(cancel, &mut |tag, payload| {
                if tag == frame::DATA {
                    out.write_all(payload)?;
                }
                Ok(())
            })?;
            out.flush()?;
            Ok(Outcome::Ok)
        }
        Command::Forget(a) => {
            let share = need_share(a.share.clone())?;
            let own_rules = a.keep_last.is_some()
                || a.keep_hourly.is_some()
                || a.keep_daily.is_some()
                || a.keep_weekly.is_some()
                || a.keep_monthly.is_some()
                || a.keep_yearly.is_some()
                || a.keep_within.is_some()
                || !a.keep_tags.is_empty()
                || a.keep_min_days.is_some()
                || a.policy.is_some()
                || a.prune;
            if own_rules {
                bail!("through sharekeepd, `forget --share` applies the share's own policy (its `keep` and `keep_min_days`; prune follows on the service's cadence); give --repo to use other rules");
            }
            let req = Request::Forget {
                share,
                dry_run: a.dry_run,
            };
            let Response::Forget { decisions, dry_run } = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to forget");
            };
            render::forget(&mut out, &decisions, dry_run, a.json, quiet)
        }
        Command::Drill(a) => {
            let share = need_share(a.share.clone())?;
            let req = Request::Drill {
                share,
                sample: a.sample_given,
            };
            let Response::Drill(r) = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to drill");
            };
            crate::maintenance::print_drill(&r, a.json, &mut out)
        }
        Command::Guard(crate::args::GuardCommand::Status { share, json }) => {
            let Response::Guard(r) = client.call(&Request::Guard { share }, &mut progress)? else {
                bail!("unexpected answer to guard status");
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                render::guard(&mut out, &r)?;
            }
            Ok(if r.locks.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Warnings
            })
        }
        Command::Guard(crate::args::GuardCommand::Release { share, user }) => {
            match client.call(&Request::GuardRelease { share, user }, &mut progress)? {
                Response::Ok { message } => {
                    if !quiet {
                        writeln!(out, "{message}")?;
                    }
                    Ok(Outcome::Ok)
                }
                other => Err(unexpected(other)),
            }
        }
        Command::Rollback(a) => {
            let req = Request::Rollback {
                share: a.share,
                incident: a.incident,
                dry_run: a.dry_run,
            };
            let Response::Rollback(r) = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to rollback");
            };
            if a.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                render::rollback(&mut out, &r)?;
            }
            Ok(if r.warnings.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Warnings
            })
        }
        Command::Check(a) => {
            let share = need_share(a.share)?;
            let req = Request::Check {
                share,
                read_data: a.read_data,
            };
            let Response::Check(r) = client.call(&req, &mut progress)? else {
                bail!("unexpected answer to check");
            };
            render::check(&mut out, &r, a.read_data.is_some(), a.json)
        }
        _ => unreachable!("only service commands come here"),
    }
}
