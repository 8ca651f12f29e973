//! The collector: folds samples into per-window statistics, then summarises a run.
//!
//! Memory does not grow with the number of requests, nor (beyond one small row per
//! window) with the run's length: a window keeps a dense histogram only while it
//! is hot; when it goes cold its percentiles are read into its row and its
//! histogram is merged into the histogram of the phase it belongs to (before,
//! during or after the reload, which the run loop publishes live through
//! [`LiveSpan`]), then reused for a newer window.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::exposure::ExposureTrack;
use super::failure_bound::FailureBound;
use super::gap::GapTracker;
use super::histogram::{self, Percentiles};
use super::request_kinds::{RequestKindInfo, RequestKindTracks};
use super::run_stats::{
    LoadCounters, PhaseStats, RunStats, Spread, Truncations, VersionSeen, WindowRow,
};
use super::versions::NO_VERSION;
use super::Sample;
use crate::stats::outcome::{Cut, Outcome, Stage};

/// Windows this far behind the newest stay hot (late samples still count in
/// their row's percentiles); older ones go cold.
const HOT_WINDOWS: usize = 64;
/// Width of a max-gap slot.
const GAP_SLOT_NS: u64 = 100_000;
/// Most timeline rows a run is planned for: [`timeline_window`] widens the window
/// of a long run so its report stays this size.
pub const MAX_ROWS: u64 = 1200;

/// The window width for a run expected to last `expected`: `configured`, or the
/// next 1-2-5 step that keeps the timeline within [`MAX_ROWS`] rows.
pub fn timeline_window(configured: Duration, expected: Duration) -> Duration {
    let needed = expected.as_nanos() / u128::from(MAX_ROWS);
    if needed <= configured.as_nanos() {
        return configured;
    }
    let mut step: u128 = 1_000_000;
    loop {
        for m in [1, 2, 5] {
            if step * m >= needed {
                return Duration::from_nanos((step * m) as u64);
            }
        }
        step *= 10;
    }
}

/// Phases, as indexes into [`Collector::phase_hist`].
const BEFORE: usize = 0;
const DURING: usize = 1;
const AFTER: usize = 2;

/// The reload's extent on the load clock, published by the run loop as it happens:
/// the start just before the first reload is triggered, the end once the last one
/// returned. Until the start is published, the reload begins in the future.
#[derive(Debug)]
pub struct LiveSpan {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
}

const UNSET: u64 = u64::MAX;

impl Default for LiveSpan {
    fn default() -> LiveSpan {
        LiveSpan {
            start_ns: AtomicU64::new(UNSET),
            end_ns: AtomicU64::new(UNSET),
        }
    }
}

impl LiveSpan {
    /// The reload starts at `ns` (the first call wins).
    pub fn mark_start(&self, ns: u64) {
        let _ = self
            .start_ns
            .compare_exchange(UNSET, ns, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The reload ended at `ns` (ignored if it never started).
    pub fn mark_end(&self, ns: u64) {
        if let Some(start) = self.get().0 {
            self.end_ns.store(ns.max(start), Ordering::SeqCst);
        }
    }

    /// (start, end), each if published.
    pub fn get(&self) -> (Option<u64>, Option<u64>) {
        let read = |a: &AtomicU64| Some(a.load(Ordering::SeqCst)).filter(|&v| v != UNSET);
        (read(&self.start_ns), read(&self.end_ns))
    }
}

/// The reload's extent on the load clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSpan {
    /// When the first reload was triggered, ns since load start.
    pub start_ns: u64,
    /// When the last reload returned, ns since load start.
    pub end_ns: u64,
}

/// A window's latency: a histogram while hot, the row's percentiles once cold.
#[derive(Debug)]
enum WindowLatency {
    Hot(Option<Histogram<u32>>),
    Cold {
        /// The phase its histogram went into (late samples follow it there).
        phase: usize,
        p50_ms: f64,
        p99_ms: f64,
        max_ms: f64,
    },
}

/// Everything recorded for one time window: the requests *scheduled* in it (so a
/// stall shows where it began, and a phase holds the requests sent during it).
#[derive(Debug)]
struct Window {
    outcomes: BTreeMap<Outcome, u64>,
    latency: WindowLatency,
    versions: BTreeMap<u16, u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            outcomes: BTreeMap::new(),
            latency: WindowLatency::Hot(None),
            versions: BTreeMap::new(),
        }
    }
}

