//! The model of the report an admin hands to the client (`sharekeepctl report`, offline or
//! through sharekeepd), built from what sharekeep keeps: the policy (rights matrix, Samba
//! exposure), the service's run reports and drill state, and the repository's snapshots.
//! Pure: built from fixtures in the tests; `sharekeepctl` renders it (HTML) or prints it (JSON).

use chrono::{DateTime, Local, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use sharekeep_policies::{Matrix, Policy};
use std::collections::BTreeMap;

/// One backup run, from `<state>/reports/<share>/*.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    pub start: DateTime<Local>,
    pub seconds: f64,
    pub trigger: String,
    pub error: Option<String>,
    pub files_new: u64,
    pub files_changed: u64,
    pub bytes_added: u64,
    pub warnings: usize,
    pub growth: u64,
    /// The repository's size after the run (recorded by newer services).
    #[serde(default)]
    pub repository_bytes: Option<u64>,
    pub rights_fixed_since_start: u64,
}

impl Run {
    /// A run report as sharekeepd writes it; `None` when it is not one.
    pub fn from_json(v: &serde_json::Value) -> Option<Run> {
        let time = |k: &str| {
            v[k].as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Local))
        };
        let (start, end) = (time("start")?, time("end")?);
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        Some(Run {
            start,
            seconds: (end - start).num_milliseconds().max(0) as f64 / 1000.0,
            trigger: v["trigger"].as_str().unwrap_or("").to_string(),
            error: v["error"].as_str().map(str::to_string),
            files_new: n(&v["summary"]["files_new"]),
            files_changed: n(&v["summary"]["files_changed"]),
            bytes_added: n(&v["summary"]["bytes_added"]),
            warnings: v["warnings"].as_array().map_or(0, Vec::len),
            growth: n(&v["repository_growth"]),
            repository_bytes: v["repository_bytes"].as_u64(),
            rights_fixed_since_start: n(&v["rights_fixed_since_start"]),
        })
    }

    pub fn outcome(&self) -> Outcome {
        match (&self.error, self.warnings) {
            (Some(_), _) => Outcome::Failed,
            (None, 0) => Outcome::Ok,
            (None, _) => Outcome::Warnings,
        }
    }
}

/// A day's outcome on the calendar strip.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No run was planned that day.
    None,
    Ok,
    Warnings,
    /// A run was planned and none happened.
    Missed,
    Failed,
}

/// The last restore drill.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Drill {
    pub time: DateTime<Local>,
    pub ok: bool,
    pub summary: String,
}

/// What the report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub share: String,
    pub path: String,
    pub description: Option<String>,
    pub generated: DateTime<Local>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub matrix: Matrix,
    /// Samba: who may connect, write, only read (`None`: not exported).
    pub samba: Option<BTreeMap<String, String>>,
    pub schedule: Option<String>,
    pub runs: Vec<Run>,
    pub days: Vec<(NaiveDate, Outcome)>,
    /// Rights fixed by the service during the period (drift found and corrected).
    pub drift_fixed: u64,
    pub snapshots: usize,
    pub oldest: Option<DateTime<Local>>,
    pub newest: Option<DateTime<Local>>,
    pub keep: Option<String>,
    pub floor_days: u32,
    /// The last restore drill.
    pub drill: Option<Drill>,
    /// Every drill of the period.
    #[serde(default)]
    pub drills: Vec<Drill>,
    pub problems: Vec<String>,
}

/// Everything the report is made from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub policy: &'a Policy,
    pub runs: Vec<Run>,
    /// Snapshot times of the share.
    pub snapshots: Vec<DateTime<Local>>,
    pub drill: Option<Drill>,
    /// Drills recorded (any period: filtered here).
    pub drills: Vec<Drill>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub now: DateTime<Local>,
}

fn day_bounds(d: NaiveDate) -> (DateTime<Local>, DateTime<Local>) {
    let at = |d: NaiveDate| {
        Local
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .expect("a local midnight")
    };
    (at(d), at(d.succ_opt().unwrap_or(d)))
}

