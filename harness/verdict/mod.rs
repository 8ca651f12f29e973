//! The verdict: each assertion of a scenario judged over a run's statistics.
//!
//! A check says what was expected, what was measured and by how much it missed,
//! so a red CI run explains itself.

pub mod baseline;
pub mod cert;
pub mod config;

pub use config::AssertConfig;

use serde::Serialize;

use crate::stats::RunStats;
use crate::steps::StepEvent;
use crate::websocket::{End, WsReport};

/// One assertion's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable short name (`no_failed_requests`, `new_version_took_over`, ...).
    pub name: String,
    /// Whether it held (false too when it could not be checked).
    pub passed: bool,
    /// It could not be judged (e.g. no response names its version): reported as such,
    /// never as passed, and it does not fail the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_checked: bool,
    /// What was measured against what was expected.
    pub detail: String,
}

impl Check {
    /// Held, or could not be judged: it does not fail the run.
    pub fn not_failed(&self) -> bool {
        self.passed || self.not_checked
    }
}

/// All checks of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// True when every check held (never for an interrupted run).
    pub passed: bool,
    /// Every check, in report order.
    pub checks: Vec<Check>,
}

/// What the verdict needs besides the statistics.
pub struct Judged<'a> {
    /// The scenario's assertions.
    pub assert: &'a AssertConfig,
    /// The versions in deploy order (first started, last reloaded to); empty when
    /// they are discovered.
    pub versions: &'a [String],
    /// Each reload's start and end on the load clock (ms), in order.
    pub reloads: &'a [(f64, f64)],
    /// Responses name their version (a header or a body regex is configured).
    pub version_source: bool,
    /// The reload's recorded steps.
    pub steps: &'a [StepEvent],
    /// Set when a reload step failed.
    pub reload_error: Option<&'a str>,
}

fn check(name: &str, passed: bool, detail: String) -> Check {
    Check {
        name: name.to_string(),
        passed,
        not_checked: false,
        detail,
    }
}

fn not_checked(name: &str, detail: String) -> Check {
    Check {
        name: name.to_string(),
        passed: false,
        not_checked: true,
        detail,
    }
}