/// First and last successful response of one version.
#[derive(Debug, Clone, Copy)]
struct VersionTrack {
    ok: u64,
    first_ns: u64,
    last_ns: u64,
    first_sent_ns: u64,
    last_sent_ns: u64,
}

/// Folds samples as they arrive.
#[derive(Debug)]
pub struct Collector {
    window_ns: u64,
    late_ns: u64,
    windows: Vec<Window>,
    /// Windows below this index are cold.
    cold_below: usize,
    /// Corrected ok latency per phase (before or whole run, during, after).
    phase_hist: [Histogram<u32>; 3],
    /// Histograms of windows gone cold, reset, for reuse.
    spare: Vec<Histogram<u32>>,
    span: Arc<LiveSpan>,
    outcomes: BTreeMap<Outcome, u64>,
    corrected: Histogram<u32>,
    uncorrected: Histogram<u32>,
    lateness: Histogram<u32>,
    late_sends: u64,
    gap: GapTracker,
    versions: BTreeMap<u16, VersionTrack>,
    /// How far truncated responses got; made on the first one.
    cuts: Option<Box<CutTrack>>,
    /// Per request kind, when the load has a mix.
    kinds: Option<Box<RequestKindTracks>>,
    /// The requests near the reload, for each step's exposure.
    exposure: ExposureTrack,
}

/// Truncated responses so far: how many, and how far they got.
#[derive(Debug)]
struct CutTrack {
    count: u64,
    in_head: u64,
    bytes: SpreadTrack,
    chunks: SpreadTrack,
}

/// Exact minimum and maximum, and a histogram for the median (exact below 2048, else
/// within 0.1%).
#[derive(Debug)]
struct SpreadTrack {
    hist: Histogram<u32>,
    min: u64,
    max: u64,
}

impl SpreadTrack {
    fn new() -> SpreadTrack {
        SpreadTrack {
            hist: Histogram::new(3).expect("3 significant digits are valid"),
            min: u64::MAX,
            max: 0,
        }
    }

