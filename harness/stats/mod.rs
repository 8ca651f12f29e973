//! Statistics of a load run: every request's outcome, latency per time window,
//! phases around the reload, versions seen, and the max gap.
//!
//! Workers send [`Sample`]s in batches to one [`Collector`]; it keeps a row per
//! time window (so the timeline shows the reload), a histogram per phase, and
//! turns them into a [`RunStats`] once the run is over.

pub mod collector;
pub mod exposure;
pub mod failure_bound;
pub mod gap;
pub mod histogram;
pub mod outcome;
pub mod request_kinds;
pub mod run_stats;
pub mod versions;

pub use collector::{Collector, ReloadSpan};
pub use exposure::{Exposure, ExposureTrack};
pub use failure_bound::FailureBound;
pub use histogram::{CurvePoint, Percentiles};
pub use request_kinds::{RequestKindInfo, RequestKindPhase, RequestKindStats};
pub use run_stats::{
    CertSeen, H2Counts, LoadCounters, PhaseStats, RunStats, Spread, TlsCounts, Truncations,
    VersionSeen, WindowRow,
};

use crate::stats::outcome::{Cut, Outcome};

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was meant to be sent (open loop: the schedule; closed loop: = `sent_ns`), ns since load start.
    pub scheduled_ns: u64,
    /// When the worker actually began it (connect or write).
    pub sent_ns: u64,
    /// When its outcome was known.
    pub done_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The serving version's id, or [`versions::NO_VERSION`].
    pub version: u16,
    /// For a `truncated` outcome, how far the response got; else [`Cut::NONE`].
    pub cut: Cut,
    /// The request's kind: its index in the load's mix (0 without one).
    pub kind: u8,
    /// The connection that carried it, [`exposure::NO_CONN`] if none was opened.
    pub conn: u32,
    /// When that connection was opened, ns since load start.
    pub conn_opened_ns: u64,
}
