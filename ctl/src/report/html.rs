//! The report as one self-contained HTML page (no external assets): inline CSS with a print
//! stylesheet for A4, inline SVG charts, French or English.

use sharekeep::report::{Outcome, Report};
use sharekeep_policies::Access;
use std::fmt::Write as _;

/// The words of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// From `LANG`/`LC_ALL` (`fr…` is French), English otherwise.
    pub fn from_env() -> Lang {
        let v = std::env::var("LC_ALL")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var("LANG").ok())
            .unwrap_or_default();
        if v.starts_with("fr") {
            Lang::Fr
        } else {
            Lang::En
        }
    }

    fn t(self, key: &str) -> &'static str {
        let fr = self == Lang::Fr;
        match key {
            "title" => {
                if fr {
                    "Compte rendu du partage"
                } else {
                    "Share report"
                }
            }
            "period" => {
                if fr {
                    "Période"
                } else {
                    "Period"
                }
            }
            "generated" => {
                if fr {
                    "Établi le"
                } else {
                    "Generated"
                }
            }
            "rights" => {
                if fr {
                    "Qui peut faire quoi"
                } else {
                    "Who may do what"
                }
            }
            "drift" => {
                if fr {
                    "Droits corrigés par le service pendant la période"
                } else {
                    "Rights corrected by the service in the period"
                }
            }
            "samba" => {
                if fr {
                    "Accès réseau (Samba)"
                } else {
                    "Network access (Samba)"
                }
            }
            "not exported" => {
                if fr {
                    "Partage non exporté."
                } else {
                    "Not exported."
                }
            }
            "backups" => {
                if fr {
                    "Sauvegardes"
                } else {
                    "Backups"
                }
            }
            "schedule" => {
                if fr {
                    "Planification"
                } else {
                    "Schedule"
                }
            }
            "no runs" => {
                if fr {
                    "Aucune sauvegarde pendant la période."
                } else {
                    "No backup in the period."
                }
            }
            "growth" => {
                if fr {
                    "Données ajoutées au dépôt (cumul)"
                } else {
                    "Data added to the repository (cumulative)"
                }
            }
            "duration" => {
                if fr {
                    "Durée des sauvegardes"
                } else {
                    "Backup durations"
                }
            }
            "calendar" => {
                if fr {
                    "Calendrier"
                } else {
                    "Calendar"
                }
            }
            "date" => "Date",
            "duration s" => {
                if fr {
                    "Durée"
                } else {
                    "Duration"
                }
            }
            "new" => {
                if fr {
                    "Nouveaux"
                } else {
                    "New"
                }
            }
            "changed" => {
                if fr {
                    "Modifiés"
                } else {
                    "Changed"
                }
            }
            "added" => {
                if fr {
                    "Ajouté"
                } else {
                    "Added"
                }
            }
            "warnings" => {
                if fr {
                    "Avertissements"
                } else {
                    "Warnings"
                }
            }
            "result" => {
                if fr {
                    "Résultat"
                } else {
                    "Result"
                }
            }
            "retention" => {
                if fr {
                    "Conservation"
                } else {
                    "Retention"
                }
            }
            "snapshots" => {
                if fr {
                    "Instantanés conservés"
                } else {
                    "Snapshots kept"
                }
            }
            "oldest" => {
                if fr {
                    "Le plus ancien"
                } else {
                    "Oldest"
                }
            }
            "rules" => {
                if fr {
                    "Règles"
                } else {
                    "Rules"
                }
            }
            "floor" => {
                if fr {
                    "Durée minimale légale"
                } else {
                    "Legal floor"
                }
            }
            "days" => {
                if fr {
                    "jours"
                } else {
                    "days"
                }
            }
            "drill" => {
                if fr {
                    "Tests de restauration"
                } else {
                    "Restore drills"
                }
            }
            "no drill" => {
                if fr {
                    "Aucun test de restauration."
                } else {
                    "No restore drill."
                }
            }
            "problems" => {
                if fr {
                    "Points à traiter"
                } else {
                    "Open problems"
                }
            }
            "none" => {
                if fr {
                    "Aucun."
                } else {
                    "None."
                }
            }
            "ok" => "ok",
            "failed" => {
                if fr {
                    "échec"
                } else {
                    "failed"
                }
            }
            "missed" => {
                if fr {
                    "manquée"
                } else {
                    "missed"
                }
            }
            "warn" => {
                if fr {
                    "avertissements"
                } else {
                    "warnings"
                }
            }
            "write" => {
                if fr {
                    "écriture"
                } else {
                    "write"
                }
            }
            "read" => {
                if fr {
                    "lecture"
                } else {
                    "read"
                }
            }
            "traverse" => {
                if fr {
                    "passage"
                } else {
                    "traverse"
                }
            }
            "no access" => "—",
            "who" => {
                if fr {
                    "Qui"
                } else {
                    "Who"
                }
            }
            _ => "",
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn size(b: u64) -> String {
    crate::output::size(b)
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}\
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
td.write{background:#cfe8cf}td.read{background:#dde8f6}td.traverse{background:#f3f3f3}td.failed{background:#f6d0d0}\
.cal{display:flex;flex-wrap:wrap;gap:2px}.day{width:1.6em;height:1.6em;font-size:.7em;text-align:center;line-height:1.6em;border-radius:3px}\
.day.ok{background:#5a5}.day.warnings{background:#eb5}.day.failed{background:#d44;color:#fff}.day.missed{background:#999;color:#fff}.day.none{background:#eee}\
svg{background:#fafafa;border:1px solid #ddd}.muted{color:#666}\
@media print{@page{size:A4;margin:15mm}body{margin:0;max-width:none;font-size:10pt}h2{break-after:avoid}table,svg,.cal{break-inside:avoid}}";

/// The page.
pub fn render(r: &Report, lang: Lang) -> String {
    let t = |k| lang.t(k);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} {}</title><style>{CSS}</style></head><body>",
        if lang == Lang::Fr { "fr" } else { "en" },
        t("title"),
        esc(&r.share)
    );
    let _ = write!(
        h,
        "<h1>{} « {} »</h1><p>{}{}<br>{}: {} → {} · {}: {}</p>",
        t("title"),
        esc(&r.share),
        esc(&r.path),
        r.description
            .as_deref()
            .map(|d| format!(" — {}", esc(d)))
            .unwrap_or_default(),
        t("period"),
        r.from,
        r.to,
        t("generated"),
        r.generated.format("%Y-%m-%d %H:%M")
    );
    // Rights matrix.
    let _ = write!(
        h,
        "<h2>{}</h2><table class=\"matrix\"><tr><th>{}</th>",
        t("rights"),
        t("who")
    );
    for c in &r.matrix.columns {
        let _ = write!(h, "<th>{}</th>", esc(if c.is_empty() { "." } else { c }));
    }
    h.push_str("</tr>");
    for row in &r.matrix.rows {
        let _ = write!(h, "<tr><th>{}</th>", esc(&row.who));
        for a in &row.access {
            let (class, word) = match a {
                Access::Write => ("write", t("write")),
                Access::Read => ("read", t("read")),
                Access::Traverse => ("traverse", t("traverse")),
                Access::None => ("none", t("no access")),
            };
            let _ = write!(h, "<td class=\"{class}\">{word}</td>");
        }
        h.push_str("</tr>");
    }
    let _ = write!(h, "</table><p>{}: <b>{}</b></p>", t("drift"), r.drift_fixed);
    // Samba.
    let _ = write!(h, "<h2>{}</h2>", t("samba"));
    match &r.samba {
        None => {
            let _ = write!(h, "<p>{}</p>", t("not exported"));
        }
        Some(s) => {
            h.push_str("<table>");
            for (k, v) in s {
                let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
            }
            h.push_str("</table>");
        }
    }
    // Backups.
    let _ = write!(h, "<h2>{}</h2>", t("backups"));
    if let Some(s) = &r.schedule {
        let _ = write!(h, "<p>{}: <code>{}</code></p>", t("schedule"), esc(s));
    }
    let _ = write!(h, "<h3>{}</h3><div class=\"cal\">", t("calendar"));
    for (d, o) in &r.days {
        let class = match o {
            Outcome::Ok => "ok",
            Outcome::Warnings => "warnings",
            Outcome::Failed => "failed",
            Outcome::Missed => "missed",
            Outcome::None => "none",
        };
        let _ = write!(
            h,
            "<div class=\"day {class}\" title=\"{d} {class}\">{}</div>",
            d.format("%d")
        );
    }
    h.push_str("</div>");
    if r.runs.is_empty() {
        let _ = write!(h, "<p class=\"muted\">{}</p>", t("no runs"));
    } else {
        let _ = write!(h, "<h3>{}</h3>{}", t("growth"), growth_chart(r));
        let _ = write!(h, "<h3>{}</h3>{}", t("duration"), duration_chart(r));
        let _ = write!(
            h,
            "<table class=\"runs\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            t("date"), t("duration s"), t("new"), t("changed"), t("added"), t("warnings"), t("result")
        );
        for run in &r.runs {
            let result = match run.outcome() {
                Outcome::Failed => format!(
                    "{}: {}",
                    t("failed"),
                    esc(run.error.as_deref().unwrap_or(""))
                ),
                Outcome::Warnings => t("warn").to_string(),
                _ => t("ok").to_string(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                run.start.format("%Y-%m-%d %H:%M"),
                run.seconds,
                run.files_new,
                run.files_changed,
                size(run.bytes_added),
                run.warnings,
                result
            );
        }
        h.push_str("</table>");
    }
    // Retention.
    let _ = write!(
        h,
        "<h2>{}</h2><table><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{} {}</td></tr></table>",
        t("retention"),
        t("snapshots"),
        r.snapshots,
        t("oldest"),
        r.oldest.map(|o| o.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "—".into()),
        t("rules"),
        esc(r.keep.as_deref().unwrap_or("—")),
        t("floor"),
        r.floor_days,
        t("days")
    );
    // Drills.
    let _ = write!(h, "<h2>{}</h2>", t("drill"));
    match &r.drill {
        None => {
            let _ = write!(h, "<p>{}</p>", t("no drill"));
        }
        Some(d) => {
            let _ = write!(
                h,
                "<p>{} — {}</p>",
                d.time.format("%Y-%m-%d %H:%M"),
                esc(&d.summary)
            );
        }
    }
    if !r.drills.is_empty() {
        h.push_str("<table class=\"drills\">");
        for d in &r.drills {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"{}\">{}</td></tr>",
                d.time.format("%Y-%m-%d %H:%M"),
                if d.ok { "read" } else { "failed" },
                esc(&d.summary)
            );
        }
        h.push_str("</table>");
    }
    // Problems.
    let _ = write!(h, "<h2>{}</h2>", t("problems"));
    if r.problems.is_empty() {
        let _ = write!(h, "<p>{}</p>", t("none"));
    } else {
        h.push_str("<ul>");
        for p in &r.problems {
            let _ = write!(h, "<li>{}</li>", esc(p));
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

const W: f64 = 640.0;
const H: f64 = 160.0;
const PAD: f64 = 30.0;

fn x_of(i: usize, n: usize) -> f64 {
    if n <= 1 {
        W / 2.0
    } else {
        PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
    }
}

/// The repository's size after each run (or, for runs that did not record it, the data
/// added since the period began), one point per run.
pub fn growth_chart(r: &Report) -> String {
    let n = r.runs.len();
    let mut total = 0u64;
    let points: Vec<(f64, u64)> = r
        .runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            total += run.growth;
            (x_of(i, n), run.repository_bytes.unwrap_or(total))
        })
        .collect();
    let total = points.last().map_or(0, |p| p.1);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * v as f64 / max;
    let mut s = format!("<svg class=\"chart growth\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\">");
    let line: Vec<String> = points
        .iter()
        .map(|(x, v)| format!("{x:.1},{:.1}", y(*v)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#36a\" stroke-width=\"2\" points=\"{}\"/>",
        line.join(" ")
    );
    for (x, v) in &points {
        let _ = write!(s, "<circle class=\"pt\" cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#36a\"><title>{}</title></circle>", y(*v), size(*v));
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"14\" font-size=\"11\">{}</text></svg>",
        size(total)
    );
    s
}

/// Run durations as bars, one per run (failed runs in red).
pub fn duration_chart(r: &Report) -> String {
    let n = r.runs.len().max(1);
    let max = r
        .runs
        .iter()
        .map(|x| x.seconds)
        .fold(0.0f64, f64::max)
        .max(0.001);
    let bw = ((W - 2.0 * PAD) / n as f64 * 0.8).clamp(0.5, 24.0);
    let mut s = format!("<svg class=\"chart duration\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\">");
    for (i, run) in r.runs.iter().enumerate() {
        let h = (H - 2.0 * PAD) * run.seconds / max;
        let x = x_of(i, r.runs.len()) - bw / 2.0;
        let color = if run.error.is_some() { "#d44" } else { "#5a5" };
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{h:.1}\" fill=\"{color}\"><title>{:.1} s</title></rect>",
            H - PAD - h,
            run.seconds
        );
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"14\" font-size=\"11\">max {max:.1} s</text></svg>"
    );
    s
}
