//! gunicorn USR2 + TERM: write the new version, send SIGUSR2 to the master. It forks
//! and re-execs itself as a second master that inherits the listening socket (fds
//! in `GUNICORN_FD`), writes `<pidfile>.2`, and starts N workers of its own on the
//! new code, while the old master and its workers keep serving. Once the new
//! master's N workers have reported ready (their datagrams name the new master's
//! pid), the old master gets SIGTERM: it closes its copy of the socket without
//! unlinking it (it has a re-exec child), lets its workers finish what they hold,
//! and exits. The new master notices its parent is gone ("Master has been
//! promoted.") and renames `<pidfile>.2` over `<pidfile>`; only then does it accept
//! another USR2 (before that it ignores it: "Parent exists").
//!
//! Process bookkeeping: the new master is a child of the old master, in the same
//! process group, and is re-parented (to init or a subreaper) when the old one
//! exits, so the harness cannot wait for it. The original [`Child`](crate::sys::child::Child)
//! is kept for the whole run as the handle on the process group (its pid is gone,
//! the group lives on); the active master is tracked by pid (checked to still be in
//! that group before it is signalled) and stopped gracefully at shutdown, then the
//! group is killed so nothing is left.
//!
//! Done badly: TERM to the old master before the new workers are ready (requests
//! wait in the backlog through the import, or the socket vanishes if the new
//! master died), a relative gunicorn path (the re-exec runs from the original
//! cwd and dies with only a log line), or a second USR2 before the promotion.

use crate::config::OptionDoc;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::rolling_kill::{master_alive, start_gunicorn};
use super::{Build, Ctx, Spec, Strategy};
use crate::app::gunicorn::{drain_ready, wait_ready_where};
use crate::app::{python, Instance, StopHow};
use crate::error::{Error, Result};
use crate::load::Target;
use crate::sys::procfs::group_running;

/// `[reload]` options of gunicorn-usr2: none of its own. `step_timeout`: the longest the
/// new master's workers may take to report ready (default `app.ready_timeout`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl Spec for GunicornUsr2 {
    const NAME: &'static str = "gunicorn-usr2";
    const SUMMARY: &'static str = "write the new version and send SIGUSR2 to the gunicorn master: a second master inherits the socket and starts its workers, then the old master gets TERM";
    const OPTIONS: &'static [OptionDoc] = &[];
    const APP_KINDS: &'static [&'static str] = &["gunicorn"];
    type Options = Options;

    fn build(_: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(GunicornUsr2::new(b.step_timeout))
    }
}

/// The gunicorn-usr2 strategy.
pub struct GunicornUsr2 {
    step_timeout: Option<Duration>,
    inst: Option<Instance>,
    /// The master now in charge: the original child, or a promoted re-exec of it.
    master: i32,
}

impl GunicornUsr2 {
    /// A USR2 reload; each step may take up to `step_timeout` (default `app.ready_timeout`).
    pub fn new(step_timeout: Option<Duration>) -> GunicornUsr2 {
        GunicornUsr2 {
            step_timeout,
            inst: None,
            master: 0,
        }
    }
}

/// (ppid, pgid) of a running (not zombie) process.
fn proc_stat(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().take(3).collect();
    match f[..] {
        [state, ppid, pgid] if state != "Z" && state != "X" => {
            Some((ppid.parse().ok()?, pgid.parse().ok()?))
        }
        _ => None,
    }
}

/// Whether `pid` is running and a member of process group `pgid` (so it is ours to signal).
fn in_group(pid: i32, pgid: i32) -> bool {
    pid > 1 && proc_stat(pid).is_some_and(|(_, g)| g == pgid)
}

