//! `zdt-check compare`: several scenarios, each run N times, in one table.
//!
//! Used to choose between reload strategies with numbers: pass count over N runs
//! (a strategy that passes 19 times out of 20 is broken), failures by class, max
//! gap, latency by phase, how long the reload took and how much throughput dipped.
//!
//! The table is here; [`collect`] keeps what the reports need of each scenario's
//! runs as they finish, [`html`] draws the comparison page, [`junit`] writes the
//! JUnit XML.

pub mod collect;
pub mod html;
pub mod junit;

use std::fmt::Write;

use serde::Serialize;

use crate::report::RunReport;
use crate::stats::failure_bound::{self, percent, FailureBound, Round};

/// One scenario's runs, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario name.
    pub name: String,
    /// Scenario file.
    pub scenario: String,
    /// Strategy.
    pub strategy: String,
    /// Runs that passed.
    pub passes: usize,
    /// Runs in all.
    pub runs: usize,
    /// Runs that ended in a harness error.
    pub errors: usize,
    /// Runs cut short by a signal (neither passed nor failed; not measured).
    pub interrupted: usize,
    /// Runs with measurements (the load ran): what the spreads are over.
    pub measured: usize,
    /// The one-sided 95% lower bound of the pass rate (Clopper-Pearson, a share from
    /// 0 to 1) over the runs that came to a verdict (passed or failed: harness errors
    /// and interrupted runs left out); none when no run did. See [`pass_rate_text`].
    pub pass_rate_lower95: Option<f64>,
    /// Requests that failed during the reload, summed over the measured runs.
    pub during_failed: u64,
    /// Requests that ended during the reload (ok and failed), summed over the measured runs.
    pub during_requests: u64,
    /// The one-sided 95% upper bound of the failure rate during the reload, over the
    /// requests of every measured run pooled (what `--until-bound` stops on); none
    /// without such requests.
    pub during_failure_rate_upper95: Option<f64>,
    /// Failed requests by key, summed over the runs.
    pub failed: std::collections::BTreeMap<String, u64>,
    /// Max gap (ms): min, median, max over the runs.
    pub max_gap_ms: Spread,
    /// p50 / p99 / p99.9 latency before, during and after the reload (ms, median over runs).
    pub latency: Vec<PhaseLatency>,
    /// Reload duration (first step start to last step end), ms.
    pub reload_ms: Spread,
    /// Throughput dip during the reload: 1 - ok rate during / ok rate before, in percent.
    pub dip_percent: Spread,
    /// Versions that served, over all runs.
    pub versions: Vec<String>,
}

/// Latency of one phase (medians over the runs).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseLatency {
    /// before / during / after.
    pub phase: String,
    /// Median p50.
    pub p50: f64,
    /// Median p99.
    pub p99: f64,
    /// Median p99.9.
    pub p999: f64,
}

/// Min / median / max of a measure over repeated runs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        Spread {
            min: v[0],
            median: v[v.len() / 2],
            max: v[v.len() - 1],
        }
    }

    /// The median, with the range when runs differ: `2.0 (1.0–3.0)`.
    fn show(&self, runs: usize) -> String {
        if runs <= 1 || (self.max - self.min).abs() < 0.05 {
            format!("{:.1}", self.median)
        } else {
            format!("{:.1} ({:.1}–{:.1})", self.median, self.min, self.max)
        }
    }
}

/// What the table needs of one run.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    /// 0 pass, 1 fail, 2 error or interrupted.
    pub exit_code: u8,
    /// A signal cut the run short: what it measured is left out of the spreads.
    pub interrupted: bool,
    /// The load ran to its end and was measured (the other figures are only then meaningful).
    pub measured: bool,
    /// Failed requests by key.
    pub failed: std::collections::BTreeMap<String, u64>,
    /// Versions that served, in order.
    pub versions: Vec<String>,
    /// Longest time without an ok response, ms.
    pub max_gap_ms: f64,
    /// First step start to last step end, ms (none without steps).
    pub reload_ms: Option<f64>,
    /// Throughput dip during the reload, percent (none without a before/during phase).
    pub dip_percent: Option<f64>,
    /// Per phase: name, p50, p99, p99.9 (ms).
    pub phases: Vec<(String, f64, f64, f64)>,
    /// Failed of the requests that ended during the reload (none without that phase).
    pub during: Option<FailureBound>,
}

