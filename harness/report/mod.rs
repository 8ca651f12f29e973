//! Reports: what one run measured and decided, as a terminal summary, JSON, a
//! self-contained HTML page, JUnit XML, or HdrHistogram percentile files.

pub mod chart;
pub mod footprint;
pub mod hgrm;
pub mod html;
pub mod json;
pub mod junit;
pub mod terminal;

use serde::Serialize;

pub use footprint::Footprint;

use crate::stats::RunStats;
use crate::steps::StepEvent;
use crate::verdict::Verdict;
use crate::websocket::WsReport;

/// Identifies the JSON layout (see `schema/report.schema.json`).
pub const SCHEMA_ID: &str = "zdt-check/report/v1";

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
    /// The target, with the request path.
    pub target: String,
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
    /// A harness error that ended the run without a verdict.
    pub error: Option<String>,
    /// The run was interrupted (Ctrl-C); what was measured until then is reported.
    pub interrupted: bool,
    /// Where the run directory was kept (`--keep-run-dir`).
    pub run_dir: Option<String>,
    /// Processes the stack left behind outside every process group the harness started
    /// (daemons, orphans of a dead supervisor), which the harness killed after the run:
    /// "pid N command line" each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<String>,
    /// 0 pass, 1 an assertion failed, 2 harness error or interrupted.
    pub exit_code: u8,
    /// Wall-clock seconds the run took, start-up and shutdown included.
    pub duration_s: f64,
}
