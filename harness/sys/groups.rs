//! The registry of the process groups this harness started and that are not yet
//! known to be gone (and of the children not yet reaped), kept in step with the
//! reaper; signalling a group, and waiting until it has no process left.
//!
//! A process-wide registry of live groups lets the panic hook and the Ctrl-C
//! path kill whatever is still running: a run leaves nothing behind.

use std::sync::Mutex;
use std::time::Duration;

use super::procfs::group_running;

/// Process groups started by this harness and not yet known to be gone.
pub(super) static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Pids of the `Child`ren spawned here that tokio has not reaped yet: the orphan
/// sweep must neither signal nor reap them.
pub(super) static UNREAPED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Held from a spawn until its group is registered, and by the zombie reaper while it
/// scans and reaps: so the reaper never takes a child of ours for an adopted orphan.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Holds off the zombie reaper (see [`SPAWNING`]) until the guard drops.
pub(super) fn spawn_guard() -> std::sync::MutexGuard<'static, ()> {
    SPAWNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops `pid` from the unreaped pids: it has been reaped.
pub(super) fn forget_unreaped(pid: i32) {
    UNREAPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pid);
}

/// Registers group `pgid` (its leader unreaped) here and with the reaper.
pub(super) fn register(pgid: i32) {
    UNREAPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(pgid);
    super::reaper::note(true, pgid);
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(pgid);
}

/// Unregisters group `pgid`, here and with the reaper: it is gone.
pub(super) fn unregister(pgid: i32) {
    super::reaper::note(false, pgid);
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&g| g != pgid);
}

/// SIGKILLs every process group this harness started that is still registered.
/// Safe to call from a panic hook; does not wait.
pub fn kill_all_groups() {
    let groups = LIVE_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for g in groups {
        kill_group(g, libc::SIGKILL);
    }
}

/// Installs a panic hook that kills every child group, then says on one line which
/// thread panicked, where and why, as an internal error (the default hook's report,
/// with its backtrace, when `RUST_BACKTRACE` is set).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all_groups();
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default(info);
        }
        let thread = std::thread::current();
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {l}"));
        eprintln!(
            "zdt-check: internal error: thread '{}' panicked{at}: {} (this is a bug in zdt-check)",
            thread.name().unwrap_or("unnamed"),
            crate::error::panic_message(info.payload())
        );
    }));
}

/// Sends `sig` to process group `pgid` (never to group 0 or 1).
pub(super) fn kill_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Waits (bounded) until no process of group `pgid` is running: a SIGKILL sent to a
/// group takes effect asynchronously.
pub(super) async fn wait_group_gone(pgid: i32, timeout: Duration) {
    poll_until(timeout, || group_running(pgid).is_empty()).await;
}

/// Polls `done` every 20 ms for at most `timeout`.
pub(super) async fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
