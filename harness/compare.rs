//! `zdt-check compare`: several scenarios, each run N times, in one table.
//!
//! Used to choose between reload strategies with numbers: pass count over N runs
//! (a strategy that passes 19 times out of 20 is broken), failures by class, max
//! gap, latency by phase, how long the reload took and how much throughput dipped.

use std::fmt::Write;

use serde::Serialize;

use crate::report::RunReport;

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

    fn show(&self, runs: usize) -> String {
        if runs <= 1 || (self.max - self.min).abs() < 0.05 {
            format!("{:.1}", self.median)
        } else {
            format!("{:.1} ({:.1}–{:.1})", self.median, self.min, self.max)
        }
    }
}

/// p50, p99 and p99.9 of one phase, one entry per run.
type PhaseSamples = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Summarises the runs of one scenario.
pub fn summarise(runs: &[RunReport]) -> Row {
    let first = &runs[0];
    let mut failed = std::collections::BTreeMap::new();
    let mut versions: Vec<String> = Vec::new();
    let (mut gaps, mut reloads, mut dips) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_phase: std::collections::BTreeMap<String, PhaseSamples> = Default::default();
    for r in runs {
        let Some(st) = &r.stats else { continue };
        for (k, n) in &st.outcomes {
            if k != "ok" {
                *failed.entry(k.clone()).or_insert(0) += n;
            }
        }
        for v in &st.versions {
            if !versions.contains(&v.name) {
                versions.push(v.name.clone());
            }
        }
        gaps.push(st.max_gap_ms);
        if let (Some(a), Some(b)) = (r.steps.first(), r.steps.last()) {
            reloads.push(r.steps.iter().map(|s| s.end_ms).fold(b.end_ms, f64::max) - a.start_ms);
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
                dips.push((100.0 * (1.0 - during / before)).max(0.0));
            }
        }
        for p in &st.phases {
            let e = per_phase.entry(p.name.clone()).or_default();
            e.0.push(p.latency.p50);
            e.1.push(p.latency.p99);
            e.2.push(p.latency.p999);
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
        name: first.name.clone(),
        scenario: first.scenario.clone(),
        strategy: first.strategy.clone(),
        passes: runs.iter().filter(|r| r.exit_code == 0).count(),
        runs: runs.len(),
        errors: runs.iter().filter(|r| r.exit_code == 2).count(),
        failed,
        max_gap_ms: Spread::of(gaps),
        latency,
        reload_ms: Spread::of(reloads),
        dip_percent: Spread::of(dips),
        versions,
    }
}

/// The comparison as a Markdown table (also readable in a terminal).
pub fn markdown(rows: &[Row]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| scenario | strategy | passed | failed by class | max gap ms | p50/p99/p99.9 ms before | during | after | reload ms | dip % | versions |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
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
        let errors = if r.errors > 0 {
            format!(" ({} errors)", r.errors)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "| {} | {} | {}/{}{errors} | {failed} | {} | {} | {} | {} | {} | {} | {} |",
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
            failed: [("connect_missing".to_string(), 7)].into_iter().collect(),
            max_gap_ms: s,
            latency: vec![],
            reload_ms: Spread::default(),
            dip_percent: Spread::default(),
            versions: vec!["v1".into(), "v2".into()],
        };
        let md = markdown(&[row]);
        assert!(
            md.contains("| a/b | symlink-swap | 2/3 | connect_missing 7 | 2.0 (1.0–3.0) |"),
            "{md}"
        );
        assert!(md.contains("v1 → v2"));
    }
}
