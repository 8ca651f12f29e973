//! Live progress while a scenario runs: the phase, elapsed time, current rate,
//! failures so far and the last reload step. One line rewritten in place on a
//! terminal; plain lines (one a second) when stderr is not a terminal or in CI.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::load::{Clock, Shared};

/// What the run is doing now, set by the run loop and read by the progress task.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<String>>);

impl Status {
    /// Sets the phase label (`warm-up`, `reload to v2`, `cool-down`, `grace`).
    pub fn set(&self, s: impl Into<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = s.into();
    }

    fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The running progress display; stop it with [`Progress::finish`].
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    tty: bool,
}

/// Starts the display for a run expected to take about `expected` of load.
pub fn start(
    name: String,
    shared: Arc<Shared>,
    clock: Clock,
    status: Status,
    last_step: Arc<Mutex<String>>,
    expected: Duration,
) -> Progress {
    let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let every = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let task = tokio::spawn(async move {
        let mut last_done = 0u64;
        let mut last_t = 0.0f64;
        loop {
            tokio::time::sleep(every).await;
            let t = clock.now_ns() as f64 / 1e9;
            let ok = shared.ok.load(Ordering::Relaxed);
            let failed = shared.failed.load(Ordering::Relaxed);
            let done = ok + failed;
            let rate = if t > last_t {
                (done - last_done) as f64 / (t - last_t)
            } else {
                0.0
            };
            (last_done, last_t) = (done, t);
            let step = last_step.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let step = if step.is_empty() {
                String::new()
            } else {
                format!("  last step: {step}")
            };
            let line = format!(
                "{name}: {:>5.1}s/~{:.0}s  {:<14} {:>7.0} req/s  ok {ok}  failed {failed}{step}",
                t,
                expected.as_secs_f64(),
                status.get(),
                rate
            );
            let mut err = std::io::stderr().lock();
            if tty {
                let _ = write!(err, "\r\x1b[K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
        }
    });
    Progress { task, tty }
}

impl Progress {
    /// Stops the display (and ends its line on a terminal).
    pub fn finish(self) {
        self.task.abort();
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
