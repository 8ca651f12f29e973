//! The collector: folds samples into per-window statistics, then summarises a run.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::gap::GapTracker;
use super::histogram::{self, CurvePoint, Percentiles, Sparse};
use super::versions::NO_VERSION;
use super::Sample;
use crate::load::outcome::Outcome;

/// Windows this far behind the newest stay dense (late samples land cheaply); older ones are compacted.
const HOT_WINDOWS: usize = 64;
/// Width of a max-gap slot.
const GAP_SLOT_NS: u64 = 100_000;

/// Latency histogram of one window.
#[derive(Debug)]
enum WindowHist {
    Empty,
    Dense(Box<Histogram<u32>>),
    Sparse(Sparse),
}

/// Everything recorded for one time window: the requests *scheduled* in it (so a
/// stall shows where it began, and a phase holds the requests sent during it).
#[derive(Debug)]
struct Window {
    outcomes: BTreeMap<Outcome, u64>,
    ok_latency: WindowHist,
    versions: BTreeMap<u16, u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            outcomes: BTreeMap::new(),
            ok_latency: WindowHist::Empty,
            versions: BTreeMap::new(),
        }
    }

    fn dense(&mut self) -> &mut Histogram<u32> {
        match std::mem::replace(&mut self.ok_latency, WindowHist::Empty) {
            WindowHist::Dense(h) => self.ok_latency = WindowHist::Dense(h),
            WindowHist::Empty => {
                self.ok_latency = WindowHist::Dense(Box::new(histogram::new_dense()))
            }
            WindowHist::Sparse(s) => {
                let mut h = histogram::new_dense();
                s.add_to(&mut h);
                self.ok_latency = WindowHist::Dense(Box::new(h));
            }
        }
        match &mut self.ok_latency {
            WindowHist::Dense(h) => h,
            _ => unreachable!("made dense above"),
        }
    }

    fn compact(&mut self) {
        if let WindowHist::Dense(h) = &self.ok_latency {
            self.ok_latency = WindowHist::Sparse(Sparse::from_dense(h));
        }
    }

    fn add_latency_to(&self, into: &mut Histogram<u32>) {
        match &self.ok_latency {
            WindowHist::Empty => {}
            WindowHist::Dense(h) => {
                let _ = into.add(h.as_ref());
            }
            WindowHist::Sparse(s) => s.add_to(into),
        }
    }
}

/// First and last successful response of one version.
#[derive(Debug, Clone, Copy)]
struct VersionTrack {
    ok: u64,
    first_ns: u64,
    last_ns: u64,
}

/// The reload's extent on the load clock: from the first step's start to the last step's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSpan {
    /// Start of the first step, ns since load start.
    pub start_ns: u64,
    /// End of the last step, ns since load start.
    pub end_ns: u64,
}

/// Folds samples as they arrive.
#[derive(Debug)]
pub struct Collector {
    window_ns: u64,
    late_ns: u64,
    windows: Vec<Window>,
    newest_window: usize,
    outcomes: BTreeMap<Outcome, u64>,
    corrected: Histogram<u32>,
    uncorrected: Histogram<u32>,
    lateness: Histogram<u32>,
    late_sends: u64,
    gap: GapTracker,
    versions: BTreeMap<u16, VersionTrack>,
}

impl Collector {
    /// A collector with windows of `window_ns`; a send more than `late_ns` after its schedule counts as late.
    pub fn new(window_ns: u64, late_ns: u64) -> Collector {
        Collector {
            window_ns: window_ns.max(1_000_000),
            late_ns,
            windows: Vec::new(),
            newest_window: 0,
            outcomes: BTreeMap::new(),
            corrected: histogram::new_dense(),
            uncorrected: histogram::new_dense(),
            lateness: histogram::new_dense(),
            late_sends: 0,
            gap: GapTracker::new(GAP_SLOT_NS),
            versions: BTreeMap::new(),
        }
    }

