//! The load generator: open loop (fixed rate, latency from the scheduled send
//! time) or closed loop (N connections back to back), over TCP or a unix socket,
//! keep-alive or a new connection per request.
//!
//! Bookkeeping is the point: every scheduled request ends in exactly one
//! [`Outcome`], requests still open at the end are counted as hung, and the
//! engine's own counters are kept apart from the collector's so the accounting
//! identity is a real check.

pub mod client;
pub mod http2;
pub mod limits;
pub mod mix;

pub mod pacer;
pub mod remote;
pub mod response;
pub mod target;
pub mod tls;
pub mod uring;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use regex::bytes::Regex;
use tokio::time::Sleep;

use crate::error::{panic_message, Error, Result};
use crate::stats::collector::LiveSpan;
use crate::stats::exposure::NO_CONN;
pub use crate::stats::outcome::{self, Cut, Outcome};
use crate::stats::versions::{VersionCache, VersionTable, NO_VERSION};
use crate::stats::LoadCounters;
use crate::stats::{Collector, Sample};
use client::{Conn, ReadSpec};
pub use mix::{Mix, Protocol, RequestKind};
pub use target::{Endpoint, Target};
use tls::CertId;

/// A send that begins more than this after its schedule counts as late.
pub const LATE_NS: u64 = 1_000_000;
/// Samples a load thread batches before handing them to the collector.
const BATCH: usize = 1024;
/// How often a load thread hands over its batch even if not full (keeps live progress
/// current; at 1000 req/s, 20 ms cost 0.25 system calls per request in wake-ups).
const BATCH_EVERY: Duration = Duration::from_millis(100);

/// What a keep-alive connection does before it carries another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// As pooled clients do (urllib3, Go's transport, browsers): look whether the server
    /// closed the idle connection (a non-blocking read) and, if so, open a new one; the
    /// close is counted in `stale_closes`, not as a failure. `reset_reused` then means a
    /// close that crossed a request in flight: the real race.
    #[default]
    Pooled,
    /// As the most naive client does (Python's `http.client`): reuse without looking, so
    /// a connection closed while idle fails its next request as `reset_reused`.
    Naive,
}

impl Reuse {
    /// The names `load.reuse` and `--reuse` take.
    pub const NAMES: &'static [&'static str] = &["pooled", "naive"];

    /// From its name (validated before).
    pub fn named(name: &str) -> Reuse {
        if name == "naive" {
            Reuse::Naive
        } else {
            Reuse::Pooled
        }
    }
}

/// What runs an open-loop load: the epoll engine (tokio, the default) or the
/// io_uring prototype ([`uring`]), which falls back to epoll where it cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// One current-thread tokio runtime per core, paced by a timerfd.
    #[default]
    Epoll,
    /// One io_uring per core, one `io_uring_enter` per wake-up.
    IoUring,
}

impl Engine {
    /// The names `load.engine` and `--engine` take.
    pub const NAMES: &'static [&'static str] = &["epoll", "io_uring"];

    /// From its name (validated before).
    pub fn named(name: &str) -> Engine {
        if name == "io_uring" {
            Engine::IoUring
        } else {
            Engine::Epoll
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Epoll => "epoll",
            Engine::IoUring => "io_uring",
        }
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Fixed rate (requests/s), spread over the connections; latency from the scheduled time.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// Each connection sends the next request when the last one completes.
    Closed,
}

/// Everything the load generator needs to know.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to send.
    pub target: Target,
    /// Open or closed loop.
    pub mode: Mode,
    /// Concurrent connections (open loop: the most requests in flight at once).
    pub connections: usize,
    /// HTTP/2: concurrent streams per connection (with HTTP/2 kinds, `connections` x
    /// `streams` workers, each with one request in flight; an HTTP/1.1 kind a worker
    /// draws goes on that worker's own connection).
    pub streams: usize,
    /// Reuse connections, or open one per request (the mix's kinds each say their own).
    pub keep_alive: bool,
    /// Whether a kept connection is checked for a close before it is reused.
    pub reuse: Reuse,
    /// What to send: the request kinds and the draw between them.
    pub mix: Mix,
    /// Time limit for one request, connect included (at most
    /// [`MAX_DURATION`](crate::config::duration::MAX_DURATION): longer is cut to it, so a
    /// deadline never overflows).
    pub timeout: Duration,
    /// Time limit for the connect alone (at most `MAX_DURATION`, as `timeout`).
    pub connect_timeout: Duration,
    /// How responses name the serving version.
    pub version: VersionSpec,
    /// Width of a timeline window.
    pub window: Duration,
    /// The engine asked for (the run says which one ran: [`LoadRun::engine`]).
    pub engine: Engine,
}

