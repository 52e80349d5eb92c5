//! Human-readable formatting shared by the commands: sizes, times, modes, tables.

use chrono::{DateTime, Local, TimeZone};

/// `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `2026-11-28 18:30:00` in local time.
pub fn time(t: &DateTime<Local>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time as people say it, relative to `now` (both local): `today 18:30`, `yesterday 18:30`,
/// `tomorrow 06:00`, `Mon 24 Nov 18:30` this year, `28 Nov 2025 18:30` otherwise.
pub fn spoken(t: &DateTime<Local>, now: &DateTime<Local>) -> String {
    let days = (t.date_naive() - now.date_naive()).num_days();
    let hm = t.format("%H:%M");
    match days {
        0 => format!("today {hm}"),
        -1 => format!("yesterday {hm}"),
        1 => format!("tomorrow {hm}"),
        _ if t.format("%Y").to_string() == now.format("%Y").to_string() => {
            t.format("%a %-d %b %H:%M").to_string()
        }
        _ => t.format("%-d %b %Y %H:%M").to_string(),
    }
}

/// An RFC 3339 time (as the protocol carries it) as [`spoken`] says it now; unparsable text
/// is shown as it is.
pub fn spoken_rfc3339(text: &str) -> String {
    DateTime::parse_from_rfc3339(text)
        .map(|t| spoken(&t.with_timezone(&Local), &Local::now()))
        .unwrap_or_else(|_| text.to_string())
}

/// A ns timestamp as local time.
pub fn time_ns(ns: i64) -> String {
    let t = Local.timestamp_nanos(ns);
    time(&t)
}

/// RFC 3339 for JSON.
pub fn rfc3339_ns(ns: i64) -> String {
    Local.timestamp_nanos(ns).to_rfc3339()
}

/// `rwxr-x---` with setuid/setgid/sticky letters.
pub fn mode(kind: char, m: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let set = m & bit != 0;
        let special = match i {
            2 => m & 0o4000 != 0,
            5 => m & 0o2000 != 0,
            8 => m & 0o1000 != 0,
            _ => false,
        };
        s.push(match (set, special, i) {
            (true, true, 8) => 't',
            (false, true, 8) => 'T',
            (true, true, _) => 's',
            (false, true, _) => 'S',
            (true, false, _) => *c,
            (false, false, _) => '-',
        });
    }
    s
}

/// Prints rows as left-aligned columns with a header and a rule.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_modes_read_like_ls() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(mode('-', 0o644), "-rw-r--r--");
        assert_eq!(mode('d', 0o2770), "drwxrws---");
        assert_eq!(mode('d', 0o1777), "drwxrwxrwt");
    }

    #[test]
    fn times_are_said_as_people_say_them() {
        let at = |s: &str| {
            Local
                .from_local_datetime(
                    &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
                )
                .unwrap()
        };
        let now = at("2026-11-30 10:15");
        let cases = [
            ("2026-11-30 18:30", "today 18:30"),
            ("2026-11-30 00:05", "today 00:05"),
            ("2026-11-29 18:30", "yesterday 18:30"),
            ("2026-12-01 18:30", "tomorrow 18:30"),
            ("2026-11-24 18:30", "Tue 24 Nov 18:30"),
            ("2026-12-07 18:30", "Mon 7 Dec 18:30"),
            ("2025-11-28 18:30", "28 Nov 2025 18:30"),
        ];
        for (t, want) in cases {
            assert_eq!(spoken(&at(t), &now), want, "{t}");
        }
        assert_eq!(spoken_rfc3339("not a time"), "not a time");
    }
}