    /// Folds one sample in.
    #[inline]
    pub fn add(&mut self, s: &Sample) {
        *self.outcomes.entry(s.outcome).or_insert(0) += 1;
        let w = (s.scheduled_ns / self.window_ns) as usize;
        if w >= self.windows.len() {
            self.windows.resize_with(w + 1, Window::new);
        }
        if w > self.newest_window {
            // Compact the windows that just left the hot range.
            let from = self.newest_window.saturating_sub(HOT_WINDOWS);
            let to = w.saturating_sub(HOT_WINDOWS);
            for old in &mut self.windows[from..to] {
                old.compact();
            }
            self.newest_window = w;
        }
        let lateness = s.sent_ns.saturating_sub(s.scheduled_ns);
        histogram::record(&mut self.lateness, lateness / 1000);
        if lateness > self.late_ns {
            self.late_sends += 1;
        }
        let window = &mut self.windows[w];
        *window.outcomes.entry(s.outcome).or_insert(0) += 1;
        if s.outcome == Outcome::Ok {
            let corrected = s.done_ns.saturating_sub(s.scheduled_ns) / 1000;
            histogram::record(window.dense(), corrected);
            histogram::record(&mut self.corrected, corrected);
            histogram::record(
                &mut self.uncorrected,
                s.done_ns.saturating_sub(s.sent_ns) / 1000,
            );
            self.gap.mark(s.done_ns);
            if s.version != NO_VERSION {
                *window.versions.entry(s.version).or_insert(0) += 1;
                let t = self.versions.entry(s.version).or_insert(VersionTrack {
                    ok: 0,
                    first_ns: s.done_ns,
                    last_ns: s.done_ns,
                });
                t.ok += 1;
                t.first_ns = t.first_ns.min(s.done_ns);
                t.last_ns = t.last_ns.max(s.done_ns);
            }
        }
    }

    /// Outcomes so far (for live progress): (ok, failed).
    pub fn totals(&self) -> (u64, u64) {
        let ok = self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
        (ok, self.outcomes.values().sum::<u64>() - ok)
    }

    /// Heap bytes held by windows and the gap bitmap (approximate; for the memory benchmark).
    pub fn heap_bytes(&self) -> usize {
        let dense = std::mem::size_of::<u32>() * self.corrected.distinct_values().max(1);
        self.windows
            .iter()
            .map(|w| match &w.ok_latency {
                WindowHist::Empty => 0,
                WindowHist::Dense(_) => dense,
                WindowHist::Sparse(s) => s.heap_bytes(),
            } + 64)
            .sum::<usize>()
            + self.gap.heap_bytes()
    }

