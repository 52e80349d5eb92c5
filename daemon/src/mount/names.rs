//! The names snapshots get in a mounted repository: local time for people browsing
//! (`2026-11-30T18:30:00`, a `-2`, `-3`… suffix when two fall in the same second), and the
//! `@GMT-YYYY.MM.DD-HH.MM.SS` (UTC) names Samba's `shadow_copy2` turns into Windows' Previous
//! Versions (one per second: the newest snapshot of a second wins).

use crate::snapshot::Snapshot;
use chrono::Utc;

/// The `strftime` format of [`shadow_name`], as `shadow:format` wants it in smb.conf.
pub const SHADOW_FORMAT: &str = "@GMT-%Y.%m.%d-%H.%M.%S";

/// `@GMT-YYYY.MM.DD-HH.MM.SS` of the snapshot's time, in UTC.
pub fn shadow_name(s: &Snapshot) -> String {
    s.time.with_timezone(&Utc).format(SHADOW_FORMAT).to_string()
}

/// Local time to the second, as people read and type it (`@TIME` selectors take it too).
pub fn local_name(s: &Snapshot) -> String {
    s.time.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The name of each snapshot (same order as `snaps`, which are oldest first); `None` for one
/// that gets no entry (a shadow copy of a second already taken by a newer snapshot).
pub fn assign(snaps: &[Snapshot], shadow: bool) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None; snaps.len()];
    let mut taken = std::collections::HashSet::new();
    if shadow {
        // Newest first, so the newest of a second keeps the name.
        for (i, s) in snaps.iter().enumerate().rev() {
            let name = shadow_name(s);
            if taken.insert(name.clone()) {
                out[i] = Some(name);
            }
        }
    } else {
        for (i, s) in snaps.iter().enumerate() {
            let base = local_name(s);
            let mut name = base.clone();
            let mut n = 1;
            while !taken.insert(name.clone()) {
                n += 1;
                name = format!("{base}-{n}");
            }
            out[i] = Some(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snap(n: u8, secs: i64) -> Snapshot {
        Snapshot {
            id: crate::id::Id::hash(&[n]),
            time: chrono::Local.timestamp_opt(secs, 0).unwrap(),
            host: "h".into(),
            username: "u".into(),
            paths: vec!["/srv/x".into()],
            tags: vec![],
            tree: crate::id::Id::hash(b"t"),
            parent: None,
            original: None,
            summary: Default::default(),
            program_version: "t".into(),
        }
    }

    #[test]
    fn names_by_time_with_collisions() {
        // 2026-11-30 17:30:00 UTC.
        let t = 1_796_059_800;
        let snaps = [snap(1, t), snap(2, t), snap(3, t + 1), snap(4, t)];
        assert_eq!(shadow_name(&snaps[0]), "@GMT-2026.11.30-17.30.00");
        let shadow = assign(&snaps, true);
        assert_eq!(
            shadow,
            [
                None,
                None,
                Some("@GMT-2026.11.30-17.30.01".into()),
                Some("@GMT-2026.11.30-17.30.00".into())
            ]
        );
        let local = assign(&snaps, false);
        let base = local_name(&snaps[0]);
        assert_eq!(
            local,
            [
                Some(base.clone()),
                Some(format!("{base}-2")),
                Some(local_name(&snaps[2])),
                Some(format!("{base}-3"))
            ]
        );
    }
}