/// How to read the serving version from a response, and which versions are acceptable.
#[derive(Debug, Clone, Default)]
pub struct VersionSpec {
    /// Response header naming the version (e.g. `X-App-Version`).
    pub header: Option<String>,
    /// Regex over the body whose first capture group (or whole match) is the version.
    pub body_regex: Option<Regex>,
    /// If non-empty, an ok response whose version is missing or not listed is `bad_body`.
    pub expected: Vec<String>,
}

/// One worker's counters, on a cache line of its own (no contention on the hot path);
/// the run sums them at the end.
#[repr(align(128))]
#[derive(Debug, Default)]
struct WorkerCounters {
    scheduled: AtomicU64,
    sent: AtomicU64,
    in_flight: AtomicU64,
    /// The kind of the request in flight (meaningful while `in_flight` is 1).
    kind: std::sync::atomic::AtomicUsize,
    /// When the request in flight was sent, ns since load start (meaningful while
    /// `in_flight` is 1): a hung request's report says how long it had been open.
    sent_at_ns: AtomicU64,
    /// Idle connections found closed by the server before reuse, and reopened.
    stale_closes: AtomicU64,
    /// TLS handshakes completed (https targets).
    tls_handshakes: AtomicU64,
    /// Of those, the ones that resumed an earlier session.
    tls_resumed: AtomicU64,
    /// The server certificates full handshakes saw: (id, first ns, last ns, count).
    /// Locked once per full handshake only.
    certs: Mutex<Vec<(CertId, u64, u64, u64)>>,
    /// Requests begun, per kind (only kept with a mix).
    drawn: Box<[AtomicU64]>,
}

impl WorkerCounters {
    fn new(kinds: usize) -> WorkerCounters {
        WorkerCounters {
            drawn: (0..kinds).map(|_| AtomicU64::new(0)).collect(),
            ..WorkerCounters::default()
        }
    }
}

/// Counters shared between the workers and the caller.
#[derive(Debug, Default)]
pub struct Shared {
    /// Ok responses recorded (live progress).
    pub ok: AtomicU64,
    /// Failures recorded (live progress).
    pub failed: AtomicU64,
    stop: AtomicBool,
}

/// The load clock: every timestamp in a run is ns since this instant.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    /// ns since load start.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// How a load run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Requests in flight get up to this long to finish; what is still open then is `hung`.
    Grace(Duration),
    /// The run was interrupted (a signal): requests in flight are abandoned at once
    /// and count as `interrupted`, neither hung nor failed.
    Interrupted,
}

/// A running load.
pub struct LoadRun {
    clock: Clock,
    shared: Arc<Shared>,
    /// One OS thread per core, each with a current-thread runtime owning its share of
    /// the connections: no work stealing, no cross-thread wake-ups on the hot path.
    threads: Vec<std::thread::JoinHandle<()>>,
    abort: crate::cancel::Cancel,
    counters: Vec<Arc<WorkerCounters>>,
    /// Open loop: each load thread's share of the schedule (and its queue).
    pool: Option<Arc<pacer::Pool>>,
    stop: Arc<pacer::Stop>,
    collector: std::thread::JoinHandle<Collector>,
    target_rate: f64,
    schedule_end_ns: Option<u64>,
    span: Arc<LiveSpan>,
    /// The target is https (the TLS counts are reported).
    tls: bool,
    /// The engine that runs, and why it is not the one asked for.
    engine: (Engine, Option<String>),
    /// With HTTP/2 kinds, their connections' counters.
    h2: Option<Arc<http2::H2Stats>>,
}