/// Sends `sig` to `pid` if it is a running member of `pgid`; returns whether it was sent.
fn signal_member(pid: i32, pgid: i32, sig: i32) -> bool {
    if !in_group(pid, pgid) {
        return false;
    }
    // SAFETY: kill(2) on a live process of the group this harness started.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The pid written in a pidfile.
fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits until `cond` holds, polling every 20 ms, for at most `timeout`.
async fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[async_trait]
impl Strategy for GunicornUsr2 {
    fn name(&self) -> &'static str {
        "gunicorn-usr2"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let inst = start_gunicorn(ctx, version).await?;
        let endpoint = inst.endpoint.clone();
        self.master = inst.child.pid();
        self.inst = Some(inst);
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let timeout = self.step_timeout.unwrap_or(ctx.app.config.ready_timeout.0);
        let stop_timeout = ctx.app.config.stop_timeout.0;
        let n = *ctx.app.config.gunicorn()?.workers.get_ref() as usize;
        let Some(inst) = self.inst.as_mut() else {
            return Err(Error::Harness("gunicorn-usr2: reload before start".into()));
        };
        let pgid = inst.child.pid();
        let old = self.master;
        if old == pgid {
            master_alive(inst)?;
        } else if !in_group(old, pgid) {
            return Err(inst.child.error(format!(
                "the gunicorn master {old} (promoted by an earlier USR2) is gone"
            )));
        }
        let pidfile = ctx.app.path(&format!("{}.pid", inst.slot));
        let pidfile2 = ctx.app.path(&format!("{}.pid.2", inst.slot));

        // 1. USR2; the new master's N workers report ready.
        let t = ctx.steps.now_ms();
        if let Some(f) = &inst.version_file {
            python::write_version(f, version)?;
        }
        let ready = inst
            .ready_rx
            .as_ref()
            .ok_or_else(|| Error::Harness("gunicorn instance without a readiness socket".into()))?;
        drain_ready(ready);
        if !signal_member(old, pgid, libc::SIGUSR2) {
            return Err(Error::Step(format!(
                "cannot signal the gunicorn master {old}"
            )));
        }
        let got = wait_ready_where(ready, n, timeout, |_, m| m != old && in_group(m, pgid))
            .await
            .map_err(|e| {
                Error::Step(format!(
                    "after SIGUSR2 to master {old}: the new master's workers: {e} (a re-exec that failed leaves only a log line)\n--- last lines of the gunicorn log ---\n{}",
                    inst.child.log_tail(20)
                ))
            })?;
        let new = got[0].1;
        if let Some(&(w, m)) = got.iter().find(|&&(_, m)| m != new) {
            return Err(Error::Step(format!(
                "workers of two new masters reported ready ({new} and {m}, worker {w})"
            )));
        }
        if read_pid(&pidfile2) != Some(new) {
            return Err(Error::Step(format!(
                "new master {new} is up but {} names {:?}",
                pidfile2.display(),
                read_pid(&pidfile2)
            )));
        }
        let workers: Vec<i32> = got.iter().map(|&(w, _)| w).collect();
        ctx.steps.record_serving(
            "new master ready",
            t,
            format!(
                "SIGUSR2 to master {old}; new master {new} (pid in {}), workers {workers:?} ready",
                pidfile2.display()
            ),
        );

        // 2. TERM the old master; it drains its workers and exits.
        let t = ctx.steps.now_ms();
        let wait = stop_timeout + Duration::from_secs(5);
        let how = if old == pgid {
            inst.child.signal(libc::SIGTERM);
            match inst.child.wait_exit(wait).await {
                Some(s) => format!("exited ({s})"),
                None => {
                    return Err(Error::Step(format!(
                        "old master {old} did not exit within {wait:?} of SIGTERM"
                    )))
                }
            }
        } else {
            signal_member(old, pgid, libc::SIGTERM);
            if !until(wait, || !in_group(old, pgid)).await {
                return Err(Error::Step(format!(
                    "old master {old} did not exit within {wait:?} of SIGTERM"
                )));
            }
            "exited".to_string()
        };
        ctx.steps
            .record_serving("old master stopped", t, format!("master {old}: {how}"));
        // From here on the new master is the one in charge (and the one shutdown stops).
        self.master = new;

        // 3. The new master takes over the pidfile (and will accept the next USR2).
        let t = ctx.steps.now_ms();
        let promoted = until(Duration::from_secs(5), || {
            read_pid(&pidfile) == Some(new) && !pidfile2.exists()
        })
        .await;
        if !promoted {
            return Err(Error::Step(format!(
                "new master {new} was not promoted: {} names {:?}",
                pidfile.display(),
                read_pid(&pidfile)
            )));
        }
        ctx.steps.record(
            "new master promoted",
            t,
            format!("{} renamed over {}", pidfile2.display(), pidfile.display()),
        );
        inst.set_version(version);
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        let Some(mut inst) = self.inst.take() else {
            return;
        };
        let pgid = inst.child.pid();
        let grace = ctx.app.config.stop_timeout.0;
        if self.master == pgid {
            // Never reloaded (or the reload failed before the hand-over): the original master
            // is our child. stop() TERMs it and then kills the group, a re-exec included.
            ctx.app.stop(&mut inst, StopHow::Drain).await;
            return;
        }
        // A promoted master: TERM it (graceful: its workers finish what they hold), and the
        // original master too if a failed reload left it running; wait for the whole group.
        inst.child.signal(libc::SIGTERM);
        signal_member(self.master, pgid, libc::SIGTERM);
        let _ = until(grace + Duration::from_secs(1), || {
            inst.child.try_exited();
            group_running(pgid).is_empty()
        })
        .await;
        // SIGKILL whatever is left of the group, reap the original child, forget the group.
        inst.child.kill().await;
    }
}
