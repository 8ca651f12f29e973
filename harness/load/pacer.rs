//! The open-loop pacer: issues request tickets at a fixed rate, on time.
//!
//! Tokio's timer has a 1 ms resolution, too coarse for rates above a few hundred
//! requests/s when latency is measured from the scheduled time. The pacer is a
//! plain thread with a 1 µs timer slack that sleeps until the next ticket is due
//! and releases every ticket whose time has come. A ticket carries its scheduled
//! time; a worker that takes it late still measures latency from that time
//! (coordinated-omission correction).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Clock, Shared};

/// The running pacer thread.
pub struct Pacer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Pacer {
    /// Starts issuing tickets (scheduled times, ns on `clock`) at `rate` per second.
    pub fn start(
        clock: Clock,
        rate: f64,
        shared: Arc<Shared>,
    ) -> std::io::Result<(Pacer, async_channel::Receiver<u64>)> {
        let (tx, rx) = async_channel::unbounded::<u64>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let interval_ns = 1e9 / rate.max(1e-3);
        let thread = std::thread::Builder::new()
            .name("zdt-pacer".into())
            .spawn(move || {
                // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer slack.
                unsafe {
                    libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
                }
                let mut issued: u64 = 0;
                while !flag.load(Ordering::Relaxed) {
                    let now = clock.now_ns();
                    // Release every ticket due by now.
                    while (issued as f64 * interval_ns) as u64 <= now {
                        let at = (issued as f64 * interval_ns) as u64;
                        shared.scheduled.fetch_add(1, Ordering::SeqCst);
                        if tx.send_blocking(at).is_err() {
                            return;
                        }
                        issued += 1;
                    }
                    let next = (issued as f64 * interval_ns) as u64;
                    let wait = next.saturating_sub(clock.now_ns());
                    // Wake at least every 10 ms to notice a stop.
                    std::thread::sleep(Duration::from_nanos(wait.min(10_000_000)));
                }
            })?;
        Ok((Pacer { stop, thread }, rx))
    }

    /// Stops issuing tickets and waits for the thread (it wakes within 10 ms).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
