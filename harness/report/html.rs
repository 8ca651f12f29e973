//! The HTML report (`--html`): one self-contained page, no external assets and
//! no script. Inline CSS, and inline SVG charts (drawn by [`super::chart`]).
//!
//! Per run: the verdict and its checks, the accounting identity, the reload's
//! steps, latency by phase, versions, and two charts:
//! - a timeline per window: stacked bars of ok and each failure key, p50/p99
//!   latency lines on a second axis, a band under the bars coloured by the
//!   versions that served, and the reload steps as labelled vertical markers;
//! - latency by percentile (HdrHistogram style): percentile on a log scale of
//!   `1/(1-p)` from 0% to 99.999%, one line per phase.
//!
//! With `[websockets]`: a line of their counts, and a strip under the timeline, on
//! its time axis, with a tick where each websocket ended before the end of the run.
//!
//! Every piece of text that comes from outside (scenario names, paths, details,
//! error logs) goes through [`escape`]. Hovering a bar or a point shows its
//! numbers (SVG `<title>` tooltips).

use std::fmt::Write;
use std::path::Path;

use super::chart::{self, outcome_colour, phase_colour, Curve, Frame, Timeline, OK_COLOUR};
use super::RunReport;
use crate::error::{Error, Result};
use crate::stats::{Percentiles, RequestKindStats};
use crate::stats::{PhaseStats, RunStats};

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

