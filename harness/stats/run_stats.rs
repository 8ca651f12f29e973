//! A load run's statistics as reported: [`RunStats`], with its phases
//! ([`PhaseStats`]), its timeline rows ([`WindowRow`]), the versions seen
//! ([`VersionSeen`]) and how far truncated responses got ([`Truncations`]); and the
//! load engine's own counts ([`LoadCounters`]) the run is checked against.
//!
//! Plain data: the collector makes it (`Collector::finish`), the verdict, the
//! reports and compare read it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::failure_bound::FailureBound;
use super::histogram::{CurvePoint, Percentiles};
use super::request_kinds::RequestKindStats;

/// Counts kept by the load engine itself, independent of the collector.
#[derive(Debug, Clone, Default)]
pub struct LoadCounters {
    /// Requests begun per request kind (empty without a mix).
    pub kind_drawn: Vec<u64>,
    /// Requests in flight at the end per request kind (empty without a mix).
    pub kind_in_flight: Vec<u64>,
    /// Requests scheduled (open loop: tickets issued; closed loop: requests begun).
    pub scheduled: u64,
    /// Requests that a worker began.
    pub sent: u64,
    /// Requests begun but without an outcome when the run ended.
    pub in_flight_at_end: u64,
    /// Scheduled requests no connection ever took.
    pub queued_at_end: u64,
    /// Idle keep-alive connections found closed by the server before reuse, and reopened.
    pub stale_closes: u64,
    /// TLS handshakes of an https target (None: plain HTTP).
    pub tls: Option<TlsCounts>,
    /// HTTP/2 connections and GOAWAYs (None: HTTP/1.1 only).
    pub h2: Option<H2Counts>,
    /// The load was cut short by an interruption (a signal): what was still open at
    /// the end (in flight or queued) counts as `interrupted`, not as `hung`.
    pub interrupted: bool,
    /// Open loop's target rate (0 for closed loop).
    pub target_rate: f64,
    /// How long scheduling went on, ns.
    pub schedule_ns: u64,
    /// When the run ended (after the grace period), ns since load start.
    pub end_ns: u64,
    /// How long the oldest request still in flight at the end had been open, ns (0: none).
    pub oldest_in_flight_ns: u64,
    /// The grace the requests in flight were given after scheduling stopped, ns.
    pub grace_ns: u64,
}

/// The TLS handshakes of an https run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsCounts {
    /// Handshakes completed (one per connection opened).
    pub handshakes: u64,
    /// Of those, the ones that resumed an earlier session (a ticket from the server),
    /// skipping the certificate exchange.
    pub resumed: u64,
    /// The server certificates the full handshakes saw, first seen first.
    pub certs: Vec<CertSeen>,
}

/// The HTTP/2 connections of a load with h2 or h2c kinds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct H2Counts {
    /// Connections opened (TLS, ALPN and the SETTINGS exchange done).
    pub connections: u64,
    /// Connections on which the server sent GOAWAY, each counted once.
    pub goaways: u64,
    /// Requests not yet sent when their connection was gone (after a GOAWAY or a
    /// close), sent on a new connection instead: not failures, and never a stream that
    /// had been sent.
    pub unsent_reconnects: u64,
}