    /// Summarises the run. `counters` are the load engine's own counts, so the
    /// accounting identity is checked against numbers the collector did not derive.
    pub fn finish(
        self,
        counters: &LoadCounters,
        span: Option<ReloadSpan>,
        version_names: &[String],
    ) -> RunStats {
        let window_ms = self.window_ns as f64 / 1e6;
        let end_ns = counters
            .end_ns
            .max(self.windows.len() as u64 * self.window_ns);
        let name = |id: u16| {
            version_names
                .get(id as usize)
                .cloned()
                .unwrap_or_else(|| format!("#{id}"))
        };

        let mut timeline = Vec::with_capacity(self.windows.len());
        for (i, w) in self.windows.iter().enumerate() {
            let mut h = histogram::new_dense();
            w.add_latency_to(&mut h);
            let p = Percentiles::of(&h);
            timeline.push(WindowRow {
                start_ms: i as f64 * window_ms,
                ok: w.outcomes.get(&Outcome::Ok).copied().unwrap_or(0),
                failed: keyed(w.outcomes.iter().filter(|(o, _)| o.is_failure())),
                p50_ms: p.p50,
                p99_ms: p.p99,
                max_ms: p.max,
                versions: w.versions.iter().map(|(id, n)| (name(*id), *n)).collect(),
            });
        }

        // Phases partition the windows: a window that overlaps the reload at all is `during`.
        let n = self.windows.len();
        let phases = match span {
            None => vec![self.phase("whole run", 0..n, 0, end_ns)],
            Some(s) => {
                let a = ((s.start_ns / self.window_ns) as usize).min(n);
                let b = (s.end_ns.div_ceil(self.window_ns) as usize).clamp(a, n.max(a));
                vec![
                    self.phase("before", 0..a, 0, s.start_ns),
                    self.phase("during", a..b, s.start_ns, s.end_ns),
                    self.phase("after", b..n.max(b), s.end_ns, end_ns),
                ]
            }
        };

        let ok = self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
        let recorded: u64 = self.outcomes.values().sum();
        let hung = counters.in_flight_at_end + counters.queued_at_end;
        let mut outcomes = keyed(self.outcomes.iter());
        if hung > 0 {
            outcomes.insert("hung".into(), hung);
        }
        let mut classes: BTreeMap<String, u64> = BTreeMap::new();
        for (o, n) in &self.outcomes {
            *classes.entry(o.class().to_string()).or_insert(0) += n;
        }
        if hung > 0 {
            classes.insert("hung".into(), hung);
        }
        let gap = self.gap.max_gap(0, end_ns);
        let sched_secs = counters.schedule_ns as f64 / 1e9;
        RunStats {
            scheduled: counters.scheduled,
            ok,
            failed: recorded - ok + hung,
            hung,
            never_sent: counters.queued_at_end,
            identity_holds: counters.scheduled == recorded + hung,
            outcomes,
            classes,
            target_rate: counters.target_rate,
            sent_rate: if sched_secs > 0.0 {
                counters.sent as f64 / sched_secs
            } else {
                0.0
            },
            late_sends: self.late_sends,
            lateness: Percentiles::of(&self.lateness),
            latency: Percentiles::of(&self.corrected),
            latency_uncorrected: Percentiles::of(&self.uncorrected),
            max_gap_ms: gap.len_ns as f64 / 1e6,
            max_gap_at_ms: gap.start_ns as f64 / 1e6,
            phases,
            versions: self
                .versions
                .iter()
                .map(|(id, t)| VersionSeen {
                    name: name(*id),
                    ok: t.ok,
                    first_ms: t.first_ns as f64 / 1e6,
                    last_ms: t.last_ns as f64 / 1e6,
                })
                .collect(),
            window_ms,
            timeline,
        }
    }

    /// Statistics of the windows `windows`; the phase itself is `[from_ns, to_ns)`.
    fn phase(
        &self,
        name: &str,
        windows: std::ops::Range<usize>,
        from_ns: u64,
        to_ns: u64,
    ) -> PhaseStats {
        let mut h = histogram::new_dense();
        let mut outcomes: BTreeMap<Outcome, u64> = BTreeMap::new();
        for w in self.windows.get(windows).unwrap_or(&[]) {
            w.add_latency_to(&mut h);
            for (o, n) in &w.outcomes {
                *outcomes.entry(*o).or_insert(0) += n;
            }
        }
        let gap = self.gap.max_gap(from_ns, to_ns);
        PhaseStats {
            name: name.to_string(),
            start_ms: from_ns as f64 / 1e6,
            end_ms: to_ns as f64 / 1e6,
            ok: outcomes.get(&Outcome::Ok).copied().unwrap_or(0),
            failed: keyed(outcomes.iter().filter(|(o, _)| o.is_failure())),
            latency: Percentiles::of(&h),
            percentile_curve: histogram::percentile_curve(&h),
            max_gap_ms: gap.len_ns as f64 / 1e6,
            histogram: h,
        }
    }
}

fn keyed<'a>(it: impl Iterator<Item = (&'a Outcome, &'a u64)>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (o, n) in it {
        *m.entry(o.key()).or_insert(0) += n;
    }
    m
}

