//! Alerts: admins learn about problems without reading logs. Every `check_every_secs` the
//! service looks at each share's state; each problem found is an event sent to the `[alerts]`
//! command (JSON on standard input) and/or by email, once when it appears, again every
//! `repeat_hours` while it lasts, and a `resolved` event when it clears. What was sent is
//! remembered in `<state>/alerts.json`, so a restart neither repeats nor forgets.
//!
//! ```text
//! problems:  backup_failed   the share's last backup failed (its error)
//!            drill_failed    the last restore drill failed (the files named)
//!            policy_broken   the policy file no longer loads (its problems; the last good
//!                            version stays enforced)
//!            backup_too_old  no backup succeeded for longer than [backup] max_age
//!            copy_failed     the last off-site copy (copy_to) failed
//!            share_locked    the guard took write away (who, when, why, how many files,
//!                            examples); resolved when an admin gives it back
//! ```

use super::config::{AlertsConfig, EmailConfig};
use super::{drills, state, Inner};
use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One alert, as the command receives it on stdin and the email says it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Event {
    /// `backup_failed`, `drill_failed`, `policy_broken`, `backup_too_old`.
    pub(crate) kind: String,
    /// `firing` or `resolved`.
    pub(crate) state: String,
    pub(crate) share: String,
    /// The share's folder (or the policy file for a broken policy).
    pub(crate) path: String,
    /// What is wrong, in words.
    pub(crate) message: String,
    /// Since when (RFC 3339).
    pub(crate) since: String,
    /// The machine.
    pub(crate) host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sent {
    event: Event,
    last_sent: DateTime<Local>,
}

fn host() -> String {
    sharekeep::sys::hostname()
}

/// The problems of every share now, by `kind/share`.
fn problems(inner: &Inner) -> BTreeMap<String, Event> {
    let now = Local::now();
    let mut out = BTreeMap::new();
    let shares = inner.shares.lock().expect("lock");
    let mut add = |kind: &str, share: &str, path: String, message: String| {
        out.insert(
            format!("{kind}/{share}"),
            Event {
                kind: kind.into(),
                state: "firing".into(),
                share: share.into(),
                path,
                message,
                since: now.to_rfc3339(),
                host: host(),
            },
        );
    };
    for (name, s) in shares.iter() {
        if !s.problems.is_empty() {
            add(
                "policy_broken",
                name,
                s.file.display().to_string(),
                format!(
                    "the policy file no longer loads (its last good version stays enforced): {}",
                    s.problems.join("; ")
                ),
            );
        }
        let Some(policy) = &s.policy else { continue };
        let guard = super::guard::state::load(&inner.settings.state, name);
        if !guard.locks.is_empty() {
            let mut what = Vec::new();
            for lock in &guard.locks {
                let who = lock
                    .user
                    .as_deref()
                    .unwrap_or("everyone (the writer could not be told)");
                match guard.incidents.iter().find(|i| i.id == lock.incident) {
                    Some(i) => what.push(format!(
                        "write taken away from {who} since {}: {} by {}; {} entries changed, e.g. {} (incident {}; give write back with `sharekeepctl guard release --share {name}`)",
                        lock.since,
                        i.reason,
                        i.user.as_deref().unwrap_or("an unknown process"),
                        i.changes,
                        i.examples.join(", "),
                        i.id
                    )),
                    None => what.push(format!("write taken away from {who} since {}", lock.since)),
                }
            }
            add(
                "share_locked",
                name,
                policy.path.display().to_string(),
                what.join("; "),
            );
        }
        let Some(plan) = &policy.backup else { continue };
        let path = policy.path.display().to_string();
        let st = state::load(&inner.settings.state, name);
        if let Some(err) = st
            .last_result
            .as_deref()
            .and_then(|r| r.strip_prefix("failed: "))
        {
            add(
                "backup_failed",
                name,
                path.clone(),
                format!(
                    "the backup of {path} into {} failed: {err}",
                    sharekeep::plan_repository_shown(plan)
                ),
            );
        }
        if let Some(err) = st
            .last_copy
            .as_deref()
            .and_then(|r| r.strip_prefix("failed: "))
        {
            add(
                "copy_failed",
                name,
                path.clone(),
                format!(
                    "the off-site copy of {path} to {} failed (the local backup itself succeeded): {err}",
                    sharekeep::redact_url(plan.copy_to.as_deref().unwrap_or_default())
                ),
            );
        }
        let drill = drills::load(&inner.settings.state, name);
        if drill.last.is_some() && !drill.ok {
            add(
                "drill_failed",
                name,
                path.clone(),
                format!("restore drill {}", drill.summary),
            );
        }
        if let Some(max) = plan.max_age_secs {
            let since = st.last_success.or(st.first_seen);
            if since.is_some_and(|t| (now - t).num_seconds() > max as i64) {
                add(
                    "backup_too_old",
                    name,
                    path.clone(),
                    format!(
                        "no backup of {path} succeeded since {} (max_age: {} h)",
                        st.last_success
                            .map_or("the service started managing it".to_string(), |t| t
                                .format("%Y-%m-%d %H:%M")
                                .to_string()),
                        max / 3600
                    ),
                );
            }
        }
    }
    out
}

fn subject(e: &Event) -> String {
    let what = match e.kind.as_str() {
        "backup_failed" => "backup failed",
        "drill_failed" => "restore drill failed",
        "copy_failed" => "off-site copy failed",
        "policy_broken" => "policy no longer loads",
        "backup_too_old" => "no recent backup",
        "share_locked" => "SHARE LOCKED by its guard",
        other => other,
    };
    if e.state == "resolved" {
        format!(
            "[sharekeep] RESOLVED: {what}, share {} on {}",
            e.share, e.host
        )
    } else {
        format!("[sharekeep] {what}, share {} on {}", e.share, e.host)
    }
}

fn body(e: &Event) -> String {
    format!(
        "{}\n\nshare: {}\npath: {}\nsince: {}\nhost: {}\n\n{}\n",
        if e.state == "resolved" {
            "This problem is resolved."
        } else {
            "sharekeep found a problem that needs an admin."
        },
        e.share,
        e.path,
        e.since,
        e.host,
        e.message
    )
}

/// Sends one event by every configured means (blocking); the errors, if any.
fn send(cfg: &AlertsConfig, e: &Event) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(cmd) = &cfg.command {
        let run = || -> std::io::Result<std::process::ExitStatus> {
            let mut child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(&serde_json::to_vec(e).expect("serializes"))?;
                stdin.write_all(b"\n")?;
            }
            child.wait()
        };
        match run() {
            Ok(s) if s.success() => {}
            Ok(s) => errors.push(format!("alert command `{cmd}` failed ({s})")),
            Err(err) => errors.push(format!("alert command `{cmd}`: {err}")),
        }
    }
    if let Some(mail) = &cfg.email {
        if let Err(err) = email(mail, e) {
            errors.push(format!("alert email through {}: {err}", mail.host));
        }
    }
    errors
}