    fn record(&mut self, v: u64) {
        // `record` grows the histogram (`saturating_record` would clamp to its current top).
        if self.hist.record(v).is_err() {
            self.hist.saturating_record(v);
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// The middle value (the lower of the two middle ones for an even count).
    fn median(&self) -> u64 {
        let rank = self.hist.len().div_ceil(2);
        let mut seen = 0u64;
        for v in self.hist.iter_recorded() {
            seen += u64::from(v.count_at_value());
            if seen >= rank {
                return self.hist.highest_equivalent(v.value_iterated_to());
            }
        }
        self.max
    }

    fn spread(&self) -> Spread {
        if self.hist.is_empty() {
            return Spread::default();
        }
        Spread {
            min: self.min,
            median: self.median().clamp(self.min, self.max),
            max: self.max,
        }
    }
}

impl Collector {
    /// A collector with windows of `window_ns`; a send more than `late_ns` after its schedule counts as late.
    pub fn new(window_ns: u64, late_ns: u64) -> Collector {
        Collector {
            window_ns: window_ns.max(1_000_000),
            late_ns,
            windows: Vec::new(),
            cold_below: 0,
            phase_hist: [
                histogram::new_dense(),
                histogram::new_dense(),
                histogram::new_dense(),
            ],
            spare: Vec::new(),
            span: Arc::default(),
            outcomes: BTreeMap::new(),
            corrected: histogram::new_dense(),
            uncorrected: histogram::new_dense(),
            lateness: histogram::new_dense(),
            late_sends: 0,
            gap: GapTracker::new(GAP_SLOT_NS),
            versions: BTreeMap::new(),
            cuts: None,
            kinds: None,
            exposure: ExposureTrack::default(),
        }
    }

    /// Keeps statistics per request kind too (the kinds of a `[[load.mix]]`, in order:
    /// a sample's `kind` indexes them).
    pub fn track_kinds(&mut self, kinds: Vec<RequestKindInfo>) {
        if !kinds.is_empty() {
            self.kinds = Some(Box::new(RequestKindTracks::new(kinds)));
        }
    }

    /// Where the run loop publishes the reload's start and end.
    pub fn live_span(&self) -> Arc<LiveSpan> {
        self.span.clone()
    }

    /// Folds one sample in.
    #[inline]
    pub fn add(&mut self, s: &Sample) {
        self.exposure.add(s, self.span.get());
        *self.outcomes.entry(s.outcome).or_insert(0) += 1;
        let w = (s.scheduled_ns / self.window_ns) as usize;
        if w >= self.windows.len() {
            self.windows.resize_with(w + 1, Window::new);
            self.cool(w.saturating_sub(HOT_WINDOWS));
        }
        let lateness = s.sent_ns.saturating_sub(s.scheduled_ns);
        histogram::record(&mut self.lateness, lateness / 1000);
        if lateness > self.late_ns {
            self.late_sends += 1;
        }
        if s.outcome == Outcome::Truncated {
            self.add_cut(s.cut);
        }
        let window = &mut self.windows[w];
        *window.outcomes.entry(s.outcome).or_insert(0) += 1;
        if let Some(k) = &mut self.kinds {
            let cold = match window.latency {
                WindowLatency::Cold { phase, .. } => Some(phase),
                WindowLatency::Hot(_) => None,
            };
            k.add(w, cold, s, s.done_ns.saturating_sub(s.scheduled_ns) / 1000);
        }
        if s.outcome == Outcome::Ok {
            let corrected = s.done_ns.saturating_sub(s.scheduled_ns) / 1000;
            match &mut window.latency {
                WindowLatency::Hot(h) => {
                    let h = h.get_or_insert_with(|| {
                        self.spare.pop().unwrap_or_else(histogram::new_dense)
                    });
                    histogram::record(h, corrected);
                }
                WindowLatency::Cold { phase, max_ms, .. } => {
                    let h = &mut self.phase_hist[*phase];
                    histogram::record(h, corrected);
                    // As a histogram reports it, like the row's other figures.
                    *max_ms = max_ms.max(h.highest_equivalent(corrected) as f64 / 1000.0);
                }
            }
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
                    first_sent_ns: s.sent_ns,
                    last_sent_ns: s.sent_ns,
                });
                t.ok += 1;
                t.first_ns = t.first_ns.min(s.done_ns);
                t.last_ns = t.last_ns.max(s.done_ns);
                t.first_sent_ns = t.first_sent_ns.min(s.sent_ns);
                t.last_sent_ns = t.last_sent_ns.max(s.sent_ns);
            }
        }
    }

    /// Counts how far one truncated response got (rare: kept off the inlined path).
    #[cold]
    #[inline(never)]
    fn add_cut(&mut self, cut: Cut) {
        let t = self.cuts.get_or_insert_with(|| {
            Box::new(CutTrack {
                count: 0,
                in_head: 0,
                bytes: SpreadTrack::new(),
                chunks: SpreadTrack::new(),
            })
        });
        t.count += 1;
        t.bytes.record(u64::from(cut.bytes));
        match cut.stage {
            Stage::Head => t.in_head += 1,
            Stage::Chunked => t.chunks.record(u64::from(cut.chunks)),
            Stage::Body | Stage::None => {}
        }
    }

    /// Turns the windows below `below` cold, filing each into its phase as the live span
    /// tells it. Safe to decide now: a cold window ended long before the newest
    /// sample was scheduled, so a reload not yet started starts after it, and one not
    /// yet ended ends after it.
    fn cool(&mut self, below: usize) {
        let span = self.span.get();
        for w in self.cold_below..below.min(self.windows.len()) {
            let phase = self.phase_of(w, span);
            self.close(w, phase);
        }
        self.cold_below = self.cold_below.max(below);
    }

    /// The phase of window `w`. A window that overlaps the reload at all is `during`,
    /// so the phases partition the windows.
    fn phase_of(&self, w: usize, (start, end): (Option<u64>, Option<u64>)) -> usize {
        let Some(start) = start else {
            return BEFORE;
        };
        if (w as u64) < start / self.window_ns {
            return BEFORE;
        }
        match end {
            Some(end) if w as u64 >= end.div_ceil(self.window_ns) => AFTER,
            _ => DURING,
        }
    }

    fn close(&mut self, w: usize, phase: usize) {
        if let Some(k) = &mut self.kinds {
            k.close(w, phase);
        }
        let window = &mut self.windows[w];
        let WindowLatency::Hot(h) = &mut window.latency else {
            return;
        };
        let (p50_ms, p99_ms, max_ms) = match h.take() {
            None => (0.0, 0.0, 0.0),
            Some(mut h) => {
                let p = Percentiles::of(&h);
                let _ = self.phase_hist[phase].add(&h);
                h.reset();
                self.spare.push(h);
                (p.p50, p.p99, p.max)
            }
        };
        window.latency = WindowLatency::Cold {
            phase,
            p50_ms,
            p99_ms,
            max_ms,
        };
    }

    /// The requests kept for exposure (taken once, before [`Collector::finish`]).
    pub fn take_exposure(&mut self) -> ExposureTrack {
        std::mem::take(&mut self.exposure)
    }

    /// Outcomes so far (for live progress): (ok, failed).
    pub fn totals(&self) -> (u64, u64) {
        let ok = self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
        (ok, self.outcomes.values().sum::<u64>() - ok)
    }

    /// Summarises the run. `counters` are the load engine's own counts, so the
    /// accounting identity is checked against numbers the collector did not derive.
    /// Phases come from the live span: before / during / after if a reload started,
    /// else one phase for the whole run.
    pub fn finish(mut self, counters: &LoadCounters, version_names: &[String]) -> RunStats {
        let window_ms = self.window_ns as f64 / 1e6;
        let end_ns = counters
            .end_ns
            .max(self.windows.len() as u64 * self.window_ns);
        let span = match self.span.get() {
            (Some(start_ns), end) => Some(ReloadSpan {
                start_ns,
                end_ns: end.unwrap_or(end_ns).max(start_ns),
            }),
            (None, _) => None,
        };
        let final_span = (span.map(|s| s.start_ns), span.map(|s| s.end_ns));
        for w in self.cold_below..self.windows.len() {
            let phase = self.phase_of(w, final_span);
            self.close(w, phase);
        }
        let name = |id: u16| {
            version_names
                .get(id as usize)
                .cloned()
                .unwrap_or_else(|| format!("#{id}"))
        };

        let mut timeline = Vec::with_capacity(self.windows.len());
        let mut phase_outcomes: [BTreeMap<Outcome, u64>; 3] = Default::default();
        for (i, w) in self.windows.iter().enumerate() {
            let WindowLatency::Cold {
                phase,
                p50_ms,
                p99_ms,
                max_ms,
            } = w.latency
            else {
                unreachable!("every window was closed above");
            };
            for (o, n) in &w.outcomes {
                *phase_outcomes[phase].entry(*o).or_insert(0) += n;
            }
            timeline.push(WindowRow {
                start_ms: i as f64 * window_ms,
                ok: w.outcomes.get(&Outcome::Ok).copied().unwrap_or(0),
                failed: keyed(w.outcomes.iter().filter(|(o, _)| o.is_failure())),
                p50_ms,
                p99_ms,
                max_ms,
                versions: w.versions.iter().map(|(id, n)| (name(*id), *n)).collect(),
            });
        }

        let [before, during, after] = self.phase_hist;
        let [o_before, o_during, o_after] = phase_outcomes;
        let gap = &self.gap;
        let phase_names: &[&str] = match span {
            None => &["whole run"],
            Some(_) => &["before", "during", "after"],
        };
        let kinds = self.kinds.take().map(|k| {
            k.finish(
                phase_names,
                &counters.kind_drawn,
                &counters.kind_in_flight,
                counters.interrupted,
            )
        });
        let phases = match span {
            None => vec![phase("whole run", before, o_before, gap, 0, end_ns)],
            Some(s) => vec![
                phase("before", before, o_before, gap, 0, s.start_ns),
                phase("during", during, o_during, gap, s.start_ns, s.end_ns),
                phase("after", after, o_after, gap, s.end_ns, end_ns),
            ],
        };

        let ok = self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
        let recorded: u64 = self.outcomes.values().sum();
        // What was still open at the end: hung, unless the run was cut short.
        let open = counters.in_flight_at_end + counters.queued_at_end;
        let (hung, interrupted) = if counters.interrupted {
            (0, open)
        } else {
            (open, 0)
        };
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
        let gap = self.gap.max_gap_to_end(0, end_ns, counters.schedule_ns);
        let sched_secs = counters.schedule_ns as f64 / 1e9;
        let run_bound = FailureBound::new(recorded - ok + hung, recorded + hung);
        RunStats {
            by_code: by_code(self.outcomes.iter()),
            kinds,
            scheduled: counters.scheduled,
            ok,
            failed: recorded - ok + hung,
            hung,
            interrupted,
            never_sent: counters.queued_at_end,
            hung_oldest_ms: (hung > 0 && counters.oldest_in_flight_ns > 0)
                .then(|| counters.oldest_in_flight_ns as f64 / 1e6),
            grace_ms: counters.grace_ns as f64 / 1e6,
            stale_closes: counters.stale_closes,
            tls: counters.tls.clone(),
            h2: counters.h2.clone(),
            identity_holds: counters.scheduled == recorded + hung + interrupted,
            failure_rate: run_bound.rate(),
            failure_rate_upper95: run_bound.upper95(),
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
                    first_sent_ms: t.first_sent_ns as f64 / 1e6,
                    last_sent_ms: t.last_sent_ns as f64 / 1e6,
                })
                .collect(),
            window_ms,
            timeline,
            truncated: self.cuts.map(|t| Truncations {
                count: t.count,
                in_head: t.in_head,
                bytes: t.bytes.spread(),
                chunked: t.chunks.hist.len(),
                chunks: t.chunks.spread(),
            }),
        }
    }
}

