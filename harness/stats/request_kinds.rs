//! Per request kind (a scenario's `[[load.mix]]`): the accounting identity, the
//! failures by class and the latency per phase, kind by kind, so a report says
//! which kind a reload broke (POSTs 502 where GETs were retried, reused
//! connections reset where fresh ones were not).
//!
//! Samples are filed by the window they were scheduled in, like the run's own
//! phases: a hot window keeps its samples' latencies per kind until it goes cold
//! and its phase is final, so the kinds' phases add up to the run's.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::histogram::{self, Percentiles};
use super::outcome::Outcome;
use super::Sample;

/// What a report says about a kind besides its numbers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestKindInfo {
    /// Its name in the mix.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Relative share of requests.
    pub weight: u32,
    /// Request body size, bytes.
    pub body_bytes: u64,
    /// Slow upload of the body over this long, ms (absent: sent at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_ms: Option<f64>,
    /// Reused (keep-alive) connections, or a new one per request.
    pub keep_alive: bool,
    /// Whether the body's echo is checked.
    pub echo: bool,
    /// `h1`, `h2` (ALPN over TLS) or `h2c` (prior knowledge).
    pub protocol: String,
}

impl RequestKindInfo {
    /// `METHOD path (body bytes, upload, echo)`, for reports.
    pub fn request_line(&self) -> String {
        let mut req = format!("{} {}", self.method, self.path);
        if self.body_bytes > 0 {
            let mut extra = vec![format!("{} B", self.body_bytes)];
            if let Some(u) = self.upload_ms {
                extra.push(format!("over {u:.0} ms"));
            }
            if self.echo {
                extra.push("echo".into());
            }
            req.push_str(&format!(" ({})", extra.join(", ")));
        }
        req
    }
}

/// One kind's samples in one hot window.
#[derive(Debug, Default)]
struct HotKind {
    outcomes: BTreeMap<Outcome, u64>,
    /// Corrected latency of its ok responses, µs.
    latencies: Vec<u64>,
}

/// One kind's totals so far.
#[derive(Debug)]
struct KindTotals {
    outcomes: BTreeMap<Outcome, u64>,
    phase_outcomes: [BTreeMap<Outcome, u64>; 3],
    phase_hist: [Histogram<u32>; 3],
}

/// Per-kind bookkeeping inside the collector.
#[derive(Debug)]
pub(super) struct RequestKindTracks {
    info: Vec<RequestKindInfo>,
    totals: Vec<KindTotals>,
    /// Per window (by index): its samples per kind while hot; `None` once cold.
    hot: Vec<Option<Vec<HotKind>>>,
}

impl RequestKindTracks {
    pub(super) fn new(info: Vec<RequestKindInfo>) -> RequestKindTracks {
        let totals = info
            .iter()
            .map(|_| KindTotals {
                outcomes: BTreeMap::new(),
                phase_outcomes: Default::default(),
                phase_hist: [
                    histogram::new_dense(),
                    histogram::new_dense(),
                    histogram::new_dense(),
                ],
            })
            .collect();
        RequestKindTracks {
            info,
            totals,
            hot: Vec::new(),
        }
    }

    /// Files a sample of window `w`; `cold` is that window's phase if it has gone cold.
    pub(super) fn add(&mut self, w: usize, cold: Option<usize>, s: &Sample, corrected_us: u64) {
        let k = (s.kind as usize).min(self.totals.len() - 1);
        *self.totals[k].outcomes.entry(s.outcome).or_insert(0) += 1;
        if let Some(phase) = cold {
            let t = &mut self.totals[k];
            *t.phase_outcomes[phase].entry(s.outcome).or_insert(0) += 1;
            if s.outcome == Outcome::Ok {
                histogram::record(&mut t.phase_hist[phase], corrected_us);
            }
            return;
        }
        if w >= self.hot.len() {
            self.hot.resize_with(w + 1, || None);
        }
        let kinds = self.info.len();
        let window = self.hot[w].get_or_insert_with(|| {
            let mut v = Vec::with_capacity(kinds);
            v.resize_with(kinds, HotKind::default);
            v
        });
        let hk = &mut window[k];
        *hk.outcomes.entry(s.outcome).or_insert(0) += 1;
        if s.outcome == Outcome::Ok {
            hk.latencies.push(corrected_us);
        }
    }

