//! The verdict: each assertion of a scenario judged over a run's statistics.
//!
//! A check says what was expected, what was measured and by how much it missed,
//! so a red CI run explains itself.

use serde::Serialize;

use crate::scenario::AssertConfig;
use crate::stats::RunStats;
use crate::strategy::StepEvent;

/// One assertion's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable short name (`no_failed_requests`, `new_version_took_over`, ...).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was measured against what was expected.
    pub detail: String,
}

/// All checks of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// True when every check held.
    pub passed: bool,
    /// Every check, in report order.
    pub checks: Vec<Check>,
}

/// What the verdict needs besides the statistics.
pub struct Judged<'a> {
    /// The scenario's assertions.
    pub assert: &'a AssertConfig,
    /// The versions in deploy order (first started, last reloaded to).
    pub versions: &'a [String],
    /// The reload's recorded steps.
    pub steps: &'a [StepEvent],
    /// Set when a reload step failed.
    pub reload_error: Option<&'a str>,
}

fn check(name: &str, passed: bool, detail: String) -> Check {
    Check {
        name: name.to_string(),
        passed,
        detail,
    }
}

/// Judges `stats` against the assertions.
pub fn judge(stats: &RunStats, j: &Judged) -> Verdict {
    let mut checks = Vec::new();

    checks.push(check(
        "accounting",
        stats.identity_holds,
        if stats.identity_holds {
            format!("scheduled {} = ok + failed + hung", stats.scheduled)
        } else {
            format!(
                "scheduled {} != ok {} + failed {}: the harness lost requests (a bug in zdt-check)",
                stats.scheduled, stats.ok, stats.failed
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
    if !allowed_parts.is_empty() {
        detail.push_str(&format!(
            "; allowed and not counted: {}",
            allowed_parts.join(", ")
        ));
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

    Verdict {
        passed: checks.iter().all(|c| c.passed),
        checks,
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

/// Before the first step only the first version served; after the last step only the last one did,
/// and the last one did serve.
fn took_over(stats: &RunStats, j: &Judged) -> Check {
    let name = "new_version_took_over";
    let (Some(first), Some(last)) = (j.versions.first(), j.versions.last()) else {
        return check(name, false, "no versions configured".into());
    };
    if stats.versions.is_empty() {
        return check(name, false, "no successful response named its version (check load.version_header / load.version_regex)".into());
    }
    let Some(new) = stats.versions.iter().find(|v| &v.name == last) else {
        let seen: Vec<&str> = stats.versions.iter().map(|v| v.name.as_str()).collect();
        return check(
            name,
            false,
            format!("version {last} never served (seen: {})", seen.join(", ")),
        );
    };
    let start = j.steps.first().map_or(0.0, |s| s.start_ms);
    let end = j.steps.iter().map(|s| s.end_ms).fold(0.0, f64::max);
    let mut problems = Vec::new();
    for v in &stats.versions {
        if &v.name != last && v.last_ms > end {
            problems.push(format!(
                "{} still served at {:.1} ms, after the last step ended at {end:.1} ms",
                v.name, v.last_ms
            ));
        }
        if &v.name != first && v.first_ms < start {
            problems.push(format!(
                "{} served at {:.1} ms, before the reload began at {start:.1} ms",
                v.name, v.first_ms
            ));
        }
    }
    if problems.is_empty() {
        check(
            name,
            true,
            format!(
                "{last} served from {:.1} ms; nothing else after the last step",
                new.first_ms
            ),
        )
    } else {
        check(name, false, problems.join("; "))
    }
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
}

#[cfg(test)]
mod judge_tests {
    use super::*;
    use crate::load::Outcome;
    use crate::stats::collector::LoadCounters;
    use crate::stats::{Collector, Sample};

    fn stats(samples: &[(u64, Outcome, u16)]) -> RunStats {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.live_span().mark_start(1_000_000_000);
        c.live_span().mark_end(2_000_000_000);
        for &(ms, outcome, version) in samples {
            c.add(&Sample {
                scheduled_ns: ms * 1_000_000,
                sent_ns: ms * 1_000_000,
                done_ns: ms * 1_000_000 + 500_000,
                outcome,
                version,
            });
        }
        let counters = LoadCounters {
            scheduled: samples.len() as u64,
            ..LoadCounters::default()
        };
        c.finish(&counters, &["v1".into(), "v2".into()])
    }

    fn steps() -> Vec<StepEvent> {
        vec![StepEvent {
            name: "switched".into(),
            start_ms: 1000.0,
            end_ms: 2000.0,
            detail: String::new(),
            output: None,
        }]
    }

    fn judge_with(st: &RunStats, allow: &[&str]) -> Verdict {
        let a = AssertConfig {
            allow: toml::Spanned::new(0..0, allow.iter().map(|s| s.to_string()).collect()),
            max_gap: Some(crate::scenario::Dur::ms(100)),
            ..AssertConfig::default()
        };
        let versions = vec!["v1".to_string(), "v2".to_string()];
        let steps = steps();
        judge(
            st,
            &Judged {
                assert: &a,
                versions: &versions,
                steps: &steps,
                reload_error: None,
            },
        )
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
            v.checks
                .iter()
                .any(|c| c.detail.contains("v1 still served at 2500.5 ms")),
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
