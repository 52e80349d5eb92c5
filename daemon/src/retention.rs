//! Retention: which snapshots a plan keeps. A pure function of (snapshots, rules, now), tested
//! by tables of cases; `forget` applies its result.
//!
//! ```text
//! group snapshots by (host, paths); within a group, newest first:
//!   last N      keep the N newest
//!   hourly N    keep the newest of each hour, for the N newest hours that have one
//!   daily/weekly/monthly/yearly N   the same with days, ISO weeks, months, years (local time)
//!   within D    keep every snapshot newer than now - D
//!   tags T      keep every snapshot carrying one of T
//!   min days M  keep every snapshot younger than M days, whatever the rules say (legal floor)
//!   `guard`     a snapshot the share's guard pinned (the last good one before an attack), and
//!   `incident`  the backup it took of the damage, are kept whatever the rules say
//! a snapshot is removed only when no rule keeps it; no rule at all is refused
//! ```

use crate::error::{Error, Result};
use crate::id::Id;
use crate::snapshot::Snapshot;
use chrono::{DateTime, Datelike, Local, Timelike};
use std::collections::{BTreeMap, HashSet};

/// The keep rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepRules {
    /// Keep the N newest.
    pub last: Option<u32>,
    /// Newest of each of the N newest hours.
    pub hourly: Option<u32>,
    /// … days.
    pub daily: Option<u32>,
    /// … ISO weeks.
    pub weekly: Option<u32>,
    /// … months.
    pub monthly: Option<u32>,
    /// … years.
    pub yearly: Option<u32>,
    /// Everything newer than this.
    pub within: Option<chrono::Duration>,
    /// Everything with one of these tags.
    pub tags: Vec<String>,
    /// Legal floor: nothing younger than this many days is removed.
    pub min_days: Option<u32>,
}

impl KeepRules {
    /// A share policy's `keep` and `keep_min_days` as retention rules.
    pub fn from_policy(keep: &sharekeep_policies::Keep, min_days: u32) -> KeepRules {
        KeepRules {
            last: keep.last,
            hourly: keep.hourly,
            daily: keep.daily,
            weekly: keep.weekly,
            monthly: keep.monthly,
            yearly: keep.yearly,
            within: keep
                .within_secs
                .map(|x| chrono::Duration::seconds(x as i64)),
            tags: keep.tags.clone(),
            min_days: Some(min_days).filter(|d| *d > 0),
        }
    }

    /// Whether any rule that keeps snapshots is set (the floor alone does not count).
    pub fn has_rule(&self) -> bool {
        self.last.is_some()
            || self.hourly.is_some()
            || self.daily.is_some()
            || self.weekly.is_some()
            || self.monthly.is_some()
            || self.yearly.is_some()
            || self.within.is_some()
            || !self.tags.is_empty()
    }
}

/// What retention decided for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot.
    pub id: Id,
    /// Its time.
    pub time: DateTime<Local>,
    /// Kept or removed.
    pub keep: bool,
    /// The rules that keep it (`daily`, `tag pre-restore`, `min-days`…).
    pub reasons: Vec<String>,
}

type BucketFn = fn(&DateTime<Local>) -> (i32, u32, u32, u32);

fn hour(t: &DateTime<Local>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), t.day(), t.hour())
}
fn day(t: &DateTime<Local>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), t.day(), 0)
}
fn week(t: &DateTime<Local>) -> (i32, u32, u32, u32) {
    let w = t.iso_week();
    (w.year(), w.week(), 0, 0)
}
fn month(t: &DateTime<Local>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), 0, 0)
}
fn year(t: &DateTime<Local>) -> (i32, u32, u32, u32) {
    (t.year(), 0, 0, 0)
}