/// Judges `stats` against the assertions.
pub fn judge(stats: &RunStats, j: &Judged) -> Verdict {
    let mut checks = Vec::new();

    let broken_kinds: Vec<&str> = stats
        .kinds
        .iter()
        .flatten()
        .filter(|k| !k.identity_holds)
        .map(|k| k.info.name.as_str())
        .collect();
    let per_kind = if stats.kinds.is_some() {
        ", and for each request kind"
    } else {
        ""
    };
    checks.push(check(
        "accounting",
        stats.identity_holds && broken_kinds.is_empty(),
        if !broken_kinds.is_empty() {
            format!(
                "scheduled != ok + failed + hung + interrupted for request kinds {}: the harness lost requests (a bug in zdt-check)",
                broken_kinds.join(", ")
            )
        } else if stats.identity_holds {
            format!(
                "scheduled {} = ok + failed + hung + interrupted{per_kind}",
                stats.scheduled
            )
        } else {
            format!(
                "scheduled {} != ok {} + failed {} + interrupted {}: the harness lost requests (a bug in zdt-check)",
                stats.scheduled, stats.ok, stats.failed, stats.interrupted
            )
        },
    ));

    checks.push(match j.reload_error {
        None => check("reload_completed", true, format!("{} steps", j.steps.len())),
        Some(e) => check("reload_completed", false, e.to_string()),
    });

    let allow = j.assert.allow.get_ref();
    let mut counted = 0u64;
    let mut counted_parts = Vec::new();
    let mut allowed_parts = Vec::new();
    for (key, n) in &stats.outcomes {
        if key == "ok" {
            continue;
        }
        let class = class_of(key);
        if allow.iter().any(|a| a == key || a == class) {
            allowed_parts.push(format!("{key} {n}"));
        } else {
            counted += n;
            counted_parts.push(format!("{key} {n}"));
        }
    }
    let mut detail = if counted == 0 {
        format!("0 failed of {}", stats.scheduled)
    } else {
        format!(
            "{counted} failed of {} ({})",
            stats.scheduled,
            counted_parts.join(", ")
        )
    };
    if j.assert.max_failed > 0 {
        detail.push_str(&format!("; at most {} allowed", j.assert.max_failed));
    }
    if stats.interrupted > 0 {
        detail.push_str(&format!(
            "; {} cut in flight by the interruption, not counted",
            stats.interrupted
        ));
    }
    if !allowed_parts.is_empty() {
        detail.push_str(&format!(
            "; allowed and not counted: {}",
            allowed_parts.join(", ")
        ));
    }
    if let (Some(kinds), true) = (&stats.kinds, counted > 0) {
        let by_kind: Vec<String> = kinds
            .iter()
            .map(|k| {
                let parts: Vec<String> = k
                    .outcomes
                    .iter()
                    .filter(|(key, _)| {
                        *key != "ok" && !allow.iter().any(|a| a == *key || a == class_of(key))
                    })
                    .map(|(key, n)| format!("{key} {n}"))
                    .collect();
                if parts.is_empty() {
                    format!("{} 0", k.info.name)
                } else {
                    format!("{} {}", k.info.name, parts.join(" + "))
                }
            })
            .collect();
        detail.push_str(&format!("; by kind: {}", by_kind.join(", ")));
    }
    checks.push(check(
        "no_failed_requests",
        counted <= j.assert.max_failed && stats.ok > 0,
        if stats.ok == 0 {
            format!("no request succeeded; {detail}")
        } else {
            detail
        },
    ));

    if j.assert.new_version_took_over {
        checks.push(took_over(stats, j));
    }

    if let Some(budget) = j.assert.p99_during {
        let budget_ms = budget.0.as_secs_f64() * 1000.0;
        let during = stats.phases.iter().find(|p| p.name == "during");
        let p99 = during.map_or(0.0, |p| p.latency.p99);
        checks.push(check(
            "p99_during",
            p99 <= budget_ms,
            if p99 <= budget_ms {
                format!("p99 during the reload {p99:.1} ms <= {budget_ms:.1} ms")
            } else {
                format!("p99 during the reload {p99:.1} ms > budget {budget_ms:.1} ms (over by {:.1} ms)", p99 - budget_ms)
            },
        ));
    }

    if let Some(budget) = j.assert.max_gap {
        let budget_ms = budget.0.as_secs_f64() * 1000.0;
        let gap = stats.max_gap_ms;
        checks.push(check(
            "max_gap",
            gap <= budget_ms,
            if gap <= budget_ms {
                format!("longest time without a successful response {gap:.1} ms <= {budget_ms:.1} ms")
            } else {
                format!("no successful response for {gap:.1} ms from {:.1} ms: over the {budget_ms:.1} ms budget by {:.1} ms", stats.max_gap_at_ms, gap - budget_ms)
            },
        ));
    }

    checks.extend(exposure(j));

    Verdict {
        passed: checks.iter().all(Check::not_failed),
        checks,
    }
}