impl LoadRun {
    /// Starts the load now. Must be called inside a tokio runtime.
    pub fn start(mut spec: LoadSpec, versions: VersionTable) -> std::io::Result<LoadRun> {
        use crate::config::duration::MAX_DURATION;
        spec.timeout = spec.timeout.min(MAX_DURATION);
        spec.connect_timeout = spec.connect_timeout.min(MAX_DURATION);
        let clock = Clock(Instant::now());
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel::<Vec<Sample>>();
        let window_ns = spec.window.as_nanos() as u64;
        let progress = shared.clone();
        let mut c = Collector::new(window_ns, LATE_NS);
        if spec.mix.per_kind {
            c.track_kinds(spec.mix.kinds.iter().map(RequestKind::info).collect());
        }
        let span = c.live_span();
        let collector = std::thread::Builder::new()
            .name("zdt-collector".into())
            .spawn(move || {
                for batch in rx {
                    crate::error::test_panic_point("collector");
                    let mut ok = 0;
                    for s in &batch {
                        c.add(s);
                        ok += u64::from(s.outcome == Outcome::Ok);
                    }
                    progress.ok.fetch_add(ok, Ordering::Relaxed);
                    progress
                        .failed
                        .fetch_add(batch.len() as u64 - ok, Ordering::Relaxed);
                }
                c
            })?;
        let tls = match &spec.target.tls {
            Some(t) => Some(tls::TlsClient::new(t).map_err(std::io::Error::other)?),
            None => None,
        };
        let spec = Arc::new(spec);
        // With HTTP/2 kinds: `streams` workers per connection, a group on one thread.
        let h2 = spec
            .mix
            .has_h2()
            .then(|| Arc::new(http2::H2Stats::default()));
        let streams = if h2.is_some() { spec.streams.max(1) } else { 1 };
        let groups = spec.connections.max(1);
        let conns = groups * streams;
        let h2_requests = Arc::new(h2_requests(&spec).map_err(std::io::Error::other)?);
        let h2_tls = tls.as_ref().map(tls::TlsClient::offering_h2);
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(groups);
        let target_rate = match spec.mode {
            Mode::Open { rate } => rate,
            Mode::Closed => 0.0,
        };
        // Worker i is in group i / streams, which runs on thread (i / streams) % cores.
        let thread_of = |i: usize| (i / streams) % cores;
        let pool = match spec.mode {
            Mode::Open { rate } => {
                let workers: Vec<usize> = (0..cores)
                    .map(|t| (0..conns).filter(|&i| thread_of(i) == t).count())
                    .collect();
                Some(Arc::new(pacer::Pool::new(rate, &workers)))
            }
            Mode::Closed => None,
        };
        let stop = Arc::new(pacer::Stop::default());
        let (engine, mut rings) = choose_engine(&spec, cores, conns);
        let mut workers: Vec<Vec<Worker>> = (0..cores).map(|_| Vec::new()).collect();
        // One batch per load thread, shared by its connections (never contended: they
        // all run on that thread).
        let batches: Vec<Arc<Mutex<Batch>>> = (0..cores)
            .map(|_| Arc::new(Mutex::new(Batch::new(tx.clone()))))
            .collect();
        let kinds = if spec.mix.per_kind {
            spec.mix.kinds.len()
        } else {
            0
        };
        let counters: Vec<Arc<WorkerCounters>> = (0..conns)
            .map(|_| Arc::new(WorkerCounters::new(kinds)))
            .collect();
        let mut group = None;
        for (i, c) in counters.iter().enumerate() {
            if i % streams == 0 {
                group = h2
                    .as_ref()
                    .map(|st| Arc::new(http2::Group::new(st.clone())));
            }
            workers[thread_of(i)].push(Worker {
                counters: c.clone(),
                spec: spec.clone(),
                clock,
                shared: shared.clone(),
                versions: VersionCache::new(versions.clone()),
                batch: batches[thread_of(i)].clone(),
                rng: spec.mix.rng(i),
                read: ReadSpec {
                    version_header: spec.version.header.clone(),
                    keep_body: spec.version.body_regex.is_some(),
                    want_echo: false,
                    head_request: false,
                },
                buf: Vec::with_capacity(16 * 1024),
                tls: tls.clone(),
                conn: None,
                conn_meta: (NO_CONN, 0),
                used: (NO_CONN, 0),
                held: None,
                h2: group.clone(),
                h2_tls: h2_tls.clone(),
                h2_requests: h2_requests.clone(),
            });
        }
        let abort = crate::cancel::Cancel::new();
        let mut threads = Vec::with_capacity(cores);
        if let (Some(rings), Some(pool)) = (rings.take(), &pool) {
            for (i, (ring, mine)) in rings.into_iter().zip(workers).enumerate() {
                let conns: Vec<_> = mine
                    .iter()
                    .map(|w| (w.counters.clone(), w.rng.clone()))
                    .collect();
                let (spec, pool, stop, abort) =
                    (spec.clone(), pool.clone(), stop.clone(), abort.clone());
                let versions = VersionCache::new(versions.clone());
                let batch = Batch::new(tx.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("zdt-load-{i}"))
                        .spawn(move || {
                            uring::run_thread(
                                ring, spec, clock, i, pool, stop, abort, conns, versions, batch,
                            )
                        })?,
                );
            }
            drop(tx);
            return Ok(LoadRun {
                clock,
                shared,
                threads,
                abort,
                counters,
                pool: Some(pool.clone()),
                stop,
                collector,
                target_rate,
                schedule_end_ns: None,
                span,
                tls: tls.is_some(),
                engine,
                h2: None,
            });
        }
        drop(tx);
        for (i, (mine, batch)) in workers.into_iter().zip(batches).enumerate() {
            let abort = abort.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // The thread's pacer: its timer is registered in this runtime's epoll.
            let pace = match &pool {
                Some(pool) => {
                    let share = pool.share(i);
                    let timer = {
                        let _in = rt.enter();
                        pacer::Timer::periodic(clock, share.first_ns(), share.interval_ns())?
                    };
                    Some((pool.clone(), timer))
                }
                None => None,
            };
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("zdt-load-{i}"))
                    .spawn(move || {
                        rt.block_on(async move {
                            let mut set = tokio::task::JoinSet::new();
                            let pool = pace.as_ref().map(|(p, _)| (p.clone(), i));
                            for w in mine {
                                set.spawn(w.run(pool.clone()));
                            }
                            if let Some((pool, timer)) = pace {
                                set.spawn(pacer::pace(pool, i, timer, clock, stop));
                            }
                            let flusher = async {
                                let mut every = tokio::time::interval(BATCH_EVERY);
                                loop {
                                    every.tick().await;
                                    lock(&batch).flush();
                                    if i == 0 && clock.now_ns() > 500_000_000 {
                                        crate::error::test_panic_point("load-thread");
                                    }
                                }
                            };
                            tokio::select! {
                                _ = async { while set.join_next().await.is_some() {} } => {}
                                _ = flusher => {}
                                _ = abort.cancelled() => {
                                    // The thread's batch is flushed when the workers and this block let go of it; what they had in flight stays hung.
                                    set.abort_all();
                                    while set.join_next().await.is_some() {}
                                }
                            }
                        });
                    })?,
            );
        }
        Ok(LoadRun {
            clock,
            shared,
            threads,
            abort,
            counters,
            pool,
            stop,
            collector,
            target_rate,
            schedule_end_ns: None,
            span,
            tls: tls.is_some(),
            engine,
            h2,
        })
    }

    /// The engine that runs this load, and why it is not the one asked for (io_uring
    /// refused by the kernel, or a load it does not support): one line for the report.
    pub fn engine(&self) -> (Engine, Option<&str>) {
        (self.engine.0, self.engine.1.as_deref())
    }

    /// The clock all of this run's timestamps are on.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Live counters.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The reload starts now: requests scheduled from here on are `during` it.
    pub fn mark_reload_start(&self) {
        self.span.mark_start(self.clock.now_ns());
    }

    /// The reload is over (if it started): requests scheduled from here on are `after` it.
    pub fn mark_reload_end(&self) {
        self.span.mark_end(self.clock.now_ns());
    }

    /// Stops scheduling new requests; requests already scheduled still run.
    pub fn stop_scheduling(&mut self) {
        let now = self.clock.now_ns();
        let end = *self.schedule_end_ns.get_or_insert(now);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.stop.stop(end);
    }

    /// Stops scheduling, gives requests in flight (and queued) up to the grace of
    /// `ending` to finish, then abandons the rest (hung; interrupted if `ending` is
    /// [`Ending::Interrupted`]) and returns the collector and the engine's counters.
    ///
    /// A load or collector thread that panicked is an [`Error::Internal`] naming it:
    /// its requests are lost to the harness, never counted against the server.
    pub async fn finish(mut self, ending: Ending) -> Result<(Collector, LoadCounters)> {
        self.stop_scheduling();
        let grace = match ending {
            Ending::Grace(g) => g.min(crate::config::duration::MAX_DURATION),
            Ending::Interrupted => Duration::ZERO,
        };
        let deadline = tokio::time::Instant::now() + grace;
        while self.threads.iter().any(|t| !t.is_finished())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.abort.cancel();
        let threads = std::mem::take(&mut self.threads);
        // Every thread is joined, whichever panicked; the first panic is the error.
        let panicked = tokio::task::spawn_blocking(move || {
            let mut first = None;
            for t in threads {
                let name = t.thread().name().unwrap_or("zdt-load").to_string();
                if let Err(p) = t.join() {
                    first.get_or_insert_with(|| {
                        format!("load thread {name} panicked: {}", panic_message(&*p))
                    });
                }
            }
            first
        })
        .await
        .map_err(|e| Error::Internal(format!("joining the load threads: {e}")))?;
        // Every worker (and its batch sender) is gone now, so the collector's loop ends.
        let collector = tokio::task::spawn_blocking(move || self.collector.join())
            .await
            .map_err(|e| Error::Internal(format!("joining the collector thread: {e}")))?;
        if let Some(why) = panicked {
            return Err(Error::Internal(why));
        }
        let collector = collector.map_err(|p| {
            Error::Internal(format!(
                "collector thread zdt-collector panicked: {}",
                panic_message(&*p)
            ))
        })?;
        let sum = |f: fn(&WorkerCounters) -> &AtomicU64| {
            self.counters
                .iter()
                .map(|c| f(c).load(Ordering::SeqCst))
                .sum::<u64>()
        };
        // The threads are gone: what their queues still held was never sent.
        let released = self.pool.as_ref().map_or(0, |p| p.released());
        let queued = self.pool.as_ref().map_or(0, |p| p.queued());
        let scheduled = released + sum(|c| &c.scheduled);
        let kinds = self.counters.first().map_or(0, |c| c.drawn.len());
        let mut kind_drawn = vec![0u64; kinds];
        let mut kind_in_flight = vec![0u64; kinds];
        let end_ns = self.clock.now_ns();
        let oldest_sent_ns = self
            .counters
            .iter()
            .filter(|c| c.in_flight.load(Ordering::SeqCst) > 0)
            .map(|c| c.sent_at_ns.load(Ordering::SeqCst))
            .min();
        for c in &self.counters {
            for (k, n) in c.drawn.iter().enumerate() {
                kind_drawn[k] += n.load(Ordering::SeqCst);
            }
            let open = c.in_flight.load(Ordering::SeqCst);
            if open > 0 && kinds > 0 {
                kind_in_flight[c.kind.load(Ordering::SeqCst).min(kinds - 1)] += open;
            }
        }
        let counters = LoadCounters {
            kind_drawn,
            kind_in_flight,
            scheduled,
            sent: sum(|c| &c.sent),
            in_flight_at_end: sum(|c| &c.in_flight),
            stale_closes: sum(|c| &c.stale_closes),
            tls: self.tls.then(|| crate::stats::TlsCounts {
                handshakes: sum(|c| &c.tls_handshakes),
                resumed: sum(|c| &c.tls_resumed),
                certs: certs_seen(&self.counters),
            }),
            h2: self.h2.as_ref().map(|h| h.counts()),
            queued_at_end: queued,
            interrupted: ending == Ending::Interrupted,
            target_rate: self.target_rate,
            schedule_ns: self.schedule_end_ns.unwrap_or(0),
            end_ns,
            oldest_in_flight_ns: oldest_sent_ns.map_or(0, |s| end_ns.saturating_sub(s)),
            grace_ns: grace.as_nanos() as u64,
        };
        Ok((collector, counters))
    }
}