/// Statistics of one phase, `[from_ns, to_ns)`, from its histogram and outcome counts.
fn phase(
    name: &str,
    h: Histogram<u32>,
    outcomes: BTreeMap<Outcome, u64>,
    gap: &GapTracker,
    from_ns: u64,
    to_ns: u64,
) -> PhaseStats {
    let gap = gap.max_gap(from_ns, to_ns);
    let ok = outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
    let ended: u64 = outcomes.values().sum();
    let bound = FailureBound::new(ended - ok, ended);
    PhaseStats {
        name: name.to_string(),
        start_ms: from_ns as f64 / 1e6,
        end_ms: to_ns as f64 / 1e6,
        ok,
        failed: keyed(outcomes.iter().filter(|(o, _)| o.is_failure())),
        failure_rate: bound.rate(),
        failure_rate_upper95: bound.upper95(),
        latency: Percentiles::of(&h),
        percentile_curve: histogram::percentile_curve(&h),
        max_gap_ms: gap.len_ns as f64 / 1e6,
        histogram: h,
    }
}

/// Counts by outcome key (`http_502`, `ok`, ...).
pub(super) fn keyed<'a>(it: impl Iterator<Item = (&'a Outcome, &'a u64)>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (o, n) in it {
        *m.entry(o.key()).or_insert(0) += n;
    }
    m
}

