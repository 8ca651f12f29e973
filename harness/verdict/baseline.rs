//! Baselines: a run judged against a stored JSON report of the same scenario
//! (`run --baseline`, `compare --baseline`). Six figures, each lower-is-better, may
//! not regress beyond a tolerance (`[assert.baseline]`): a relative part and an
//! absolute floor, the larger of the two, so that noise on a small figure (p99 5 ms
//! to 6 ms) does not fail a run.
//!
//! The stored report is read through small serde types owned here, not through the
//! report types (a layer above): only the fields the figures need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Check;
use crate::config::Locator;
use crate::error::{Error, Result};
use crate::stats::RunStats;

/// The report schema a baseline must carry (`run --json`); `compare --json`'s
/// document, whose `runs` are reports of this schema, is accepted too.
pub const REPORT_SCHEMA: &str = "zdt-check/report/v2";
/// `compare --json`'s schema.
pub const COMPARE_SCHEMA: &str = "zdt-check/compare/v1";

/// One figure compared against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// Failed requests of the whole run (every failure class, allowed ones and hung included).
    Failed,
    /// The failure rate during the reload, %.
    FailureRateDuring,
    /// The longest time without a successful response, ms.
    MaxGap,
    /// p99 latency (corrected) during the reload, ms.
    P99During,
    /// How far the ok rate during the reload fell below the rate before it, %.
    ThroughputDip,
    /// How long the reload took (first reload start to last reload end), ms.
    ReloadTime,
}

/// Every figure, in report order.
pub const FIGURES: [Figure; 6] = [
    Figure::Failed,
    Figure::FailureRateDuring,
    Figure::MaxGap,
    Figure::P99During,
    Figure::ThroughputDip,
    Figure::ReloadTime,
];

impl Figure {
    /// The key in `[assert.baseline]`, the JSON and the JUnit properties.
    pub fn key(self) -> &'static str {
        match self {
            Figure::Failed => "failed",
            Figure::FailureRateDuring => "failure_rate_during",
            Figure::MaxGap => "max_gap",
            Figure::P99During => "p99_during",
            Figure::ThroughputDip => "throughput_dip",
            Figure::ReloadTime => "reload_time",
        }
    }

    /// How it reads in a message.
    pub fn label(self) -> &'static str {
        match self {
            Figure::Failed => "failed requests",
            Figure::FailureRateDuring => "failure rate during reload",
            Figure::MaxGap => "max gap",
            Figure::P99During => "p99 during reload",
            Figure::ThroughputDip => "throughput dip during reload",
            Figure::ReloadTime => "reload time",
        }
    }

    /// Its unit: `ms`, `%` or `` (a count).
    pub fn unit(self) -> &'static str {
        match self {
            Figure::Failed => "",
            Figure::FailureRateDuring | Figure::ThroughputDip => "%",
            Figure::MaxGap | Figure::P99During | Figure::ReloadTime => "ms",
        }
    }

    /// The default tolerance: `(relative, absolute floor)`.
    pub fn default_tolerance(self) -> Tolerance {
        let (relative, absolute) = match self {
            Figure::Failed => (0.5, 5.0),
            Figure::FailureRateDuring => (0.5, 0.5),
            Figure::MaxGap => (0.5, 50.0),
            Figure::P99During => (0.5, 10.0),
            Figure::ThroughputDip => (0.5, 5.0),
            Figure::ReloadTime => (0.25, 250.0),
        };
        Tolerance { relative, absolute }
    }

    /// `1.5`, `12 ms`, `0.42%`.
    fn show(self, v: f64) -> String {
        match self.unit() {
            "" => format!("{v:.0}"),
            "%" => format!("{v:.2}%"),
            u => format!("{v:.1} {u}"),
        }
    }
}

/// A tolerance: a figure may grow by `relative` of the baseline's, or by `absolute`
/// (in the figure's unit), whichever is larger.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Fraction of the baseline's figure (0.5: +50%).
    pub relative: f64,
    /// Absolute floor, in the figure's unit.
    pub absolute: f64,
}