/// `min_exposure`: each step that changes who serves was crossed by at least that
/// many requests (see [`crate::stats::Exposure::crossed`]). Without it, a warning (a
/// check marked not checked, which does not fail the run) when such a step was
/// crossed by no request; nothing when every one was crossed.
fn exposure(j: &Judged) -> Option<Check> {
    let name = "min_exposure";
    let serving: Vec<(usize, &StepEvent, crate::stats::Exposure)> = j
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.changes_serving)
        .filter_map(|(i, s)| Some((i + 1, s, s.exposure?)))
        .collect();
    let describe = |(i, s, e): &(usize, &StepEvent, crate::stats::Exposure)| {
        format!(
            "step {i} '{}' at {:.1} ms crossed by {} (in flight at start {}, at end {}; sent within ±{} ms of start {}, of end {}; connections across {})",
            s.name,
            s.start_ms,
            e.crossed,
            e.in_flight_at_start,
            e.in_flight_at_end,
            e.window_ms,
            e.sent_near_start,
            e.sent_near_end,
            e.connections_across
        )
    };
    let Some(min) = j.assert.min_exposure.as_ref().map(|m| *m.get_ref()) else {
        let bare: Vec<String> = serving
            .iter()
            .filter(|(_, _, e)| e.crossed == 0)
            .map(describe)
            .collect();
        return (!bare.is_empty()).then(|| {
            not_checked(
                name,
                format!(
                    "warning: a step that changes who serves was crossed by no request, so the run says nothing about it: {}; raise the load, or set assert.min_exposure to fail such a run",
                    bare.join("; ")
                ),
            )
        });
    };
    if serving.is_empty() {
        return Some(check(
            name,
            false,
            format!("no step that changes who serves was recorded, so none was crossed by at least {min} requests"),
        ));
    }
    let short: Vec<String> = serving
        .iter()
        .filter(|(_, _, e)| e.crossed < min)
        .map(describe)
        .collect();
    Some(if short.is_empty() {
        let least = serving
            .iter()
            .min_by_key(|(_, _, e)| e.crossed)
            .map(describe);
        check(
            name,
            true,
            format!(
                "each of {} steps that change who serves crossed by at least {min} requests; least: {}",
                serving.len(),
                least.unwrap_or_default()
            ),
        )
    } else {
        check(
            name,
            false,
            format!(
                "{} of {} steps that change who serves crossed by fewer than {min} requests: {}",
                short.len(),
                serving.len(),
                short.join("; ")
            ),
        )
    })
}

impl Verdict {
    /// Adds a check judged apart from [`judge`] (e.g. [`websockets_dropped`]).
    pub fn push(&mut self, c: Check) {
        self.passed &= c.not_failed();
        self.checks.push(c);
    }

    /// The run was interrupted (by `signal`): cut short, it proves nothing about the
    /// server, so a check that did not hold on what was measured is not judged
    /// (`accounting`, the harness's own bookkeeping, still is), and the verdict does
    /// not pass.
    pub fn interrupted(&mut self, signal: &str) {
        for c in &mut self.checks {
            if !c.not_failed() && c.name != "accounting" {
                c.not_checked = true;
                c.detail = format!(
                    "not judged, the run was interrupted by {signal}: {}",
                    c.detail
                );
            }
        }
        self.passed = false;
    }
}

/// `websockets_dropped`: every websocket opened, and at most `max_dropped` of them
/// ended without a close frame (EOF, reset, no echo in time). A close frame from the
/// server (1001 going away) is a clean close and does not count.
pub fn websockets_dropped(ws: &WsReport, max_dropped: u64) -> Check {
    let name = "websockets_dropped";
    let summary = ws.summary();
    if !ws.identity_holds() {
        return check(
            name,
            false,
            format!("connections not accounted for: {summary} (a bug in zdt-check)"),
        );
    }
    if ws.opened == 0 {
        let why = ws
            .lives
            .iter()
            .find(|l| l.end == End::FailedToOpen)
            .map_or(String::new(), |l| format!(" (first: {})", l.detail));
        return check(name, false, format!("no websocket opened: {summary}{why}"));
    }
    let mut problems = Vec::new();
    if ws.failed_to_open > 0 {
        let why = ws
            .lives
            .iter()
            .find(|l| l.end == End::FailedToOpen)
            .map_or(String::new(), |l| format!(" (first: {})", l.detail));
        problems.push(format!("{} failed to open{why}", ws.failed_to_open));
    }
    if ws.dropped > max_dropped {
        let why = ws
            .lives
            .iter()
            .find(|l| l.end == End::Dropped)
            .map_or(String::new(), |l| format!(" (first: {})", l.detail));
        problems.push(format!(
            "{} dropped without a close frame, at most {max_dropped} allowed{why}",
            ws.dropped
        ));
    }
    if problems.is_empty() {
        let allowed = if max_dropped > 0 {
            format!(" (at most {max_dropped} allowed)")
        } else {
            String::new()
        };
        check(name, true, format!("{summary}{allowed}"))
    } else {
        check(name, false, format!("{}; {summary}", problems.join("; ")))
    }
}

