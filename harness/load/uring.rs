//! The io_uring open-loop engine (`[load] engine = "io_uring"`, `--engine io_uring`):
//! a prototype measured against the epoll engine (issue 22, docs/benchmarks.md).
//!
//! One thread per core owns its share of the connections and of the schedule
//! ([`pacer::Pool`]), as the epoll engine does, but with no runtime: one ring per
//! thread, and one `io_uring_enter` per wake-up that submits what the wake-up
//! decided (sends, receives, connects, closes) and waits, with a timeout, for the
//! next completion or slot. A receive stays posted on every kept connection, so
//! the look for a close or stray bytes before reuse costs no system call.
//!
//! The schedule, the samples, the counters and the response parser are the epoll
//! engine's: every outcome class comes out the same (the fault tests run on both).
//! It covers plain HTTP/1.1 over TCP, fresh and keep-alive, open loop;
//! [`unsupported`] names what it does not do, and the run falls back to epoll.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use io_uring::{opcode, types, IoUring};

use super::client::{looks_like_http, Failed, Idle, ReadSpec, Reply};
use super::response::{head_end, parse_head, BodyDecoder, HeadError, MAX_HEAD};
use super::{
    judge, mix, next_conn_id, pacer, Batch, Clock, Cut, Endpoint, LoadSpec, Mode, Outcome, Reuse,
    Sample, WorkerCounters, BATCH_EVERY, NO_CONN, NO_VERSION,
};
use crate::stats::outcome::Stage;
use crate::stats::versions::VersionCache;

/// Bytes one receive may bring (the epoll engine reads as much at a time).
const RECV_LEN: usize = 16 * 1024;
/// The longest a thread waits in the kernel without looking at the stop and abort flags.
const MAX_WAIT_NS: u64 = 20_000_000;
/// Test hook: when set (to `EPERM`, `ENOSYS` or anything), ring setup fails as a
/// kernel or seccomp policy without io_uring makes it fail.
pub const FORCE_FAIL_ENV: &str = "ZDT_IO_URING_FORCE_FAIL";
/// Benchmark knob: the ring's setup, `deferred` (the default: single issuer, task
/// work deferred to the wait), `coop` (cooperative task work) or `plain`.
pub const SETUP_ENV: &str = "ZDT_IO_URING_SETUP";

const OP_CONNECT: u64 = 1;
const OP_SEND: u64 = 2;
const OP_RECV: u64 = 3;
const OP_CLOSE: u64 = 4;

/// What the io_uring engine cannot run: the reason, or None.
pub fn unsupported(spec: &LoadSpec) -> Option<String> {
    if spec.mode == Mode::Closed {
        return Some("it paces open loop only (closed loop runs on epoll)".into());
    }
    if !matches!(spec.target.endpoint, Endpoint::Tcp(_)) {
        return Some("unix-socket targets are not supported".into());
    }
    if spec.target.tls.is_some() {
        return Some("https targets are not supported".into());
    }
    if let Some(k) = spec.mix.kinds.iter().find(|k| k.protocol.is_h2()) {
        return Some(format!(
            "request kind `{}` speaks HTTP/2 (not supported)",
            k.name
        ));
    }
    if let Some(k) = spec.mix.kinds.iter().find(|k| k.upload.is_some()) {
        return Some(format!(
            "request kind `{}` uploads slowly (not supported)",
            k.name
        ));
    }
    let kinds = &spec.mix.kinds;
    if kinds.iter().any(|k| k.keep_alive) && kinds.iter().any(|k| !k.keep_alive) {
        return Some("a mix of keep-alive and fresh-connection kinds is not supported".into());
    }
    None
}

/// A ring for one load thread, or why the kernel refused one (EPERM, ENOSYS: no
/// io_uring here, or a seccomp policy forbids it).
pub fn ring(connections: usize) -> std::io::Result<IoUring> {
    if let Ok(v) = std::env::var(FORCE_FAIL_ENV) {
        let errno = if v == "ENOSYS" {
            libc::ENOSYS
        } else {
            libc::EPERM
        };
        return Err(std::io::Error::from_raw_os_error(errno));
    }
    let entries = (4 * connections + 16).next_power_of_two().max(64) as u32;
    // Completions are processed only when the thread waits for them (no interrupts
    // while it works); the ring starts disabled so that the load thread, not this
    // one, becomes its single issuer. A kernel older than 6.1 gets a plain ring.
    // SETUP_ENV=plain or coop: the variants measured against it (docs/benchmarks.md).
    let mut b = IoUring::builder();
    match std::env::var(SETUP_ENV).as_deref() {
        Ok("plain") => {}
        Ok("coop") => {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }
        _ => {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_r_disabled();
        }
    }
    match b.build(entries) {
        Ok(ring) => Ok(ring),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::new(entries),
        Err(e) => Err(e),
    }
}