/// Decides, for every snapshot, whether the rules keep it. Refuses when no rule is set (that
/// would remove everything).
pub fn apply_rules(
    snapshots: &[Snapshot],
    rules: &KeepRules,
    now: DateTime<Local>,
) -> Result<Vec<Decision>> {
    if !rules.has_rule() {
        return Err(Error::Invalid(
            "no keep rule given: refusing to remove every snapshot; give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within, --keep-tag".into(),
        ));
    }
    let mut groups: BTreeMap<(String, Vec<String>), Vec<&Snapshot>> = BTreeMap::new();
    for s in snapshots {
        groups
            .entry((s.host.clone(), s.paths.clone()))
            .or_default()
            .push(s);
    }
    let mut out = Vec::with_capacity(snapshots.len());
    for (_, mut list) in groups {
        list.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); list.len()];
        if let Some(n) = rules.last {
            for r in reasons.iter_mut().take(n as usize) {
                r.push("last".into());
            }
        }
        let buckets: [(&str, Option<u32>, BucketFn); 5] = [
            ("hourly", rules.hourly, hour),
            ("daily", rules.daily, day),
            ("weekly", rules.weekly, week),
            ("monthly", rules.monthly, month),
            ("yearly", rules.yearly, year),
        ];
        for (name, count, bucket) in buckets {
            let Some(n) = count else { continue };
            let mut seen = HashSet::new();
            for (i, s) in list.iter().enumerate() {
                if seen.len() >= n as usize {
                    break;
                }
                // Newest first: the first snapshot met in a bucket is its newest.
                if seen.insert(bucket(&s.time)) {
                    reasons[i].push(name.into());
                }
            }
        }
        for (i, s) in list.iter().enumerate() {
            if let Some(w) = rules.within {
                if s.time > now - w {
                    reasons[i].push("within".into());
                }
            }
            for t in &rules.tags {
                if s.has_tag(t) {
                    reasons[i].push(format!("tag {t}"));
                }
            }
            if let Some(d) = rules.min_days {
                if s.time > now - chrono::Duration::days(d as i64) {
                    reasons[i].push("min-days".into());
                }
            }
            if s.has_tag(crate::tag::GUARD_TAG) {
                reasons[i].push("pinned by the guard".into());
            }
            if s.has_tag(crate::tag::INCIDENT_TAG) {
                reasons[i].push("the guard's incident".into());
            }
        }
        for (s, r) in list.iter().zip(reasons) {
            out.push(Decision {
                id: s.id,
                time: s.time,
                keep: !r.is_empty(),
                reasons: r,
            });
        }
    }
    out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Summary;
    use chrono::TimeZone;

    fn snap(n: u8, time: DateTime<Local>, tags: &[&str]) -> Snapshot {
        let mut id = [0u8; 32];
        id[0] = n;
        Snapshot {
            id: Id(id),
            time,
            host: "poste".into(),
            username: "root".into(),
            paths: vec!["/srv/commercial".into()],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tree: Id::default(),
            parent: None,
            original: None,
            summary: Summary::default(),
            program_version: String::new(),
        }
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Local> {
        Local
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
    }

    /// The kept snapshot numbers.
    fn kept(snaps: &[Snapshot], rules: &KeepRules, now: DateTime<Local>) -> Vec<u8> {
        apply_rules(snaps, rules, now)
            .unwrap()
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id.0[0])
            .collect()
    }

    /// One snapshot a day at 18:30 from `start`, numbered from 1.
    fn daily_from(start: DateTime<Local>, days: u8) -> Vec<Snapshot> {
        (0..days)
            .map(|i| snap(i + 1, start + chrono::Duration::days(i as i64), &[]))
            .collect()
    }

    #[test]
    fn table_of_cases() {
        let now = at(2026, 3, 31, 20, 0);
        let month = daily_from(at(2026, 3, 1, 18, 30), 31); // 1..=31 = March 1..31
        struct Case {
            name: &'static str,
            snaps: Vec<Snapshot>,
            rules: KeepRules,
            now: DateTime<Local>,
            want: Vec<u8>,
        }
        let r = KeepRules::default;
        let cases = vec![
            Case {
                name: "last 3",
                snaps: month.clone(),
                rules: KeepRules {
                    last: Some(3),
                    ..r()
                },
                now,
                want: vec![29, 30, 31],
            },
            Case {
                name: "daily 7",
                snaps: month.clone(),
                rules: KeepRules {
                    daily: Some(7),
                    ..r()
                },
                now,
                want: vec![25, 26, 27, 28, 29, 30, 31],
            },
            // ISO weeks of March 2026 end on Sundays 1, 8, 15, 22, 29; 31 is a Tuesday.
            Case {
                name: "weekly 3",
                snaps: month.clone(),
                rules: KeepRules {
                    weekly: Some(3),
                    ..r()
                },
                now,
                want: vec![22, 29, 31],
            },
            Case {
                name: "monthly 2 (month end)",
                snaps: daily_from(at(2026, 2, 27, 18, 30), 4),
                rules: KeepRules {
                    monthly: Some(2),
                    ..r()
                },
                now,
                want: vec![2, 4],
            },
            // 2028 is a leap year: Feb 28, Feb 29, Mar 1.
            Case {
                name: "leap day",
                snaps: daily_from(at(2028, 2, 28, 18, 30), 3),
                rules: KeepRules {
                    monthly: Some(5),
                    ..r()
                },
                now: at(2028, 3, 2, 0, 0),
                want: vec![2, 3],
            },
            Case {
                name: "yearly across new year",
                snaps: daily_from(at(2025, 12, 30, 18, 30), 4),
                rules: KeepRules {
                    yearly: Some(9),
                    ..r()
                },
                now,
                want: vec![2, 4],
            },
            Case {
                name: "within 2d",
                snaps: month.clone(),
                rules: KeepRules {
                    within: Some(chrono::Duration::days(2)),
                    ..r()
                },
                now,
                want: vec![30, 31],
            },
            Case {
                name: "min days is a floor",
                snaps: month.clone(),
                rules: KeepRules {
                    last: Some(1),
                    min_days: Some(5),
                    ..r()
                },
                now,
                want: vec![27, 28, 29, 30, 31],
            },
            Case {
                name: "empty repository",
                snaps: vec![],
                rules: KeepRules {
                    daily: Some(7),
                    ..r()
                },
                now,
                want: vec![],
            },
            Case {
                name: "several a day: newest of each day",
                snaps: vec![
                    snap(1, at(2026, 3, 30, 9, 0), &[]),
                    snap(2, at(2026, 3, 30, 18, 0), &[]),
                    snap(3, at(2026, 3, 31, 9, 0), &[]),
                    snap(4, at(2026, 3, 31, 12, 0), &[]),
                ],
                rules: KeepRules {
                    daily: Some(2),
                    ..r()
                },
                now,
                want: vec![2, 4],
            },
            Case {
                name: "the guard's pin keeps whatever the rules say",
                snaps: vec![
                    snap(1, at(2020, 1, 1, 0, 0), &["guard"]),
                    snap(2, at(2021, 1, 1, 0, 0), &["incident"]),
                    snap(3, at(2026, 3, 31, 9, 0), &[]),
                ],
                rules: KeepRules {
                    last: Some(1),
                    ..r()
                },
                now,
                want: vec![1, 2, 3],
            },
            Case {
                name: "tags keep whatever their age",
                snaps: vec![
                    snap(1, at(2020, 1, 1, 0, 0), &["cloture"]),
                    snap(2, at(2021, 1, 1, 0, 0), &[]),
                    snap(3, at(2026, 3, 31, 9, 0), &[]),
                ],
                rules: KeepRules {
                    last: Some(1),
                    tags: vec!["cloture".into()],
                    ..r()
                },
                now,
                want: vec![1, 3],
            },
            // Hourly and daily rules together (DST changes are tested with a real time zone in
            // tests/tests/maintenance.rs, which sets TZ for the process).
            Case {
                name: "hourly and daily",
                snaps: vec![
                    snap(1, at(2026, 3, 29, 1, 30), &[]),
                    snap(2, at(2026, 3, 29, 3, 30), &[]),
                    snap(3, at(2026, 3, 29, 4, 30), &[]),
                ],
                rules: KeepRules {
                    hourly: Some(2),
                    daily: Some(1),
                    ..r()
                },
                now,
                want: vec![2, 3],
            },
        ];
        for c in cases {
            assert_eq!(kept(&c.snaps, &c.rules, c.now), c.want, "case {}", c.name);
        }
    }

    #[test]
    fn a_policy_keep_becomes_the_same_rules() {
        let keep = sharekeep_policies::Keep {
            last: Some(1),
            hourly: Some(2),
            daily: Some(3),
            weekly: Some(4),
            monthly: Some(5),
            yearly: Some(6),
            within_secs: Some(7200),
            tags: vec!["garder".into()],
        };
        let r = KeepRules::from_policy(&keep, 30);
        assert_eq!(
            r,
            KeepRules {
                last: Some(1),
                hourly: Some(2),
                daily: Some(3),
                weekly: Some(4),
                monthly: Some(5),
                yearly: Some(6),
                within: Some(chrono::Duration::seconds(7200)),
                tags: vec!["garder".into()],
                min_days: Some(30),
            }
        );
        // No floor is no rule, not a floor of zero days.
        assert_eq!(KeepRules::from_policy(&keep, 0).min_days, None);
        assert_eq!(KeepRules::from_policy(&keep, 1).min_days, Some(1));
    }

    #[test]
    fn within_and_the_floor_keep_strictly_newer_snapshots() {
        let now = at(2026, 6, 10, 12, 0);
        let snaps = [
            snap(1, now - chrono::Duration::hours(2), &[]),
            snap(
                2,
                now - chrono::Duration::hours(2) + chrono::Duration::seconds(1),
                &[],
            ),
            snap(3, now - chrono::Duration::days(3), &["x"]),
            snap(
                4,
                now - chrono::Duration::days(3) + chrono::Duration::seconds(1),
                &["x"],
            ),
        ];
        let within = KeepRules {
            within: Some(chrono::Duration::hours(2)),
            ..KeepRules::default()
        };
        assert_eq!(kept(&snaps, &within, now), [2]);
        let floor = KeepRules {
            tags: vec!["y".into()],
            min_days: Some(3),
            ..KeepRules::default()
        };
        assert_eq!(kept(&snaps, &floor, now), [4, 1, 2]);
    }

    #[test]
    fn groups_are_kept_separately() {
        let now = at(2026, 3, 31, 20, 0);
        let mut a = snap(1, at(2026, 3, 30, 18, 0), &[]);
        let mut b = snap(2, at(2026, 3, 31, 18, 0), &[]);
        a.paths = vec!["/srv/a".into()];
        b.paths = vec!["/srv/b".into()];
        assert_eq!(
            kept(
                &[a, b],
                &KeepRules {
                    last: Some(1),
                    ..KeepRules::default()
                },
                now
            ),
            vec![1, 2]
        );
    }

    #[test]
    fn no_rule_is_refused_not_taken_as_delete_everything() {
        let now = at(2026, 3, 31, 20, 0);
        let err = apply_rules(
            &[snap(1, now, &[])],
            &KeepRules {
                min_days: Some(3),
                ..KeepRules::default()
            },
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("refusing"), "{err}");
    }

    #[test]
    fn reasons_name_the_rules() {
        let now = at(2026, 3, 31, 20, 0);
        let d = apply_rules(
            &[snap(1, at(2026, 3, 31, 18, 0), &["x"])],
            &KeepRules {
                last: Some(1),
                daily: Some(1),
                tags: vec!["x".into()],
                ..KeepRules::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(d[0].reasons, vec!["last", "daily", "tag x"]);
    }
}