/// The pages' style sheet (the run report's and the comparison page's).
pub const CSS: &str = r#"
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
td.uncrossed{color:#c62828;font-weight:700}
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

/// `PASS`, `FAIL`, `ERROR` or `INTERRUPTED`, with its CSS class.
pub fn verdict_of(r: &RunReport) -> (&'static str, &'static str) {
    if r.interrupted {
        return ("INTERRUPTED", "error");
    }
    match r.exit_code {
        0 => ("PASS", "pass"),
        1 => ("FAIL", "fail"),
        _ if r.verdict.as_ref().is_some_and(|v| !v.passed) => ("FAIL", "fail"),
        _ => ("ERROR", "error"),
    }
}

/// The verdict as a coloured badge.
pub fn badge(r: &RunReport) -> String {
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

/// The line under a run's heading: its scenario file, strategy and load
/// (with the target when given). Shared with compare's page.
pub(crate) fn scenario_line(
    scenario: &str,
    strategy: &str,
    load: Option<&super::LoadSummary>,
    target: Option<&str>,
) -> String {
    let mut sub = format!(
        "scenario <code>{}</code> · strategy <b>{}</b>",
        escape(scenario),
        escape(strategy)
    );
    if let Some(l) = load {
        let rate = l.rate.map(|r| format!(" at {r} req/s")).unwrap_or_default();
        let _ = write!(
            sub,
            " · load {} loop{rate}, {}, {} connections{}, {}",
            escape(&l.mode),
            escape(&l.protocol),
            l.connections,
            if l.streams > 1 {
                format!(" x {} streams", l.streams)
            } else {
                String::new()
            },
            if l.keep_alive {
                "keep-alive"
            } else {
                "new connection per request"
            }
        );
    }
    if let Some(t) = target {
        let _ = write!(sub, " · target <code>{}</code>", escape(t));
    }
    sub
}

fn run_section(o: &mut String, i: usize, r: &RunReport) {
    let (verdict, _) = verdict_of(r);
    let _ = writeln!(
        o,
        "<section class=\"run\" id=\"run-{i}\" data-verdict=\"{verdict}\">"
    );
    let _ = writeln!(o, "<h2>{} {}</h2>", badge(r), escape(&r.name));
    let mut sub = scenario_line(
        &r.scenario,
        &r.strategy,
        r.load.as_ref(),
        r.load.as_ref().map(|l| l.target.as_str()),
    );
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
            "<p class=\"error-box\">{}: the figures cover the run until then; nothing is judged against the server.</p>",
            escape(&r.interrupted_by_text())
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
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            o,
            "<h3>Against the baseline</h3>\n<p class=\"note\">{} (median of {} run{})</p>",
            escape(&b.file),
            b.runs,
            if b.runs == 1 { "" } else { "s" }
        );
        o.push_str("<table class=\"checks baseline\"><thead><tr><th></th><th>figure</th><th>baseline</th><th>this run</th><th>change</th><th>tolerance</th></tr></thead><tbody>\n");
        for row in &b.rows {
            let _ = writeln!(
                o,
                "<tr class=\"{}\"><td class=\"{}\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if row.regressed { "failed" } else { "passed" },
                if row.regressed { "mark-fail" } else { "mark-ok" },
                if row.regressed { "REGRESSED" } else { "ok" },
                escape(&row.figure),
                escape(&row.show(row.baseline)),
                escape(&row.show(row.current)),
                escape(&row.change()),
                escape(&row.tolerance_text())
            );
        }
        o.push_str("</tbody></table>\n");
    }

    if let Some(st) = &r.stats {
        identity(o, st);
        o.push_str("<h3>Timeline</h3>\n");
        let t = Timeline::of(r, st);
        let frame = Frame::fit(&t);
        o.push_str(&chart::timeline_svg(&t, &frame));
        if let Some(w) = &r.websockets {
            o.push_str(&chart::websocket_strip_svg(&t, &frame, w));
        }
        o.push_str(&chart::timeline_legend(&t));
    } else {
        o.push_str(
            "<p class=\"note\">No measurements: the run ended before the load started.</p>\n",
        );
    }

    if let Some(w) = &r.websockets {
        let _ = writeln!(
            o,
            "<h3>WebSockets</h3>\n<p class=\"note websockets\">{} on <code>{}</code>, a message every {} ms: {}. Ticks under the timeline: <span style=\"color:#c62828\">dropped without a close frame</span>, <span style=\"color:#607d8b\">closed by the server with one</span>, <span style=\"color:#6d4c41\">failed to open</span>.</p>",
            w.connections,
            escape(&w.path),
            w.interval_ms,
            escape(&w.summary())
        );
    }

    steps_table(o, r);

    if let Some(st) = &r.stats {
        o.push_str("<h3>Latency by percentile</h3>\n");
        let curves: Vec<Curve> = st
            .phases
            .iter()
            .map(|p| Curve {
                class: "phase-curve",
                attr: "data-phase",
                name: &p.name,
                colour: phase_colour(&p.name),
                points: &p.percentile_curve,
            })
            .collect();
        o.push_str(&chart::percentile_svg(
            &curves,
            chart::latency_range(&curves),
            "latency by percentile per phase",
        ));
        o.push_str(&percentile_legend(st));
        phases_table(o, st);
        if let Some(k) = &st.kinds {
            kinds_table(o, k);
        }
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
    if st.interrupted > 0 {
        parts.push(format!("interrupted {}", st.interrupted));
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
    if st.interrupted > 0 {
        notes.push(format!(
            "interrupted: {} requests still open when the run was interrupted (not failures)",
            st.interrupted
        ));
    }
    if st.never_sent > 0 {
        notes.push(format!(
            "of the {}, {} were never sent (no connection was free)",
            if st.interrupted > 0 {
                "interrupted"
            } else {
                "hung"
            },
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
    o.push_str("<table class=\"steps\"><thead><tr><th class=\"num\">#</th><th class=\"num\">start (ms)</th><th class=\"num\">end (ms)</th><th class=\"num\">took (ms)</th><th>step</th><th class=\"num\" title=\"requests in flight at the step's start / at its end\">in flight</th><th class=\"num\" title=\"requests sent within the window of its start / of its end\">sent near</th><th class=\"num\" title=\"connections opened before its start, still open at its end\">conns across</th><th class=\"num\" title=\"requests that crossed it: in flight at its start or end, or sent near either\">crossed</th><th>detail</th></tr></thead><tbody>\n");
    for (i, s) in r.steps.iter().enumerate() {
        let exposure = match &s.exposure {
            Some(e) => format!(
                "<td class=\"num\">{} / {}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num{}\">{}</td>",
                e.in_flight_at_start,
                e.in_flight_at_end,
                e.sent_near_start,
                e.sent_near_end,
                e.connections_across,
                if s.changes_serving && e.crossed == 0 { " uncrossed" } else { "" },
                e.crossed
            ),
            None => "<td></td><td></td><td></td><td></td>".to_string(),
        };
        let _ = writeln!(
            o,
            "<tr{}><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td>{}{}</td>{exposure}<td>{}{}</td></tr>",
            if s.changes_serving { " class=\"changes-serving\"" } else { "" },
            i + 1,
            s.start_ms,
            s.end_ms,
            s.end_ms - s.start_ms,
            escape(&s.name),
            if s.changes_serving { " <span title=\"changes who serves\">*</span>" } else { "" },
            escape(&s.detail),
            s.output.as_deref().map_or(String::new(), |out| format!(
                "<details><summary>output</summary><pre>{}</pre></details>",
                escape(out)
            ))
        );
    }
    o.push_str("</tbody></table>\n");
    let _ = writeln!(
        o,
        "<p class=\"note\">* changes who serves (a switch, a stop, a drain). Exposure: in flight at the start / end, sent within ±{} ms of the start / end, connections open across the step, and the requests that crossed it (any of these, each once).</p>",
        crate::stats::exposure::WINDOW.as_millis()
    );
    for (i, s) in r.steps.iter().enumerate() {
        if s.changes_serving && s.exposure.is_some_and(|e| e.crossed == 0) {
            let _ = writeln!(
                o,
                "<p class=\"warn-box exposure-warning\">warning: step {} '{}' changes who serves and was crossed by no request: the run says nothing about it.</p>",
                i + 1,
                escape(&s.name)
            );
        }
    }
}

fn phases_table(o: &mut String, st: &RunStats) {
    o.push_str("<table class=\"phases\"><thead><tr><th>phase</th><th class=\"num\">from–to (ms)</th><th class=\"num\">ok</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th><th class=\"num\">max gap</th><th>failed</th><th class=\"failure-rate\">failure rate</th></tr></thead><tbody>\n");
    let row = |o: &mut String,
               label: String,
               range: String,
               p: &Percentiles,
               gap: String,
               failed: String,
               rate: String| {
        let _ = writeln!(
            o,
            "<tr><td>{label}</td><td class=\"num\">{range}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{gap}</td><td>{failed}</td><td class=\"failure-rate\">{rate}</td></tr>",
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
            escape(&p.failure_bound().to_string()),
        );
    }
    row(
        o,
        "whole run".into(),
        String::new(),
        &st.latency,
        format!("{:.1}", st.max_gap_ms),
        String::new(),
        escape(&st.failure_bound().to_string()),
    );
    row(
        o,
        "whole run, uncorrected".into(),
        String::new(),
        &st.latency_uncorrected,
        String::new(),
        String::new(),
        String::new(),
    );
    o.push_str("</tbody></table>\n<p class=\"note\">Latency in ms. Uncorrected: measured from the actual send instead of the scheduled one (hides coordinated omission). Failure rate: failed of the requests that ended, with its one-sided 95% upper bound (Clopper-Pearson), the largest failure rate this many requests could have missed; the whole run counts hung requests too.</p>\n");
}

/// One row per request kind of the mix: its identity, failures and p99 per phase.
fn kinds_table(o: &mut String, kinds: &[RequestKindStats]) {
    let phases: Vec<&str> = kinds
        .first()
        .map(|k| k.phases.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    o.push_str("<h3>Requests by kind</h3>\n<table class=\"kinds\"><thead><tr><th>kind</th><th>request</th><th>protocol, connection</th><th class=\"num\">scheduled</th><th class=\"num\">ok</th><th class=\"num\">hung</th><th>identity</th>");
    for p in &phases {
        let _ = write!(o, "<th class=\"num\">p99 {} (ms)</th>", escape(p));
    }
    o.push_str("<th>failed</th></tr></thead><tbody>\n");
    for k in kinds {
        let failed: Vec<String> = k
            .outcomes
            .iter()
            .filter(|(key, _)| *key != "ok" && *key != "hung")
            .map(|(key, n)| format!("{} {n}", escape(key)))
            .collect();
        let _ = write!(
            o,
            "<tr class=\"{}\" data-kind=\"{}\"><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td>",
            if k.failed == 0 { "passed" } else { "failed" },
            escape(&k.info.name),
            escape(&k.info.name),
            escape(&k.info.request_line()),
            format_args!(
                "{} {}",
                escape(&k.info.protocol),
                if k.info.keep_alive { "reused" } else { "fresh" }
            ),
            k.scheduled,
            k.ok,
            k.hung,
            if k.identity_holds { "mark-ok" } else { "mark-fail" },
            if k.identity_holds { "holds" } else { "DOES NOT HOLD" },
        );
        for p in &k.phases {
            let _ = write!(o, "<td class=\"num\">{:.2}</td>", p.latency.p99);
        }
        let _ = writeln!(
            o,
            "<td>{}</td></tr>",
            if failed.is_empty() {
                "0".into()
            } else {
                failed.join(", ")
            }
        );
    }
    o.push_str("</tbody></table>\n<p class=\"note\">Each kind's own accounting: scheduled = ok + failed + hung. p99 of its ok responses per phase, from the scheduled send time.</p>\n");
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
            chart::version_colour(i),
            escape(&v.name),
            v.ok,
            v.first_ms,
            v.last_ms
        );
    }
    o.push_str("</tbody></table>\n");
}

fn phases_with_data(st: &RunStats) -> Vec<&PhaseStats> {
    st.phases
        .iter()
        .filter(|p| !p.percentile_curve.is_empty())
        .collect()
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
pub(crate) mod tests {
    use super::*;
    use crate::report::{Footprint, LoadSummary};
    use crate::stats::outcome::Outcome;
    use crate::stats::Sample;
    use crate::stats::{Collector, LoadCounters};
    use crate::steps::StepEvent;
    use crate::verdict::{Check, Verdict};

    /// A run of 3 s at 1 kHz with refused connections and a version switch at 1–1.1 s.
    pub(crate) fn fixture(name: &str) -> RunReport {
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
                cut: crate::load::Cut::NONE,
                kind: 0,
                conn: t as u32 % 32 + 1,
                conn_opened_ns: 0,
            });
        }
        let exposure = c.take_exposure();
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
            scenario_hash: String::new(),
            baseline: None,
            load: Some(LoadSummary {
                mode: "open".into(),
                rate: Some(1000.0),
                connections: 32,
                keep_alive: false,
                protocol: "h1".into(),
                engine: "epoll".into(),
                engine_note: None,
                streams: 1,
                target: "unix:/tmp/app.sock".into(),
            }),
            steps: vec![
                StepEvent {
                    name: "old instance stopped".into(),
                    start_ms: 900.0,
                    end_ms: 1000.0,
                    detail: "v1 exited 0".into(),
                    output: None,
                    changes_serving: true,
                    exposure: Some(exposure.of(900_000_000, 1_000_000_000)),
                },
                StepEvent {
                    name: "new instance ready".into(),
                    start_ms: 1000.0,
                    end_ms: 1600.0,
                    detail: "<v2> & ready".into(),
                    output: Some("deploy said <hi> & bye".into()),
                    changes_serving: false,
                    exposure: Some(exposure.of(1_000_000_000, 1_600_000_000)),
                },
            ],
            stats: Some(stats),
            footprint: Some(Footprint::new(
                std::time::Duration::from_millis(300),
                std::time::Duration::from_millis(110),
                std::time::Duration::from_millis(3200),
                0.5,
            )),
            websockets: None,
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
            interrupted_by: None,
            run_dir: None,
            leftovers: Vec::new(),
            result: crate::report::RunResult::Fail,
            exit_code: 1,
            duration_s: 4.2,
        }
    }

    #[test]
    fn report_html_shows_a_baseline_side_by_side() {
        use crate::verdict::baseline::{self, BaselineConfig, Figure, Figures};
        let mut r = fixture("b");
        let (mut base, mut cur) = (Figures::new(), Figures::new());
        base.insert(Figure::ReloadTime, 1500.0);
        cur.insert(Figure::ReloadTime, 2500.0);
        r.baseline = Some(baseline::compare(
            Path::new("old.json"),
            3,
            &base,
            &cur,
            &BaselineConfig::default().tolerances(),
        ));
        let html = render(&[r]);
        assert!(html.contains("<h3>Against the baseline</h3>"), "{html}");
        assert!(html.contains("old.json (median of 3 runs)"), "{html}");
        assert!(
            html.contains("<td class=\"mark-fail\">REGRESSED</td><td><code>reload_time</code></td><td>1500.0 ms</td><td>2500.0 ms</td><td>+67%</td><td>+25% / 250 ms</td>"),
            "{html}"
        );
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
        // Two steps on each of the two timelines; the first changes who serves and
        // carries how many requests crossed it.
        assert_eq!(page.matches("class=\"step-marker\"").count(), 2);
        assert_eq!(
            page.matches("class=\"step-marker changes-serving\" data-step=\"old instance stopped\" data-crossed=\"")
                .count(),
            2
        );
        assert!(
            page.contains("; exposure: in flight "),
            "the marker's tooltip"
        );
        assert!(
            page.contains("<tr class=\"changes-serving\">"),
            "the steps table"
        );
        assert!(page.contains("<th class=\"num\" title=\"requests that crossed it"));
        for phase in ["before", "during", "after"] {
            assert!(page.contains(&format!("class=\"phase-curve\" data-phase=\"{phase}\"")));
        }
        assert!(page.contains("99.999%"));
        assert!(page.contains("identity holds"));
        // Each phase's failure rate with its upper bound (30 of 700 ≤ 5.8%: docs/guide/reports.md).
        assert!(page.contains("<td class=\"failure-rate\">0 of 900 (≤ 0.34% at 95%)</td>"));
        assert!(page.contains("<td class=\"failure-rate\">30 of 700 = 4.3% (≤ 5.8% at 95%)</td>"));
        assert!(page.contains("<td class=\"failure-rate\">30 of 3000 = 1.0% (≤ 1.4% at 95%)</td>"));
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
    fn report_html_interrupted_is_neither_pass_nor_fail() {
        let mut r = fixture("cut");
        r.interrupted = true;
        r.interrupted_by = Some("SIGTERM".into());
        r.conclude();
        assert_eq!(r.exit_code, 2);
        let page = render(&[r]);
        assert!(page.contains("data-verdict=\"INTERRUPTED\""), "{page}");
        assert!(!page.contains("data-verdict=\"FAIL\""), "{page}");
        assert!(page.contains("INTERRUPTED by SIGTERM: the figures cover the run until then"));
    }

    #[test]
    fn report_html_ticks_where_websockets_ended() {
        use crate::websocket::{End, Life, WsReport};
        let life = |conn, end, at_ms| Life {
            conn,
            reopen: false,
            opened_ms: Some(3.0),
            version: Some("v1".into()),
            echoes: 4,
            end,
            at_ms,
            code: (end == End::ClosedByServer).then_some(1001),
            detail: "closed <without> a close frame".into(),
        };
        let mut r = fixture("ws");
        assert!(!render(std::slice::from_ref(&r)).contains("websockets"));
        r.websockets = Some(WsReport::tally(
            "/ws",
            100.0,
            vec![
                life(0, End::Dropped, 1500.0),
                life(1, End::Dropped, 1510.0),
                life(2, End::ClosedByServer, 1600.0),
                life(3, End::HeldToEnd, 3000.0),
            ],
        ));
        let page = render(&[r]);
        assert_eq!(page.matches("<svg class=\"chart websockets\"").count(), 1);
        assert_eq!(page.matches("<line class=\"ws-dropped\"").count(), 2);
        assert_eq!(page.matches("<line class=\"ws-closed\"").count(), 1);
        assert!(page
            .contains("websocket #0 dropped at 1500.0 ms: closed &lt;without&gt; a close frame"));
        assert!(page.contains("4 of 4 opened: 2 dropped without a close frame at 1500.0-1510.0 ms, 1 closed by the server (1001 x1)"));
    }
}