    /// Window `w` went cold in `phase`: its samples go into the kinds' phase totals.
    pub(super) fn close(&mut self, w: usize, phase: usize) {
        let Some(window) = self.hot.get_mut(w).and_then(Option::take) else {
            return;
        };
        for (t, hk) in self.totals.iter_mut().zip(window) {
            for (o, n) in hk.outcomes {
                *t.phase_outcomes[phase].entry(o).or_insert(0) += n;
            }
            for us in hk.latencies {
                histogram::record(&mut t.phase_hist[phase], us);
            }
        }
    }

    /// The kinds' statistics. `phase_names` are the run's phases (one, or before /
    /// during / after); `drawn` and `in_flight` are the load engine's own counts per kind;
    /// `interrupted`: the run was cut short, so what was in flight is `interrupted`, not `hung`.
    pub(super) fn finish(
        self,
        phase_names: &[&str],
        drawn: &[u64],
        in_flight: &[u64],
        interrupted: bool,
    ) -> Vec<RequestKindStats> {
        self.info
            .into_iter()
            .zip(self.totals)
            .enumerate()
            .map(|(k, (info, t))| {
                let recorded: u64 = t.outcomes.values().sum();
                let ok = t.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
                let open = in_flight.get(k).copied().unwrap_or(0);
                let (hung, cut) = if interrupted { (0, open) } else { (open, 0) };
                let scheduled = drawn.get(k).copied().unwrap_or(0);
                let mut outcomes = super::collector::keyed(t.outcomes.iter());
                let mut classes: BTreeMap<String, u64> = BTreeMap::new();
                for (o, n) in &t.outcomes {
                    *classes.entry(o.class().to_string()).or_insert(0) += n;
                }
                if hung > 0 {
                    outcomes.insert("hung".into(), hung);
                    classes.insert("hung".into(), hung);
                }
                let mut whole = histogram::new_dense();
                for h in &t.phase_hist {
                    let _ = whole.add(h);
                }
                let phases = phase_names
                    .iter()
                    .enumerate()
                    .map(|(p, name)| RequestKindPhase {
                        name: (*name).to_string(),
                        ok: t.phase_outcomes[p].get(&Outcome::Ok).copied().unwrap_or(0),
                        failed: super::collector::keyed(
                            t.phase_outcomes[p].iter().filter(|(o, _)| o.is_failure()),
                        ),
                        latency: Percentiles::of(&t.phase_hist[p]),
                    })
                    .collect();
                RequestKindStats {
                    by_code: super::collector::by_code(t.outcomes.iter()),
                    info,
                    scheduled,
                    ok,
                    failed: recorded - ok + hung,
                    hung,
                    interrupted: cut,
                    identity_holds: scheduled == recorded + hung + cut,
                    outcomes,
                    classes,
                    latency: Percentiles::of(&whole),
                    phases,
                }
            })
            .collect()
    }
}

/// One request kind's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct RequestKindStats {
    /// What the kind sends.
    #[serde(flatten)]
    pub info: RequestKindInfo,
    /// Requests of this kind begun (a kind is drawn when a connection takes the
    /// request, so a request that never left the queue has none: it counts in the
    /// run's `never_sent` only).
    pub scheduled: u64,
    /// Ended `ok`.
    pub ok: u64,
    /// Ended in any other class, hung included.
    pub failed: u64,
    /// Still open at the end.
    pub hung: u64,
    /// Cut in flight because the run was interrupted (not a failure, not in `failed`).
    pub interrupted: u64,
    /// scheduled = ok + Σ failure classes + hung + interrupted, for this kind.
    pub identity_holds: bool,
    /// Count per outcome key (`ok`, `http_502`, `connect_refused`, ...): for the
    /// reports and `allow` lists. Not in the JSON, where `classes` counts each request
    /// once and `by_code` breaks the HTTP classes down by status code.
    #[serde(skip)]
    pub outcomes: BTreeMap<String, u64>,
    /// The HTTP classes by status code: `{"http_5xx": {"http_502": 3}}` (a breakdown of
    /// `classes`, never a second count).
    pub by_code: BTreeMap<String, BTreeMap<String, u64>>,
    /// Count per outcome class.
    pub classes: BTreeMap<String, u64>,
    /// Corrected latency of its ok responses over the whole run.
    pub latency: Percentiles,
    /// Per phase of the run (the run's own phases, by scheduled time).
    pub phases: Vec<RequestKindPhase>,
}

/// One kind in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct RequestKindPhase {
    /// The phase's name.
    pub name: String,
    /// Ok responses.
    pub ok: u64,
    /// Failures by key.
    pub failed: BTreeMap<String, u64>,
    /// Corrected latency of its ok responses.
    pub latency: Percentiles,
}