/// One server certificate as the full handshakes saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CertSeen {
    /// The leaf certificate's short SHA-256 fingerprint (hex, the first 8 bytes).
    pub id: String,
    /// When a full handshake first saw it, ms since load start.
    pub first_ms: f64,
    /// When a full handshake last saw it, ms since load start.
    pub last_ms: f64,
    /// Full handshakes that saw it.
    pub handshakes: u64,
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
    /// Requests still open when the run was interrupted (in flight, or never sent):
    /// cut by the interruption, so neither failures nor counted in `failed`.
    pub interrupted: u64,
    /// Of the hung (of the interrupted, in an interrupted run), those no connection ever took.
    pub never_sent: u64,
    /// With hung requests: how long the oldest one still in flight had been open when
    /// the grace ran out, ms (requests that slow may only need a longer `load.timeout`
    /// or `load.grace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hung_oldest_ms: Option<f64>,
    /// The grace requests in flight had after scheduling stopped, ms.
    pub grace_ms: f64,
    /// Idle keep-alive connections the server closed before their next request, found
    /// closed and reopened (`load.reuse = "pooled"`): not failures, what a pooled client
    /// sees as a normal close. A close that crossed a request in flight is `reset_reused`.
    pub stale_closes: u64,
    /// TLS handshakes of an https target, and how many resumed a session (absent: plain HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsCounts>,
    /// HTTP/2 connections and the GOAWAYs they got (absent: HTTP/1.1 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h2: Option<H2Counts>,
    /// scheduled = ok + Σ failure classes + hung + interrupted.
    pub identity_holds: bool,
    /// `failed / (ok + failed)`, hung included, interrupted left out (none: no request ended).
    pub failure_rate: Option<f64>,
    /// The one-sided 95% upper bound of the failure rate (Clopper-Pearson, see
    /// [`FailureBound`]): the largest rate the run could have missed (none: no request ended).
    pub failure_rate_upper95: Option<f64>,
    /// Count per outcome key (`ok`, `http_502`, `connect_refused`, ...): for the
    /// reports and `allow` lists. Not in the JSON, where `classes` counts each request
    /// once and `by_code` breaks the HTTP classes down by status code.
    #[serde(skip)]
    pub outcomes: BTreeMap<String, u64>,
    /// The HTTP classes by status code: `{"http_5xx": {"http_502": 3}}` (a breakdown of
    /// `classes`, never a second count).
    pub by_code: BTreeMap<String, BTreeMap<String, u64>>,
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
    /// How far the `truncated` responses got (absent if there were none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncations>,
    /// Per request kind of the load's mix (absent without a mix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<RequestKindStats>>,
}

impl RunStats {
    /// Failed of the requests that ended (`ok + failed`), for the failure rate's bound.
    pub fn failure_bound(&self) -> FailureBound {
        FailureBound::new(self.failed, self.ok + self.failed)
    }

    /// Replaces each phase's histogram with an empty, small one (for a report that
    /// is only kept to be serialized, which skips them: 72 KB each).
    pub fn drop_histograms(&mut self) {
        for p in &mut self.phases {
            p.histogram = Histogram::new(1).expect("1 significant digit is valid");
        }
    }
}

/// How far the responses cut mid-way (`truncated`) got before the cut.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Truncations {
    /// Truncated responses.
    pub count: u64,
    /// Of them, cut inside the response head.
    pub in_head: u64,
    /// Response bytes received before the cut, head included.
    pub bytes: Spread,
    /// Of them, chunked bodies cut after their head.
    pub chunked: u64,
    /// Complete chunks received before the cut, over the chunked ones.
    pub chunks: Spread,
}

/// Minimum, median and maximum of a count.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Spread {
    /// Smallest.
    pub min: u64,
    /// Median.
    pub median: u64,
    /// Largest.
    pub max: u64,
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
    /// Failures over `ok` + failures in the phase (hung requests, which have no
    /// window, are only in the run's); none: no request in the phase.
    pub failure_rate: Option<f64>,
    /// Its one-sided 95% upper bound (Clopper-Pearson); none: no request in the phase.
    pub failure_rate_upper95: Option<f64>,
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

impl PhaseStats {
    /// Failed of the phase's requests (`ok` + failures), for the failure rate's bound.
    pub fn failure_bound(&self) -> FailureBound {
        let failed: u64 = self.failed.values().sum();
        FailureBound::new(failed, self.ok + failed)
    }
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
    /// When the first request it answered was sent (what took-over is judged by: a
    /// request sent before a switch and answered after it says nothing about who is in charge).
    pub first_sent_ms: f64,
    /// When the last request it answered was sent.
    pub last_sent_ms: f64,
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
