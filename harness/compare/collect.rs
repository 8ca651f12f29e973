//! What `zdt-check compare` keeps of each scenario's runs, as they finish.
//!
//! A run's full report is dropped once it is folded in: compare keeps its row
//! figures and its JUnit test case, pools its phase histograms into one per phase
//! (so the percentile curves cover every run of the scenario), and keeps its
//! timeline only until the scenario's last run. Then the representative run is
//! picked (the median by reload duration) and every other timeline is dropped,
//! so what outlives a scenario is one timeline, three percentile curves and the
//! row, whatever `--repeat` was.

use hdrhistogram::Histogram;

use super::{row, Row, RunFigures};
use crate::report::chart::Timeline;
use crate::report::junit::{Case, CaseResult};
use crate::report::{LoadSummary, RunReport};
use crate::stats::failure_bound::FailureBound;
use crate::stats::histogram::{self, percentile_curve, CurvePoint, Percentiles};
use crate::stats::{VersionSeen, WindowRow};
use crate::steps::StepEvent;

/// One run's timeline, owned: what the comparison page draws of a scenario.
#[derive(Debug, Clone)]
pub struct KeptTimeline {
    /// Which run it is (1-based).
    pub run: usize,
    /// The run's exit code.
    pub exit_code: u8,
    /// Width of a window, ms.
    pub window_ms: f64,
    /// One row per window.
    pub rows: Vec<WindowRow>,
    /// Versions that served.
    pub versions: Vec<VersionSeen>,
    /// Reload steps.
    pub steps: Vec<StepEvent>,
    /// The reload's duration (first step start to last step end), ms.
    pub reload_ms: Option<f64>,
}

impl KeptTimeline {
    /// The chart's view of it.
    pub fn view(&self) -> Timeline<'_> {
        Timeline {
            window_ms: self.window_ms,
            rows: &self.rows,
            versions: &self.versions,
            steps: &self.steps,
        }
    }

    /// Where the timeline is aligned: the start of the first reload step (load
    /// clock, ms), or 0 without steps.
    pub fn origin_ms(&self) -> f64 {
        self.steps.first().map_or(0.0, |s| s.start_ms)
    }
}

/// One phase's latency over every run of a scenario, pooled.
#[derive(Debug, Clone)]
pub struct PooledPhase {
    /// `before`, `during`, `after` or `whole run`.
    pub name: String,
    /// Runs whose histogram went in.
    pub runs: usize,
    /// Percentiles of the pooled histogram.
    pub latency: Percentiles,
    /// Its percentile curve (as the run report's).
    pub curve: Vec<CurvePoint>,
}

/// Everything compare reports about one scenario, after its runs.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The table row.
    pub row: Row,
    /// The load of the first measured run (the same for all, from the scenario).
    pub load: Option<LoadSummary>,
    /// The representative run's timeline (none if no run was measured).
    pub representative: Option<KeptTimeline>,
    /// Latency per phase, pooled over the runs, in phase order.
    pub phases: Vec<PooledPhase>,
    /// One JUnit test case per run.
    pub cases: Vec<Case>,
}

/// Folds one scenario's runs in, one at a time.
#[derive(Debug, Default)]
pub struct Tally {
    name: String,
    scenario: String,
    strategy: String,
    load: Option<LoadSummary>,
    figures: Vec<RunFigures>,
    timelines: Vec<KeptTimeline>,
    phases: Vec<(String, usize, Histogram<u32>)>,
    cases: Vec<Case>,
}

