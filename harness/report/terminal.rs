//! The terminal summary: verdict, the accounting identity (and how far truncated
//! responses got), latency by phase, the failure rate by phase with its upper
//! bound, requests by kind (a mix),
//! max gap, versions, the websockets held across the reload, the reload's steps
//! and the verifier's own CPU.

use std::fmt::Write;

use super::RunReport;
use crate::stats::{Exposure, Percentiles, RequestKindStats};
use crate::stats::{RunStats, Truncations};
use crate::verdict::baseline::BaselineComparison;
use crate::websocket::{End, WsReport};

/// One step's exposure in a line: `crossed 9 (in flight 3 at start, 2 at end; sent ±10 ms 4 / 3; connections across 8)`.
pub fn exposure(e: &Exposure) -> String {
    format!(
        "crossed {} (in flight {} at start, {} at end; sent within ±{} ms {} / {}; connections across {}){}",
        e.crossed,
        e.in_flight_at_start,
        e.in_flight_at_end,
        e.window_ms,
        e.sent_near_start,
        e.sent_near_end,
        e.connections_across,
        if e.complete { "" } else { " [incomplete: too many requests to keep]" }
    )
}

/// Renders one run for a terminal (plain text, no colour codes).
pub fn render(r: &RunReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "== {} ({}) ==", r.name, r.scenario);
    if let Some(l) = &r.load {
        let rate = l.rate.map(|r| format!(" at {r} req/s")).unwrap_or_default();
        let conn = if l.keep_alive {
            "keep-alive"
        } else {
            "new connection per request"
        };
        let streams = if l.streams > 1 {
            format!(" x {} streams", l.streams)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "strategy {}; load {} loop{rate}, {}, {} connections{streams}, {conn}; target {}",
            r.strategy, l.mode, l.protocol, l.connections, l.target
        );
        if let Some(note) = &l.engine_note {
            let _ = writeln!(o, "note: {note}");
        }
    }
    if !r.steps.is_empty() {
        let _ = writeln!(
            o,
            "\nreload steps (ms since load start; * changes who serves):"
        );
        for s in &r.steps {
            let _ = writeln!(
                o,
                "{} {:>9.1} -> {:>9.1}  {:<22} {}",
                if s.changes_serving { "*" } else { " " },
                s.start_ms,
                s.end_ms,
                s.name,
                s.detail
            );
            if let Some(e) = &s.exposure {
                let _ = writeln!(o, "{:>28}exposure: {}", "", exposure(e));
            }
        }
        for (i, s) in r.steps.iter().enumerate() {
            if s.changes_serving && s.exposure.is_some_and(|e| e.crossed == 0) {
                let _ = writeln!(
                    o,
                    "  warning: step {} '{}' changes who serves and was crossed by no request: the run says nothing about it",
                    i + 1,
                    s.name
                );
            }
        }
    }
    if let Some(st) = &r.stats {
        let _ = writeln!(o, "\nrequests:");
        let parts = super::accounting_terms(st);
        let mark = if st.identity_holds {
            "holds"
        } else {
            "DOES NOT HOLD (harness bug)"
        };
        let _ = writeln!(
            o,
            "  scheduled {} = {}   [identity {mark}]",
            st.scheduled,
            parts.join(" + ")
        );
        if let Some(t) = &st.truncated {
            let _ = writeln!(o, "  {}", truncations(t));
        }
        if st.interrupted > 0 {
            let _ = writeln!(
                o,
                "  (interrupted: {} requests still open when the run was interrupted; not failures)",
                st.interrupted
            );
        }
        if st.never_sent > 0 {
            let _ = writeln!(
                o,
                "  (of the {}, {} were never sent: no connection was free)",
                if st.interrupted > 0 {
                    "interrupted"
                } else {
                    "hung"
                },
                st.never_sent
            );
        }
        if st.hung > 0 {
            let _ = writeln!(o, "  {}", hung_hint(st));
        }
        if st.stale_closes > 0 {
            let _ = writeln!(
                o,
                "  (keep-alive: {} idle connections the server had closed were found closed before reuse and reopened, as a pooled client does; not failures)",
                st.stale_closes
            );
        }
        if let Some(h2) = &st.h2 {
            let _ = writeln!(
                o,
                "  h2: {} connections, {} GOAWAYs received, {} unsent requests moved to a new connection",
                h2.connections, h2.goaways, h2.unsent_reconnects
            );
        }
        if let Some(tls) = &st.tls {
            let _ = writeln!(
                o,
                "  tls: {} handshakes, {} of them resumed a session",
                tls.handshakes, tls.resumed
            );
            for c in &tls.certs {
                let _ = writeln!(
                    o,
                    "  tls: certificate {} in {} full handshakes, from {:.0} ms to {:.0} ms",
                    c.id, c.handshakes, c.first_ms, c.last_ms
                );
            }
        }
        if st.target_rate > 0.0 {
            let _ = writeln!(
                o,
                "  rate: target {:.1}/s, sent {:.1}/s; late sends (> 1 ms) {}; send lateness p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                st.target_rate, st.sent_rate, st.late_sends, st.lateness.p50, st.lateness.p99, st.lateness.max
            );
        } else {
            let _ = writeln!(o, "  rate: {:.1} req/s (closed loop)", st.sent_rate);
        }
        let _ = writeln!(
            o,
            "\nlatency of ok responses (ms, from the scheduled send time):"
        );
        let _ = writeln!(
            o,
            "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  failed",
            "phase", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for p in &st.phases {
            let failed: Vec<String> = p.failed.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let label = format!("{} ({:.0}-{:.0})", p.name, p.start_ms, p.end_ms);
            let _ = writeln!(
                o,
                "  {}  {}",
                row(&label, &p.latency),
                if failed.is_empty() {
                    "0".into()
                } else {
                    failed.join(", ")
                }
            );
        }
        let _ = writeln!(o, "  {}", row("whole run", &st.latency));
        let _ = writeln!(
            o,
            "  {}",
            row("whole run, uncorrected", &st.latency_uncorrected)
        );
        failure_rates(&mut o, st);
        if let Some(k) = &st.kinds {
            kinds(&mut o, k);
        }
        let _ = writeln!(
            o,
            "\nmax gap without a successful response: {:.1} ms (from {:.1} ms)",
            st.max_gap_ms, st.max_gap_at_ms
        );
        if !st.versions.is_empty() {
            let _ = writeln!(o, "versions served:");
            for v in &st.versions {
                let _ = writeln!(
                    o,
                    "  {:<12} ok {:>8}   first {:>9.1} ms   last {:>9.1} ms",
                    v.name, v.ok, v.first_ms, v.last_ms
                );
            }
        }
    }
    if let Some(w) = &r.websockets {
        websockets(&mut o, w);
    }
    if let Some(b) = &r.baseline {
        baseline(&mut o, b);
    }
    if let Some(f) = &r.footprint {
        let _ = writeln!(o, "\n{}", f.line());
    }
    if r.interrupted {
        let _ = writeln!(
            o,
            "\n{}: the figures above cover the run until then; nothing is judged against the server.",
            r.interrupted_by_text()
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(o, "\nerror: {e}");
    }
    if let Some(v) = &r.verdict {
        let _ = writeln!(o);
        for c in &v.checks {
            let _ = writeln!(
                o,
                "  [{:<4}] {:<22} {}",
                if c.passed {
                    "ok"
                } else if c.not_checked {
                    "n/a"
                } else {
                    "FAIL"
                },
                c.name,
                c.detail
            );
        }
    }
    if r.interrupted {
        // Neither PASS nor FAIL: a run cut short proves nothing either way.
        let _ = writeln!(o, "verdict: {}", r.interrupted_by_text());
    } else if r.error.is_some() {
        let word = if r.verdict.is_some() { "ERROR" } else { "none" };
        let _ = writeln!(o, "verdict: {word} (harness error)");
    } else if r.verdict.is_some() {
        let _ = writeln!(o, "verdict: {}", r.result.as_str());
    } else if let Some(st) = &r.stats {
        // `zdt-check load`: no reload, no assertions; failures alone set the exit code.
        let _ = writeln!(o, "no reload, no verdict: {} failed requests", st.failed);
    }
    if !r.leftovers.is_empty() {
        let _ = writeln!(
            o,
            "killed {} processes left behind by the stack: {}",
            r.leftovers.len(),
            r.leftovers.join("; ")
        );
    }
    if let Some(d) = &r.run_dir {
        let _ = writeln!(o, "run directory kept: {d}");
    }
    o
}

/// The failure rate per phase and for the whole run, each with its one-sided 95%
/// upper bound: `failure rate during:    0 of 612 (≤ 0.49% at 95%)`.
/// This run beside its baseline, one figure a row.
fn baseline(o: &mut String, b: &BaselineComparison) {
    let _ = writeln!(
        o,
        "\nagainst baseline {} (median of {} run{}):",
        b.file,
        b.runs,
        if b.runs == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "  {:<20} {:>12} {:>12} {:>8}  {:<16} ",
        "figure", "baseline", "this run", "change", "tolerance"
    );
    for r in &b.rows {
        let _ = writeln!(
            o,
            "  {:<20} {:>12} {:>12} {:>8}  {:<16} {}",
            r.figure,
            r.show(r.baseline),
            r.show(r.current),
            r.change(),
            r.tolerance_text(),
            if r.regressed { "REGRESSED" } else { "" }
        );
    }
}

fn failure_rates(o: &mut String, st: &RunStats) {
    let _ = writeln!(o);
    for p in st.phases.iter().filter(|p| p.name != "whole run") {
        let _ = writeln!(
            o,
            "failure rate {:<10} {}",
            format!("{}:", p.name),
            p.failure_bound()
        );
    }
    let _ = writeln!(o, "failure rate whole run: {}", st.failure_bound());
    let _ = writeln!(
        o,
        "  (≤: the largest failure rate this many requests could have missed, one-sided 95%, Clopper-Pearson)"
    );
}

/// One row per request kind: what it sends, its own accounting identity, its
/// failures by key and its latency during the reload (the whole run without one).
fn kinds(o: &mut String, kinds: &[RequestKindStats]) {
    let _ = writeln!(
        o,
        "\nrequests by kind (ms, ok responses, from the scheduled send time):"
    );
    let rows: Vec<(&RequestKindStats, String)> =
        kinds.iter().map(|k| (k, k.info.request_line())).collect();
    let w = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0).max(7);
    let _ = writeln!(
        o,
        "  {:<12} {:<w$} {:<5} {:<6} {:>9} {:>8} {:>7} {:>8} {:>8}  failed",
        "kind", "request", "proto", "conn", "scheduled", "ok", "hung", "p50", "p99"
    );
    let mut broken = Vec::new();
    for (k, req) in &rows {
        let i = &k.info;
        let during = k
            .phases
            .iter()
            .find(|p| p.name == "during")
            .map_or(&k.latency, |p| &p.latency);
        let failed: Vec<String> = k
            .outcomes
            .iter()
            .filter(|(key, _)| *key != "ok" && *key != "hung")
            .map(|(key, n)| format!("{key} {n}"))
            .collect();
        let _ = writeln!(
            o,
            "  {:<12} {:<w$} {:<5} {:<6} {:>9} {:>8} {:>7} {:>8.2} {:>8.2}  {}",
            i.name,
            req,
            i.protocol,
            if i.keep_alive { "reused" } else { "fresh" },
            k.scheduled,
            k.ok,
            k.hung,
            during.p50,
            during.p99,
            if failed.is_empty() {
                "0".into()
            } else {
                failed.join(", ")
            }
        );
        if !k.identity_holds {
            broken.push(i.name.as_str());
        }
    }
    let during = kinds
        .first()
        .is_some_and(|k| k.phases.iter().any(|p| p.name == "during"));
    let _ = writeln!(
        o,
        "  (p50/p99 {}; identity {})",
        if during {
            "during the reload"
        } else {
            "over the whole run"
        },
        if broken.is_empty() {
            "holds for every kind".to_string()
        } else {
            format!("DOES NOT HOLD for {} (harness bug)", broken.join(", "))
        }
    );
}