/// Counts kept by the load engine itself, independent of the collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadCounters {
    /// Requests scheduled (open loop: tickets issued; closed loop: requests begun).
    pub scheduled: u64,
    /// Requests that a worker began.
    pub sent: u64,
    /// Requests begun but without an outcome when the run ended.
    pub in_flight_at_end: u64,
    /// Scheduled requests no connection ever took.
    pub queued_at_end: u64,
    /// Open loop's target rate (0 for closed loop).
    pub target_rate: f64,
    /// How long scheduling went on, ns.
    pub schedule_ns: u64,
    /// When the run ended (after the grace period), ns since load start.
    pub end_ns: u64,
}

/// The summary of one load run, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// Requests scheduled.
    pub scheduled: u64,
    /// Requests that ended `ok`.
    pub ok: u64,
    /// Requests that ended in any other class (including hung).
    pub failed: u64,
    /// Requests still open at the end (in flight, or never sent).
    pub hung: u64,
    /// Of the hung, those no connection ever took.
    pub never_sent: u64,
    /// scheduled = ok + Σ failure classes + hung.
    pub identity_holds: bool,
    /// Count per outcome key (`ok`, `http_502`, `connect_refused`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Count per outcome class (`http_5xx` summed over codes).
    pub classes: BTreeMap<String, u64>,
    /// Open loop's target rate, requests/s (0 for closed loop).
    pub target_rate: f64,
    /// Requests actually begun per second of scheduling.
    pub sent_rate: f64,
    /// Sends that began more than 1 ms after their schedule (no connection was free).
    pub late_sends: u64,
    /// How late sends began relative to their schedule.
    pub lateness: Percentiles,
    /// Latency of ok responses from the scheduled send time (coordinated-omission corrected).
    pub latency: Percentiles,
    /// Latency of ok responses from the actual send time.
    pub latency_uncorrected: Percentiles,
    /// The longest interval with no successful response.
    pub max_gap_ms: f64,
    /// Where that interval started.
    pub max_gap_at_ms: f64,
    /// Before / during / after the reload (or the whole run).
    pub phases: Vec<PhaseStats>,
    /// Versions that served ok responses, with when each was first and last seen.
    pub versions: Vec<VersionSeen>,
    /// Width of a timeline window.
    pub window_ms: f64,
    /// One row per window, by scheduled send time.
    pub timeline: Vec<WindowRow>,
}

/// Statistics of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    /// `before`, `during`, `after` or `whole run`.
    pub name: String,
    /// Start, ms since load start.
    pub start_ms: f64,
    /// End, ms since load start.
    pub end_ms: f64,
    /// Ok responses among the requests scheduled in the phase's windows.
    pub ok: u64,
    /// Failures by key among the requests scheduled in the phase's windows.
    pub failed: BTreeMap<String, u64>,
    /// Corrected latency of ok responses.
    pub latency: Percentiles,
    /// Corrected latency at log-spaced percentiles from 0 to 99.999 (for percentile plots).
    pub percentile_curve: Vec<CurvePoint>,
    /// Longest interval with no ok response inside the phase.
    pub max_gap_ms: f64,
    /// The phase's histogram of corrected ok latency, in microseconds (for
    /// `--hdr-dir`). Not serialized.
    #[serde(skip)]
    pub histogram: Histogram<u32>,
}

/// One version that served.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSeen {
    /// The version string.
    pub name: String,
    /// Ok responses it served.
    pub ok: u64,
    /// First ok response, ms since load start.
    pub first_ms: f64,
    /// Last ok response, ms since load start.
    pub last_ms: f64,
}

