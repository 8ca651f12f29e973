//! The open-loop pacer: each load thread paces its own share of the schedule.
//!
//! # Design
//!
//! A run has one current-thread runtime per load thread, each owning its share of
//! the connections. The schedule is split between them in proportion to their
//! connections: thread `t` with `c_t` of the `C` connections sends every
//! `C / (rate * c_t)` seconds, its first slot offset by `t / rate` so that the
//! threads interleave (with an even split, thread `t` of `T` gets slots
//! `t, t + T, t + 2T, ...` of the global schedule exactly).
//!
//! - **The clock is a timerfd in the runtime's own epoll** ([`AsyncFd`]), periodic
//!   at the thread's slot interval and aligned to its slots: the kernel fires it
//!   on time (no timer slack, sub-µs resolution, where tokio's timer rounds to
//!   1 ms). A wake-up costs one `read` of the expiry count (the read is what
//!   re-arms a periodic timerfd) besides the `epoll_wait` the runtime makes anyway.
//! - **A ticket is an index, not a message.** A [`Share`] counts slots released
//!   and slots taken; a worker that takes slot `k` computes its scheduled time
//!   from `k`. No allocation, no channel, no memory growth however far the
//!   connections fall behind, and a slot released while every connection is busy
//!   waits in the count (`queued`) exactly as a queued ticket did.
//! - **Idle workers wait on a [`Notify`]** of their own thread: waking one is a
//!   push onto the runtime's local run queue, with no futex and no eventfd write.
//! - **Every slot due is released per wake-up**, so a thread that was busy when
//!   the timer fired catches up in one batch instead of one wake-up per slot.
//! - **Threads help each other only when a slot is overdue.** A slot that waited
//!   [`HELP_AFTER_NS`] on its own thread (the thread was descheduled, or all of its
//!   connections were busy) is released and taken by another thread's pacer and
//!   workers, so any free connection still takes a waiting slot, as with one
//!   shared queue. Without this, p99 lateness at 20 000 req/s on a shared 2-core
//!   machine was 2-15 ms (vs 0.3-0.5 ms with it).
//!
//! Why: the previous design (one pacer thread releasing one ticket per request
//! onto a cross-thread channel) cost a timer sleep, a cross-thread futex wake and
//! an eventfd write to wake the receiving runtime per request: 7-8 system calls per
//! request at 2000 req/s, and up to 2x oha's CPU per request. Here a request
//! paced alone costs 5: the timer's `epoll_wait` and `read`, `sendto`, the
//! response's `epoll_wait` and `recvfrom`. That is also the floor for sends on
//! time to the µs: each request needs its own wake-up to be sent and another for
//! its response, and those two context switches are most of its CPU. Fewer
//! wake-ups means batching sends (oha's 1 ms timer does), which moves the median
//! send 0.5 ms off its schedule (see docs/benchmarks.md).
//!
//! Coordinated omission stays corrected: latency is measured from the slot's
//! scheduled time, however late a worker takes it.
//!
//! [`AsyncFd`]: tokio::io::unix::AsyncFd
//! [`Notify`]: tokio::sync::Notify

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;

use super::Clock;

/// How long a slot may wait on its own thread (unreleased, or released with every
/// connection of that thread busy) before another load thread takes it.
pub const HELP_AFTER_NS: u64 = 250_000;

/// One load thread's share of the open-loop schedule, and its queue of released
/// slots (two counts: slot `k` is due at `first_ns + k * interval_ns`).
#[derive(Debug)]
pub struct Share {
    first_ns: u64,
    interval_ns: u64,
    /// Connections on this thread: at most this many workers wait for a slot.
    workers: u64,
    released: AtomicU64,
    taken: AtomicU64,
    closed: AtomicBool,
    ready: Notify,
}

impl Share {
    /// Thread `index`'s share of `rate` requests/s, for `workers` of `connections`
    /// connections.
    pub fn new(rate: f64, index: usize, workers: usize, connections: usize) -> Share {
        let global_ns = 1e9 / rate.max(1e-3);
        let interval = global_ns * connections as f64 / workers.max(1) as f64;
        Share {
            first_ns: (global_ns * index as f64).round() as u64,
            interval_ns: (interval.round() as u64).max(1),
            workers: workers as u64,
            released: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            ready: Notify::new(),
        }
    }