/// The websockets' counts, and each connection that did not end cleanly.
fn websockets(o: &mut String, w: &WsReport) {
    let _ = writeln!(
        o,
        "\nwebsockets ({} on {}, a message every {} ms):",
        w.connections, w.path, w.interval_ms
    );
    let _ = writeln!(o, "  {}", w.summary());
    if !w.versions.is_empty() {
        let v: Vec<String> = w.versions.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(o, "  versions on open: {}", v.join(", "));
    }
    let bad: Vec<_> = w
        .lives
        .iter()
        .filter(|l| matches!(l.end, End::Dropped | End::FailedToOpen))
        .collect();
    for l in bad.iter().take(5) {
        let end = if l.end == End::Dropped {
            "dropped"
        } else {
            "failed to open"
        };
        let _ = writeln!(
            o,
            "  #{:<3} {end} at {:.1} ms: {}",
            l.conn, l.at_ms, l.detail
        );
    }
    if bad.len() > 5 {
        let _ = writeln!(o, "  ... and {} more", bad.len() - 5);
    }
    if !w.identity_holds() {
        let _ = writeln!(
            o,
            "  connections not accounted for: DOES NOT HOLD (harness bug)"
        );
    }
}

/// How far the truncated responses got, on one line.
fn truncations(t: &Truncations) -> String {
    let mut line = format!(
        "truncated {}: bytes received before the cut (head included) min {} / median {} / max {}",
        t.count, t.bytes.min, t.bytes.median, t.bytes.max
    );
    if t.chunked > 0 {
        let _ = write!(
            line,
            "; {} chunked: chunks received min {} / median {} / max {}",
            t.chunked, t.chunks.min, t.chunks.median, t.chunks.max
        );
    }
    if t.in_head > 0 {
        let _ = write!(line, "; {} cut inside the head", t.in_head);
    }
    line
}

fn row(label: &str, p: &Percentiles) -> String {
    format!(
        "{label:<22} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        p.count, p.p50, p.p90, p.p99, p.p999, p.max
    )
}

/// Why requests ended `hung` and which key to raise: a request still in flight when the
/// grace ran out may be slow rather than stuck.
fn hung_hint(st: &RunStats) -> String {
    let grace = st.grace_ms / 1000.0;
    match st.hung_oldest_ms {
        Some(oldest) => format!(
            "(hung: {} still open when the {grace:.1} s grace after the schedule ran out; the oldest had been in flight {:.1} s. If the app is that slow by design, raise `load.timeout` (the grace follows it) or `load.grace`)",
            st.hung,
            oldest / 1000.0
        ),
        None => format!(
            "(hung: {} still open when the {grace:.1} s grace after the schedule ran out, none of them sent: raise `load.connections`, or `load.grace`)",
            st.hung
        ),
    }
}