/// One timeline window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowRow {
    /// Window start, ms since load start.
    pub start_ms: f64,
    /// Ok responses among the requests scheduled in it.
    pub ok: u64,
    /// Failures by key among the requests scheduled in it.
    pub failed: BTreeMap<String, u64>,
    /// Median corrected latency of its ok responses.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Ok responses per version.
    pub versions: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(sched_ms: u64, lat_ms: u64, outcome: Outcome, version: u16) -> Sample {
        Sample {
            scheduled_ns: sched_ms * 1_000_000,
            sent_ns: sched_ms * 1_000_000,
            done_ns: (sched_ms + lat_ms) * 1_000_000,
            outcome,
            version,
        }
    }

    #[test]
    fn phases_versions_and_identity() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        for t in 0..3000u64 {
            let (outcome, version) = match t {
                0..=999 => (Outcome::Ok, 0),
                1000..=1009 => (Outcome::ConnectMissing, NO_VERSION),
                _ => (Outcome::Ok, 1),
            };
            c.add(&sample(t, 1, outcome, version));
        }
        let counters = LoadCounters {
            scheduled: 3002,
            sent: 3001,
            in_flight_at_end: 1,
            queued_at_end: 1,
            target_rate: 1000.0,
            schedule_ns: 3_000_000_000,
            end_ns: 3_100_000_000,
        };
        let span = ReloadSpan {
            start_ns: 1_000_000_000,
            end_ns: 2_000_000_000,
        };
        let stats = c.finish(&counters, Some(span), &["v1".into(), "v2".into()]);
        assert!(stats.identity_holds);
        assert_eq!(stats.ok, 2990);
        assert_eq!(stats.hung, 2);
        assert_eq!(stats.failed, 12);
        assert_eq!(stats.outcomes["connect_missing"], 10);
        assert_eq!(stats.phases[1].failed["connect_missing"], 10);
        assert_eq!(stats.phases[0].failed.len(), 0);
        assert_eq!(stats.versions[0].name, "v1");
        assert!(stats.versions[0].last_ms < stats.versions[1].first_ms);
        // Last v1 ok done at 1000 ms, first v2 ok at 1011 ms: 10.9 ms of empty 0.1 ms slots.
        assert!(
            (stats.max_gap_ms - 10.9).abs() < 1e-9,
            "{}",
            stats.max_gap_ms
        );
        assert_eq!(stats.timeline.len(), 30);
        // Phases partition the windows: every recorded outcome is in exactly one phase.
        let in_phases: u64 = stats
            .phases
            .iter()
            .map(|p| p.ok + p.failed.values().sum::<u64>())
            .sum();
        assert_eq!(in_phases, 3000);
        // Each phase keeps its histogram and curve.
        assert_eq!(
            stats.phases[0].histogram.len(),
            stats.phases[0].latency.count
        );
        assert_eq!(stats.phases[0].percentile_curve.len(), 51);
        assert!(stats.phases[1].percentile_curve.len() == 51);
    }

    #[test]
    fn a_request_stalled_across_the_reload_counts_where_it_was_sent() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        // Sent at 1500 ms, during the reload; answered at 2600 ms, after it.
        c.add(&sample(1500, 1100, Outcome::Ok, 0));
        let counters = LoadCounters {
            scheduled: 1,
            ..Default::default()
        };
        let span = ReloadSpan {
            start_ns: 1_000_000_000,
            end_ns: 2_000_000_000,
        };
        let stats = c.finish(&counters, Some(span), &[]);
        let during = &stats.phases[1];
        assert_eq!(during.ok, 1);
        assert!(during.latency.p99 >= 1099.0, "{:?}", during.latency);
    }

    #[test]
    fn identity_detects_a_lost_request() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.add(&sample(0, 1, Outcome::Ok, 0));
        let counters = LoadCounters {
            scheduled: 2,
            sent: 2,
            ..LoadCounters::default()
        };
        assert!(!c.finish(&counters, None, &[]).identity_holds);
    }

    #[test]
    fn old_windows_are_compacted_and_still_counted() {
        let mut c = Collector::new(1_000_000, 1_000_000);
        for t in 0..500u64 {
            c.add(&sample(t, 1, Outcome::Ok, 0));
        }
        // A late sample for a compacted window.
        c.add(&sample(0, 1, Outcome::Ok, 0));
        let stats = c.finish(
            &LoadCounters {
                scheduled: 501,
                ..Default::default()
            },
            None,
            &[],
        );
        assert_eq!(stats.phases[0].latency.count, 501);
        assert_eq!(stats.timeline[0].ok, 2);
    }
}