/// One socket and the memory its operations point at (kept until the last of its
/// operations completes, even after the connection is dropped).
struct Sock {
    fd: RawFd,
    /// Unique on its thread: operations carry it, so late completions find their socket.
    gen: u64,
    /// Operations submitted and not completed.
    pending: u32,
    /// A receive is posted.
    recv_posted: bool,
    rbuf: Box<[u8]>,
    addr: Box<libc::sockaddr_storage>,
    addr_len: libc::socklen_t,
    /// Completed exchanges on this connection.
    served: u64,
    /// What a receive posted while the connection sat idle saw: bytes (> 0) or a close.
    idle: Option<i32>,
    /// Connection id and when it was opened (exposure).
    meta: (u32, u64),
}

/// Where an exchange is.
enum Phase {
    Connecting,
    /// Sending from this offset of the request.
    Sending(usize),
    Head {
        searched: usize,
    },
    Body {
        head_len: usize,
        at: usize,
        reply: Reply,
        body: BodyDecoder,
    },
}

/// The request a connection carries.
struct Exchange {
    kind: usize,
    scheduled_ns: u64,
    sent_ns: u64,
    deadline_ns: u64,
    connect_deadline_ns: u64,
    phase: Phase,
    /// The request went out whole (a receive may complete before the send's completion).
    sent: bool,
    received: usize,
    reused: bool,
    used: (u32, u64),
}

/// One connection of the thread (the epoll engine's `Worker`).
struct Conn {
    counters: Arc<WorkerCounters>,
    rng: mix::Rng,
    /// The kept connection, or the fresh one of the exchange in flight.
    sock: Option<Box<Sock>>,
    /// `sock` is kept for the next request (keep-alive kind).
    kept: bool,
    ex: Option<Exchange>,
    held: Option<Sample>,
    /// The response read so far (as `Conn::exchange` keeps it).
    buf: Vec<u8>,
}

/// Everything a thread's loop works with.
struct LoadThread {
    ring: IoUring,
    spec: Arc<LoadSpec>,
    clock: Clock,
    read: ReadSpec,
    versions: VersionCache,
    batch: Batch,
    conns: Vec<Conn>,
    /// Sockets dropped with operations still in flight.
    graveyard: Vec<Sock>,
    spare: Vec<Box<[u8]>>,
    next_gen: u64,
}

/// Runs one load thread of the io_uring engine until its share of the schedule is
/// done (stopped, queue empty, nothing in flight) or the run is aborted.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_thread(
    ring: IoUring,
    spec: Arc<LoadSpec>,
    clock: Clock,
    own: usize,
    pool: Arc<pacer::Pool>,
    stop: Arc<pacer::Stop>,
    abort: crate::cancel::Cancel,
    conns: Vec<(Arc<WorkerCounters>, mix::Rng)>,
    versions: VersionCache,
    batch: Batch,
) {
    let read = ReadSpec {
        version_header: spec.version.header.clone(),
        keep_body: spec.version.body_regex.is_some(),
        want_echo: false,
        head_request: false,
    };
    // A ring set up disabled (single issuer) is enabled by the thread that uses it; a
    // plain ring says EINVAL or EBADFD here, and is already enabled.
    let _ = ring.submitter().register_enable_rings();
    let mut e = LoadThread {
        ring,
        spec,
        clock,
        read,
        versions,
        batch,
        conns: conns
            .into_iter()
            .map(|(counters, rng)| Conn {
                counters,
                rng,
                sock: None,
                kept: false,
                ex: None,
                held: None,
                buf: Vec::with_capacity(2 * RECV_LEN),
            })
            .collect(),
        graveyard: Vec::new(),
        spare: Vec::new(),
        next_gen: 1,
    };
    e.run(own, &pool, &stop, &abort);
    e.end();
}

