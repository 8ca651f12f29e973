//! Exposure: how many requests and connections crossed each reload step.
//!
//! A PASS only says something about the moments requests crossed. For each step the
//! report gives the requests in flight at its start and at its end, the requests sent
//! within [`WINDOW`] of either, and the connections open across it.
//!
//! The collector keeps, per request near the reload span only, its send and end times
//! and its connection ([`ExposureTrack`], [`KEPT_BYTES`] bytes a request): what ended
//! more than [`WINDOW`] before the reload started, or was sent more than [`WINDOW`]
//! after it ended, cannot cross a step and is not kept (of a request sent after the
//! span, only whether its connection was opened before the span ended). At most
//! [`MAX_KEPT`] requests are kept; beyond that the figures are marked incomplete.
//! Requests still open at the end of the run (`hung`) are not in the figures.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::Sample;

/// The window around a step's start and end in which a sent request counts as
/// sent "near" it: ±10 ms.
pub const WINDOW: std::time::Duration = std::time::Duration::from_millis(10);
const WINDOW_NS: u64 = WINDOW.as_nanos() as u64;
/// Before the reload starts, requests that ended this long before the newest one
/// are let go (they cannot end within [`WINDOW`] of a start not yet published).
const PRE_KEEP_NS: u64 = 2_000_000_000;
/// Most requests kept (at [`KEPT_BYTES`] each: 32 MiB).
pub const MAX_KEPT: usize = 1 << 20;
/// What one kept request costs.
pub const KEPT_BYTES: usize = std::mem::size_of::<Kept>();
/// The connection id of a request that had none (its connect failed).
pub const NO_CONN: u32 = 0;

/// One request as exposure needs it.
#[derive(Debug, Clone, Copy)]
struct Kept {
    sent_ns: u64,
    done_ns: u64,
    conn_opened_ns: u64,
    conn: u32,
}

/// What the collector keeps for exposure while the run goes on.
#[derive(Debug, Default)]
pub struct ExposureTrack {
    kept: Vec<Kept>,
    /// Before the start is published: the newest end seen, and the length at which
    /// the kept list is next pruned.
    newest_done_ns: u64,
    prune_at: usize,
    /// The kept list was pruned against the published start.
    trimmed: bool,
    /// Connections opened before the reload ended that carried a request sent after
    /// it (and its window), with when each was opened.
    open_past_end: HashMap<u32, u64>,
    /// Requests not kept because [`MAX_KEPT`] was reached.
    dropped: u64,
}

impl ExposureTrack {
    /// Keeps `s` if it can cross a step of the reload spanning `(start, end)` (each if published).
    #[inline]
    pub fn add(&mut self, s: &Sample, (start, end): (Option<u64>, Option<u64>)) {
        let k = Kept {
            sent_ns: s.sent_ns,
            done_ns: s.done_ns,
            conn_opened_ns: s.conn_opened_ns,
            conn: s.conn,
        };
        let Some(start) = start else {
            self.newest_done_ns = self.newest_done_ns.max(s.done_ns);
            self.push(k);
            if self.kept.len() >= self.prune_at.max(1024) {
                let keep_from = self.newest_done_ns.saturating_sub(PRE_KEEP_NS);
                self.kept.retain(|k| k.done_ns >= keep_from);
                self.prune_at = self.kept.len() * 2;
            }
            return;
        };
        if !self.trimmed {
            self.trimmed = true;
            self.kept.retain(|k| k.done_ns + WINDOW_NS >= start);
        }
        if s.done_ns + WINDOW_NS < start {
            return;
        }
        if let Some(end) = end {
            if s.sent_ns > end + WINDOW_NS {
                if s.conn != NO_CONN && s.conn_opened_ns < end {
                    self.open_past_end.insert(s.conn, s.conn_opened_ns);
                }
                return;
            }
        }
        self.push(k);
    }

    fn push(&mut self, k: Kept) {
        if self.kept.len() < MAX_KEPT {
            self.kept.push(k);
        } else {
            self.dropped += 1;
        }
    }

    /// The exposure of a step from `start_ns` to `end_ns` (load clock).
    pub fn of(&self, start_ns: u64, end_ns: u64) -> Exposure {
        let end_ns = end_ns.max(start_ns);
        let in_flight = |t: u64, k: &Kept| k.sent_ns <= t && k.done_ns > t;
        let near = |t: u64, k: &Kept| k.sent_ns.abs_diff(t) <= WINDOW_NS;
        let mut e = Exposure {
            window_ms: WINDOW.as_secs_f64() * 1000.0,
            complete: self.dropped == 0,
            ..Exposure::default()
        };
        let mut across: HashSet<u32> = HashSet::new();
        for k in &self.kept {
            let at_start = in_flight(start_ns, k);
            let at_end = in_flight(end_ns, k);
            let near_start = near(start_ns, k);
            let near_end = near(end_ns, k);
            e.in_flight_at_start += u64::from(at_start);
            e.in_flight_at_end += u64::from(at_end);
            e.sent_near_start += u64::from(near_start);
            e.sent_near_end += u64::from(near_end);
            e.crossed += u64::from(at_start || at_end || near_start || near_end);
            if k.conn != NO_CONN && k.conn_opened_ns < start_ns && k.done_ns >= end_ns {
                across.insert(k.conn);
            }
        }
        // A request sent after the span ended on a connection opened before this step
        // started: that connection was open across it (the span ends after every step).
        for (&c, &opened) in &self.open_past_end {
            if opened < start_ns {
                across.insert(c);
            }
        }
        e.connections_across = across.len() as u64;
        e
    }
}

/// How many requests and connections crossed one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Exposure {
    /// Requests sent at or before the step's start and not ended by then.
    pub in_flight_at_start: u64,
    /// Requests sent at or before the step's end and not ended by then.
    pub in_flight_at_end: u64,
    /// Requests sent within `window_ms` of the step's start.
    pub sent_near_start: u64,
    /// Requests sent within `window_ms` of the step's end.
    pub sent_near_end: u64,
    /// Connections opened before the step's start and still open at its end.
    pub connections_across: u64,
    /// Requests that crossed the step: in flight at its start or end, or sent within
    /// the window of either (each request counted once). `assert.min_exposure` bounds this.
    pub crossed: u64,
    /// The window, ms either side.
    pub window_ms: f64,
    /// False when the run sent more requests near the reload than exposure keeps
    /// (the figures then count only the first ones).
    pub complete: bool,
}