/// The engine for `spec` (and, for io_uring, one ring per load thread), or epoll
/// and the reason io_uring was asked for and cannot run.
#[allow(clippy::type_complexity)]
fn choose_engine(
    spec: &LoadSpec,
    cores: usize,
    conns: usize,
) -> ((Engine, Option<String>), Option<Vec<io_uring::IoUring>>) {
    if spec.engine != Engine::IoUring {
        return ((Engine::Epoll, None), None);
    }
    if let Some(why) = uring::unsupported(spec) {
        return (
            (
                Engine::Epoll,
                Some(format!("io_uring engine not used: {why}; epoll runs")),
            ),
            None,
        );
    }
    let rings: std::io::Result<Vec<_>> = (0..cores)
        .map(|t| uring::ring((conns - t).div_ceil(cores)))
        .collect();
    match rings {
        Ok(rings) => ((Engine::IoUring, None), Some(rings)),
        Err(e) => (
            (
                Engine::Epoll,
                Some(format!("io_uring unavailable here ({e}): epoll runs")),
            ),
            None,
        ),
    }
}

/// Each kind's HTTP/2 request (None for an HTTP/1.1 kind).
fn h2_requests(spec: &LoadSpec) -> std::result::Result<Vec<Option<http2::H2Request>>, String> {
    let scheme = if spec.target.tls.is_some() {
        "https"
    } else {
        "http"
    };
    spec.mix
        .kinds
        .iter()
        .map(|k| {
            k.protocol
                .is_h2()
                .then(|| http2::H2Request::of(k, scheme, &spec.target.host))
                .transpose()
        })
        .collect()
}

