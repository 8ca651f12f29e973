//! The HTML report (`--html`): one self-contained page, no external assets and
//! no script. Inline CSS, and inline SVG charts generated here.
//!
//! Per run: the verdict and its checks, the accounting identity, the reload's
//! steps, latency by phase, versions, and two charts:
//! - a timeline per window: stacked bars of ok and each failure key, p50/p99
//!   latency lines on a second axis, a band under the bars coloured by the
//!   versions that served, and the reload steps as labelled vertical markers;
//! - latency by percentile (HdrHistogram style): percentile on a log scale of
//!   `1/(1-p)` from 0% to 99.999%, one line per phase.
//!
//! Every piece of text that comes from outside (scenario names, paths, details,
//! error logs) goes through [`escape`]. Hovering a bar or a point shows its
//! numbers (SVG `<title>` tooltips).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use super::RunReport;
use crate::error::{Error, Result};
use crate::stats::collector::{PhaseStats, RunStats};
use crate::stats::Percentiles;

/// One horizontal grid line across the plot at `y`, labelled `v` on the left axis.
fn grid_line(s: &mut String, y: f64, pw: f64, v: f64) {
    let _ = writeln!(
        s,
        "<line class=\"grid\" x1=\"{ML}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        ML + pw,
        ML - 6.0,
        y + 4.0,
        num(v)
    );
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Colour of the ok bars.
pub const OK_COLOUR: &str = "#59a14f";

/// Colour of an outcome key (`ok`, `connect_refused`, `http_502`, ...): fixed per
/// key, so the same failure looks the same in every run and chart.
pub fn outcome_colour(key: &str) -> &'static str {
    match key {
        "ok" => OK_COLOUR,
        "connect_refused" => "#e15759",
        "connect_missing" => "#f28e2b",
        "connect_again" => "#c9a100",
        "connect_timeout" => "#9c755f",
        "connect_other" => "#7b4f2c",
        "reset_fresh" => "#b6257a",
        "reset_reused" => "#ff9da7",
        "truncated" => "#d37295",
        "protocol_error" => "#555555",
        "timeout" => "#7f3c8d",
        "hung" => "#333333",
        "bad_body" => "#a0a0a0",
        k if k.starts_with("http_4") => "#edc948",
        "http_502" => "#8b0000",
        "http_503" => "#c0392b",
        "http_504" => "#6b2a2a",
        k if k.starts_with("http_5") => "#a52a2a",
        _ => "#17becf",
    }
}

/// Colours of the versions, in deploy order (then repeating).
const VERSION_COLOURS: [&str; 6] = [
    "#4e79a7", "#b07aa1", "#76b7b2", "#9c755f", "#edc948", "#bab0ac",
];

/// Colour of a phase's line in the percentile chart.
fn phase_colour(name: &str) -> &'static str {
    match name {
        "before" => "#4e79a7",
        "during" => "#e15759",
        "after" => "#59a14f",
        _ => "#333333",
    }
}