impl Tolerance {
    /// The most the figure may reach against `baseline`.
    pub fn allowed(&self, baseline: f64) -> f64 {
        baseline + (baseline * self.relative).max(self.absolute)
    }

    /// `+50% / 10 ms`.
    fn show(&self, f: Figure) -> String {
        let abs = match f.unit() {
            "" => format!("{:.0}", self.absolute),
            "%" => format!("{}%", self.absolute),
            u => format!("{} {u}", self.absolute),
        };
        format!("+{}% / {abs}", self.relative * 100.0)
    }
}

/// `[assert.baseline]`: the tolerance of each figure against a baseline (`--baseline`),
/// written `"50% / 10ms"` (relative / absolute floor) or `"off"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Failed requests (a count floor): default `"50% / 5"`.
    pub failed: Option<Spanned<String>>,
    /// Failure rate during the reload (a floor in percentage points): default `"50% / 0.5%"`.
    pub failure_rate_during: Option<Spanned<String>>,
    /// Max gap (a duration floor): default `"50% / 50ms"`.
    pub max_gap: Option<Spanned<String>>,
    /// p99 during the reload (a duration floor): default `"50% / 10ms"`.
    pub p99_during: Option<Spanned<String>>,
    /// Throughput dip during the reload (a floor in percentage points): default `"50% / 5%"`.
    pub throughput_dip: Option<Spanned<String>>,
    /// Reload time (a duration floor): default `"25% / 250ms"`.
    pub reload_time: Option<Spanned<String>>,
}

impl BaselineConfig {
    fn raw(&self, f: Figure) -> Option<&Spanned<String>> {
        match f {
            Figure::Failed => self.failed.as_ref(),
            Figure::FailureRateDuring => self.failure_rate_during.as_ref(),
            Figure::MaxGap => self.max_gap.as_ref(),
            Figure::P99During => self.p99_during.as_ref(),
            Figure::ThroughputDip => self.throughput_dip.as_ref(),
            Figure::ReloadTime => self.reload_time.as_ref(),
        }
    }

    /// Each figure's tolerance (none: `"off"`). Validated at load, so this cannot fail then.
    pub fn tolerances(&self) -> BTreeMap<Figure, Option<Tolerance>> {
        FIGURES
            .iter()
            .map(|&f| {
                let t = match self.raw(f) {
                    None => Some(f.default_tolerance()),
                    Some(s) => parse_tolerance(f, s.get_ref()).unwrap_or(None),
                };
                (f, t)
            })
            .collect()
    }