/// Counts a full handshake that saw certificate `id` at `at_ns`.
fn note_cert(certs: &Mutex<Vec<(CertId, u64, u64, u64)>>, id: CertId, at_ns: u64) {
    let mut certs = certs.lock().unwrap_or_else(|p| p.into_inner());
    merge_cert(&mut certs, (id, at_ns, at_ns, 1));
}

/// Adds `(id, first ns, last ns, count)` to `certs`: widens its span and count if
/// `id` is there, else appends it.
fn merge_cert(certs: &mut Vec<(CertId, u64, u64, u64)>, seen: (CertId, u64, u64, u64)) {
    let (id, first, last, n) = seen;
    match certs.iter_mut().find(|c| c.0 == id) {
        Some(c) => *c = (id, c.1.min(first), c.2.max(last), c.3 + n),
        None => certs.push(seen),
    }
}

/// Every worker's certificates merged, first seen first.
fn certs_seen(counters: &[Arc<WorkerCounters>]) -> Vec<crate::stats::CertSeen> {
    let mut all: Vec<(CertId, u64, u64, u64)> = Vec::new();
    for c in counters {
        for &seen in c.certs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            merge_cert(&mut all, seen);
        }
    }
    all.sort_by_key(|c| c.1);
    all.into_iter()
        .map(|(id, first, last, n)| crate::stats::CertSeen {
            id: tls::cert_id_hex(&id),
            first_ms: first as f64 / 1e6,
            last_ms: last as f64 / 1e6,
            handshakes: n,
        })
        .collect()
}