const P50_COLOUR: &str = "#1b2a49";
const P99_COLOUR: &str = "#d62728";
const STEP_COLOUR: &str = "#5a5a5a";

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;margin:0;background:#f4f5f7}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}
h2{font-size:19px;margin:0 0 4px;display:flex;align-items:center;gap:12px;flex-wrap:wrap}
h3{font-size:15px;margin:22px 0 6px}
.sub{color:#555;margin:0 0 10px}
section.run{background:#fff;border:1px solid #d9dce1;border-radius:8px;padding:18px 22px;margin:18px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.verdict{display:inline-block;padding:2px 12px;border-radius:4px;color:#fff;font-weight:700;letter-spacing:.04em}
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}.verdict.error{background:#6d4c41}
table{border-collapse:collapse;margin:4px 0 8px;font-size:13px}
th,td{border-bottom:1px solid #e3e5e8;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fdecea}
.mark-ok{color:#2e7d32;font-weight:700}.mark-fail{color:#c62828;font-weight:700}.mark-na{color:#6d6d6d;font-weight:700}
.identity{font-family:ui-monospace,"DejaVu Sans Mono",monospace;background:#f7f8fa;border:1px solid #e3e5e8;border-radius:4px;padding:8px 10px;margin:6px 0}
.identity .holds{color:#2e7d32;font-weight:700}.identity .broken{color:#c62828;font-weight:700}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin:0 4px 0 0;vertical-align:-1px}
.line-sw{display:inline-block;width:20px;height:0;border-top:2px solid;margin:0 4px 3px 0;vertical-align:middle}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;color:#333;margin:2px 0 4px 64px}
.error-box{background:#fff3e0;border:1px solid #ffb74d;border-radius:4px;padding:8px 10px;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12.5px}
.note{color:#666;font-size:12.5px}
.warn-box{background:#fffde7;border:1px solid #fbc02d;border-radius:4px;padding:8px 10px;font-size:12.5px}
svg.chart{width:100%;height:auto;display:block;font-size:12px}
svg.chart text{fill:#333}
svg.chart .grid{stroke:#e6e8eb;stroke-width:1}
svg.chart .axis{stroke:#888;stroke-width:1}
svg.chart .hover{fill:transparent}svg.chart .hover:hover{fill:rgba(0,0,0,.06)}
a{color:#1f5fa8}
.summary td,.summary th{padding:4px 14px}
"#;

/// The whole page for `runs`.
pub fn render(runs: &[RunReport]) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let title = match runs {
        [one] => format!("zdt-check: {}", one.name),
        _ => format!("zdt-check: {} runs", runs.len()),
    };
    let _ = writeln!(o, "<title>{}</title>", escape(&title));
    let _ = writeln!(o, "<style>{CSS}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(o, "<h1>zdt-check report</h1>");
    let _ = writeln!(
        o,
        "<p class=\"sub\">zdt-check {}: {} run{}; times are since the load started, latencies are of ok responses measured from the scheduled send time.</p>",
        env!("CARGO_PKG_VERSION"),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    if runs.len() > 1 {
        summary(&mut o, runs);
    }
    for (i, r) in runs.iter().enumerate() {
        run_section(&mut o, i, r);
    }
    o.push_str("</main>\n</body>\n</html>\n");
    o
}

/// Writes the HTML report for `runs` to `path`.
pub fn write(path: &Path, runs: &[RunReport]) -> Result<()> {
    std::fs::write(path, render(runs)).map_err(|e| Error::io(path, e))
}

/// `PASS`, `FAIL` or `ERROR`, with its CSS class.
fn verdict_of(r: &RunReport) -> (&'static str, &'static str) {
    match r.exit_code {
        0 => ("PASS", "pass"),
        1 => ("FAIL", "fail"),
        _ if r.verdict.as_ref().is_some_and(|v| !v.passed) => ("FAIL", "fail"),
        _ => ("ERROR", "error"),
    }
}

fn badge(r: &RunReport) -> String {
    let (text, class) = verdict_of(r);
    format!("<span class=\"verdict {class}\" data-verdict=\"{text}\">{text}</span>")
}

fn summary(o: &mut String, runs: &[RunReport]) {
    o.push_str("<table class=\"summary\"><thead><tr><th>scenario</th><th>strategy</th><th>verdict</th><th class=\"num\">scheduled</th><th class=\"num\">failed</th><th class=\"num\">max gap (ms)</th><th class=\"num\">p99 during (ms)</th></tr></thead><tbody>\n");
    for (i, r) in runs.iter().enumerate() {
        let (sched, failed, gap, p99) = match &r.stats {
            Some(s) => (
                s.scheduled.to_string(),
                s.failed.to_string(),
                format!("{:.1}", s.max_gap_ms),
                s.phases
                    .iter()
                    .find(|p| p.name == "during")
                    .map_or("–".into(), |p| format!("{:.1}", p.latency.p99)),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#run-{i}\">{}</a></td><td>{}</td><td>{}</td><td class=\"num\">{sched}</td><td class=\"num\">{failed}</td><td class=\"num\">{gap}</td><td class=\"num\">{p99}</td></tr>",
            escape(&r.name),
            escape(&r.strategy),
            badge(r)
        );
    }
    o.push_str("</tbody></table>\n");
}

fn run_section(o: &mut String, i: usize, r: &RunReport) {
    let (verdict, _) = verdict_of(r);
    let _ = writeln!(
        o,
        "<section class=\"run\" id=\"run-{i}\" data-verdict=\"{verdict}\">"
    );
    let _ = writeln!(o, "<h2>{} {}</h2>", badge(r), escape(&r.name));
    let mut sub = format!(
        "scenario <code>{}</code> · strategy <b>{}</b>",
        escape(&r.scenario),
        escape(&r.strategy)
    );
    if let Some(l) = &r.load {
        let rate = l.rate.map(|r| format!(" at {r} req/s")).unwrap_or_default();
        let _ = write!(
            sub,
            " · load {} loop{rate}, {} connections, {} · target <code>{}</code>",
            escape(&l.mode),
            l.connections,
            if l.keep_alive {
                "keep-alive"
            } else {
                "new connection per request"
            },
            escape(&l.target)
        );
    }
    let _ = write!(sub, " · took {:.1} s", r.duration_s);
    if let Some(f) = &r.footprint {
        let _ = write!(
            sub,
            " · <span class=\"footprint\" title=\"CPU the zdt-check process itself used while the load ran (children excluded)\">verifier {:.2} s CPU over {:.1} s of load ({:.0}% of one core)</span>",
            f.cpu_s(),
            f.wall_s,
            f.share_of_core * 100.0
        );
    }
    let _ = writeln!(o, "<p class=\"sub\">{sub}</p>");
    if let Some(w) = r.footprint.as_ref().and_then(|f| f.warning.as_ref()) {
        let _ = writeln!(
            o,
            "<p class=\"warn-box footprint-warning\">warning: {}</p>",
            escape(w)
        );
    }
    if r.interrupted {
        let _ = writeln!(
            o,
            "<p class=\"error-box\">INTERRUPTED: the figures cover the run until Ctrl-C.</p>"
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(o, "<div class=\"error-box\">error: {}</div>", escape(e));
    }

    match &r.verdict {
        Some(v) => {
            o.push_str("<h3>Checks</h3>\n<table class=\"checks\"><thead><tr><th></th><th>check</th><th>detail</th></tr></thead><tbody>\n");
            for c in &v.checks {
                let _ = writeln!(
                    o,
                    "<tr class=\"{}\"><td class=\"{}\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    if c.passed { "passed" } else if c.not_checked { "not-checked" } else { "failed" },
                    if c.passed { "mark-ok" } else if c.not_checked { "mark-na" } else { "mark-fail" },
                    if c.passed { "ok" } else if c.not_checked { "not checked" } else { "FAIL" },
                    escape(&c.name),
                    escape(&c.detail)
                );
            }
            o.push_str("</tbody></table>\n");
        }
        None => o.push_str(
            "<p class=\"note\">No verdict: the run did not get far enough to judge.</p>\n",
        ),
    }

    if let Some(st) = &r.stats {
        identity(o, st);
        o.push_str("<h3>Timeline</h3>\n");
        o.push_str(&timeline_svg(r, st));
        o.push_str(&timeline_legend(st));
    } else {
        o.push_str(
            "<p class=\"note\">No measurements: the run ended before the load started.</p>\n",
        );
    }

    steps_table(o, r);

    if let Some(st) = &r.stats {
        o.push_str("<h3>Latency by percentile</h3>\n");
        o.push_str(&percentile_svg(st));
        o.push_str(&percentile_legend(st));
        phases_table(o, st);
        versions_table(o, st);
    }
    o.push_str("</section>\n");
}

fn identity(o: &mut String, st: &RunStats) {
    let mut parts = vec![format!(
        "<span class=\"sw\" style=\"background:{OK_COLOUR}\"></span>ok {}",
        st.ok
    )];
    for (k, n) in &st.outcomes {
        if k != "ok" {
            parts.push(format!(
                "<span class=\"sw\" style=\"background:{}\"></span>{} {n}",
                outcome_colour(k),
                escape(k)
            ));
        }
    }
    let mark = if st.identity_holds {
        "<span class=\"holds\">identity holds</span>"
    } else {
        "<span class=\"broken\">identity DOES NOT HOLD (harness bug)</span>"
    };
    let _ = writeln!(
        o,
        "<h3>Requests</h3>\n<div class=\"identity\">scheduled {} = {} &nbsp;[{mark}]</div>",
        st.scheduled,
        parts.join(" + ")
    );
    let mut notes = Vec::new();
    if st.never_sent > 0 {
        notes.push(format!(
            "of the hung, {} were never sent (no connection was free)",
            st.never_sent
        ));
    }
    if st.target_rate > 0.0 {
        notes.push(format!(
            "rate: target {:.1}/s, sent {:.1}/s; late sends (&gt; 1 ms) {}",
            st.target_rate, st.sent_rate, st.late_sends
        ));
    } else {
        notes.push(format!("rate: {:.1} req/s (closed loop)", st.sent_rate));
    }
    notes.push(format!(
        "longest time without a successful response: <b>{:.1} ms</b> (from {:.1} ms)",
        st.max_gap_ms, st.max_gap_at_ms
    ));
    let _ = writeln!(o, "<p class=\"note\">{}</p>", notes.join(" · "));
}

fn steps_table(o: &mut String, r: &RunReport) {
    o.push_str("<h3>Reload steps</h3>\n");
    if r.steps.is_empty() {
        o.push_str("<p class=\"note\">No reload step was recorded.</p>\n");
        return;
    }
    o.push_str("<table class=\"steps\"><thead><tr><th class=\"num\">#</th><th class=\"num\">start (ms)</th><th class=\"num\">end (ms)</th><th class=\"num\">took (ms)</th><th>step</th><th>detail</th></tr></thead><tbody>\n");
    for (i, s) in r.steps.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td>{}</td><td>{}{}</td></tr>",
            i + 1,
            s.start_ms,
            s.end_ms,
            s.end_ms - s.start_ms,
            escape(&s.name),
            escape(&s.detail),
            s.output.as_deref().map_or(String::new(), |out| format!(
                "<details><summary>output</summary><pre>{}</pre></details>",
                escape(out)
            ))
        );
    }
    o.push_str("</tbody></table>\n");
}

fn phases_table(o: &mut String, st: &RunStats) {
    o.push_str("<table class=\"phases\"><thead><tr><th>phase</th><th class=\"num\">from–to (ms)</th><th class=\"num\">ok</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th><th class=\"num\">max gap</th><th>failed</th></tr></thead><tbody>\n");
    let row = |o: &mut String,
               label: String,
               range: String,
               p: &Percentiles,
               gap: String,
               failed: String| {
        let _ = writeln!(
            o,
            "<tr><td>{label}</td><td class=\"num\">{range}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{gap}</td><td>{failed}</td></tr>",
            p.count, p.p50, p.p90, p.p99, p.p999, p.max
        );
    };
    for p in &st.phases {
        let failed: Vec<String> = p
            .failed
            .iter()
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect();
        row(
            o,
            format!(
                "<span class=\"line-sw\" style=\"border-color:{}\"></span>{}",
                phase_colour(&p.name),
                escape(&p.name)
            ),
            format!("{:.0}–{:.0}", p.start_ms, p.end_ms),
            &p.latency,
            format!("{:.1}", p.max_gap_ms),
            if failed.is_empty() {
                "0".into()
            } else {
                failed.join(", ")
            },
        );
    }
    row(
        o,
        "whole run".into(),
        String::new(),
        &st.latency,
        format!("{:.1}", st.max_gap_ms),
        String::new(),
    );
    row(
        o,
        "whole run, uncorrected".into(),
        String::new(),
        &st.latency_uncorrected,
        String::new(),
        String::new(),
    );
    o.push_str("</tbody></table>\n<p class=\"note\">Latency in ms. Uncorrected: measured from the actual send instead of the scheduled one (hides coordinated omission).</p>\n");
}

fn versions_table(o: &mut String, st: &RunStats) {
    if st.versions.is_empty() {
        return;
    }
    o.push_str("<h3>Versions served</h3>\n<table class=\"versions\"><thead><tr><th>version</th><th class=\"num\">ok</th><th class=\"num\">first (ms)</th><th class=\"num\">last (ms)</th></tr></thead><tbody>\n");
    for (i, v) in st.versions.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td><span class=\"sw\" style=\"background:{}\"></span>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td></tr>",
            VERSION_COLOURS[i % VERSION_COLOURS.len()],
            escape(&v.name),
            v.ok,
            v.first_ms,
            v.last_ms
        );
    }
    o.push_str("</tbody></table>\n");
}

/// A "nice" step (1, 2 or 5 times a power of ten) for about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let raw = max / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A number for an axis label: no trailing zeros, at most 3 decimals.
fn num(v: f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Failure keys seen anywhere on the timeline, in a stable order.
fn failure_keys(st: &RunStats) -> Vec<String> {
    let keys: BTreeSet<&String> = st.timeline.iter().flat_map(|w| w.failed.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// Version name to colour, in the order the versions first served.
fn version_colours(st: &RunStats) -> BTreeMap<String, &'static str> {
    let mut m = BTreeMap::new();
    for (i, v) in st.versions.iter().enumerate() {
        m.insert(v.name.clone(), VERSION_COLOURS[i % VERSION_COLOURS.len()]);
    }
    for w in &st.timeline {
        for name in w.versions.keys() {
            let n = m.len();
            m.entry(name.clone())
                .or_insert(VERSION_COLOURS[n % VERSION_COLOURS.len()]);
        }
    }
    m
}

const TW: f64 = 1200.0;
const ML: f64 = 64.0;
const MR: f64 = 64.0;

/// Rows and sides for the step labels, so that labels do not overlap: each label
/// goes into the first row where it fits, right of its marker (left of it near
/// the right edge). Returns (row, label left of the marker) per step.
fn place_step_labels(r: &RunReport, sx: impl Fn(f64) -> f64) -> Vec<(usize, bool)> {
    const MAX_ROWS: usize = 6;
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut out = Vec::new();
    for (i, step) in r.steps.iter().enumerate() {
        let x = sx(step.end_ms);
        // ~7 px a character at 12 px semibold.
        let w = 7.0 * (format!("{} ", i + 1).len() + step.name.chars().count()) as f64;
        let left = x + 3.0 + w > TW - 4.0;
        let span = if left {
            (x - 3.0 - w, x)
        } else {
            (x, x + 3.0 + w)
        };
        let free = |row: &Vec<(f64, f64)>| {
            row.iter()
                .all(|&(a, b)| span.1 + 8.0 <= a || b + 8.0 <= span.0)
        };
        let row = match rows.iter().position(free) {
            Some(n) => n,
            None if rows.len() < MAX_ROWS => {
                rows.push(Vec::new());
                rows.len() - 1
            }
            None => i % MAX_ROWS,
        };
        rows[row].push(span);
        out.push((row, left));
    }
    out
}

/// The timeline chart.
fn timeline_svg(r: &RunReport, st: &RunStats) -> String {
    let window = st.window_ms.max(1e-3);
    let t_end = r
        .steps
        .iter()
        .map(|s| s.end_ms)
        .fold(st.timeline.len() as f64 * window, f64::max)
        .max(window);
    let pw = TW - ML - MR;
    let sx = |ms: f64| ML + ms / t_end * pw;
    let labels = place_step_labels(r, sx);
    let label_rows = labels.iter().map(|l| l.0 + 1).max().unwrap_or(1);
    let top = 14.0 + label_rows as f64 * 15.0;
    let ph = 280.0;
    let band_y = top + ph + 6.0;
    let band_h = 10.0;
    let tick_y = band_y + band_h + 15.0;
    let height = tick_y + 24.0;

    let keys = failure_keys(st);
    let max_count = st
        .timeline
        .iter()
        .map(|w| w.ok + w.failed.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let cstep = nice_step(max_count, 5.0).max(1.0);
    let ctop = (max_count / cstep).ceil() * cstep;
    let sy = |n: f64| top + ph - n / ctop * ph;
    let max_lat = st
        .timeline
        .iter()
        .filter(|w| w.ok > 0)
        .map(|w| w.p99_ms)
        .fold(0.0, f64::max)
        .max(0.001);
    let lstep = nice_step(max_lat, 5.0);
    let ltop = (max_lat / lstep).ceil() * lstep;
    let sl = |ms: f64| top + ph - ms / ltop * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {TW} {height}\" role=\"img\" aria-label=\"timeline of outcomes, latency, versions and reload steps\">"
    );
    // Grid and left axis (requests per window).
    let mut v = 0.0;
    while v <= ctop + 1e-9 {
        let y = sy(v);
        grid_line(&mut s, y, pw, v);
        v += cstep;
    }
    // Right axis (latency).
    let mut v = 0.0;
    while v <= ltop + 1e-9 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{P99_COLOUR}\" style=\"fill:{P99_COLOUR}\">{}</text>",
            ML + pw + 6.0,
            sl(v) + 4.0,
            num(v)
        );
        v += lstep;
    }
    // X axis ticks, in seconds.
    let xstep = nice_step(t_end, 12.0);
    let mut t = 0.0;
    while t <= t_end + 1e-9 {
        let x = sx(t);
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{x:.1}\" y=\"{tick_y:.1}\" text-anchor=\"middle\">{}</text>",
            top + ph,
            top + ph + 4.0,
            num(t / 1000.0)
        );
        t += xstep;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time since load start (s)</text>",
        ML + pw / 2.0,
        tick_y + 18.0
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">requests per {} ms window</text>",
        top + ph / 2.0,
        num(window)
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate({:.1} {:.1}) rotate(90)\" text-anchor=\"middle\" style=\"fill:{P99_COLOUR}\">latency of ok responses (ms)</text>",
        TW - 14.0,
        top + ph / 2.0
    );

    // Reload steps: a light band over each step's extent.
    for step in &r.steps {
        let (x0, x1) = (sx(step.start_ms), sx(step.end_ms));
        let _ = writeln!(
            s,
            "<rect class=\"step-span\" x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{ph:.1}\" fill=\"#8c8c8c\" fill-opacity=\"0.10\"/>",
            (x1 - x0).max(0.0)
        );
    }

    // Stacked bars, then the version band.
    let bw = (pw * window / t_end).max(0.5);
    let gap = if bw > 4.0 { 1.0 } else { 0.0 };
    let colours = version_colours(st);
    for w in &st.timeline {
        let x = sx(w.start_ms);
        let mut acc = 0.0;
        let mut seg = |s: &mut String, n: u64, class: &str, key: &str| {
            if n == 0 {
                return;
            }
            let (y0, y1) = (sy(acc), sy(acc + n as f64));
            acc += n as f64;
            let _ = writeln!(
                s,
                "<rect class=\"bar {class}\" data-key=\"{}\" x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                escape(key),
                bw - gap,
                y0 - y1,
                outcome_colour(key)
            );
        };
        seg(&mut s, w.ok, "ok", "ok");
        for k in &keys {
            seg(&mut s, w.failed.get(k).copied().unwrap_or(0), "fail", k);
        }
        // Version band: each version's share of the window's ok responses.
        let total: u64 = w.versions.values().sum();
        if total > 0 {
            let mut vx = x;
            for (name, n) in &w.versions {
                let vw = (bw - gap) * *n as f64 / total as f64;
                let _ = writeln!(
                    s,
                    "<rect class=\"version-band\" data-version=\"{}\" x=\"{vx:.2}\" y=\"{band_y:.1}\" width=\"{vw:.2}\" height=\"{band_h}\" fill=\"{}\"/>",
                    escape(name),
                    colours.get(name).copied().unwrap_or("#999")
                );
                vx += vw;
            }
        }
        // A failure mark at the top, so a single failed request stays visible.
        if !w.failed.is_empty() {
            let worst = w
                .failed
                .iter()
                .max_by_key(|(_, n)| **n)
                .map_or("connect_other", |(k, _)| k.as_str());
            let _ = writeln!(
                s,
                "<rect class=\"fail-mark\" x=\"{x:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"5\" fill=\"{}\"/>",
                top - 7.0,
                (bw - gap).max(2.0),
                outcome_colour(worst)
            );
        }
    }
    let _ = writeln!(
        s,
        "<rect x=\"{ML}\" y=\"{band_y:.1}\" width=\"{pw:.1}\" height=\"{band_h}\" fill=\"none\" stroke=\"#ccc\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">version</text>",
        ML - 6.0,
        band_y + 9.0
    );

    // Latency lines: broken where a window had no ok response.
    for (class, colour, dash, get) in [
        (
            "p99",
            P99_COLOUR,
            " stroke-dasharray=\"5 3\"",
            (|w| w.p99_ms) as fn(&crate::stats::collector::WindowRow) -> f64,
        ),
        ("p50", P50_COLOUR, "", |w| w.p50_ms),
    ] {
        let mut d = String::new();
        let mut pen_down = false;
        for w in &st.timeline {
            if w.ok == 0 {
                pen_down = false;
                continue;
            }
            let (x, y) = (sx(w.start_ms + window / 2.0), sl(get(w)));
            let _ = write!(d, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
            pen_down = true;
        }
        if !d.is_empty() {
            let _ = writeln!(
                s,
                "<path class=\"line {class}\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"{dash} stroke-linejoin=\"round\"/>",
                d.trim_end()
            );
        }
    }

    // Step markers and their labels.
    for (i, (step, &(row, left))) in r.steps.iter().zip(&labels).enumerate() {
        let x = sx(step.end_ms);
        let ly = 12.0 + row as f64 * 15.0;
        let _ = writeln!(
            s,
            "<g class=\"step-marker\" data-step=\"{}\"><title>{}: {:.1}–{:.1} ms{}{}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{STEP_COLOUR}\" stroke-width=\"1.3\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{ly:.1}\" text-anchor=\"{}\" font-weight=\"600\">{} {}</text></g>",
            escape(&step.name),
            escape(&step.name),
            step.start_ms,
            step.end_ms,
            if step.detail.is_empty() { "" } else { "; " },
            escape(&step.detail),
            ly + 3.0,
            top + ph,
            if left { x - 3.0 } else { x + 3.0 },
            if left { "end" } else { "start" },
            i + 1,
            escape(&step.name)
        );
    }

    // Plot frame, then hover targets with each window's numbers.
    let _ = writeln!(
        s,
        "<rect x=\"{ML}\" y=\"{top:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#888\"/>"
    );
    for w in &st.timeline {
        let mut tip = format!(
            "{:.1}–{:.1} s: ok {}",
            w.start_ms / 1000.0,
            (w.start_ms + window) / 1000.0,
            w.ok
        );
        for (k, n) in &w.failed {
            let _ = write!(tip, ", {k} {n}");
        }
        if w.ok > 0 {
            let _ = write!(
                tip,
                "; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                w.p50_ms, w.p99_ms, w.max_ms
            );
        }
        if !w.versions.is_empty() {
            let v: Vec<String> = w.versions.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = write!(tip, "; versions {}", v.join(", "));
        }
        let _ = writeln!(
            s,
            "<rect class=\"hover\" x=\"{:.2}\" y=\"{top:.1}\" width=\"{bw:.2}\" height=\"{:.1}\"><title>{}</title></rect>",
            sx(w.start_ms),
            band_y + band_h - top,
            escape(&tip)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn timeline_legend(st: &RunStats) -> String {
    let mut items = vec![format!(
        "<span><span class=\"sw\" style=\"background:{OK_COLOUR}\"></span>ok</span>"
    )];
    for k in failure_keys(st) {
        items.push(format!(
            "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            outcome_colour(&k),
            escape(&k)
        ));
    }
    items.push(format!(
        "<span><span class=\"line-sw\" style=\"border-color:{P50_COLOUR}\"></span>p50 latency</span>"
    ));
    items.push(format!(
        "<span><span class=\"line-sw\" style=\"border-color:{P99_COLOUR};border-top-style:dashed\"></span>p99 latency</span>"
    ));
    for (name, c) in version_colours(st) {
        items.push(format!(
            "<span><span class=\"sw\" style=\"background:{c}\"></span>served by {}</span>",
            escape(&name)
        ));
    }
    items.push(format!(
        "<span><span class=\"line-sw\" style=\"border-color:{STEP_COLOUR};border-top-style:dashed\"></span>reload step ends (shaded: while it ran)</span>"
    ));
    if st.timeline.iter().any(|w| !w.failed.is_empty()) {
        items.push(
            "<span><span class=\"sw\" style=\"background:#e15759;height:4px;vertical-align:2px\"></span>mark above a window with failures (most frequent failure)</span>".to_string(),
        );
    }
    format!("<div class=\"legend\">{}</div>\n", items.join(""))
}

/// The percentiles labelled on the percentile chart's x axis.
const PERCENTILE_TICKS: [(f64, &str); 7] = [
    (0.0, "0%"),
    (50.0, "50%"),
    (90.0, "90%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (99.999, "99.999%"),
];

/// Position of a percentile on a log scale of `1/(1-p)`: 0 for 0%, 5 for 99.999%.
fn percentile_x(p: f64) -> f64 {
    let rest = (1.0 - p / 100.0).max(1e-9);
    (-rest.log10()).clamp(0.0, 5.0)
}

fn phases_with_data(st: &RunStats) -> Vec<&PhaseStats> {
    st.phases
        .iter()
        .filter(|p| !p.percentile_curve.is_empty())
        .collect()
}

/// The latency-by-percentile chart.
fn percentile_svg(st: &RunStats) -> String {
    let (h, top, ph) = (360.0, 16.0, 290.0);
    let pw = TW - ML - MR;
    let phases = phases_with_data(st);
    let max_ms = phases
        .iter()
        .flat_map(|p| p.percentile_curve.iter().map(|c| c.ms))
        .fold(0.0, f64::max)
        .max(0.001);
    let min_ms = phases
        .iter()
        .flat_map(|p| p.percentile_curve.iter().map(|c| c.ms))
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    // A log latency scale when the tail is far above the body, so both stay readable.
    let log_y = min_ms.is_finite() && max_ms / min_ms > 50.0;
    let (y_lo, y_hi) = if log_y {
        (
            10f64.powf(min_ms.log10().floor()),
            10f64.powf(max_ms.log10().ceil()),
        )
    } else {
        let step = nice_step(max_ms, 6.0);
        (0.0, (max_ms / step).ceil() * step)
    };
    let sy = |ms: f64| {
        let f = if log_y {
            (ms.max(y_lo).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10())
        } else {
            ms / y_hi
        };
        top + ph - f * ph
    };
    let sx = |p: f64| ML + percentile_x(p) / 5.0 * pw;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart percentiles\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {TW} {h}\" role=\"img\" aria-label=\"latency by percentile per phase\">"
    );
    // Y grid.
    let mut ticks = Vec::new();
    if log_y {
        let mut decade = y_lo;
        while decade <= y_hi * 1.0001 {
            for m in [1.0, 2.0, 5.0] {
                let v = decade * m;
                if v <= y_hi * 1.0001 {
                    ticks.push(v);
                }
            }
            decade *= 10.0;
        }
    } else {
        let step = nice_step(max_ms, 6.0);
        let mut v = 0.0;
        while v <= y_hi + 1e-9 {
            ticks.push(v);
            v += step;
        }
    }
    for v in ticks {
        let y = sy(v);
        grid_line(&mut s, y, pw, v);
    }
    // X grid at the labelled percentiles.
    for (p, label) in PERCENTILE_TICKS {
        let x = sx(p);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            top + ph,
            top + ph + 17.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile (log scale of 1/(1−p))</text>",
        ML + pw / 2.0,
        top + ph + 38.0
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">latency of ok responses (ms{})</text>",
        top + ph / 2.0,
        if log_y { ", log scale" } else { "" }
    );
    let _ = writeln!(
        s,
        "<rect x=\"{ML}\" y=\"{top:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#888\"/>"
    );
    if phases.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no ok response was recorded</text>",
            ML + pw / 2.0,
            top + ph / 2.0
        );
    }
    for p in &phases {
        let colour = phase_colour(&p.name);
        let pts: Vec<String> = p
            .percentile_curve
            .iter()
            .map(|c| format!("{:.1},{:.1}", sx(c.percentile), sy(c.ms)))
            .collect();
        let _ = writeln!(
            s,
            "<g class=\"phase-curve\" data-phase=\"{}\"><polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>",
            escape(&p.name),
            pts.join(" ")
        );
        for c in p.percentile_curve.iter().filter(|c| {
            PERCENTILE_TICKS
                .iter()
                .any(|(t, _)| (*t - c.percentile).abs() < 1e-6)
        }) {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: p{} = {:.3} ms</title></circle>",
                sx(c.percentile),
                sy(c.ms),
                escape(&p.name),
                num(c.percentile),
                c.ms
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

fn percentile_legend(st: &RunStats) -> String {
    let items: Vec<String> = phases_with_data(st)
        .iter()
        .map(|p| {
            format!(
                "<span><span class=\"line-sw\" style=\"border-color:{}\"></span>{} ({:.0}–{:.0} ms): {} ok, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms</span>",
                phase_colour(&p.name),
                escape(&p.name),
                p.start_ms,
                p.end_ms,
                p.latency.count,
                p.latency.p50,
                p.latency.p99,
                p.latency.max
            )
        })
        .collect();
    format!("<div class=\"legend\">{}</div>\n", items.join(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::Outcome;
    use crate::report::{Footprint, LoadSummary};
    use crate::stats::collector::{Collector, LoadCounters};
    use crate::stats::Sample;
    use crate::strategy::StepEvent;
    use crate::verdict::{Check, Verdict};

    /// A run of 3 s at 1 kHz with refused connections and a version switch at 1–1.1 s.
    fn fixture(name: &str) -> RunReport {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.live_span().mark_start(900_000_000);
        c.live_span().mark_end(1_600_000_000);
        for t in 0..3000u64 {
            let (outcome, version) = match t {
                0..=999 => (Outcome::Ok, 0),
                1000..=1029 => (Outcome::ConnectRefused, u16::MAX),
                _ => (Outcome::Ok, 1),
            };
            let lat = if (1030..1100).contains(&t) {
                80
            } else {
                2 + t % 3
            };
            c.add(&Sample {
                scheduled_ns: t * 1_000_000,
                sent_ns: t * 1_000_000,
                done_ns: (t + lat) * 1_000_000,
                outcome,
                version,
            });
        }
        let stats = c.finish(
            &LoadCounters {
                scheduled: 3000,
                sent: 3000,
                target_rate: 1000.0,
                schedule_ns: 3_000_000_000,
                end_ns: 3_200_000_000,
                ..Default::default()
            },
            &["v1".into(), "v2".into()],
        );
        RunReport {
            scenario: "scenarios/x.toml".into(),
            name: name.into(),
            strategy: "naive-restart".into(),
            load: Some(LoadSummary {
                mode: "open".into(),
                rate: Some(1000.0),
                connections: 32,
                keep_alive: false,
                target: "unix:/tmp/app.sock".into(),
            }),
            steps: vec![
                StepEvent {
                    name: "old instance stopped".into(),
                    start_ms: 900.0,
                    end_ms: 1000.0,
                    detail: "v1 exited 0".into(),
                    output: None,
                },
                StepEvent {
                    name: "new instance ready".into(),
                    start_ms: 1000.0,
                    end_ms: 1600.0,
                    detail: "<v2> & ready".into(),
                    output: Some("deploy said <hi> & bye".into()),
                },
            ],
            stats: Some(stats),
            footprint: Some(Footprint::new(
                std::time::Duration::from_millis(300),
                std::time::Duration::from_millis(110),
                std::time::Duration::from_millis(3200),
                0.5,
            )),
            verdict: Some(Verdict {
                passed: false,
                checks: vec![
                    Check {
                        name: "accounting".into(),
                        passed: true,
                        not_checked: false,
                        detail: "scheduled 3000 = ok + failed + hung".into(),
                    },
                    Check {
                        name: "no_failed_requests".into(),
                        passed: false,
                        not_checked: false,
                        detail: "30 failed of 3000 (connect_refused 30) <b>".into(),
                    },
                ],
            }),
            error: None,
            interrupted: false,
            run_dir: None,
            leftovers: Vec::new(),
            exit_code: 1,
            duration_s: 4.2,
        }
    }

    #[test]
    fn report_html_escapes_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let page = render(&[fixture("<script>alert(1)</script>")]);
        assert!(!page.contains("<script"), "unescaped name");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;v2&gt; &amp; ready"));
        assert!(page.contains("(connect_refused 30) &lt;b&gt;"));
        assert!(page.contains("<pre>deploy said &lt;hi&gt; &amp; bye</pre>"));
    }

    #[test]
    fn report_html_is_self_contained_with_both_charts() {
        let page = render(&[fixture("naive"), fixture("naive again")]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        for external in [
            "src=",
            "<link",
            "@import",
            "url(",
            "<script",
            "https://",
            "href=\"http",
        ] {
            assert!(!page.contains(external), "external reference {external}");
        }
        assert_eq!(page.matches("<svg class=\"chart timeline\"").count(), 2);
        assert_eq!(page.matches("<svg class=\"chart percentiles\"").count(), 2);
        assert_eq!(page.matches("data-verdict=\"FAIL\"").count(), 2 * 3); // section + 2 badges
        assert!(page.contains("class=\"bar ok\""));
        assert!(page.contains("class=\"bar fail\" data-key=\"connect_refused\""));
        assert!(page.contains("class=\"line p50\""));
        assert!(page.contains("class=\"line p99\""));
        assert!(page.contains("class=\"version-band\" data-version=\"v1\""));
        assert!(page.contains("class=\"version-band\" data-version=\"v2\""));
        assert_eq!(page.matches("class=\"step-marker\"").count(), 4);
        for phase in ["before", "during", "after"] {
            assert!(page.contains(&format!("class=\"phase-curve\" data-phase=\"{phase}\"")));
        }
        assert!(page.contains("99.999%"));
        assert!(page.contains("identity holds"));
        assert!(page.contains("verifier 0.41 s CPU over 3.2 s of load (13% of one core)</span>"));
        assert!(!page.contains("footprint-warning"));
    }

    #[test]
    fn report_html_warns_about_a_busy_verifier() {
        let mut r = fixture("hot");
        let s = std::time::Duration::from_millis;
        r.footprint = Some(Footprint::new(s(2000), s(600), s(3200), 0.5));
        let page = render(&[r]);
        assert!(page.contains("verifier 2.60 s CPU over 3.2 s of load (81% of one core)"));
        assert!(page.contains(
            "<p class=\"warn-box footprint-warning\">warning: the verifier used 81% of one core"
        ));
    }

    #[test]
    fn report_html_without_stats_still_renders() {
        let mut r = fixture("broken");
        r.stats = None;
        r.verdict = None;
        r.steps.clear();
        r.exit_code = 2;
        r.error = Some("starting v1: <nginx> not found".into());
        let page = render(&[r]);
        assert!(page.contains("data-verdict=\"ERROR\""));
        assert!(page.contains("error: starting v1: &lt;nginx&gt; not found"));
        assert!(!page.contains("<svg"));
    }

    #[test]
    fn report_html_axis_helpers() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(num(2.50), "2.5");
        assert_eq!(num(3.0), "3");
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(99.0) - 2.0).abs() < 1e-9);
        assert!((percentile_x(99.999) - 5.0).abs() < 1e-6);
    }
}