impl RunFigures {
    /// The figures of run `r`.
    pub fn of(r: &RunReport) -> RunFigures {
        let mut f = RunFigures {
            exit_code: r.exit_code,
            interrupted: r.interrupted,
            ..RunFigures::default()
        };
        // A run cut short proves nothing: its figures stay out of the table.
        let Some(st) = r.stats.as_ref().filter(|_| !r.interrupted) else {
            return f;
        };
        f.measured = true;
        for (k, n) in &st.outcomes {
            if k != "ok" {
                f.failed.insert(k.clone(), *n);
            }
        }
        f.versions = st.versions.iter().map(|v| v.name.clone()).collect();
        f.max_gap_ms = st.max_gap_ms;
        if let (Some(a), Some(b)) = (r.steps.first(), r.steps.last()) {
            f.reload_ms =
                Some(r.steps.iter().map(|s| s.end_ms).fold(b.end_ms, f64::max) - a.start_ms);
        }
        let rate = |name: &str| {
            st.phases.iter().find(|p| p.name == name).map(|p| {
                let secs = (p.end_ms - p.start_ms) / 1000.0;
                if secs > 0.0 {
                    p.ok as f64 / secs
                } else {
                    0.0
                }
            })
        };
        if let (Some(before), Some(during)) = (rate("before"), rate("during")) {
            if before > 0.0 {
                f.dip_percent = Some((100.0 * (1.0 - during / before)).max(0.0));
            }
        }
        f.phases = st
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.latency.p50, p.latency.p99, p.latency.p999))
            .collect();
        f.during = st
            .phases
            .iter()
            .find(|p| p.name == "during")
            .map(|p| p.failure_bound());
        f
    }
}

/// p50, p99 and p99.9 of one phase, one entry per run.
type PhaseSamples = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Summarises the runs of one scenario.
pub fn summarise(runs: &[RunReport]) -> Row {
    let first = &runs[0];
    let figures: Vec<RunFigures> = runs.iter().map(RunFigures::of).collect();
    row(&first.name, &first.scenario, &first.strategy, &figures)
}

/// The row of scenario `name` (file `scenario`, strategy `strategy`) from its runs' figures.
pub fn row(name: &str, scenario: &str, strategy: &str, runs: &[RunFigures]) -> Row {
    let mut failed = std::collections::BTreeMap::new();
    let mut versions: Vec<String> = Vec::new();
    let (mut gaps, mut reloads, mut dips) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_phase: std::collections::BTreeMap<String, PhaseSamples> = Default::default();
    let during = pooled_during(runs);
    for f in runs.iter().filter(|f| f.measured) {
        for (k, n) in &f.failed {
            *failed.entry(k.clone()).or_insert(0) += n;
        }
        for v in &f.versions {
            if !versions.contains(v) {
                versions.push(v.clone());
            }
        }
        gaps.push(f.max_gap_ms);
        reloads.extend(f.reload_ms);
        dips.extend(f.dip_percent);
        for (phase, p50, p99, p999) in &f.phases {
            let e = per_phase.entry(phase.clone()).or_default();
            e.0.push(*p50);
            e.1.push(*p99);
            e.2.push(*p999);
        }
    }
    let order = ["before", "during", "after", "whole run"];
    let mut latency: Vec<PhaseLatency> = per_phase
        .into_iter()
        .map(|(phase, (a, b, c))| PhaseLatency {
            phase,
            p50: Spread::of(a).median,
            p99: Spread::of(b).median,
            p999: Spread::of(c).median,
        })
        .collect();
    latency.sort_by_key(|l| order.iter().position(|o| *o == l.phase).unwrap_or(9));
    Row {
        name: name.to_string(),
        scenario: scenario.to_string(),
        strategy: strategy.to_string(),
        passes: runs.iter().filter(|f| f.exit_code == 0).count(),
        runs: runs.len(),
        errors: runs
            .iter()
            .filter(|f| f.exit_code == 2 && !f.interrupted)
            .count(),
        interrupted: runs.iter().filter(|f| f.interrupted).count(),
        measured: runs.iter().filter(|f| f.measured).count(),
        pass_rate_lower95: pass_rate_lower95(runs),
        during_failed: during.failed,
        during_requests: during.requests,
        during_failure_rate_upper95: during.upper95(),
        failed,
        max_gap_ms: Spread::of(gaps),
        latency,
        reload_ms: Spread::of(reloads),
        dip_percent: Spread::of(dips),
        versions,
    }
}

