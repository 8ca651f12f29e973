//! Reports: what one run measured and decided, as a terminal summary, JSON, a
//! self-contained HTML page, JUnit XML, a Markdown summary, or HdrHistogram
//! percentile files.

pub mod chart;
pub mod footprint;
pub mod hgrm;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod terminal;

use serde::Serialize;

pub use footprint::Footprint;

use crate::error::{EXIT_ERROR, EXIT_FAIL, EXIT_PASS};
use crate::stats::RunStats;
use crate::steps::StepEvent;
use crate::verdict::baseline::BaselineComparison;
use crate::verdict::Verdict;
use crate::websocket::WsReport;

/// Identifies the JSON layout (see `schema/report.schema.json`).
pub const SCHEMA_ID: &str = "zdt-check/report/v2";

/// The load as configured, for the report header.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// `open` or `closed`.
    pub mode: String,
    /// Target rate (open loop), requests/s.
    pub rate: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Keep-alive or a new connection per request.
    pub keep_alive: bool,
    /// The protocols spoken, in mix order (`h1`, `h2`, `h1+h2`).
    pub protocol: String,
    /// HTTP/2: concurrent streams per connection.
    pub streams: usize,
    /// The target, with the request path.
    pub target: String,
    /// The load engine that ran (`epoll` or `io_uring`).
    pub engine: String,
    /// Why it is not the one asked for (`load.engine = "io_uring"` where the kernel or
    /// the load cannot have it): one line, the run goes on with epoll.
    pub engine_note: Option<String>,
}

/// Everything about one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The scenario file.
    pub scenario: String,
    /// The scenario's name.
    pub name: String,
    /// The strategy.
    pub strategy: String,
    /// A hash of what makes two runs of the scenario comparable (its name, reload
    /// strategy and `[load]`): a baseline must carry the same.
    pub scenario_hash: String,
    /// The load.
    pub load: Option<LoadSummary>,
    /// Steps of the reload(s), on the load clock.
    pub steps: Vec<StepEvent>,
    /// Statistics (absent when the run failed before the load started).
    pub stats: Option<RunStats>,
    /// CPU the zdt-check process itself used while the load ran (absent when the
    /// load never started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footprint: Option<Footprint>,
    /// The websocket connections held across the reload (absent: none were asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websockets: Option<WsReport>,
    /// The verdict (absent when there was nothing to judge).
    pub verdict: Option<Verdict>,
    /// This run's figures beside a baseline's (`--baseline`; absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineComparison>,
    /// A harness error that ended the run without a verdict.
    pub error: Option<String>,
    /// The run was interrupted (a signal); what was measured until then is reported,
    /// and the requests it cut are `stats.interrupted`, not failures.
    pub interrupted: bool,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`), when known.
    pub interrupted_by: Option<String>,
    /// Where the run directory was kept (`--keep-run-dir`).
    pub run_dir: Option<String>,
    /// Processes the stack left behind outside every process group the harness started
    /// (daemons, orphans of a dead supervisor), which the harness killed after the run:
    /// "pid N command line" each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<String>,
    /// What the run came to: `PASS`, `FAIL`, `ERROR` or `INTERRUPTED`.
    pub result: RunResult,
    /// 0 pass, 1 an assertion failed, 2 harness error or interrupted.
    pub exit_code: u8,
    /// Wall-clock seconds the run took, start-up and shutdown included.
    pub duration_s: f64,
}

/// The right-hand side of the accounting identity, term by term: `ok N`, each
/// failure class with its count, `interrupted N` when a signal cut requests.
pub fn accounting_terms(st: &RunStats) -> Vec<String> {
    let mut parts = vec![format!("ok {}", st.ok)];
    for (k, n) in &st.outcomes {
        if k != "ok" {
            parts.push(format!("{k} {n}"));
        }
    }
    if st.interrupted > 0 {
        parts.push(format!("interrupted {}", st.interrupted));
    }
    parts
}

/// What a run came to, in one word: the terminal's `verdict:` line, the JSON's
/// `result`, the JUnit case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunResult {
    /// Every check held (`zdt-check load`: no request failed). Exit 0.
    Pass,
    /// The run completed and a check failed (`zdt-check load`: a request failed). Exit 1.
    Fail,
    /// A harness error ended the run: nothing is blamed on the server. Exit 2.
    Error,
    /// A signal interrupted the run: nothing is blamed on the server. Exit 2.
    Interrupted,
}

impl RunResult {
    /// The process exit code this result maps to.
    pub fn exit_code(self) -> u8 {
        match self {
            RunResult::Pass => EXIT_PASS,
            RunResult::Fail => EXIT_FAIL,
            RunResult::Error | RunResult::Interrupted => EXIT_ERROR,
        }
    }

    /// `PASS`, `FAIL`, `ERROR` or `INTERRUPTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Pass => "PASS",
            RunResult::Fail => "FAIL",
            RunResult::Error => "ERROR",
            RunResult::Interrupted => "INTERRUPTED",
        }
    }
}

impl RunReport {
    /// Sets `result` and `exit_code`: an interruption first, then a harness error,
    /// then the verdict (without one, as for `zdt-check load`: whether a request failed).
    pub fn conclude(&mut self) {
        self.result = if self.interrupted {
            RunResult::Interrupted
        } else if self.error.is_some() {
            RunResult::Error
        } else if let Some(v) = &self.verdict {
            if v.passed {
                RunResult::Pass
            } else {
                RunResult::Fail
            }
        } else if self.stats.as_ref().is_some_and(|s| s.failed == 0) {
            RunResult::Pass
        } else {
            RunResult::Fail
        };
        self.exit_code = self.result.exit_code();
    }

    /// "INTERRUPTED by SIGTERM" (or "INTERRUPTED" when the signal is unknown).
    pub fn interrupted_by_text(&self) -> String {
        match &self.interrupted_by {
            Some(s) => format!("INTERRUPTED by {s}"),
            None => "INTERRUPTED".to_string(),
        }
    }
}

/// Reports built by hand for the renderers' unit tests.
#[cfg(test)]
pub mod sample {
    use super::RunReport;
    use crate::verdict::{Check, Verdict};

    /// A run named `name` ending in `exit_code` with `checks` (name, passed, detail),
    /// no load or stats: what the renderers' unit tests start from.
    pub fn run(name: &str, exit_code: u8, checks: &[(&str, bool, &str)]) -> RunReport {
        RunReport {
            scenario: format!("scenarios/{name}.toml"),
            name: name.into(),
            strategy: "symlink-swap".into(),
            scenario_hash: String::new(),
            baseline: None,
            load: None,
            steps: Vec::new(),
            stats: None,
            footprint: None,
            websockets: None,
            verdict: (!checks.is_empty()).then(|| Verdict {
                passed: checks.iter().all(|c| c.1),
                checks: checks
                    .iter()
                    .map(|(n, p, d)| Check {
                        name: n.to_string(),
                        passed: *p,
                        not_checked: false,
                        detail: d.to_string(),
                    })
                    .collect(),
            }),
            error: None,
            interrupted: false,
            interrupted_by: None,
            run_dir: None,
            leftovers: Vec::new(),
            result: match exit_code {
                0 => crate::report::RunResult::Pass,
                1 => crate::report::RunResult::Fail,
                _ => crate::report::RunResult::Error,
            },
            exit_code,
            duration_s: 1.5,
        }
    }
}
