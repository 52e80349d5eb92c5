//! When backups run: the next occurrence of a share's cron schedule, and whether one was
//! missed while the machine was off or the service stopped (then it runs soon after start).
//! Pure functions of (schedule, times).

use chrono::{DateTime, Local};

/// The next occurrence strictly after `t`.
pub fn next_after(schedule: &cron::Schedule, t: DateTime<Local>) -> Option<DateTime<Local>> {
    schedule.after(&t).next()
}

/// Whether an occurrence fell after `last` (the last successful run, or when the share was
/// first managed) and at or before `now`.
pub fn missed(schedule: &cron::Schedule, last: DateTime<Local>, now: DateTime<Local>) -> bool {
    next_after(schedule, last).is_some_and(|n| n <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Local> {
        Local
            .with_ymd_and_hms(2026, 11, d, h, m, 0)
            .earliest()
            .unwrap()
    }

    #[test]
    fn missed_runs_table() {
        // 18:30 on working days; 2026-11-27 is a Friday.
        let s = cron::Schedule::from_str("0 30 18 * * Mon-Fri").unwrap();
        let cases = [
            (at(27, 18, 30), at(27, 20, 0), false, "ran tonight"),
            (
                at(26, 18, 30),
                at(27, 20, 0),
                true,
                "machine off at 18:30 on Friday",
            ),
            (
                at(27, 18, 30),
                at(30, 9, 0),
                false,
                "weekend: nothing scheduled",
            ),
            (at(27, 18, 30), at(30, 18, 30), true, "Monday's run is due"),
            (at(20, 18, 30), at(27, 8, 0), true, "off for a week"),
        ];
        for (last, now, want, name) in cases {
            assert_eq!(missed(&s, last, now), want, "{name}");
        }
        assert_eq!(next_after(&s, at(27, 18, 30)), Some(at(30, 18, 30)));
    }
}