/// The requests during the reload of every measured run, pooled: the failures and
/// requests summed (each run's reload is one more sample of the same deploy).
pub fn pooled_during(runs: &[RunFigures]) -> FailureBound {
    let (k, n) = runs
        .iter()
        .filter(|f| f.measured)
        .filter_map(|f| f.during)
        .fold((0, 0), |(k, n), b| (k + b.failed, n + b.requests));
    FailureBound::new(k, n)
}

/// `failure rate during ≤ 0.05% at 95%` over the pooled reload requests, or none
/// without any.
pub fn during_bound_text(r: &Row) -> Option<String> {
    r.during_failure_rate_upper95.map(|u| {
        format!(
            "{} of {} failed during the reload, ≤ {} at 95%",
            r.during_failed,
            r.during_requests,
            percent(u, Round::Up)
        )
    })
}

/// The pass rate's one-sided 95% lower bound over the runs that came to a verdict.
fn pass_rate_lower95(runs: &[RunFigures]) -> Option<f64> {
    let decided = runs
        .iter()
        .filter(|f| !f.interrupted && f.exit_code != 2)
        .count();
    let passes = runs.iter().filter(|f| f.exit_code == 0).count();
    failure_bound::lower95(passes as u64, decided as u64)
}

/// `pass rate ≥ 86% at 95%` (rounded down), or none when no run came to a verdict.
pub fn pass_rate_text(r: &Row) -> Option<String> {
    r.pass_rate_lower95
        .map(|l| format!("pass rate ≥ {} at 95%", percent(l, Round::Down)))
}

/// Under the table: what its `pass rate ≥` says.
pub const PASS_RATE_NOTE: &str = "pass rate ≥: the one-sided 95% lower bound (Clopper-Pearson) of the share of runs that pass, over the runs that came to a verdict (harness errors and interrupted runs left out): 20 passes of 20 runs still allow a strategy that fails 1 run in 7.";

/// Under the table: what its failure rate during says.
pub const DURING_BOUND_NOTE: &str = "failure rate during: the requests that ended during the reload, pooled over the runs, and the one-sided 95% upper bound of their failure rate (Clopper-Pearson; hung requests count as failures): 0 of 600 still allows 0.5%; 20 runs of 600 bring it to 0.025%.";

/// How [`rank`] orders the scenarios, in words (the comparison page says it).
pub const RANKING_RULE: &str = "most passing runs (as a share of the runs) first; among equals, the shorter median reload duration, then the smaller median throughput dip, then the lower median p99 latency during the reload; a scenario without measurements last";