    /// When the thread's first slot is due, ns on the load clock.
    pub fn first_ns(&self) -> u64 {
        self.first_ns
    }

    /// Time between two of the thread's slots, ns.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Slots released so far (requests scheduled on this thread's share).
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Acquire)
    }

    /// Slots released but not yet taken by a worker (queued).
    pub fn queued(&self) -> u64 {
        self.released() - self.taken.load(Ordering::Acquire)
    }

    /// When slot `k` is due, ns on the load clock.
    #[inline]
    fn at(&self, k: u64) -> u64 {
        self.first_ns + k * self.interval_ns
    }

    /// Slots due by `by_ns`, counted from the first.
    #[inline]
    fn due(&self, by_ns: u64) -> u64 {
        if by_ns < self.first_ns {
            0
        } else {
            (by_ns - self.first_ns) / self.interval_ns + 1
        }
    }

    /// Takes the oldest released slot if it is due by `by_ns`: its scheduled time.
    #[inline]
    fn take(&self, by_ns: u64) -> Option<u64> {
        let mut taken = self.taken.load(Ordering::Acquire);
        loop {
            if taken >= self.released.load(Ordering::Acquire) || self.at(taken) > by_ns {
                return None;
            }
            match self.taken.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(self.at(taken)),
                Err(now) => taken = now,
            }
        }
    }

    /// Releases every slot due by `by_ns`: how many are new.
    #[inline]
    fn release(&self, by_ns: u64) -> u64 {
        let due = self.due(by_ns);
        let before = self.released.fetch_max(due, Ordering::AcqRel);
        due.saturating_sub(before)
    }

    /// Released slots due by `by_ns` that nobody took yet.
    #[inline]
    fn waiting(&self, by_ns: u64) -> u64 {
        let released = self.released.load(Ordering::Acquire);
        let taken = self.taken.load(Ordering::Acquire);
        released.min(self.due(by_ns)).saturating_sub(taken)
    }
}

/// Every load thread's share: each thread paces and serves its own, and helps
/// with another's only when a slot there has waited [`HELP_AFTER_NS`] (its thread
/// is descheduled, or all of that thread's connections are busy).
#[derive(Debug)]
pub struct Pool {
    shares: Vec<Share>,
}

impl Pool {
    /// The schedule of `rate` requests/s split between threads with these many
    /// connections each.
    pub fn new(rate: f64, workers: &[usize]) -> Pool {
        let connections = workers.iter().sum();
        Pool {
            shares: workers
                .iter()
                .enumerate()
                .map(|(t, &w)| Share::new(rate, t, w, connections))
                .collect(),
        }
    }

    /// Thread `t`'s share.
    pub fn share(&self, t: usize) -> &Share {
        &self.shares[t]
    }

    /// Requests scheduled so far, all threads.
    pub fn released(&self) -> u64 {
        self.shares.iter().map(Share::released).sum()
    }

    /// Requests scheduled but never taken by a connection, all threads (read it
    /// once the load threads are gone).
    pub fn queued(&self) -> u64 {
        self.shares.iter().map(Share::queued).sum()
    }

    /// A slot for a worker of thread `own` (its scheduled time): its own thread's
    /// oldest, else one that waited too long on another thread.
    #[inline]
    pub(super) fn take(&self, own: usize, clock: Clock) -> Option<u64> {
        if let Some(at) = self.shares[own].take(u64::MAX) {
            return Some(at);
        }
        if self.shares.len() > 1 {
            let by = clock.now_ns().saturating_sub(HELP_AFTER_NS);
            for (t, s) in self.shares.iter().enumerate() {
                if t != own {
                    if let Some(at) = s.take(by) {
                        return Some(at);
                    }
                }
            }
        }
        None
    }