impl LoadThread {
    fn run(
        &mut self,
        own: usize,
        pool: &pacer::Pool,
        stop: &pacer::Stop,
        abort: &crate::cancel::Cancel,
    ) {
        let share = pool.share(own);
        let mut next_flush = self.clock.now_ns() + BATCH_EVERY.as_nanos() as u64;
        let mut closed = false;
        let mut cqes: Vec<(u64, i32)> = Vec::with_capacity(256);
        loop {
            cqes.clear();
            cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
            for &(ud, res) in &cqes {
                self.complete(ud, res);
            }
            let now = self.clock.now_ns();
            self.expire(now);
            if abort.is_cancelled() {
                return;
            }
            if !closed {
                pool.release(own, now, stop.at_ns());
                if stop.is_stopped() {
                    pool.release(own, self.clock.now_ns(), stop.at_ns());
                    pool.close(own);
                    closed = true;
                }
            }
            let mut idle = false;
            for i in 0..self.conns.len() {
                if self.conns[i].ex.is_some() {
                    continue;
                }
                match pool.take(own, self.clock) {
                    Some(at) => self.start(i, at),
                    None => {
                        idle = true;
                        break;
                    }
                }
            }
            let busy = self.conns.iter().any(|c| c.ex.is_some());
            if closed && !busy && idle {
                return;
            }
            if now >= next_flush {
                self.batch.flush();
                next_flush = now + BATCH_EVERY.as_nanos() as u64;
                if own == 0 && now > 500_000_000 {
                    crate::error::test_panic_point("load-thread");
                }
            }
            // Wait for a completion, the next slot, the next deadline or the flush.
            let now = self.clock.now_ns();
            let mut wake = next_flush.min(now + MAX_WAIT_NS);
            if !closed {
                let next = share.first_ns() + share.released() * share.interval_ns();
                wake = wake.min(next);
            }
            for c in &self.conns {
                if let Some(x) = &c.ex {
                    wake = wake.min(x.deadline_ns);
                    if matches!(x.phase, Phase::Connecting) {
                        wake = wake.min(x.connect_deadline_ns);
                    }
                }
            }
            let wait = wake.saturating_sub(self.clock.now_ns());
            let ts = types::Timespec::new()
                .sec(wait / 1_000_000_000)
                .nsec((wait % 1_000_000_000) as u32);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(_) => return,
            }
        }
    }

    /// Queues `entry`, submitting first if the queue is full.
    fn push(&mut self, entry: io_uring::squeue::Entry) {
        loop {
            // SAFETY: every pointer in the entries this module builds points into a
            // `Sock` (boxed, kept until its last operation completes) or into the
            // request bytes of the run's `LoadSpec` (alive for the whole thread).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            let _ = self.ring.submit();
        }
    }

    fn new_sock(&mut self) -> Result<Box<Sock>, Outcome> {
        let Endpoint::Tcp(addr) = &self.spec.target.endpoint else {
            return Err(Outcome::ConnectOther);
        };
        let (storage, len) = sockaddr(addr);
        let family = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: socket takes no pointers.
        let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Outcome::from_connect_error(&std::io::Error::last_os_error()));
        }
        let one: libc::c_int = 1;
        // SAFETY: `one` outlives the call and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let gen = self.next_gen;
        self.next_gen += 1;
        Ok(Box::new(Sock {
            fd,
            gen,
            pending: 0,
            recv_posted: false,
            rbuf: self
                .spare
                .pop()
                .unwrap_or_else(|| vec![0u8; RECV_LEN].into_boxed_slice()),
            addr: Box::new(storage),
            addr_len: len,
            served: 0,
            idle: None,
            meta: (NO_CONN, 0),
        }))
    }

    fn ud(conn: usize, gen: u64, op: u64) -> u64 {
        ((conn as u64) << 48) | (gen << 8) | op
    }

    fn post_recv(&mut self, i: usize) {
        let Some(s) = self.conns[i].sock.as_mut() else {
            return;
        };
        if s.recv_posted {
            return;
        }
        s.recv_posted = true;
        s.pending += 1;
        let e = opcode::Recv::new(types::Fd(s.fd), s.rbuf.as_mut_ptr(), RECV_LEN as u32)
            .build()
            .user_data(Self::ud(i, s.gen, OP_RECV));
        self.push(e);
    }

    fn post_send(&mut self, i: usize, from: usize) {
        let Some(x) = &self.conns[i].ex else { return };
        let bytes = &self.spec.mix.kinds[x.kind].bytes[from..];
        let (ptr, len) = (bytes.as_ptr(), bytes.len() as u32);
        let Some(s) = self.conns[i].sock.as_mut() else {
            return;
        };
        s.pending += 1;
        let e = opcode::Send::new(types::Fd(s.fd), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Self::ud(i, s.gen, OP_SEND));
        self.push(e);
    }

    /// Connection `i` takes the slot scheduled at `scheduled_ns`.
    fn start(&mut self, i: usize, scheduled_ns: u64) {
        let sent_ns = self.clock.now_ns();
        let spec = self.spec.clone();
        let c = &mut self.conns[i];
        c.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        c.counters.sent.fetch_add(1, Ordering::Relaxed);
        c.counters.sent_at_ns.store(sent_ns, Ordering::Relaxed);
        let kind = spec.mix.draw(&mut c.rng);
        let keep_alive = spec.mix.kinds[kind].keep_alive;
        if keep_alive {
            self.settle(i);
        }
        let c = &mut self.conns[i];
        c.buf.clear();
        if let Some(d) = c.counters.drawn.get(kind) {
            c.counters.kind.store(kind, Ordering::Relaxed);
            d.fetch_add(1, Ordering::Relaxed);
        }
        let timeout = spec.timeout.as_nanos() as u64;
        let mut x = Exchange {
            kind,
            scheduled_ns,
            sent_ns,
            deadline_ns: sent_ns.saturating_add(timeout),
            connect_deadline_ns: u64::MAX,
            phase: Phase::Sending(0),
            sent: false,
            received: 0,
            reused: false,
            used: (NO_CONN, 0),
        };
        // A fresh kind never uses the kept connection (nor drops it).
        if let (true, Some(s)) = (keep_alive, c.sock.as_mut()) {
            x.reused = s.served > 0;
            x.used = s.meta;
            c.kept = true;
            c.ex = Some(x);
            self.post_send(i, 0);
            self.post_recv(i);
            return;
        }
        let opened_ns = self.clock.now_ns();
        x.connect_deadline_ns = opened_ns.saturating_add(spec.connect_timeout.as_nanos() as u64);
        x.phase = Phase::Connecting;
        match self.new_sock() {
            Ok(mut s) => {
                s.meta = (next_conn_id(), opened_ns);
                x.used = s.meta;
                s.pending += 1;
                let e = opcode::Connect::new(
                    types::Fd(s.fd),
                    (&*s.addr as *const libc::sockaddr_storage).cast(),
                    s.addr_len,
                )
                .build()
                .user_data(Self::ud(i, s.gen, OP_CONNECT));
                let c = &mut self.conns[i];
                c.sock = Some(s);
                c.kept = keep_alive;
                c.ex = Some(x);
                self.push(e);
            }
            Err(o) => {
                let c = &mut self.conns[i];
                c.ex = Some(x);
                self.finish(i, o, NO_VERSION, Cut::NONE);
            }
        }
    }

    /// Before the kept connection carries another request: what its posted receive
    /// saw while it sat idle (the epoll engine's `settle`, without a system call).
    fn settle(&mut self, i: usize) {
        let reuse = self.spec.reuse;
        let c = &mut self.conns[i];
        let idle = c.sock.as_ref().map(|s| match s.idle {
            None => Idle::Open,
            Some(n) if n > 0 => Idle::Stray,
            Some(_) => Idle::Closed,
        });
        match idle {
            Some(Idle::Stray) => {
                if let Some(s) = c.held.as_mut() {
                    s.outcome = Outcome::ProtocolError;
                    s.version = NO_VERSION;
                }
                self.drop_sock(i);
            }
            Some(Idle::Closed) if reuse == Reuse::Pooled => {
                c.counters.stale_closes.fetch_add(1, Ordering::Relaxed);
                self.drop_sock(i);
            }
            Some(Idle::Closed) => {
                // Naive reuse: the next request goes out on it and fails as the close says.
                if let Some(s) = c.sock.as_mut() {
                    s.idle = None;
                }
            }
            _ => {}
        }
        if let Some(s) = self.conns[i].held.take() {
            self.batch.push(s);
        }
    }

    /// Drops connection `i`'s socket: closed now if nothing of it is in flight, else
    /// shut down (its operations end at once) and closed with its last completion.
    fn drop_sock(&mut self, i: usize) {
        let Some(s) = self.conns[i].sock.take() else {
            return;
        };
        self.bury(*s);
    }

    /// Closes `s` (through the ring) once none of its operations is in flight.
    fn bury(&mut self, s: Sock) {
        if s.pending == 0 {
            let e = opcode::Close::new(types::Fd(s.fd))
                .build()
                .user_data(OP_CLOSE);
            self.push(e);
            self.spare.push(s.rbuf);
        } else {
            // SAFETY: shutdown takes no pointers; the fd is ours until closed.
            unsafe { libc::shutdown(s.fd, libc::SHUT_RDWR) };
            self.graveyard.push(s);
        }
    }

    fn complete(&mut self, ud: u64, res: i32) {
        let op = ud & 0xff;
        if op == OP_CLOSE {
            return;
        }
        let i = (ud >> 48) as usize;
        let gen = (ud >> 8) & ((1 << 40) - 1);
        let live = self.conns[i].sock.as_ref().is_some_and(|s| s.gen == gen);
        if !live {
            if let Some(at) = self.graveyard.iter().position(|s| s.gen == gen) {
                let s = &mut self.graveyard[at];
                s.pending -= 1;
                if s.pending == 0 {
                    let s = self.graveyard.swap_remove(at);
                    self.bury(s);
                }
            }
            return;
        }
        {
            let s = self.conns[i].sock.as_mut().expect("live");
            s.pending -= 1;
            if op == OP_RECV {
                s.recv_posted = false;
            }
        }
        match op {
            OP_CONNECT => {
                if res < 0 {
                    let e = std::io::Error::from_raw_os_error(-res);
                    self.drop_sock(i);
                    self.finish(i, Outcome::from_connect_error(&e), NO_VERSION, Cut::NONE);
                } else if let Some(x) = self.conns[i].ex.as_mut() {
                    x.phase = Phase::Sending(0);
                    self.post_send(i, 0);
                    self.post_recv(i);
                }
            }
            OP_SEND => {
                let Some(x) = self.conns[i].ex.as_mut() else {
                    return;
                };
                let Phase::Sending(from) = x.phase else {
                    // The response began before the send's completion was seen.
                    x.sent = true;
                    return;
                };
                let total = self.spec.mix.kinds[x.kind].bytes.len();
                if res < 0 {
                    let o = Outcome::cut(0, x.reused);
                    self.drop_sock(i);
                    self.finish(i, o, NO_VERSION, Cut::NONE);
                } else if from + res as usize >= total {
                    x.sent = true;
                    x.phase = Phase::Head { searched: 0 };
                } else {
                    let from = from + res as usize;
                    x.phase = Phase::Sending(from);
                    self.post_send(i, from);
                }
            }
            OP_RECV => self.received(i, res),
            _ => {}
        }
    }

    /// A receive on connection `i`'s live socket completed with `res`.
    fn received(&mut self, i: usize, res: i32) {
        let c = &mut self.conns[i];
        let Some(x) = c.ex.as_mut() else {
            // Idle: the close or stray bytes are judged at the next request.
            if let Some(s) = c.sock.as_mut() {
                s.idle = Some(if res > 0 { res } else { 0 });
            }
            return;
        };
        if matches!(x.phase, Phase::Connecting) {
            return;
        }
        if matches!(x.phase, Phase::Sending(_)) {
            if res <= 0 {
                // Closed before the request was read: a reset (no response byte).
                let o = Outcome::cut(0, x.reused);
                self.drop_sock(i);
                self.finish(i, o, NO_VERSION, Cut::NONE);
                return;
            }
            x.phase = Phase::Head { searched: 0 };
        }
        if res <= 0 {
            self.ended(i, res);
            return;
        }
        let n = res as usize;
        x.received = x.received.saturating_add(n);
        let s = c.sock.as_ref().expect("live");
        c.buf.extend_from_slice(&s.rbuf[..n]);
        match self.parse(i) {
            Some(r) => self.done(i, r),
            None => self.post_recv(i),
        }
    }

    /// The server closed (0) or reset (< 0) connection `i` mid-exchange.
    fn ended(&mut self, i: usize, res: i32) {
        let x = self.conns[i].ex.as_mut().expect("in flight");
        let r = match &mut x.phase {
            Phase::Head { .. } => Err(match x.received {
                0 => Outcome::cut(0, x.reused).into(),
                n => Failed {
                    outcome: Outcome::Truncated,
                    cut: Cut::at(n, 0, Stage::Head),
                },
            }),
            Phase::Body { body, reply, .. } => {
                if res == 0 && body.until_close() {
                    let mut reply = std::mem::take(reply);
                    reply.reusable = false;
                    Ok(reply)
                } else {
                    let stage = if body.is_chunked() {
                        Stage::Chunked
                    } else {
                        Stage::Body
                    };
                    Err(Failed {
                        outcome: Outcome::Truncated,
                        cut: Cut::at(x.received, body.chunks(), stage),
                    })
                }
            }
            _ => Err(Outcome::cut(0, x.reused).into()),
        };
        self.done(i, r);
    }

    /// Advances connection `i`'s response with what `buf` holds (as `Conn::exchange`
    /// reads it): the end, or None for more bytes.
    fn parse(&mut self, i: usize) -> Option<Result<Reply, Failed>> {
        let c = &mut self.conns[i];
        let x = c.ex.as_mut().expect("in flight");
        let kind = &self.spec.mix.kinds[x.kind];
        self.read.want_echo = kind.echo.is_some();
        self.read.head_request = kind.method == "HEAD";
        let buf = &mut c.buf;
        if let Phase::Head { searched } = &mut x.phase {
            loop {
                if let Some(end) = head_end(buf, *searched) {
                    match parse_head(&buf[..end], &self.read) {
                        Ok(Some((head_len, reply, framing))) => {
                            x.phase = Phase::Body {
                                head_len,
                                at: head_len,
                                reply,
                                body: BodyDecoder::new(&framing),
                            };
                            break;
                        }
                        Err(HeadError::Interim) => {
                            buf.drain(..end);
                            *searched = 0;
                            continue;
                        }
                        Ok(None) | Err(HeadError::NotHttp) => {
                            return Some(Err(Outcome::ProtocolError.into()))
                        }
                    }
                }
                if !looks_like_http(buf) {
                    return Some(Err(Outcome::ProtocolError.into()));
                }
                if buf.len() > MAX_HEAD {
                    return Some(Err(Outcome::Oversize.into()));
                }
                *searched = buf.len();
                return None;
            }
        }
        let Phase::Body {
            head_len,
            at,
            reply,
            body,
        } = &mut x.phase
        else {
            return None;
        };
        let keep = self.read.keep_body.then_some(&mut reply.body);
        match body.feed(&buf[*at..], keep) {
            Ok(used) => *at += used,
            Err(e) => return Some(Err(e.outcome().into())),
        }
        if body.is_done() {
            reply.trailing = *at < buf.len();
            return Some(Ok(std::mem::take(reply)));
        }
        buf.truncate(*head_len);
        *at = *head_len;
        None
    }

    /// Connection `i`'s exchange ended with `r`.
    fn done(&mut self, i: usize, r: Result<Reply, Failed>) {
        let spec = self.spec.clone();
        let x = self.conns[i].ex.as_ref().expect("in flight");
        let kind = &spec.mix.kinds[x.kind];
        let (o, v, cut) = match r {
            Err(f) => {
                self.drop_sock(i);
                (f.outcome, NO_VERSION, f.cut)
            }
            Ok(reply) => {
                if let Some(s) = self.conns[i].sock.as_mut() {
                    s.served += 1;
                }
                if reply.trailing && kind.keep_alive && reply.reusable {
                    // Bytes after the response on a connection kept for the next request.
                    self.drop_sock(i);
                    (Outcome::ProtocolError, NO_VERSION, Cut::NONE)
                } else {
                    if !(kind.keep_alive && reply.reusable) {
                        self.drop_sock(i);
                    }
                    let version = reply.version(&self.conns[i].buf);
                    judge(
                        &spec,
                        kind,
                        &mut self.versions,
                        reply.status,
                        version,
                        &reply.body,
                        reply.echo,
                    )
                }
            }
        };
        self.finish(i, o, v, cut);
    }

    /// Records connection `i`'s exchange: held while its kept connection stays open
    /// (stray bytes before the next request make it a `protocol_error`).
    fn finish(&mut self, i: usize, outcome: Outcome, version: u16, cut: Cut) {
        let done_ns = self.clock.now_ns();
        let c = &mut self.conns[i];
        let Some(x) = c.ex.take() else { return };
        let keep_alive = self.spec.mix.kinds[x.kind].keep_alive;
        if outcome == Outcome::Timeout && keep_alive {
            self.drop_sock(i);
        }
        let c = &mut self.conns[i];
        let sample = Sample {
            scheduled_ns: x.scheduled_ns,
            sent_ns: x.sent_ns,
            done_ns,
            outcome,
            version,
            cut,
            kind: x.kind as u8,
            conn: x.used.0,
            conn_opened_ns: x.used.1,
        };
        c.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if keep_alive && c.sock.is_some() {
            c.held = Some(sample);
            // Watch the idle connection for a close or stray bytes.
            if let Some(s) = c.sock.as_mut() {
                s.idle = None;
            }
            self.post_recv(i);
        } else {
            self.batch.push(sample);
        }
    }

    /// Ends every exchange past its deadline as a timeout (connect ones past the
    /// connect limit as `connect_timeout`).
    fn expire(&mut self, now: u64) {
        for i in 0..self.conns.len() {
            let Some(x) = &self.conns[i].ex else { continue };
            let connecting = matches!(x.phase, Phase::Connecting);
            if connecting && now >= x.connect_deadline_ns {
                self.drop_sock(i);
                self.finish(i, Outcome::ConnectTimeout, NO_VERSION, Cut::NONE);
            } else if now >= x.deadline_ns {
                if !self.spec.mix.kinds[x.kind].keep_alive || connecting {
                    self.drop_sock(i);
                }
                self.finish(i, Outcome::Timeout, NO_VERSION, Cut::NONE);
            }
        }
    }

    /// The thread ends: held samples settled (what is in flight stays hung), every
    /// socket shut down, and the ring kept until their operations complete (or,
    /// after a second, leaked with their memory rather than freed under the kernel).
    fn end(mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].ex.is_none() {
                if self.conns[i].held.is_some() {
                    self.settle(i);
                }
                self.drop_sock(i);
            } else {
                // Hung: counted by the in-flight counter, never recorded.
                self.conns[i].ex = None;
                self.drop_sock(i);
            }
        }
        self.batch.flush();
        let _ = self.ring.submit();
        let give_up = self.clock.now_ns() + 1_000_000_000;
        while !self.graveyard.is_empty() && self.clock.now_ns() < give_up {
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            let cqes: Vec<(u64, i32)> = self
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result()))
                .collect();
            for (ud, res) in cqes {
                self.complete(ud, res);
            }
        }
        let _ = self.ring.submit_and_wait(0);
        if !self.graveyard.is_empty() {
            std::mem::forget(std::mem::take(&mut self.graveyard));
            std::mem::forget(self.ring);
        }
    }
}

/// `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_convert_with_port_and_address_in_network_order() {
        let (s, len) = sockaddr(&"127.0.0.2:8080".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in>());
        // SAFETY: `sockaddr` wrote a sockaddr_in at the start of the storage.
        let sin: libc::sockaddr_in =
            unsafe { std::ptr::read((&s as *const libc::sockaddr_storage).cast()) };
        assert_eq!(sin.sin_family as i32, libc::AF_INET);
        assert_eq!(u16::from_be(sin.sin_port), 8080);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [127, 0, 0, 2]);
        let (s, len) = sockaddr(&"[::1]:443".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
        assert_eq!(s.ss_family as i32, libc::AF_INET6);
    }

    #[test]
    fn a_forced_setup_failure_is_the_errno_a_kernel_without_io_uring_gives() {
        // The env var is read by `ring` only; set and removed here (no other test sets it).
        std::env::set_var(FORCE_FAIL_ENV, "ENOSYS");
        let e = ring(4).map(|_| ()).unwrap_err();
        std::env::remove_var(FORCE_FAIL_ENV);
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS));
    }
}