pub(crate) fn credentials(
    file: &Path,
) -> Result<lettre::transport::smtp::authentication::Credentials, String> {
    // Root's alone (0600), or on Windows not readable by Everyone or Users.
    sharekeep::sys::require_private(file, "SMTP credentials").map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(user), Some(password)) => {
            Ok(lettre::transport::smtp::authentication::Credentials::new(
                user.trim().to_string(),
                password.to_string(),
            ))
        }
        _ => Err(format!(
            "{}: write the user on the first line, the password on the second",
            file.display()
        )),
    }
}

/// What is wrong with `[alerts]` before anything is sent: addresses that do not parse, a
/// credentials file that is missing, unreadable or not root's alone.
pub(crate) fn check(cfg: &AlertsConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if cfg.command.is_none() && cfg.email.is_none() {
        problems.push("[alerts]: give a command, an [alerts.email], or both".to_string());
    }
    if let Some(mail) = &cfg.email {
        for addr in std::iter::once(&mail.from).chain(&mail.to) {
            if addr.parse::<lettre::message::Mailbox>().is_err() {
                problems.push(format!("[alerts.email]: `{addr}` is not an email address"));
            }
        }
        if mail.to.is_empty() {
            problems.push("[alerts.email]: `to` names nobody".to_string());
        }
        if let Some(file) = &mail.credentials {
            if let Err(e) = credentials(file) {
                problems.push(format!("[alerts.email] credentials: {e}"));
            }
        }
    }
    problems
}

