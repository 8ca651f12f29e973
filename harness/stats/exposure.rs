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
/// are let go: the newest ended before now, and the start, not yet published, is
/// after now, so they ended more than [`WINDOW`] before it (the margin covers the
/// instant between reading the clock for the start and publishing it).
const PRE_KEEP_NS: u64 = 250_000_000;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::outcome::{Cut, Outcome};

    const MS: u64 = 1_000_000;

    /// A request on connection `conn` (opened at `opened_ms`), sent and ended at the given ms.
    fn req(sent_ms: f64, done_ms: f64, conn: u32, opened_ms: f64) -> Sample {
        let ns = |ms: f64| (ms * MS as f64) as u64;
        Sample {
            scheduled_ns: ns(sent_ms),
            sent_ns: ns(sent_ms),
            done_ns: ns(done_ms),
            outcome: Outcome::Ok,
            version: 0,
            cut: Cut::NONE,
            kind: 0,
            conn,
            conn_opened_ns: ns(opened_ms),
        }
    }

    /// A track with the reload spanning 1000–2000 ms, fed `reqs`.
    fn track(reqs: &[Sample]) -> ExposureTrack {
        let mut t = ExposureTrack::default();
        for r in reqs {
            t.add(r, (Some(1000 * MS), Some(2000 * MS)));
        }
        t
    }

    #[test]
    fn a_request_ending_exactly_at_the_start_is_not_in_flight_there() {
        // Sent 100 ms before, ended exactly at the step's start: not in flight, not near.
        let t = track(&[req(1400.0, 1500.0, 1, 1400.0)]);
        let e = t.of(1500 * MS, 1600 * MS);
        assert_eq!(e.in_flight_at_start, 0);
        assert_eq!(e.sent_near_start, 0);
        assert_eq!(e.crossed, 0);
        assert_eq!(e.connections_across, 0);
        // One ending a nanosecond later is in flight at the start.
        let mut late = req(1400.0, 1500.0, 1, 1400.0);
        late.done_ns += 1;
        let e = track(&[late]).of(1500 * MS, 1600 * MS);
        assert_eq!((e.in_flight_at_start, e.crossed), (1, 1));
        // One sent exactly at the start is in flight there (sent at or before it) and near it.
        let e = track(&[req(1500.0, 1520.0, 1, 1500.0)]).of(1500 * MS, 1600 * MS);
        assert_eq!(
            (e.in_flight_at_start, e.sent_near_start, e.crossed),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_zero_duration_step_counts_each_request_once() {
        let t = track(&[
            req(1490.0, 1510.0, 1, 1490.0), // in flight across the instant, sent near it
            req(1495.0, 1496.0, 2, 1495.0), // sent near it, ended before
            req(1300.0, 1400.0, 3, 1300.0), // far from it
        ]);
        let e = t.of(1500 * MS, 1500 * MS);
        assert_eq!(e.in_flight_at_start, 1);
        assert_eq!(e.in_flight_at_end, 1);
        assert_eq!(e.sent_near_start, 2);
        assert_eq!(e.sent_near_end, 2);
        assert_eq!(e.crossed, 2, "the union, each request once");
        assert_eq!(e.connections_across, 1);
        assert_eq!(e.window_ms, 10.0);
        assert!(e.complete);
    }

    #[test]
    fn no_requests_no_exposure() {
        let e = ExposureTrack::default().of(1500 * MS, 1600 * MS);
        assert_eq!(
            e,
            Exposure {
                window_ms: 10.0,
                complete: true,
                ..Exposure::default()
            }
        );
    }

    #[test]
    fn a_connection_is_across_when_opened_before_the_start_and_used_after_the_end() {
        let t = track(&[
            // Keep-alive connection 7, opened at 100 ms: a request before the step, one after.
            req(1450.0, 1460.0, 7, 100.0),
            req(1650.0, 1660.0, 7, 100.0),
            // Connection 8, opened before the step, last used (and closed) during it.
            req(1510.0, 1550.0, 8, 1400.0),
            // Connection 9, opened during the step.
            req(1520.0, 1700.0, 9, 1520.0),
            // A failed connect: no connection.
            req(1490.0, 1700.0, NO_CONN, 0.0),
        ]);
        let e = t.of(1500 * MS, 1600 * MS);
        assert_eq!(e.connections_across, 1);
        // Sent at 1490 and ended at 1700: in flight at both ends, though it had no connection.
        assert_eq!((e.in_flight_at_start, e.in_flight_at_end), (1, 2));
    }

    #[test]
    fn what_cannot_cross_a_step_is_not_kept() {
        let mut t = ExposureTrack::default();
        // Before the reload is published: kept for now.
        t.add(&req(100.0, 120.0, 1, 100.0), (None, None));
        t.add(&req(985.0, 995.0, 2, 985.0), (None, None));
        // Once it starts at 1000 ms, what ended more than the window before goes.
        t.add(&req(1001.0, 1010.0, 3, 1001.0), (Some(1000 * MS), None));
        assert_eq!(t.kept.len(), 2);
        // After it ended at 2000 ms, a request sent later than the window after is not
        // kept; its connection, opened before the end, is remembered as open past it.
        t.add(
            &req(2500.0, 2510.0, 4, 1500.0),
            (Some(1000 * MS), Some(2000 * MS)),
        );
        t.add(
            &req(2500.0, 2510.0, 5, 2400.0),
            (Some(1000 * MS), Some(2000 * MS)),
        );
        assert_eq!(t.kept.len(), 2);
        assert_eq!(t.open_past_end.len(), 1);
        // Connection 4 was opened at 1500 ms: across a step from 1600 ms, not one from 1400 ms.
        assert_eq!(t.of(1600 * MS, 1900 * MS).connections_across, 1);
        assert_eq!(t.of(1400 * MS, 1900 * MS).connections_across, 0);
    }

    #[test]
    fn before_the_reload_the_kept_requests_stay_bounded() {
        let mut t = ExposureTrack::default();
        // 100 s at 1000 req/s, no reload yet: the last 250 ms of them kept after a
        // prune, at most 1024 (or twice what a prune left) before the next.
        let mut most = 0;
        for i in 0..100_000u64 {
            let ms = i as f64;
            t.add(&req(ms, ms + 5.0, 1, 0.0), (None, None));
            most = most.max(t.kept.len());
        }
        assert!(most <= 1024, "{most}");
        assert!(t.kept.iter().all(|k| k.done_ns >= 98_900 * MS));
        assert_eq!(KEPT_BYTES, 32);
    }
}