impl Tally {
    /// Folds in run `r` (the next of its scenario).
    pub fn add(&mut self, r: RunReport) {
        if self.figures.is_empty() {
            self.name.clone_from(&r.name);
            self.scenario.clone_from(&r.scenario);
            self.strategy.clone_from(&r.strategy);
        }
        let figures = RunFigures::of(&r);
        let n = self.figures.len() + 1;
        let mut case = Case::of(&r);
        case.name = format!("{} run {n}", r.name);
        if let CaseResult::Failed(text) = &mut case.result {
            if !figures.failed.is_empty() {
                let classes: Vec<String> = figures
                    .failed
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                text.push_str(&format!("\nfailed by class: {}", classes.join(", ")));
            }
        }
        self.cases.push(case);
        if self.load.is_none() {
            self.load.clone_from(&r.load);
        }
        let RunReport {
            stats,
            steps,
            exit_code,
            interrupted,
            ..
        } = r;
        // A run cut short by a signal pools nothing and is never the one shown.
        if let Some(st) = stats.filter(|_| !interrupted) {
            for p in &st.phases {
                match self.phases.iter_mut().find(|(name, ..)| *name == p.name) {
                    Some((_, runs, h)) => {
                        let _ = h.add(&p.histogram);
                        *runs += 1;
                    }
                    None => {
                        let mut h = histogram::new_dense();
                        let _ = h.add(&p.histogram);
                        self.phases.push((p.name.clone(), 1, h));
                    }
                }
            }
            self.timelines.push(KeptTimeline {
                run: n,
                exit_code,
                window_ms: st.window_ms,
                rows: st.timeline,
                versions: st.versions,
                steps,
                reload_ms: figures.reload_ms,
            });
        }
        self.figures.push(figures);
    }

    /// The requests during the reload of the runs so far, pooled (`--until-bound`).
    pub fn during(&self) -> FailureBound {
        super::pooled_during(&self.figures)
    }

    /// Runs folded in so far.
    pub fn runs(&self) -> usize {
        self.figures.len()
    }

    /// The scenario's report, with the representative run's timeline.
    pub fn finish(self) -> Compared {
        let order = ["before", "during", "after", "whole run"];
        let mut phases: Vec<PooledPhase> = self
            .phases
            .iter()
            .map(|(name, runs, h)| PooledPhase {
                name: name.clone(),
                runs: *runs,
                latency: Percentiles::of(h),
                curve: percentile_curve(h),
            })
            .collect();
        phases.sort_by_key(|p| order.iter().position(|o| *o == p.name).unwrap_or(9));
        Compared {
            row: row(&self.name, &self.scenario, &self.strategy, &self.figures),
            load: self.load,
            representative: representative(self.timelines),
            phases,
            cases: self.cases,
        }
    }
}

/// The run with the median reload duration (the same median as the table's
/// [`super::Spread`]: the upper one of an even count; ties go to the earlier run).
/// Runs without a reload duration only if none has one.
fn representative(mut timelines: Vec<KeptTimeline>) -> Option<KeptTimeline> {
    if timelines.iter().any(|t| t.reload_ms.is_some()) {
        timelines.retain(|t| t.reload_ms.is_some());
    }
    timelines.sort_by(|a, b| {
        a.reload_ms
            .unwrap_or(0.0)
            .total_cmp(&b.reload_ms.unwrap_or(0.0))
            .then(a.run.cmp(&b.run))
    });
    let mid = timelines.len() / 2;
    timelines.into_iter().nth(mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(run: usize, reload_ms: Option<f64>) -> KeptTimeline {
        KeptTimeline {
            run,
            exit_code: 0,
            window_ms: 100.0,
            rows: Vec::new(),
            versions: Vec::new(),
            steps: Vec::new(),
            reload_ms,
        }
    }

    #[test]
    fn compare_representative_is_the_median_reload() {
        let pick = |v: Vec<KeptTimeline>| representative(v).map(|t| t.run);
        assert_eq!(
            pick(vec![
                kept(1, Some(900.0)),
                kept(2, Some(300.0)),
                kept(3, Some(500.0))
            ]),
            Some(3)
        );
        // An even count takes the upper median, as the table's spread does.
        assert_eq!(
            pick(vec![
                kept(1, Some(4.0)),
                kept(2, Some(1.0)),
                kept(3, Some(3.0)),
                kept(4, Some(2.0))
            ]),
            Some(3)
        );
        // A run without steps is not picked while another has a duration.
        assert_eq!(pick(vec![kept(1, None), kept(2, Some(7.0))]), Some(2));
        assert_eq!(pick(vec![kept(1, None), kept(2, None)]), Some(2));
        assert_eq!(pick(Vec::new()), None);
    }
}