/// The HTTP classes broken down by status code (`http_5xx` → `http_502` → n).
pub(super) fn by_code<'a>(
    it: impl Iterator<Item = (&'a Outcome, &'a u64)>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (o, n) in it {
        if let Outcome::Http5xx(_) | Outcome::Http4xx(_) = o {
            *m.entry(o.class().to_string())
                .or_default()
                .entry(o.key())
                .or_insert(0) += n;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain GET kind named `name`.
    fn info(name: &str) -> RequestKindInfo {
        RequestKindInfo {
            name: name.into(),
            method: "GET".into(),
            path: "/".into(),
            weight: 1,
            body_bytes: 0,
            upload_ms: None,
            keep_alive: false,
            echo: false,
            protocol: "h1".into(),
        }
    }

    fn sample(sched_ms: u64, lat_ms: u64, outcome: Outcome, version: u16) -> Sample {
        Sample {
            scheduled_ns: sched_ms * 1_000_000,
            sent_ns: sched_ms * 1_000_000,
            done_ns: (sched_ms + lat_ms) * 1_000_000,
            outcome,
            version,
            cut: crate::load::Cut::NONE,
            kind: 0,
            conn: 0,
            conn_opened_ns: 0,
        }
    }

    #[test]
    fn truncations_say_how_far_they_got() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        for t in 0..100 {
            c.add(&sample(t, 1, Outcome::Ok, 0));
        }
        let none = c.finish(&LoadCounters::default(), &[]);
        assert_eq!(none.truncated, None);
        let json = serde_json::to_value(&none).unwrap();
        assert!(
            json.get("truncated").is_none(),
            "absent without truncations"
        );

        let mut c = Collector::new(100_000_000, 1_000_000);
        let cut = |bytes, chunks, stage| Sample {
            cut: Cut::at(bytes, chunks, stage),
            ..sample(5, 1, Outcome::Truncated, NO_VERSION)
        };
        for (i, b) in [300usize, 500, 700].into_iter().enumerate() {
            c.add(&cut(b, i as u32 * 10, Stage::Chunked));
        }
        c.add(&cut(5000, 0, Stage::Body));
        c.add(&cut(40, 0, Stage::Head));
        // Only truncated outcomes count, whatever their sample carries.
        c.add(&Sample {
            cut: Cut::at(9999, 99, Stage::Chunked),
            ..sample(6, 1, Outcome::ResetFresh, NO_VERSION)
        });
        c.add(&sample(7, 1, Outcome::Ok, 0));
        let t = c.finish(&LoadCounters::default(), &[]).truncated.unwrap();
        assert_eq!(t.count, 5);
        assert_eq!(t.in_head, 1);
        assert_eq!(t.chunked, 3);
        assert_eq!(
            t.bytes,
            Spread {
                min: 40,
                median: 500,
                max: 5000
            }
        );
        assert_eq!(
            t.chunks,
            Spread {
                min: 0,
                median: 10,
                max: 20
            }
        );
    }

    #[test]
    fn a_sample_stays_small() {
        // 32 bytes before the cut was kept, 48 before the connection (for exposure); a
        // batch of 1024 is 56 KB.
        assert!(std::mem::size_of::<Sample>() <= 56);
    }

    #[test]
    fn kinds_add_up_to_the_run_phase_by_phase() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.track_kinds(vec![info("a"), info("b")]);
        let mut drawn = [0u64; 2];
        let mut add = |c: &mut Collector, t: u64| {
            let kind = (t % 3 == 0) as u8;
            let outcome = if kind == 1 && (1000..1200).contains(&t) {
                Outcome::Http5xx(502)
            } else {
                Outcome::Ok
            };
            drawn[kind as usize] += 1;
            c.add(&Sample {
                kind,
                ..sample(t, 2 + t % 5, outcome, 0)
            });
        };
        // The window the reload starts in gets samples before the start is known:
        // they must still land in `during`, as the window does.
        for t in 0..1050 {
            add(&mut c, t);
        }
        c.live_span().mark_start(1_020_000_000);
        for t in 1050..2000 {
            add(&mut c, t);
        }
        c.live_span().mark_end(2_000_000_000);
        for t in 2000..9000 {
            add(&mut c, t);
        }
        let counters = LoadCounters {
            scheduled: 9001,
            kind_drawn: vec![drawn[0], drawn[1] + 1],
            kind_in_flight: vec![0, 1],
            in_flight_at_end: 1,
            end_ns: 9_100_000_000,
            ..LoadCounters::default()
        };
        let stats = c.finish(&counters, &["v1".into()]);
        assert!(stats.identity_holds);
        let kinds = stats.kinds.as_ref().unwrap();
        assert!(kinds.iter().all(|k| k.identity_holds), "{kinds:?}");
        assert_eq!(kinds[1].hung, 1);
        assert_eq!(kinds[1].outcomes["http_502"], 66);
        assert_eq!(kinds[1].by_code["http_5xx"]["http_502"], 66);
        assert_eq!(kinds[0].failed, 0);
        // In the JSON each request counts once: by class; codes only as a breakdown.
        let json = serde_json::to_value(&stats).unwrap();
        assert!(json.get("outcomes").is_none(), "{json}");
        assert_eq!(json["by_code"]["http_5xx"]["http_502"], 66);
        let by_class: u64 = json["classes"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(by_class, 9001, "every scheduled request once");
        for (p, phase) in stats.phases.iter().enumerate() {
            let ok: u64 = kinds.iter().map(|k| k.phases[p].ok).sum();
            assert_eq!(ok, phase.ok, "{}", phase.name);
            let count: u64 = kinds.iter().map(|k| k.phases[p].latency.count).sum();
            assert_eq!(count, phase.latency.count, "{}", phase.name);
            let failed: u64 = kinds.iter().flat_map(|k| k.phases[p].failed.values()).sum();
            assert_eq!(failed, phase.failed.values().sum::<u64>(), "{}", phase.name);
        }
        assert_eq!(kinds[1].phases[1].failed["http_502"], 66, "all in during");
    }

    #[test]
    fn phases_versions_and_identity() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.live_span().mark_start(1_000_000_000);
        c.live_span().mark_end(2_000_000_000);
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
            ..LoadCounters::default()
        };
        let stats = c.finish(&counters, &["v1".into(), "v2".into()]);
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
    fn failure_rate_and_its_upper_bound_per_phase_and_for_the_run() {
        let run = |interrupted: bool| {
            let mut c = Collector::new(100_000_000, 1_000_000);
            c.live_span().mark_start(1_000_000_000);
            c.live_span().mark_end(2_000_000_000);
            for t in 0..3000u64 {
                let o = if (1000..1010).contains(&t) {
                    Outcome::Http5xx(502)
                } else {
                    Outcome::Ok
                };
                c.add(&sample(t, 1, o, 0));
            }
            let counters = LoadCounters {
                scheduled: 3002,
                in_flight_at_end: 2,
                interrupted,
                end_ns: 3_000_000_000,
                ..LoadCounters::default()
            };
            c.finish(&counters, &[])
        };
        let stats = run(false);
        // The run: 10 failures + 2 hung of 3002.
        assert_eq!(stats.failure_bound(), FailureBound::new(12, 3002));
        assert_eq!(stats.failure_rate, Some(12.0 / 3002.0));
        assert_eq!(
            stats.failure_rate_upper95,
            super::super::failure_bound::upper95(12, 3002)
        );
        let bounds: Vec<_> = stats
            .phases
            .iter()
            .map(|p| (p.failure_rate, p.failure_rate_upper95))
            .collect();
        // before: 0 of 1000; during: 10 of 1000 (0.016903, see failure_bound's reference); after: 0 of 1000.
        let zero = 1.0 - 0.05_f64.powf(1.0 / 1000.0);
        assert_eq!(bounds[0].0, Some(0.0));
        assert!((bounds[0].1.unwrap() - zero).abs() < 1e-12);
        assert_eq!(bounds[1].0, Some(0.01));
        assert!((bounds[1].1.unwrap() - 0.016_903_175_120_562_504).abs() < 1e-9);
        assert_eq!(stats.phases[1].failure_bound(), FailureBound::new(10, 1000));
        assert!((bounds[2].1.unwrap() - zero).abs() < 1e-12);
        // Interrupted: what the interruption cut is neither a failure nor a request that ended.
        let cut = run(true);
        assert_eq!(cut.failure_bound(), FailureBound::new(10, 3000));
        // Nothing ended: no rate, no bound.
        let empty = Collector::new(100_000_000, 1_000_000).finish(&LoadCounters::default(), &[]);
        assert_eq!(
            (empty.failure_rate, empty.failure_rate_upper95),
            (None, None)
        );
        assert_eq!(empty.phases[0].failure_rate_upper95, None);
    }

    #[test]
    fn a_request_stalled_across_the_reload_counts_where_it_was_sent() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.live_span().mark_start(1_000_000_000);
        c.live_span().mark_end(2_000_000_000);
        // Sent at 1500 ms, during the reload; answered at 2600 ms, after it.
        c.add(&sample(1500, 1100, Outcome::Ok, 0));
        let counters = LoadCounters {
            scheduled: 1,
            ..Default::default()
        };
        let stats = c.finish(&counters, &[]);
        let during = &stats.phases[1];
        assert_eq!(during.ok, 1);
        assert!(during.latency.p99 >= 1099.0, "{:?}", during.latency);
    }

    #[test]
    fn requests_cut_by_an_interruption_are_not_hung_nor_failed() {
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.track_kinds(vec![info("a"), info("b")]);
        for t in 0..10u64 {
            c.add(&Sample {
                kind: (t % 2) as u8,
                conn: 0,
                conn_opened_ns: 0,
                ..sample(t, 1, Outcome::Ok, 0)
            });
        }
        let counters = LoadCounters {
            scheduled: 13,
            kind_drawn: vec![6, 6],
            kind_in_flight: vec![1, 1],
            in_flight_at_end: 2,
            queued_at_end: 1,
            interrupted: true,
            ..LoadCounters::default()
        };
        let stats = c.finish(&counters, &[]);
        assert!(stats.identity_holds);
        assert_eq!(
            (stats.ok, stats.failed, stats.hung, stats.interrupted),
            (10, 0, 0, 3)
        );
        assert_eq!(stats.never_sent, 1);
        assert!(!stats.outcomes.contains_key("hung"), "{:?}", stats.outcomes);
        assert!(!stats.classes.contains_key("hung"), "{:?}", stats.classes);
        let kinds = stats.kinds.as_ref().unwrap();
        assert!(kinds.iter().all(|k| k.identity_holds), "{kinds:?}");
        assert!(kinds
            .iter()
            .all(|k| (k.hung, k.interrupted, k.failed) == (0, 1, 0)));
        // Not interrupted, the same open requests are hung (failures).
        let mut c = Collector::new(100_000_000, 1_000_000);
        c.add(&sample(0, 1, Outcome::Ok, 0));
        let stats = c.finish(
            &LoadCounters {
                scheduled: 3,
                in_flight_at_end: 2,
                ..LoadCounters::default()
            },
            &[],
        );
        assert!(stats.identity_holds);
        assert_eq!((stats.failed, stats.hung, stats.interrupted), (2, 2, 0));
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
        assert!(!c.finish(&counters, &[]).identity_holds);
    }

    #[test]
    fn cold_windows_keep_their_counts_and_late_samples_reach_their_phase() {
        let mut c = Collector::new(1_000_000, 1_000_000);
        for t in 0..500u64 {
            c.add(&sample(t, 1, Outcome::Ok, 0));
        }
        // A late sample for a cold window.
        c.add(&sample(0, 7, Outcome::Ok, 0));
        assert!(matches!(c.windows[0].latency, WindowLatency::Cold { .. }));
        assert!(matches!(c.windows[499].latency, WindowLatency::Hot(_)));
        // Cold windows gave their histograms back for reuse: no more exist than hot windows.
        let hot = c
            .windows
            .iter()
            .filter(|w| matches!(w.latency, WindowLatency::Hot(Some(_))))
            .count();
        assert!(
            hot + c.spare.len() <= HOT_WINDOWS + 2,
            "{hot} {}",
            c.spare.len()
        );
        let stats = c.finish(
            &LoadCounters {
                scheduled: 501,
                ..Default::default()
            },
            &[],
        );
        assert_eq!(stats.phases[0].latency.count, 501);
        assert_eq!(stats.phases[0].latency.max, 7.003);
        assert_eq!(stats.timeline[0].ok, 2);
        assert_eq!(stats.timeline[0].max_ms, 7.003);
        assert_eq!(stats.timeline[499].p50_ms, 1.0);
    }

    /// Windows go cold while the reload is still to come, under way, and over; each
    /// lands in the phase the final span gives it, as if all were filed at the end.
    #[test]
    fn windows_cooled_live_land_in_their_phases() {
        let window = 1_000_000;
        let (start, end) = (300 * window + window / 2, 600 * window + window / 3);
        let mut c = Collector::new(window, 1_000_000);
        let span = c.live_span();
        // What each phase should hold: window 300 holds the start, 600 the end, so both are `during`.
        let mut want = [
            histogram::new_dense(),
            histogram::new_dense(),
            histogram::new_dense(),
        ];
        for t in 0..1000u64 {
            // Published as the run loop does: once the moment has passed.
            if t == 301 {
                span.mark_start(start);
            }
            if t == 601 {
                span.mark_end(end);
            }
            // The request sent at t ms takes (t % 7 + 1) ms.
            c.add(&sample(t, t % 7 + 1, Outcome::Ok, 0));
            let phase = match t {
                0..300 => BEFORE,
                300..=600 => DURING,
                _ => AFTER,
            };
            histogram::record(&mut want[phase], (t % 7 + 1) * 1000);
        }
        assert!(c.cold_below > 900);
        let counters = LoadCounters {
            scheduled: 1000,
            ..Default::default()
        };
        let stats = c.finish(&counters, &[]);
        let counts: Vec<u64> = stats.phases.iter().map(|p| p.ok).collect();
        assert_eq!(counts, vec![300, 301, 399]);
        for (p, want) in stats.phases.iter().zip(&want) {
            assert_eq!(p.latency, Percentiles::of(want), "{}", p.name);
        }
        assert_eq!(stats.phases[1].start_ms, 300.5);
    }

    #[test]
    fn a_long_run_gets_a_wider_window() {
        let ms = Duration::from_millis;
        assert_eq!(timeline_window(ms(100), ms(60_000)), ms(100));
        assert_eq!(timeline_window(ms(100), ms(120_000)), ms(100));
        assert_eq!(timeline_window(ms(100), ms(600_000)), ms(500));
        assert_eq!(timeline_window(ms(100), ms(3_600_000)), ms(5000));
        assert_eq!(timeline_window(ms(7), ms(10_000)), ms(10));
    }
}