/// A new connection's id for exposure (never [`NO_CONN`]; one atomic add a connect).
fn next_conn_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    match NEXT.fetch_add(1, Ordering::Relaxed) {
        NO_CONN => NEXT.fetch_add(1, Ordering::Relaxed),
        id => id,
    }
}

/// The batch, even if a thread panicked holding it (its samples are still good).
fn lock(batch: &Mutex<Batch>) -> MutexGuard<'_, Batch> {
    batch.lock().unwrap_or_else(|p| p.into_inner())
}

/// Samples on their way to the collector; flushed when full, every [`BATCH_EVERY`], and
/// on drop (so a thread aborted at the end of the run loses nothing it recorded).
struct Batch {
    samples: Vec<Sample>,
    tx: mpsc::Sender<Vec<Sample>>,
}

impl Batch {
    fn new(tx: mpsc::Sender<Vec<Sample>>) -> Batch {
        Batch {
            samples: Vec::with_capacity(BATCH),
            tx,
        }
    }

    #[inline]
    fn push(&mut self, s: Sample) {
        self.samples.push(s);
        if self.samples.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.samples.is_empty() {
            let full = std::mem::replace(&mut self.samples, Vec::with_capacity(BATCH));
            // The collector outlives every worker; a send error only happens if it panicked.
            let _ = self.tx.send(full);
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One connection's loop.
struct Worker {
    counters: Arc<WorkerCounters>,
    spec: Arc<LoadSpec>,
    clock: Clock,
    shared: Arc<Shared>,
    versions: VersionCache,
    batch: Arc<Mutex<Batch>>,
    /// This connection's draw of request kinds.
    rng: mix::Rng,
    read: ReadSpec,
    buf: Vec<u8>,
    /// The TLS client of an https target, shared by the run's connections.
    tls: Option<tls::TlsClient>,
    conn: Option<Conn>,
    /// `conn`'s id and when it was opened (load clock), for exposure.
    conn_meta: (u32, u64),
    /// The connection the current exchange used (id, opened), [`NO_CONN`] if none.
    used: (u32, u64),
    /// The last response on `conn`, recorded once the connection's next request goes
    /// out or the connection ends: bytes arriving after it before then make it a
    /// `protocol_error` (see [`Worker::settle`]).
    held: Option<Sample>,
    /// With HTTP/2 kinds: the group whose connection this worker's streams go on.
    h2: Option<Arc<http2::Group>>,
    /// The TLS client offering h2 by ALPN (https targets).
    h2_tls: Option<tls::TlsClient>,
    /// Each kind's HTTP/2 request (None for HTTP/1.1 kinds).
    h2_requests: Arc<Vec<Option<http2::H2Request>>>,
}

impl Drop for Worker {
    /// A worker ends (or is aborted at the end of the run) with its held sample settled.
    fn drop(&mut self) {
        self.settle();
    }
}

impl Worker {
    async fn run(mut self, pool: Option<(Arc<pacer::Pool>, usize)>) {
        // One timer per connection, re-armed lazily (see `one`): registering a
        // fresh timeout per request costs more than the rest of the bookkeeping.
        let timer = tokio::time::sleep(self.spec.timeout);
        tokio::pin!(timer);
        match pool {
            Some((pool, own)) => {
                while let Some(scheduled) = pool.next(own, self.clock).await {
                    self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
                    self.one(Some(scheduled), timer.as_mut()).await;
                }
            }
            None => {
                while !self.shared.stop.load(Ordering::Relaxed) {
                    self.counters.scheduled.fetch_add(1, Ordering::Relaxed);
                    self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
                    self.one(None, timer.as_mut()).await;
                }
            }
        }
    }

    /// Sends one request scheduled at `scheduled_ns` (closed loop: now) and records
    /// its outcome. `timer` fires no later than this request's deadline: it was armed
    /// for an earlier request's, and deadlines only move forward, so when it fires
    /// early it is re-armed for this one (once per timeout period, not per request).
    async fn one(&mut self, scheduled_ns: Option<u64>, mut timer: Pin<&mut Sleep>) {
        let now = Instant::now();
        let sent_ns = (now - self.clock.0).as_nanos() as u64;
        let scheduled_ns = scheduled_ns.unwrap_or(sent_ns);
        let deadline = tokio::time::Instant::from_std(now + self.spec.timeout);
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.counters.sent_at_ns.store(sent_ns, Ordering::Relaxed);
        let kind = self.spec.mix.draw(&mut self.rng);
        // An HTTP/2 stream shares its group's connection: nothing to hold or settle.
        let keep_alive =
            self.spec.mix.kinds[kind].keep_alive && !self.spec.mix.kinds[kind].protocol.is_h2();
        if keep_alive {
            self.settle();
        }
        if let Some(d) = self.counters.drawn.get(kind) {
            self.counters.kind.store(kind, Ordering::Relaxed);
            d.fetch_add(1, Ordering::Relaxed);
        }
        let (outcome, version, cut) = {
            let exchange = self.exchange(kind);
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    r = &mut exchange => break r,
                    () = timer.as_mut() => {
                        if tokio::time::Instant::now() >= deadline {
                            break (Outcome::Timeout, NO_VERSION, Cut::NONE);
                        }
                        timer.as_mut().reset(deadline);
                    }
                }
            }
        };
        if outcome == Outcome::Timeout && keep_alive {
            self.conn = None;
        }
        let done_ns = self.clock.now_ns();
        let sample = Sample {
            scheduled_ns,
            sent_ns,
            done_ns,
            outcome,
            version,
            cut,
            kind: kind as u8,
            conn: self.used.0,
            conn_opened_ns: self.used.1,
        };
        if keep_alive && self.conn.is_some() {
            self.held = Some(sample);
        } else {
            lock(&self.batch).push(sample);
        }
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Before the kept connection carries another request (or when the worker ends):
    /// looks at it without waiting. Stray bytes make its last response (the held
    /// sample) a `protocol_error`, whether they came in that response's last read or
    /// after it (the same bytes get the same class), and drop it. A close by the
    /// server while it sat idle drops it too, with [`Reuse::Pooled`] (counted in
    /// `stale_closes`): the next request opens a new one. Then records the held sample.
    fn settle(&mut self) {
        let idle = self.conn.as_mut().map(Conn::idle_state);
        match idle {
            Some(client::Idle::Stray) => {
                if let Some(s) = self.held.as_mut() {
                    s.outcome = Outcome::ProtocolError;
                    s.version = NO_VERSION;
                }
                self.conn = None;
            }
            Some(client::Idle::Closed) if self.spec.reuse == Reuse::Pooled => {
                self.counters.stale_closes.fetch_add(1, Ordering::Relaxed);
                self.conn = None;
            }
            _ => {}
        }
        if let Some(s) = self.held.take() {
            lock(&self.batch).push(s);
        }
    }

    /// One exchange of kind `k`: its outcome, the serving version's id, and how far a
    /// cut response got. A keep-alive kind uses (and keeps) the worker's connection; a
    /// kind on fresh connections opens its own and drops it after.
    async fn exchange(&mut self, k: usize) -> (Outcome, u16, Cut) {
        let spec = &*self.spec;
        let kind = &spec.mix.kinds[k];
        if let (Some(group), Some(req)) = (&self.h2, &self.h2_requests[k]) {
            let reply = group
                .exchange(
                    req,
                    spec,
                    self.h2_tls.as_ref(),
                    self.clock,
                    &self.counters,
                    self.read.keep_body,
                    kind.echo.is_some(),
                    &mut self.used,
                )
                .await;
            return match reply {
                Err((outcome, cut)) => (outcome, NO_VERSION, cut),
                Ok(r) => {
                    let version = r.version.as_deref();
                    judge(
                        spec,
                        kind,
                        &mut self.versions,
                        r.status,
                        version,
                        &r.body,
                        r.echo,
                    )
                }
            };
        }
        let mut fresh = None;
        let slot = if kind.keep_alive {
            &mut self.conn
        } else {
            &mut fresh
        };
        self.used = (NO_CONN, 0);
        let conn = match slot {
            Some(c) => {
                self.used = self.conn_meta;
                c
            }
            None => {
                let opened_ns = self.clock.now_ns();
                match Conn::connect(
                    &spec.target.endpoint,
                    self.tls.as_ref(),
                    spec.connect_timeout,
                )
                .await
                {
                    Ok(c) => {
                        if let Some(resumed) = c.resumed() {
                            self.counters.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                            if resumed {
                                self.counters.tls_resumed.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some(id) = c.cert() {
                                note_cert(&self.counters.certs, id, opened_ns);
                            }
                        }
                        self.used = (next_conn_id(), opened_ns);
                        if kind.keep_alive {
                            self.conn_meta = self.used;
                        }
                        slot.insert(c)
                    }
                    Err(o) => return (o, NO_VERSION, Cut::NONE),
                }
            }
        };
        self.read.want_echo = kind.echo.is_some();
        self.read.head_request = kind.method == "HEAD";
        let upload = kind.upload.map(|d| (kind.body_at, d));
        match conn
            .exchange_uploading(&kind.bytes, upload, &mut self.buf, &self.read)
            .await
        {
            Err(f) => {
                *slot = None;
                (f.outcome, NO_VERSION, f.cut)
            }
            Ok(reply) => {
                if !(kind.keep_alive && reply.reusable) {
                    *slot = None;
                } else if reply.trailing {
                    // Bytes after the response on a connection kept for the next request.
                    *slot = None;
                    return (Outcome::ProtocolError, NO_VERSION, Cut::NONE);
                }
                let version = reply.version(&self.buf);
                judge(
                    spec,
                    kind,
                    &mut self.versions,
                    reply.status,
                    version,
                    &reply.body,
                    reply.echo,
                )
            }
        }
    }
}

/// A complete response judged: its status's class, the serving version (from the
/// header `version`, else the body regex) against the expected ones, the body's echo
/// against the one `kind` expects.
fn judge(
    spec: &LoadSpec,
    kind: &RequestKind,
    versions: &mut VersionCache,
    status: u16,
    version: Option<&[u8]>,
    body: &[u8],
    echo: (Option<u64>, Option<u32>),
) -> (Outcome, u16, Cut) {
    let outcome = Outcome::from_status(status);
    let name: Option<&[u8]> = version.or_else(|| {
        let re = spec.version.body_regex.as_ref()?;
        let caps = re.captures(body)?;
        let m = caps.get(1).or_else(|| caps.get(0))?;
        Some(m.as_bytes())
    });
    let version = name.map_or(NO_VERSION, |n| versions.id_bytes(n));
    if outcome == Outcome::Ok && !spec.version.expected.is_empty() {
        let known = name.is_some_and(|n| spec.version.expected.iter().any(|e| e.as_bytes() == n));
        if !known {
            return (Outcome::BadBody, version, Cut::NONE);
        }
    }
    if let (Outcome::Ok, Some(want)) = (outcome, kind.echo) {
        if echo != (Some(want.len), Some(want.crc)) {
            return (Outcome::BadBody, version, Cut::NONE);
        }
    }
    (outcome, version, Cut::NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_merge_by_id_widening_the_span_and_adding_the_counts() {
        let (a, b) = ([1u8; 8], [2u8; 8]);
        let mut certs = Vec::new();
        merge_cert(&mut certs, (a, 50, 70, 2));
        merge_cert(&mut certs, (b, 60, 60, 1));
        merge_cert(&mut certs, (a, 10, 40, 3));
        assert_eq!(certs, vec![(a, 10, 70, 5), (b, 60, 60, 1)]);
    }
}