    /// The next slot for a worker of thread `own` (its scheduled time), waiting
    /// until one is released; `None` once the thread's scheduling stopped and its
    /// queue is empty.
    pub async fn next(&self, own: usize, clock: Clock) -> Option<u64> {
        let share = &self.shares[own];
        loop {
            if let Some(at) = self.take(own, clock) {
                return Some(at);
            }
            let ready = share.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(at) = self.take(own, clock) {
                return Some(at);
            }
            if share.closed.load(Ordering::Acquire) {
                return None;
            }
            ready.await;
        }
    }

    /// Thread `own`'s pacer wake-up: releases its slots due by `now_ns` (and before
    /// `stop_ns`), and those of other threads overdue by [`HELP_AFTER_NS`]; wakes as
    /// many of its idle workers as there are slots for them.
    pub(super) fn release(&self, own: usize, now_ns: u64, stop_ns: u64) {
        let share = &self.shares[own];
        let by = now_ns.min(stop_ns.saturating_sub(1));
        let mut fresh = share.release(by);
        if self.shares.len() > 1 {
            let late = by.saturating_sub(HELP_AFTER_NS);
            for (t, s) in self.shares.iter().enumerate() {
                if t != own {
                    s.release(late);
                    fresh += s.waiting(late);
                }
            }
        }
        for _ in 0..fresh.min(share.workers) {
            share.ready.notify_one();
        }
    }

    /// Thread `own` releases no more slots: its workers drain its queue, then stop.
    pub(super) fn close(&self, own: usize) {
        let share = &self.shares[own];
        share.closed.store(true, Ordering::Release);
        share.ready.notify_waiters();
    }
}

/// A periodic timerfd on `CLOCK_MONOTONIC` (the clock [`std::time::Instant`] reads),
/// registered in the current runtime's epoll.
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
}

impl Timer {
    /// A timer firing at `first_ns`, then every `interval_ns` (ns on `clock`). Must
    /// be called inside the runtime that will wait on it.
    pub fn periodic(clock: Clock, first_ns: u64, interval_ns: u64) -> io::Result<Timer> {
        // SAFETY: timerfd_create takes no pointers; a negative return is an error.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // The load clock's origin on CLOCK_MONOTONIC.
        let origin = monotonic_ns()?.saturating_sub(clock.now_ns());
        let spec = libc::itimerspec {
            it_interval: timespec(interval_ns),
            it_value: timespec((origin + first_ns).max(1)),
        };
        // SAFETY: `owned` is a valid timerfd; `spec` outlives the call; no old value asked for.
        let r = unsafe {
            libc::timerfd_settime(
                owned.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the AsyncFd owns `owned` (an OwnedFd) for its whole life, so the
        // descriptor stays open and the same until the registration is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Timer { fd })
    }

    /// Resolves at the next expiry (at once if one passed since the last call).
    async fn tick(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            // Reading the expiry count is what re-arms a periodic timerfd (the
            // kernel forwards it on read), so it cannot be skipped.
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into `count`, which outlives the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
            // The count is consumed: no longer readable until the next expiry's edge.
            guard.clear_ready();
            if n == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
        }
    }
}

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

fn monotonic_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Stops the pacers: slots scheduled from the stop on are never released.
#[derive(Debug)]
pub struct Stop {
    /// Slots at or after this time (ns on the load clock) are not released.
    at_ns: AtomicU64,
    flag: crate::cancel::Cancel,
}

impl Default for Stop {
    fn default() -> Stop {
        Stop {
            at_ns: AtomicU64::new(u64::MAX),
            flag: crate::cancel::Cancel::new(),
        }
    }
}

impl Stop {
    /// Stops scheduling at `at_ns`; pacers notice within microseconds.
    pub fn stop(&self, at_ns: u64) {
        let _ = self
            .at_ns
            .compare_exchange(u64::MAX, at_ns, Ordering::SeqCst, Ordering::SeqCst);
        self.flag.cancel();
    }

    /// Slots at or after this time (ns on the load clock) are not released.
    pub(super) fn at_ns(&self) -> u64 {
        self.at_ns.load(Ordering::SeqCst)
    }