/// The order of `rows` from best to worst, by [`RANKING_RULE`] (stable: ties keep
/// the order the scenarios were given in). Indexes into `rows`.
pub fn rank(rows: &[Row]) -> Vec<usize> {
    let key = |r: &Row| {
        let share = if r.runs == 0 {
            0.0
        } else {
            r.passes as f64 / r.runs as f64
        };
        let p99_during = r
            .latency
            .iter()
            .find(|l| l.phase == "during")
            .map_or(f64::INFINITY, |l| l.p99);
        (
            -share,
            r.measured == 0,
            r.reload_ms.median,
            r.dip_percent.median,
            p99_during,
        )
    };
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(&rows[a]), key(&rows[b]));
        ka.0.total_cmp(&kb.0)
            .then(ka.1.cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(ka.3.total_cmp(&kb.3))
            .then(ka.4.total_cmp(&kb.4))
    });
    order
}

/// The comparison as a Markdown table (also readable in a terminal).
pub fn markdown(rows: &[Row]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| scenario | strategy | passed | failed by class | failure rate during (95% bound) | max gap ms | p50/p99/p99.9 ms before | during | after | reload ms | dip % | versions |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let failed = if r.failed.is_empty() {
            "0".to_string()
        } else {
            r.failed
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let lat = |phase: &str| {
            r.latency
                .iter()
                .find(|l| l.phase == phase)
                .map_or("–".into(), |l| {
                    format!("{:.1}/{:.1}/{:.1}", l.p50, l.p99, l.p999)
                })
        };
        let mut errors = String::new();
        if r.errors > 0 {
            errors.push_str(&format!(" ({} errors)", r.errors));
        }
        if r.interrupted > 0 {
            errors.push_str(&format!(" ({} interrupted)", r.interrupted));
        }
        if let Some(text) = pass_rate_text(r) {
            errors.push_str(&format!(" ({text})"));
        }
        let during = match r.during_failure_rate_upper95 {
            Some(u) => format!(
                "{} of {} (≤ {})",
                r.during_failed,
                r.during_requests,
                percent(u, Round::Up)
            ),
            None => "–".into(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {}/{}{errors} | {failed} | {during} | {} | {} | {} | {} | {} | {} | {} |",
            r.name.replace('|', "/"),
            r.strategy,
            r.passes,
            r.runs,
            r.max_gap_ms.show(r.runs),
            lat("before"),
            lat("during"),
            lat("after"),
            r.reload_ms.show(r.runs),
            r.dip_percent.show(r.runs),
            r.versions.join(" → "),
        );
    }
    let _ = writeln!(o, "\n{PASS_RATE_NOTE}\n\n{DURING_BOUND_NOTE}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_markdown() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(s.show(3), "2.0 (1.0–3.0)");
        assert_eq!(s.show(1), "2.0");
        let row = Row {
            name: "a|b".into(),
            scenario: "x.toml".into(),
            strategy: "symlink-swap".into(),
            passes: 2,
            runs: 3,
            errors: 0,
            interrupted: 0,
            measured: 3,
            pass_rate_lower95: failure_bound::lower95(2, 3),
            during_failed: 1,
            during_requests: 600,
            during_failure_rate_upper95: failure_bound::upper95(1, 600),
            failed: [("connect_missing".to_string(), 7)].into_iter().collect(),
            max_gap_ms: s,
            latency: vec![],
            reload_ms: Spread::default(),
            dip_percent: Spread::default(),
            versions: vec!["v1".into(), "v2".into()],
        };
        let md = markdown(&[row]);
        assert!(
            md.contains("| a/b | symlink-swap | 2/3 (pass rate ≥ 13% at 95%) | connect_missing 7 | 1 of 600 (≤ 0.79%) | 2.0 (1.0–3.0) |"),
            "{md}"
        );
        assert!(md.contains("v1 → v2"));
    }

    #[test]
    fn compare_pass_rate_bound_is_over_the_runs_with_a_verdict() {
        let fig = |exit_code: u8, interrupted: bool| RunFigures {
            exit_code,
            interrupted,
            ..RunFigures::default()
        };
        let runs = [
            fig(0, false),
            fig(0, false),
            fig(1, false),
            fig(2, false),
            fig(2, true),
        ];
        let r = row("s", "s.toml", "x", &runs);
        // 2 passes of the 3 runs that came to a verdict.
        assert_eq!(r.pass_rate_lower95, failure_bound::lower95(2, 3));
        assert_eq!(pass_rate_text(&r).unwrap(), "pass rate ≥ 13% at 95%");
        // 20 of 20: 0.05^(1/20) = 86.09%, shown rounded down.
        let r = row("s", "s.toml", "x", &vec![fig(0, false); 20]);
        assert_eq!(pass_rate_text(&r).unwrap(), "pass rate ≥ 86% at 95%");
        // Nothing came to a verdict: no bound, and the cell says only what happened.
        let r = row("s", "s.toml", "x", &[fig(2, true)]);
        assert_eq!(r.pass_rate_lower95, None);
        assert!(markdown(&[r]).contains("| 0/1 (1 interrupted) | 0 |"));
    }

    #[test]
    fn compare_pools_the_requests_during_the_reload_over_the_measured_runs() {
        let fig = |measured: bool, k: u64, n: u64| RunFigures {
            measured,
            during: Some(FailureBound::new(k, n)),
            ..RunFigures::default()
        };
        // The unmeasured run's figures stay out; the others add up.
        let runs = [fig(true, 0, 600), fig(true, 2, 400), fig(false, 50, 50)];
        let p = pooled_during(&runs);
        assert_eq!((p.failed, p.requests), (2, 1000));
        let r = row("s", "s.toml", "x", &runs);
        assert_eq!((r.during_failed, r.during_requests), (2, 1000));
        assert_eq!(
            r.during_failure_rate_upper95,
            failure_bound::upper95(2, 1000)
        );
        // 20 clean runs of 600: 0 of 12000, about 3/n.
        let r = row("s", "s.toml", "x", &vec![fig(true, 0, 600); 20]);
        let u = r.during_failure_rate_upper95.unwrap();
        assert!((0.000249..0.000250).contains(&u), "{u}");
        assert_eq!(
            during_bound_text(&r).unwrap(),
            "0 of 12000 failed during the reload, ≤ 0.025% at 95%"
        );
        // No reload phase in any run: no bound.
        let r = row("s", "s.toml", "x", &[RunFigures::default()]);
        assert_eq!(r.during_failure_rate_upper95, None);
    }

    #[test]
    fn compare_rank_passes_then_reload_dip_p99() {
        let row = |name: &str, passes: usize, measured: usize, reload: f64, dip: f64| Row {
            name: name.into(),
            scenario: format!("{name}.toml"),
            strategy: "s".into(),
            passes,
            runs: 2,
            errors: 2 - measured,
            interrupted: 0,
            measured,
            pass_rate_lower95: None,
            during_failed: 0,
            during_requests: 0,
            during_failure_rate_upper95: None,
            failed: Default::default(),
            max_gap_ms: Spread::default(),
            latency: vec![PhaseLatency {
                phase: "during".into(),
                p50: 1.0,
                p99: if name == "d" { 5.0 } else { 9.0 },
                p999: 1.0,
            }],
            reload_ms: Spread {
                median: reload,
                ..Spread::default()
            },
            dip_percent: Spread {
                median: dip,
                ..Spread::default()
            },
            versions: vec![],
        };
        let rows = [
            row("fast but failing", 0, 2, 100.0, 0.0),
            row("slow", 2, 2, 900.0, 0.0),
            row("quick", 2, 2, 300.0, 50.0),
            row("c", 1, 2, 300.0, 10.0),
            row("d", 1, 2, 300.0, 10.0),
            row("unmeasured", 0, 0, 0.0, 0.0),
        ];
        let names: Vec<&str> = rank(&rows).iter().map(|&i| rows[i].name.as_str()).collect();
        assert_eq!(
            names,
            ["quick", "slow", "d", "c", "fast but failing", "unmeasured"]
        );
    }
}
