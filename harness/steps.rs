//! Reload step events: what a strategy did and when, on the load's clock.
//! Strategies write them; the verdict, the reports and compare read them.

use serde::Serialize;

use crate::load::Clock;
use crate::stats::{Exposure, ExposureTrack};

/// One step of a reload, on the load clock.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    /// What happened, e.g. `new instance ready`, `switched`, `old instance stopped`.
    pub name: String,
    /// When the step began, ms since load start.
    pub start_ms: f64,
    /// When it ended.
    pub end_ms: f64,
    /// Details (which instance, how it exited).
    pub detail: String,
    /// What a deploy command printed (its last lines), for the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The step changes who serves (a switch, a stop, a drain): its strategy says so
    /// when it records it. `assert.min_exposure` bounds the exposure of these steps.
    pub changes_serving: bool,
    /// How many requests and connections crossed it (absent when no load ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure: Option<Exposure>,
}

/// The steps recorded so far.
#[derive(Debug, Default)]
pub struct StepLog {
    clock: Option<Clock>,
    /// Recorded steps, in order.
    pub events: Vec<StepEvent>,
    /// The last step's name, shared with the live progress display.
    pub last: std::sync::Arc<std::sync::Mutex<String>>,
}

impl StepLog {
    /// Puts steps on the load's clock (before the load starts, steps are not recorded).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = Some(clock);
    }

    /// Now, in ms on the load clock (0 before the load started).
    pub fn now_ms(&self) -> f64 {
        self.clock.map_or(0.0, |c| c.now_ns() as f64 / 1e6)
    }

    /// Records a step that began at `start_ms` and ends now, and does not change who
    /// serves (a readiness wait, a check, a config test).
    pub fn record(&mut self, name: &str, start_ms: f64, detail: impl Into<String>) {
        self.push(name, start_ms, detail.into(), None, false);
    }

    /// Records a step that changes who serves (a switch, a stop, a drain), which
    /// requests must cross for a PASS to mean something.
    pub fn record_serving(&mut self, name: &str, start_ms: f64, detail: impl Into<String>) {
        self.push(name, start_ms, detail.into(), None, true);
    }

    /// Records a step with the output of a command it ran; `changes_serving` as for
    /// [`StepLog::record_serving`].
    pub fn record_with_output(
        &mut self,
        name: &str,
        start_ms: f64,
        detail: String,
        output: String,
        changes_serving: bool,
    ) {
        self.push(name, start_ms, detail, Some(output), changes_serving);
    }

    /// Fills in each step's exposure from the requests the collector kept.
    pub fn measure_exposure(&mut self, track: &ExposureTrack) {
        for e in &mut self.events {
            let ns = |ms: f64| (ms.max(0.0) * 1e6) as u64;
            e.exposure = Some(track.of(ns(e.start_ms), ns(e.end_ms)));
        }
    }

    fn push(
        &mut self,
        name: &str,
        start_ms: f64,
        detail: String,
        output: Option<String>,
        changes_serving: bool,
    ) {
        if self.clock.is_some() {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = name.to_string();
            let end_ms = self.now_ms();
            self.events.push(StepEvent {
                name: name.to_string(),
                start_ms,
                end_ms,
                detail,
                output,
                changes_serving,
                exposure: None,
            });
        }
    }
}