    /// Whether scheduling was stopped.
    pub(super) fn is_stopped(&self) -> bool {
        self.flag.is_cancelled()
    }
}

/// Paces thread `own`'s share of `pool` until `stop`: releases its slots as they
/// fall due, then closes it. Runs as a task of that thread's runtime.
pub async fn pace(pool: Arc<Pool>, own: usize, timer: Timer, clock: Clock, stop: Arc<Stop>) {
    // Waits on the stop from one registration for the whole run (the Notify under
    // it is shared by every thread: registering per wake-up would share its lock).
    let stopped = stop.flag.cancelled();
    tokio::pin!(stopped);
    loop {
        // The clock is read before the stop: a stop raised after this read is later
        // than `now`, so no slot at or after the stop is ever released.
        let now = clock.now_ns();
        pool.release(own, now, stop.at_ns.load(Ordering::SeqCst));
        tokio::select! {
            biased;
            () = &mut stopped => break,
            r = timer.tick() => {
                if r.is_err() {
                    break;
                }
            }
        }
    }
    // Anything due before the stop is released now.
    let now = clock.now_ns();
    pool.release(own, now, stop.at_ns.load(Ordering::SeqCst));
    pool.close(own);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_even_split_interleaves_the_global_schedule() {
        // 1000 req/s over 2 threads of 32 connections: thread 0 at 0, 2, 4 ms, thread 1 at 1, 3, 5 ms.
        let pool = Pool::new(1000.0, &[32, 32]);
        assert_eq!(pool.share(0).first_ns(), 0);
        assert_eq!(pool.share(1).first_ns(), 1_000_000);
        assert_eq!(pool.share(0).interval_ns(), 2_000_000);
        assert_eq!(pool.share(1).interval_ns(), 2_000_000);
    }

    #[test]
    fn an_uneven_split_follows_the_connections() {
        // 300 req/s over 2 + 1 connections: 200 and 100 req/s.
        let pool = Pool::new(300.0, &[2, 1]);
        assert_eq!(pool.share(0).interval_ns(), 5_000_000);
        assert_eq!(pool.share(1).interval_ns(), 10_000_000);
    }

    #[test]
    fn slots_are_released_when_due_and_never_at_or_after_the_stop() {
        let pool = Pool::new(1000.0, &[1, 1]);
        let s = pool.share(0);
        pool.release(0, 4_999_999, u64::MAX);
        // Slots at 0, 2 and 4 ms.
        assert_eq!(s.released(), 3);
        pool.release(0, 100_000_000, 6_000_000);
        // The stop at 6 ms keeps the slot at 6 ms out.
        assert_eq!(s.released(), 3);
        assert_eq!(s.queued(), 3);
        // Thread 1's slots at 1, 3 and 5 ms were overdue for thread 0 to help with.
        assert_eq!(pool.released(), 6);
        assert_eq!(pool.queued(), 6);
    }

    #[test]
    fn a_slot_is_taken_once_with_its_scheduled_time() {
        let pool = Pool::new(1000.0, &[1, 1]);
        pool.release(0, 2_500_000, u64::MAX);
        let s = pool.share(0);
        assert_eq!(s.take(u64::MAX), Some(0));
        assert_eq!(s.take(u64::MAX), Some(2_000_000));
        assert_eq!(s.take(u64::MAX), None);
        assert_eq!(s.queued(), 0);
        // Thread 1's slot at 1 ms, overdue by 2.5 ms, was released for it and waits.
        assert_eq!(pool.released(), 3);
        assert_eq!(pool.queued(), 1);
    }

    #[test]
    fn another_thread_helps_only_with_overdue_slots() {
        let pool = Pool::new(1000.0, &[1, 1]);
        // Thread 1 never ran: at 1.2 ms its slot at 1 ms is not overdue yet...
        pool.release(0, 1_200_000, u64::MAX);
        assert_eq!(pool.share(1).released(), 0);
        // ...at 1.3 ms it has waited 300 µs, more than HELP_AFTER_NS: thread 0 releases it,
        // and takes it only once it is overdue by then too.
        pool.release(0, 1_300_000, u64::MAX);
        assert_eq!(pool.share(1).released(), 1);
        assert_eq!(pool.share(1).take(1_000_000 - 1), None);
        assert_eq!(
            pool.share(1).take(1_300_000 - HELP_AFTER_NS),
            Some(1_000_000)
        );
    }
}