/// Builds the report.
pub fn build(i: Inputs<'_>) -> Report {
    let p = i.policy;
    let mut runs: Vec<Run> = i
        .runs
        .into_iter()
        .filter(|r| {
            let d = r.start.date_naive();
            i.from <= d && d <= i.to
        })
        .collect();
    runs.sort_by_key(|r| r.start);
    let plan = p.backup.as_ref();
    let mut days = Vec::new();
    let mut d = i.from;
    while d <= i.to {
        let (start, end) = day_bounds(d);
        let worst = runs
            .iter()
            .filter(|r| r.start >= start && r.start < end)
            .map(Run::outcome)
            .max();
        let planned = plan.is_some_and(|b| {
            b.schedule
                .after(&start)
                .next()
                .is_some_and(|t| t < end && t < i.now)
        });
        days.push((
            d,
            match worst {
                Some(o) => o,
                None if planned => Outcome::Missed,
                None => Outcome::None,
            },
        ));
        d = match d.succ_opt() {
            Some(n) => n,
            None => break,
        };
    }
    // The service counts fixes since it started: the period's drift is the growth of that
    // count between runs (a restart resets it: a drop starts a new count).
    let mut drift_fixed = 0;
    let mut last = None;
    for r in &runs {
        let c = r.rights_fixed_since_start;
        drift_fixed += match last {
            Some(prev) if c >= prev => c - prev,
            _ => c,
        };
        last = Some(c);
    }
    let mut problems = Vec::new();
    if let Some(r) = runs.iter().rev().find(|r| r.error.is_some()) {
        if runs.last() == Some(r) {
            problems.push(format!(
                "the last backup failed ({}): {}",
                r.start.format("%Y-%m-%d %H:%M"),
                r.error.as_deref().unwrap_or("")
            ));
        }
    }
    let missed = days.iter().filter(|(_, o)| *o == Outcome::Missed).count();
    if missed > 0 {
        problems.push(format!("{missed} planned backup day(s) without a run"));
    }
    if let Some(dr) = &i.drill {
        if !dr.ok {
            problems.push(format!("the last restore drill failed: {}", dr.summary));
        }
    } else if plan.is_some() {
        problems.push("no restore drill has been run (set [backup] drill)".into());
    }
    Report {
        share: p.name.clone(),
        path: p.path.display().to_string(),
        description: p.description.clone(),
        generated: i.now,
        from: i.from,
        to: i.to,
        matrix: sharekeep_policies::matrix(p),
        samba: sharekeep_policies::samba_share_of(
            p,
            std::path::Path::new("/var/lib/sharekeep/versions"),
        )
        .map(|s| {
            s.settings
                .into_iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "valid users" | "write list" | "read list" | "vfs objects"
                    )
                })
                .collect()
        }),
        schedule: plan.map(|b| b.schedule_text.clone()),
        runs,
        days,
        drift_fixed,
        snapshots: i.snapshots.len(),
        oldest: i.snapshots.iter().min().copied(),
        newest: i.snapshots.iter().max().copied(),
        keep: plan.and_then(|b| b.keep.as_ref()).map(|k| {
            let mut parts = Vec::new();
            for (name, v) in [
                ("last", k.last),
                ("hourly", k.hourly),
                ("daily", k.daily),
                ("weekly", k.weekly),
                ("monthly", k.monthly),
                ("yearly", k.yearly),
            ] {
                if let Some(n) = v {
                    parts.push(format!("{name} {n}"));
                }
            }
            if let Some(s) = k.within_secs {
                parts.push(format!("within {} d", s / 86400));
            }
            parts.join(", ")
        }),
        floor_days: plan.map_or(0, |b| b.keep_min_days),
        drill: i.drill,
        drills: i
            .drills
            .into_iter()
            .filter(|d| {
                let day = d.time.date_naive();
                i.from <= day && day <= i.to
            })
            .collect(),
        problems,
    }
}

/// The report of `policy`'s share for `[from, to]`, from the service's state folder and the
/// share's repository (when it exists yet).
pub fn from_state(
    policy: &Policy,
    state: &std::path::Path,
    env: &crate::PlanEnv,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Local>,
) -> crate::Result<Report> {
    let mut runs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(state.join("reports").join(&policy.name)) {
        for e in entries.flatten() {
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            if let Some(r) = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .as_ref()
                .and_then(Run::from_json)
            {
                runs.push(r);
            }
        }
    }
    // The last drill and the history share one shape: {"last", "ok", "summary"}.
    let drill_of = |v: &serde_json::Value| {
        Some(Drill {
            time: DateTime::parse_from_rfc3339(v["last"].as_str()?)
                .ok()?
                .with_timezone(&Local),
            ok: v["ok"].as_bool()?,
            summary: v["summary"].as_str()?.to_string(),
        })
    };
    let drill = std::fs::read(state.join(format!("{}.drill.json", policy.name)))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| drill_of(&v));
    let drills = std::fs::read_to_string(state.join(format!("{}.drills.jsonl", policy.name)))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| drill_of(&v))
        .collect();
    let snapshots = match &policy.backup {
        Some(plan) => {
            match crate::open_plan_repository_if_any(plan, crate::IndexScope::All, env)? {
                Some(repo) => repo
                    .snapshots()?
                    .into_iter()
                    .filter(|s| std::path::Path::new(s.root()) == policy.path)
                    .map(|s| s.time)
                    .collect(),
                None => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    Ok(build(Inputs {
        policy,
        runs,
        snapshots,
        drill,
        drills,
        from,
        to,
        now,
    }))
}