    /// Checks every key's value, located by `loc`.
    pub fn validate(&self, loc: &Locator) -> Result<()> {
        for f in FIGURES {
            if let Some(s) = self.raw(f) {
                parse_tolerance(f, s.get_ref()).map_err(|why| {
                    loc.error(
                        s.span(),
                        Some(&format!("assert.baseline.{}", f.key())),
                        &why,
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// `"50% / 10ms"` → the tolerance; `"off"` → none.
pub fn parse_tolerance(f: Figure, s: &str) -> std::result::Result<Option<Tolerance>, String> {
    let example = match f.unit() {
        "" => "\"50% / 5\"",
        "%" => "\"50% / 0.5%\"",
        _ => "\"50% / 10ms\"",
    };
    let bad = |why: &str| {
        format!("invalid tolerance {s:?}: {why}; write e.g. {example} (relative / absolute floor) or \"off\"")
    };
    if s.trim() == "off" {
        return Ok(None);
    }
    let Some((rel, abs)) = s.split_once('/') else {
        return Err(bad("expected a relative part and an absolute floor"));
    };
    let rel = rel
        .trim()
        .strip_prefix('+')
        .unwrap_or(rel.trim())
        .strip_suffix('%')
        .and_then(|r| r.trim().parse::<f64>().ok())
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| bad("the relative part must be a percentage of at least 0, like 50%"))?;
    let abs = abs.trim().strip_prefix('+').unwrap_or(abs.trim());
    let absolute = match f.unit() {
        "ms" => {
            crate::config::duration::parse(abs)
                .map_err(|e| bad(&e))?
                .as_secs_f64()
                * 1000.0
        }
        "%" => abs
            .strip_suffix('%')
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|a| a.is_finite() && *a >= 0.0)
            .ok_or_else(|| bad("the floor must be percentage points of at least 0, like 0.5%"))?,
        _ => abs
            .parse::<u64>()
            .map_err(|_| bad("the floor must be a whole number of requests"))? as f64,
    };
    Ok(Some(Tolerance {
        relative: rel / 100.0,
        absolute,
    }))
}

/// The figures of one run, each absent when the run has none (no reload phase).
pub type Figures = BTreeMap<Figure, f64>;

/// The fields of a stored report's run that the figures need.
#[derive(Debug, Clone, Deserialize)]
struct StoredRun {
    name: String,
    #[serde(default)]
    scenario_hash: Option<String>,
    result: String,
    stats: Option<StoredStats>,
}

#[derive(Debug, Clone, Deserialize)]
struct StoredStats {
    failed: u64,
    max_gap_ms: f64,
    phases: Vec<StoredPhase>,
}

#[derive(Debug, Clone, Deserialize)]
struct StoredPhase {
    name: String,
    start_ms: f64,
    end_ms: f64,
    ok: u64,
    failure_rate: Option<f64>,
    latency: StoredLatency,
}

#[derive(Debug, Clone, Deserialize)]
struct StoredLatency {
    p99: f64,
}

#[derive(Debug, Deserialize)]
struct StoredDocument {
    schema: Option<String>,
    runs: Option<Vec<serde_json::Value>>,
}

fn figures_of(s: &StoredStats) -> Figures {
    let mut out = Figures::new();
    out.insert(Figure::Failed, s.failed as f64);
    out.insert(Figure::MaxGap, s.max_gap_ms);
    let phase = |n: &str| s.phases.iter().find(|p| p.name == n);
    if let Some(d) = phase("during") {
        if let Some(r) = d.failure_rate {
            out.insert(Figure::FailureRateDuring, r * 100.0);
        }
        out.insert(Figure::P99During, d.latency.p99);
        out.insert(Figure::ReloadTime, d.end_ms - d.start_ms);
        let rate = |p: &StoredPhase| p.ok as f64 / ((p.end_ms - p.start_ms) / 1000.0);
        if let Some(b) = phase("before") {
            if d.end_ms > d.start_ms && b.end_ms > b.start_ms && b.ok > 0 {
                out.insert(
                    Figure::ThroughputDip,
                    ((1.0 - rate(d) / rate(b)) * 100.0).max(0.0),
                );
            }
        }
    }
    out
}

/// The figures of a run just measured.
pub fn figures(stats: &RunStats) -> Figures {
    figures_of(&StoredStats {
        failed: stats.failed,
        max_gap_ms: stats.max_gap_ms,
        phases: stats
            .phases
            .iter()
            .map(|p| StoredPhase {
                name: p.name.clone(),
                start_ms: p.start_ms,
                end_ms: p.end_ms,
                ok: p.ok,
                failure_rate: p.failure_rate,
                latency: StoredLatency { p99: p.latency.p99 },
            })
            .collect(),
    })
}

/// A stored report, read and checked: the baseline of each scenario in it.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The file.
    pub path: PathBuf,
    /// Per scenario name: its hash and the figures of its runs that came to a verdict.
    scenarios: BTreeMap<String, (Option<String>, Vec<Figures>)>,
}

impl Baseline {
    /// Reads a `run --json` report (or a `compare --json` document) from `path`; an
    /// unreadable file, another schema or one without a judged run is an error naming it.
    pub fn read(path: &Path) -> Result<Baseline> {
        let err = |why: String| Error::Usage(format!("baseline {}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let doc: StoredDocument =
            serde_json::from_str(&text).map_err(|e| err(format!("not a JSON report: {e}")))?;
        match doc.schema.as_deref() {
            Some(REPORT_SCHEMA) | Some(COMPARE_SCHEMA) => {}
            Some(other) => {
                return Err(err(format!(
                    "schema {other:?}, expected {REPORT_SCHEMA:?} (what run --json writes) or {COMPARE_SCHEMA:?}"
                )))
            }
            None => return Err(err(format!("no \"schema\" key: not a zdt-check report ({REPORT_SCHEMA})"))),
        }
        let runs = doc.runs.ok_or_else(|| {
            err("no \"runs\": a compare --json written without runs cannot be a baseline".into())
        })?;
        let mut scenarios: BTreeMap<String, (Option<String>, Vec<Figures>)> = BTreeMap::new();
        for (i, v) in runs.into_iter().enumerate() {
            let r: StoredRun = serde_json::from_value(v)
                .map_err(|e| err(format!("runs[{i}]: not a report of {REPORT_SCHEMA}: {e}")))?;
            let entry = scenarios
                .entry(r.name.clone())
                .or_insert_with(|| (r.scenario_hash.clone(), Vec::new()));
            if matches!(r.result.as_str(), "PASS" | "FAIL") {
                if let Some(s) = &r.stats {
                    entry.1.push(figures_of(s));
                }
            }
        }
        Ok(Baseline {
            path: path.to_path_buf(),
            scenarios,
        })
    }

    /// The baseline figures of scenario `name` whose comparable settings hash to
    /// `hash`: the median of each figure over its judged runs. Another scenario, a
    /// hash that differs, or no judged run is an error naming the file.
    pub fn for_scenario(&self, name: &str, hash: &str) -> Result<Figures> {
        let err = |why: String| Error::Usage(format!("baseline {}: {why}", self.path.display()));
        let Some((stored_hash, runs)) = self.scenarios.get(name) else {
            let names: Vec<&str> = self.scenarios.keys().map(String::as_str).collect();
            return Err(err(format!(
                "no run of scenario {name:?} (it holds {}): a baseline must be a report of the same scenario",
                if names.is_empty() { "no run".to_string() } else { names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ") }
            )));
        };
        match stored_hash {
            Some(h) if h == hash => {}
            Some(h) => {
                return Err(err(format!(
                    "scenario {name:?} was run with other settings (scenario_hash {h}, this run {hash}: its [load] or reload strategy changed), so the figures do not compare"
                )))
            }
            None => {
                return Err(err(format!(
                    "scenario {name:?} has no scenario_hash (a report of an older zdt-check): run it again with --json"
                )))
            }
        }
        if runs.is_empty() {
            return Err(err(format!(
                "no run of scenario {name:?} came to a verdict (each was an ERROR or INTERRUPTED)"
            )));
        }
        let mut out = Figures::new();
        for f in FIGURES {
            let mut v: Vec<f64> = runs.iter().filter_map(|r| r.get(&f).copied()).collect();
            if v.is_empty() {
                continue;
            }
            v.sort_by(f64::total_cmp);
            out.insert(f, v[v.len() / 2]);
        }
        Ok(out)
    }
}

/// One figure side by side.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineRow {
    /// The figure's key (`p99_during`, ...).
    pub figure: String,
    /// Its unit: `ms`, `%` or `` (a count).
    pub unit: String,
    /// The baseline's (the median over its judged runs).
    pub baseline: f64,
    /// This run's.
    pub current: f64,
    /// The most allowed (none: the figure is `off`).
    pub allowed: Option<f64>,
    /// The tolerance (none: `off`).
    pub tolerance: Option<Tolerance>,
    /// It grew past `allowed`.
    pub regressed: bool,
}

impl BaselineRow {
    /// A value of this row's figure as the reports show it: `12.0 ms`, `0.42%`, `3`.
    pub fn show(&self, v: f64) -> String {
        match self.unit.as_str() {
            "" => format!("{v:.0}"),
            "%" => format!("{v:.2}%"),
            u => format!("{v:.1} {u}"),
        }
    }

    /// `+242%` against the baseline (or the absolute change from a baseline of 0).
    pub fn change(&self) -> String {
        if self.baseline > 0.0 {
            let pct = (self.current / self.baseline - 1.0) * 100.0;
            if pct.abs() < 0.5 {
                "+0%".to_string()
            } else {
                format!("{pct:+.0}%")
            }
        } else {
            let d = self.current - self.baseline;
            format!("{}{}", if d >= 0.0 { "+" } else { "" }, self.show(d))
        }
    }

    /// `+50% / 10 ms`, or `off`.
    pub fn tolerance_text(&self) -> String {
        match (
            self.tolerance,
            FIGURES.iter().find(|f| f.key() == self.figure),
        ) {
            (Some(t), Some(&f)) => t.show(f),
            _ => "off".into(),
        }
    }
}

/// A run against its baseline, for every report.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineComparison {
    /// The baseline file.
    pub file: String,
    /// How many of the baseline's runs of this scenario the figures are the median of.
    pub runs: usize,
    /// Each figure both runs have, in report order.
    pub rows: Vec<BaselineRow>,
}

/// Compares `current` with `baseline` under `tolerances`: the side-by-side rows.
pub fn compare(
    file: &Path,
    runs: usize,
    baseline: &Figures,
    current: &Figures,
    tolerances: &BTreeMap<Figure, Option<Tolerance>>,
) -> BaselineComparison {
    let rows = FIGURES
        .iter()
        .filter_map(|&f| {
            let (b, c) = (*baseline.get(&f)?, *current.get(&f)?);
            let tol = tolerances.get(&f).copied().flatten();
            let allowed = tol.map(|t| t.allowed(b));
            Some(BaselineRow {
                figure: f.key().into(),
                unit: f.unit().into(),
                baseline: b,
                current: c,
                allowed,
                tolerance: tol,
                regressed: allowed.is_some_and(|a| c > a + 1e-9),
            })
        })
        .collect();
    BaselineComparison {
        file: file.display().to_string(),
        runs,
        rows,
    }
}

impl Baseline {
    /// How many judged runs of `name` the file holds.
    pub fn runs_of(&self, name: &str) -> usize {
        self.scenarios.get(name).map_or(0, |s| s.1.len())
    }
}

/// One check per figure, `baseline_<figure>`: e.g. "p99 during reload 41.0 ms vs
/// baseline 12.0 ms (+242%, tolerance +50% / 10 ms)".
pub fn checks(c: &BaselineComparison) -> Vec<Check> {
    c.rows
        .iter()
        .filter_map(|r| {
            let f = *FIGURES.iter().find(|f| f.key() == r.figure)?;
            let change = r.change();
            let tol = match r.tolerance {
                Some(t) => format!("tolerance {}", t.show(f)),
                None => "not judged: off".to_string(),
            };
            let detail = format!(
                "{} {} vs baseline {} ({change}, {tol})",
                f.label(),
                f.show(r.current),
                f.show(r.baseline)
            );
            Some(Check {
                name: format!("baseline_{}", r.figure),
                // `off`: shown as not judged (n/a), never as passed.
                passed: !r.regressed && r.tolerance.is_some(),
                not_checked: r.tolerance.is_none(),
                detail: if r.regressed {
                    format!("{detail}: regressed")
                } else {
                    detail
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_and_bad_ones_say_what_to_write() {
        assert_eq!(
            parse_tolerance(Figure::P99During, "50% / 5ms").unwrap(),
            Some(Tolerance {
                relative: 0.5,
                absolute: 5.0
            })
        );
        assert_eq!(
            parse_tolerance(Figure::Failed, "+10%/3").unwrap(),
            Some(Tolerance {
                relative: 0.1,
                absolute: 3.0
            })
        );
        assert_eq!(
            parse_tolerance(Figure::ThroughputDip, "20% / 2.5%").unwrap(),
            Some(Tolerance {
                relative: 0.2,
                absolute: 2.5
            })
        );
        assert_eq!(parse_tolerance(Figure::ReloadTime, "off").unwrap(), None);
        for (f, s) in [
            (Figure::P99During, "50%"),
            (Figure::P99During, "fifty / 5ms"),
            (Figure::P99During, "50% / 5 parsecs"),
            (Figure::Failed, "50% / 2.5"),
            (Figure::FailureRateDuring, "-1% / 1%"),
        ] {
            let e = parse_tolerance(f, s).unwrap_err();
            assert!(e.starts_with(&format!("invalid tolerance {s:?}")), "{e}");
        }
    }

    #[test]
    fn a_compare_document_gives_the_median_of_its_judged_runs() {
        let run = |result: &str, p99: f64| {
            serde_json::json!({"name": "s", "scenario_hash": "h", "result": result, "stats": {
                "failed": 0, "max_gap_ms": 5.0, "phases": [
                    {"name": "during", "start_ms": 1000.0, "end_ms": 2000.0, "ok": 10,
                     "failure_rate": 0.0, "latency": {"p99": p99}}]}})
        };
        let doc = serde_json::json!({"schema": COMPARE_SCHEMA, "rows": [], "runs": [
            run("PASS", 30.0), run("FAIL", 10.0), run("ERROR", 1.0), run("PASS", 20.0)]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, doc.to_string()).unwrap();
        let b = Baseline::read(&path).unwrap();
        assert_eq!(b.runs_of("s"), 3, "the ERROR run is left out");
        let f = b.for_scenario("s", "h").unwrap();
        assert_eq!(f[&Figure::P99During], 20.0);
        assert_eq!(f[&Figure::ReloadTime], 1000.0);
        assert!(!f.contains_key(&Figure::ThroughputDip), "no before phase");
        let e = b.for_scenario("s", "other").unwrap_err().to_string();
        assert!(e.contains("was run with other settings"), "{e}");
    }

    #[test]
    fn the_floor_keeps_noise_on_small_figures_from_failing() {
        let t = Tolerance {
            relative: 0.2,
            absolute: 5.0,
        };
        // p99 5 ms -> 6 ms is +20% but only 1 ms: within the 5 ms floor.
        assert!(6.0 <= t.allowed(5.0));
        // 100 ms -> 121 ms is past +20%.
        assert!(121.0 > t.allowed(100.0));
    }

    #[test]
    fn a_regressed_figure_is_a_failed_check_naming_both_figures() {
        let mut base = Figures::new();
        base.insert(Figure::P99During, 12.0);
        base.insert(Figure::MaxGap, 30.0);
        let mut cur = Figures::new();
        cur.insert(Figure::P99During, 41.0);
        cur.insert(Figure::MaxGap, 31.0);
        let tol = BaselineConfig::default().tolerances();
        let c = compare(Path::new("b.json"), 1, &base, &cur, &tol);
        let checks = checks(&c);
        let p99 = checks
            .iter()
            .find(|c| c.name == "baseline_p99_during")
            .unwrap();
        assert!(!p99.passed);
        assert_eq!(
            p99.detail,
            "p99 during reload 41.0 ms vs baseline 12.0 ms (+242%, tolerance +50% / 10 ms): regressed"
        );
        assert!(
            checks
                .iter()
                .find(|c| c.name == "baseline_max_gap")
                .unwrap()
                .passed
        );
        let mut off = BaselineConfig::default().tolerances();
        off.insert(Figure::P99During, None);
        let c = compare(Path::new("b.json"), 1, &base, &cur, &off);
        let p99 = super::checks(&c)
            .into_iter()
            .find(|c| c.name == "baseline_p99_during")
            .unwrap();
        assert!(
            p99.not_checked && !p99.passed && p99.not_failed(),
            "{p99:?}"
        );
        assert!(p99.detail.ends_with("(+242%, not judged: off)"), "{p99:?}");
    }
}