/// `http_502` -> `http_5xx`; class names map to themselves.
fn class_of(key: &str) -> &str {
    match key.strip_prefix("http_").and_then(|c| c.as_bytes().first()) {
        Some(b'5') if key.len() == 8 => "http_5xx",
        Some(b'4') if key.len() == 8 => "http_4xx",
        _ => key,
    }
}

/// Each deploy replaced the version before it with exactly one new one: the version
/// first sent to in the window before deploy k+1 is the k-th (the listed one, or any
/// not seen before when versions are discovered), none is sent to before its deploy
/// began, and none is sent to after the next deploy ended. Judged by when requests
/// were sent: a request sent before a switch and answered after it says nothing about
/// which version is in charge; that in-flight tail is reported apart.
fn took_over(stats: &RunStats, j: &Judged) -> Check {
    let name = "new_version_took_over";
    if !j.version_source {
        return not_checked(name, "no version source: load.version_header is \"\" and there is no load.version_regex, so which version served is unknown".into());
    }
    let mut seen: Vec<&crate::stats::VersionSeen> = stats.versions.iter().collect();
    seen.sort_by(|a, b| a.first_sent_ms.total_cmp(&b.first_sent_ms));
    if seen.is_empty() {
        let why = "no successful response named its version (check load.version_header / load.version_regex)".to_string();
        return if j.versions.is_empty() {
            not_checked(name, why)
        } else {
            check(name, false, why)
        };
    }
    let n = j.reloads.len();
    // The deploy window each version first appeared in: 0 before the first deploy began,
    // k after deploy k began (and before deploy k+1 began).
    let window = |t: f64| j.reloads.iter().filter(|(start, _)| *start <= t).count();
    let mut by_window: Vec<Vec<&str>> = vec![Vec::new(); n + 1];
    for v in &seen {
        by_window[window(v.first_sent_ms)].push(&v.name);
    }
    let mut problems = Vec::new();
    let mut chain: Vec<&str> = Vec::new();
    for (k, names) in by_window.iter().enumerate() {
        let what = if k == 0 {
            "before the first deploy".to_string()
        } else {
            format!("deploy {k}")
        };
        let expected = j.versions.get(k).map(String::as_str);
        match (names.as_slice(), expected) {
            ([], Some(e)) => problems.push(format!("{what}: {e} never served")),
            ([], None) => problems.push(format!(
                "{what}: no new version took over{}",
                chain
                    .last()
                    .map(|v| format!(" ({v} kept serving)"))
                    .unwrap_or_default()
            )),
            ([one], Some(e)) if *one != e => {
                problems.push(format!("{what}: {one} served first, expected {e}"))
            }
            ([one], _) => chain.push(one),
            (many, _) => {
                problems.push(format!(
                    "{what}: {} versions appeared ({}), expected one",
                    many.len(),
                    many.join(", ")
                ));
                chain.push(many[0]);
            }
        }
    }
    // Nothing sent to a version after the deploy that replaced it ended.
    let mut tails = Vec::new();
    for v in &seen {
        let k = window(v.first_sent_ms);
        let Some(&(_, replaced_at)) = j.reloads.get(k) else {
            continue;
        };
        if v.last_sent_ms > replaced_at {
            problems.push(format!(
                "{} still served a request sent at {:.1} ms, after deploy {} ended at {replaced_at:.1} ms",
                v.name,
                v.last_sent_ms,
                k + 1
            ));
        } else if v.last_ms > replaced_at {
            tails.push(format!(
                "{} answered requests sent before deploy {} ended until {:.1} ms ({:.1} ms after)",
                v.name,
                k + 1,
                v.last_ms,
                v.last_ms - replaced_at
            ));
        }
    }
    if !problems.is_empty() {
        return check(name, false, problems.join("; "));
    }
    let last = seen
        .iter()
        .find(|v| Some(v.name.as_str()) == chain.last().copied())
        .map_or(0.0, |v| v.first_sent_ms);
    let mut detail = format!(
        "{} (by send time); {} served from {last:.1} ms",
        chain.join(" → "),
        chain.last().copied().unwrap_or("?")
    );
    if !tails.is_empty() {
        detail.push_str(&format!("; in-flight tail: {}", tails.join("; ")));
    }
    check(name, true, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_keys_map_to_classes() {
        assert_eq!(class_of("http_502"), "http_5xx");
        assert_eq!(class_of("http_404"), "http_4xx");
        assert_eq!(class_of("reset_reused"), "reset_reused");
    }

    fn ws(ends: &[(End, Option<u16>)]) -> WsReport {
        let lives = ends
            .iter()
            .enumerate()
            .map(|(conn, &(end, code))| crate::websocket::Life {
                conn,
                reopen: false,
                opened_ms: (end != End::FailedToOpen).then_some(5.0),
                version: Some("v1".into()),
                echoes: 1,
                end,
                at_ms: 1000.0 + conn as f64,
                code,
                detail: format!("detail {conn}"),
            })
            .collect();
        WsReport::tally("/ws", 100.0, lives)
    }

    #[test]
    fn websockets_closed_with_a_frame_pass_and_drops_fail() {
        let clean = ws(&[(End::ClosedByServer, Some(1001)), (End::HeldToEnd, None)]);
        let c = websockets_dropped(&clean, 0);
        assert!(c.passed, "{}", c.detail);
        assert!(c.detail.contains("1001 x1"), "{}", c.detail);

        let dropped = ws(&[(End::ClosedByServer, Some(1001)), (End::Dropped, None)]);
        let c = websockets_dropped(&dropped, 0);
        assert!(!c.passed);
        assert!(
            c.detail.starts_with(
                "1 dropped without a close frame, at most 0 allowed (first: detail 1)"
            ),
            "{}",
            c.detail
        );
        assert!(websockets_dropped(&dropped, 1).passed);

        let refused = ws(&[(End::FailedToOpen, None), (End::HeldToEnd, None)]);
        let c = websockets_dropped(&refused, 5);
        assert!(!c.passed);
        assert!(
            c.detail.starts_with("1 failed to open (first: detail 0)"),
            "{}",
            c.detail
        );

        let none = ws(&[(End::FailedToOpen, None)]);
        assert!(websockets_dropped(&none, 5)
            .detail
            .starts_with("no websocket opened"));

        let mut v = Verdict {
            passed: true,
            checks: Vec::new(),
        };
        v.push(websockets_dropped(&clean, 0));
        assert!(v.passed);
        v.push(websockets_dropped(&dropped, 0));
        assert!(!v.passed && v.checks.len() == 2);
    }
}

#[cfg(test)]
mod judge_tests {
    use super::*;
    use crate::load::Outcome;
    use crate::stats::LoadCounters;
    use crate::stats::{Collector, Sample};

    fn stats(samples: &[(u64, Outcome, u16)]) -> RunStats {
        let timed: Vec<_> = samples.iter().map(|&(ms, o, v)| (ms, 0, o, v)).collect();
        stats_taking(&timed)
    }

    /// Samples `(sent ms, extra ms before the answer, outcome, version id)`; ids name v1, v2, v3.
    fn stats_taking(samples: &[(u64, u64, Outcome, u16)]) -> RunStats {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.live_span().mark_start(1_000_000_000);
        c.live_span().mark_end(2_000_000_000);
        for &(ms, took, outcome, version) in samples {
            c.add(&Sample {
                scheduled_ns: ms * 1_000_000,
                sent_ns: ms * 1_000_000,
                done_ns: (ms + took) * 1_000_000 + 500_000,
                outcome,
                version,
                cut: crate::load::Cut::NONE,
                kind: 0,
                conn: 0,
                conn_opened_ns: 0,
            });
        }
        let counters = LoadCounters {
            scheduled: samples.len() as u64,
            ..LoadCounters::default()
        };
        c.finish(&counters, &["v1".into(), "v2".into(), "v3".into()])
    }

    /// Judges took-over alone for `versions` (empty: discovered) over `reloads`.
    fn took_over_with(st: &RunStats, versions: &[&str], reloads: &[(f64, f64)]) -> Check {
        let versions: Vec<String> = versions.iter().map(|s| s.to_string()).collect();
        took_over(
            st,
            &Judged {
                assert: &AssertConfig::default(),
                versions: &versions,
                reloads,
                version_source: true,
                steps: &[],
                reload_error: None,
            },
        )
    }

    #[test]
    fn old_version_answering_requests_sent_before_the_end_is_a_tail_not_a_failure() {
        // The deploy switches at 1500 ms and returns at 1505 ms; v1 answers a 20 ms request
        // sent at 1500 ms at 1520 ms. It was in flight; v2 was in charge.
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| {
                (
                    t,
                    if t == 1500 { 20 } else { 0 },
                    Outcome::Ok,
                    u16::from(t > 1500),
                )
            })
            .collect();
        let c = took_over_with(&stats_taking(&samples), &["v1", "v2"], &[(1000.0, 1505.0)]);
        assert!(c.passed, "{c:?}");
        assert!(c.detail.contains("in-flight tail: v1 answered"), "{c:?}");
        // The same request sent at 1510 ms, after the deploy returned: v1 still in charge.
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, 0, Outcome::Ok, u16::from(t > 1510)))
            .collect();
        let c = took_over_with(&stats_taking(&samples), &["v1", "v2"], &[(1000.0, 1505.0)]);
        assert!(!c.passed, "{c:?}");
        assert!(
            c.detail
                .contains("sent at 1510.0 ms, after deploy 1 ended at 1505.0 ms"),
            "{c:?}"
        );
    }

    #[test]
    fn discovered_versions_need_one_new_version_per_deploy() {
        let reloads = [(1000.0, 1200.0), (2000.0, 2200.0)];
        let by = |t: u64| {
            if t < 1100 {
                0
            } else if t < 2100 {
                1
            } else {
                2
            }
        };
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, Outcome::Ok, by(t)))
            .collect();
        let c = took_over_with(&stats(&samples), &[], &reloads);
        assert!(c.passed, "{c:?}");
        assert!(c.detail.starts_with("v1 → v2 → v3"), "{c:?}");
        // The second deploy changed nothing.
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, Outcome::Ok, u16::from(t >= 1100)))
            .collect();
        let c = took_over_with(&stats(&samples), &[], &reloads);
        assert!(!c.passed);
        assert!(
            c.detail
                .contains("deploy 2: no new version took over (v2 kept serving)"),
            "{c:?}"
        );
        // The first deploy flapped between two new versions.
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| {
                (
                    t,
                    Outcome::Ok,
                    if t < 1100 {
                        0
                    } else if t % 20 == 0 {
                        1
                    } else {
                        2
                    },
                )
            })
            .collect();
        let c = took_over_with(&stats(&samples), &[], &reloads[..1]);
        assert!(
            c.detail.contains("deploy 1: 2 versions appeared (v2, v3)"),
            "{c:?}"
        );
    }

    #[test]
    fn no_version_source_is_not_checked_and_does_not_pass() {
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, Outcome::Ok, u16::MAX))
            .collect();
        let st = stats(&samples);
        let a = AssertConfig::default();
        let v = judge(
            &st,
            &Judged {
                assert: &a,
                versions: &[],
                reloads: &[(1000.0, 2000.0)],
                version_source: false,
                steps: &[],
                reload_error: None,
            },
        );
        let c = v
            .checks
            .iter()
            .find(|c| c.name == "new_version_took_over")
            .unwrap();
        assert!(c.not_checked && !c.passed, "{c:?}");
        assert!(
            v.passed,
            "a check that cannot be judged does not fail the run: {v:?}"
        );
        // Discovered versions, a header configured, but nothing named one: not checked either.
        let c = took_over_with(&st, &[], &[(1000.0, 2000.0)]);
        assert!(c.not_checked, "{c:?}");
    }

    fn steps() -> Vec<StepEvent> {
        vec![StepEvent {
            name: "switched".into(),
            start_ms: 1000.0,
            end_ms: 2000.0,
            detail: String::new(),
            output: None,
            changes_serving: true,
            exposure: None,
        }]
    }

    fn judge_with(st: &RunStats, allow: &[&str]) -> Verdict {
        let a = AssertConfig {
            allow: toml::Spanned::new(0..0, allow.iter().map(|s| s.to_string()).collect()),
            max_gap: Some(crate::config::Dur::ms(100)),
            ..AssertConfig::default()
        };
        let versions = vec!["v1".to_string(), "v2".to_string()];
        let steps = steps();
        judge(
            st,
            &Judged {
                assert: &a,
                versions: &versions,
                reloads: &[(1000.0, 2000.0)],
                version_source: true,
                steps: &steps,
                reload_error: None,
            },
        )
    }

    /// The `min_exposure` check (if any) for steps crossed by `crossed` requests each
    /// (`None`: no exposure measured), the first and third changing who serves.
    fn exposure_check(crossed: &[Option<u64>], min: Option<u64>) -> Option<Check> {
        let steps: Vec<StepEvent> = crossed
            .iter()
            .enumerate()
            .map(|(i, c)| StepEvent {
                name: format!("step-{i}"),
                start_ms: 1000.0 + i as f64,
                end_ms: 1000.0 + i as f64,
                detail: String::new(),
                output: None,
                changes_serving: i != 1,
                exposure: c.map(|n| crate::stats::Exposure {
                    crossed: n,
                    in_flight_at_start: n,
                    window_ms: 10.0,
                    complete: true,
                    ..Default::default()
                }),
            })
            .collect();
        let a = AssertConfig {
            min_exposure: min.map(|m| toml::Spanned::new(0..0, m)),
            ..AssertConfig::default()
        };
        let st = stats(&[(0, Outcome::Ok, 0)]);
        let v = judge(
            &st,
            &Judged {
                assert: &a,
                versions: &[],
                reloads: &[],
                version_source: false,
                steps: &steps,
                reload_error: None,
            },
        );
        v.checks.into_iter().find(|c| c.name == "min_exposure")
    }

    #[test]
    fn min_exposure_fails_a_step_that_changes_who_serves_crossed_by_too_few() {
        // The first and third steps change who serves; the second (crossed by 0) does not.
        let c = exposure_check(&[Some(5), Some(0), Some(2)], Some(3)).unwrap();
        assert!(!c.passed && !c.not_checked, "{c:?}");
        assert!(
            c.detail.starts_with("1 of 2 steps that change who serves crossed by fewer than 3 requests: step 3 'step-2' at 1002.0 ms crossed by 2"),
            "{c:?}"
        );
        let c = exposure_check(&[Some(5), Some(0), Some(3)], Some(3)).unwrap();
        assert!(c.passed, "{c:?}");
        assert!(c.detail.contains("least: step 3 'step-2'"), "{c:?}");
        // No step changes who serves (or none was measured): nothing crossed, a failure.
        let c = exposure_check(&[], Some(1)).unwrap();
        assert!(!c.passed && !c.not_checked, "{c:?}");
        assert!(
            c.detail.starts_with("no step that changes who serves"),
            "{c:?}"
        );
    }

    #[test]
    fn without_min_exposure_an_uncrossed_switch_is_a_warning_only() {
        // Crossed: no check at all.
        assert!(exposure_check(&[Some(1), Some(0), Some(1)], None).is_none());
        assert!(exposure_check(&[], None).is_none());
        // A switch crossed by none: not checked (does not fail the run), and says so.
        let c = exposure_check(&[Some(1), Some(0), Some(0)], None).unwrap();
        assert!(c.not_checked && c.not_failed(), "{c:?}");
        assert!(
            c.detail
                .starts_with("warning: a step that changes who serves was crossed by no request"),
            "{c:?}"
        );
        assert!(
            c.detail.contains("step 3 'step-2'") && !c.detail.contains("step 2 'step-1'"),
            "{c:?}"
        );
    }

    fn passed(v: &Verdict, name: &str) -> bool {
        v.checks.iter().find(|c| c.name == name).unwrap().passed
    }

    #[test]
    fn clean_switch_passes() {
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, Outcome::Ok, u16::from(t >= 1500)))
            .collect();
        let v = judge_with(&stats(&samples), &[]);
        assert!(v.passed, "{v:?}");
    }

    #[test]
    fn old_version_after_the_last_step_fails_took_over() {
        // v1 still serves at 2500 ms, after the reload ended at 2000 ms.
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, Outcome::Ok, u16::from(t >= 1500 && t != 2500)))
            .collect();
        let v = judge_with(&stats(&samples), &[]);
        assert!(!passed(&v, "new_version_took_over"));
        assert!(
            v.checks.iter().any(|c| c
                .detail
                .contains("v1 still served a request sent at 2500.0 ms")),
            "{v:?}"
        );
    }

    #[test]
    fn version_that_never_changed_fails_took_over() {
        let samples: Vec<_> = (0..3000).step_by(10).map(|t| (t, Outcome::Ok, 0)).collect();
        let v = judge_with(&stats(&samples), &[]);
        assert!(passed(&v, "no_failed_requests"));
        assert!(!passed(&v, "new_version_took_over"));
    }

    #[test]
    fn failures_count_unless_allowed() {
        let mut samples: Vec<_> = (0..3000)
            .step_by(10)
            .map(|t| (t, Outcome::Ok, u16::from(t >= 1500)))
            .collect();
        samples.push((1501, Outcome::ResetReused, u16::MAX));
        let v = judge_with(&stats(&samples), &[]);
        assert!(!passed(&v, "no_failed_requests"));
        let v = judge_with(&stats(&samples), &["reset_reused"]);
        assert!(passed(&v, "no_failed_requests"), "{v:?}");
        assert!(v
            .checks
            .iter()
            .any(|c| c.detail.contains("allowed and not counted: reset_reused 1")));
        samples.push((1502, Outcome::Http5xx(502), u16::MAX));
        let v = judge_with(&stats(&samples), &["http_5xx", "reset_reused"]);
        assert!(passed(&v, "no_failed_requests"), "{v:?}");
    }

    #[test]
    fn an_interrupted_run_blames_nothing_on_the_server() {
        // Interrupted at 1200 ms, mid-reload: v2 never served, 3 requests were cut in flight.
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.live_span().mark_start(1_000_000_000);
        for t in (0..1200).step_by(10) {
            c.add(&Sample {
                scheduled_ns: t * 1_000_000,
                sent_ns: t * 1_000_000,
                done_ns: t * 1_000_000 + 500_000,
                outcome: Outcome::Ok,
                version: 0,
                cut: crate::load::Cut::NONE,
                kind: 0,
                conn: 0,
                conn_opened_ns: 0,
            });
        }
        let counters = LoadCounters {
            scheduled: 123,
            in_flight_at_end: 3,
            interrupted: true,
            end_ns: 1_200_000_000,
            ..LoadCounters::default()
        };
        let st = c.finish(&counters, &["v1".into(), "v2".into()]);
        let mut v = judge_with(&st, &[]);
        assert!(passed(&v, "accounting"), "{v:?}");
        assert!(passed(&v, "no_failed_requests"), "{v:?}");
        let failed = v.checks.iter().find(|c| c.name == "no_failed_requests");
        assert!(
            failed
                .unwrap()
                .detail
                .contains("3 cut in flight by the interruption"),
            "{v:?}"
        );
        assert!(!passed(&v, "new_version_took_over"));
        v.interrupted("SIGTERM");
        assert!(!v.passed);
        let took_over = v.checks.iter().find(|c| c.name == "new_version_took_over");
        let took_over = took_over.unwrap();
        assert!(
            took_over.not_checked && took_over.not_failed(),
            "{took_over:?}"
        );
        assert!(
            took_over
                .detail
                .starts_with("not judged, the run was interrupted by SIGTERM: "),
            "{took_over:?}"
        );
        assert!(v.checks.iter().all(Check::not_failed), "{v:?}");
    }

    #[test]
    fn a_stall_fails_max_gap() {
        let samples: Vec<_> = (0..3000)
            .step_by(10)
            .filter(|t| !(1200..1500).contains(t))
            .map(|t| (t, Outcome::Ok, u16::from(t >= 1500)))
            .collect();
        let v = judge_with(&stats(&samples), &[]);
        assert!(!passed(&v, "max_gap"), "{v:?}");
        assert!(passed(&v, "no_failed_requests"));
    }
}