fn email(cfg: &EmailConfig, e: &Event) -> Result<(), String> {
    use lettre::message::Mailbox;
    use lettre::{Message, SmtpTransport, Transport};
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|err| format!("from `{}`: {err}", cfg.from))?;
    let mut builder = Message::builder().from(from).subject(subject(e));
    for to in &cfg.to {
        let to: Mailbox = to.parse().map_err(|err| format!("to `{to}`: {err}"))?;
        builder = builder.to(to);
    }
    let message = builder.body(body(e)).map_err(|err| err.to_string())?;
    let mut transport = if cfg.starttls {
        SmtpTransport::starttls_relay(&cfg.host)
            .map_err(|err| err.to_string())?
            .port(cfg.port.unwrap_or(587))
    } else {
        SmtpTransport::builder_dangerous(&cfg.host).port(cfg.port.unwrap_or(25))
    };
    if let Some(file) = &cfg.credentials {
        transport = transport.credentials(credentials(file)?);
    }
    transport
        .timeout(Some(std::time::Duration::from_secs(30)))
        .build()
        .send(&message)
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// Decides what to send now: new and due-again problems, and resolved ones. Pure: tested by
/// table.
fn due(
    sent: &BTreeMap<String, Sent>,
    now_problems: &BTreeMap<String, Event>,
    now: DateTime<Local>,
    repeat: chrono::Duration,
) -> Vec<(String, Event)> {
    let mut out = Vec::new();
    for (key, e) in now_problems {
        match sent.get(key) {
            None => out.push((key.clone(), e.clone())),
            Some(s) if now - s.last_sent >= repeat => {
                let mut again = e.clone();
                again.since = s.event.since.clone();
                out.push((key.clone(), again));
            }
            Some(_) => {}
        }
    }
    for (key, s) in sent {
        if !now_problems.contains_key(key) {
            let mut resolved = s.event.clone();
            resolved.state = "resolved".into();
            out.push((key.clone(), resolved));
        }
    }
    out
}

/// The alert task (started when `[alerts]` is configured).
pub(crate) async fn watch(inner: Arc<Inner>, cfg: AlertsConfig, stop: CancellationToken) {
    let every = std::time::Duration::from_secs(cfg.check_every_secs.unwrap_or(60).max(1));
    let repeat = chrono::Duration::hours(cfg.repeat_hours.unwrap_or(24).max(1) as i64);
    let file = inner.settings.state.join("alerts.json");
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (inner2, cfg2, file2) = (inner.clone(), cfg.clone(), file.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut sent: BTreeMap<String, Sent> = std::fs::read(&file2)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let now = Local::now();
            let current = problems(&inner2);
            let todo = due(&sent, &current, now, repeat);
            if todo.is_empty() {
                return;
            }
            for (key, e) in todo {
                let errors = send(&cfg2, &e);
                for err in &errors {
                    tracing::error!(share = %e.share, kind = %e.kind, "{err}");
                }
                if !errors.is_empty() {
                    continue; // tried again next time
                }
                tracing::info!(share = %e.share, kind = %e.kind, state = %e.state, "alert sent");
                if e.state == "resolved" {
                    sent.remove(&key);
                } else {
                    sent.insert(
                        key,
                        Sent {
                            event: e,
                            last_sent: now,
                        },
                    );
                }
            }
            let _ = state::write_atomic(
                &file2,
                &serde_json::to_vec_pretty(&sent).expect("serializes"),
            );
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> Event {
        Event {
            kind: kind.into(),
            state: "firing".into(),
            share: "team".into(),
            path: "/srv/team".into(),
            message: "m".into(),
            since: "t0".into(),
            host: "h".into(),
        }
    }

    #[test]
    fn new_repeated_quiet_and_resolved() {
        let now = Local::now();
        let day = chrono::Duration::hours(24);
        let current: BTreeMap<String, Event> = [
            ("a".to_string(), ev("backup_failed")),
            ("b".to_string(), ev("drill_failed")),
        ]
        .into();
        let mut sent = BTreeMap::new();
        // Both new.
        assert_eq!(due(&sent, &current, now, day).len(), 2);
        sent.insert(
            "a".into(),
            Sent {
                event: ev("backup_failed"),
                last_sent: now - chrono::Duration::hours(1),
            },
        );
        sent.insert(
            "b".into(),
            Sent {
                event: ev("drill_failed"),
                last_sent: now - chrono::Duration::hours(25),
            },
        );
        sent.insert(
            "c".into(),
            Sent {
                event: ev("policy_broken"),
                last_sent: now,
            },
        );
        let d = due(&sent, &current, now, day);
        let got: Vec<(&str, &str)> = d
            .iter()
            .map(|(k, e)| (k.as_str(), e.state.as_str()))
            .collect();
        // a: sent an hour ago, quiet; b: a day ago, again; c: gone, resolved.
        assert_eq!(got, [("b", "firing"), ("c", "resolved")]);
        assert_eq!(d[1].1.kind, "policy_broken");
        assert!(subject(&d[1].1).starts_with("[sharekeep] RESOLVED: policy no longer loads"));
    }
}
