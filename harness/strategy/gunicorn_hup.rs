//! gunicorn HUP: write the new version, send SIGHUP to the master. The master
//! re-reads its config, forks N new workers (each imports the app afresh), and at
//! once sends SIGTERM to the old ones, which finish what they hold and exit. The
//! listening socket stays open throughout, so nothing is refused; but with sync
//! workers the old ones are gone before the new ones have imported, and requests
//! wait in the backlog for about one import time (latency ≈ import time).
//!
//! Knowing it is done: the N new workers report ready (their `post_worker_init`
//! datagram, from pids that were not workers before the HUP) and the old worker
//! pids are gone. That holds with `--preload` too, where the new workers are
//! ready at once; polling `/_status` for the new version would not (it never
//! comes). Done badly: with `--preload` the app lives in the master and the new
//! workers fork from it, so a HUP "succeeds" without a single error and never
//! changes the code (the negative control, caught by `new_version_took_over`).

use crate::config::OptionDoc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::rolling_kill::{master_alive, start_gunicorn};
use super::{Build, Ctx, Spec, Strategy};
use crate::app::gunicorn::{drain_ready, wait_ready_where};
use crate::app::{python, Instance, StopHow};
use crate::error::{Error, Result};
use crate::load::Target;
use crate::sys::procfs::proc_children;

/// `[reload]` options of gunicorn-hup: none of its own. `step_timeout`: the longest the new
/// workers may take to report ready and the old ones to exit (default `app.ready_timeout`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl Spec for GunicornHup {
    const NAME: &'static str = "gunicorn-hup";
    const SUMMARY: &'static str = "write the new version and send SIGHUP to the gunicorn master: it forks new workers and at once stops the old ones; the listening socket stays open";
    const OPTIONS: &'static [OptionDoc] = &[];
    const APP_KINDS: &'static [&'static str] = &["gunicorn"];
    type Options = Options;

    fn build(_: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(GunicornHup::new(b.step_timeout))
    }
}

/// The gunicorn-hup strategy.
pub struct GunicornHup {
    step_timeout: Option<Duration>,
    inst: Option<Instance>,
}

impl GunicornHup {
    /// A HUP reload; each step may take up to `step_timeout` (default `app.ready_timeout`).
    pub fn new(step_timeout: Option<Duration>) -> GunicornHup {
        GunicornHup {
            step_timeout,
            inst: None,
        }
    }
}

/// Waits until none of `pids` is a running child of `master`.
pub async fn wait_gone(master: i32, pids: &[i32], timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left: Vec<i32> = proc_children(master)
            .into_iter()
            .filter(|p| pids.contains(p))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Step(format!(
                "old workers {left:?} still running {timeout:?} after they were told to stop"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[async_trait]
impl Strategy for GunicornHup {
    fn name(&self) -> &'static str {
        "gunicorn-hup"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let inst = start_gunicorn(ctx, version).await?;
        let endpoint = inst.endpoint.clone();
        self.inst = Some(inst);
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let timeout = self.step_timeout.unwrap_or(ctx.app.config.ready_timeout.0);
        let n = *ctx.app.config.gunicorn()?.workers.get_ref() as usize;
        let Some(inst) = self.inst.as_mut() else {
            return Err(Error::Harness("gunicorn-hup: reload before start".into()));
        };
        master_alive(inst)?;
        let master = inst.child.pid();
        let t = ctx.steps.now_ms();
        let old = proc_children(master);
        if let Some(f) = &inst.version_file {
            python::write_version(f, version)?;
        }
        let ready = inst
            .ready_rx
            .as_ref()
            .ok_or_else(|| Error::Harness("gunicorn instance without a readiness socket".into()))?;
        drain_ready(ready);
        inst.child.signal(libc::SIGHUP);
        let new = wait_ready_where(ready, n, timeout, |w, m| m == master && !old.contains(&w))
            .await
            .map_err(|e| {
                Error::Step(format!(
                    "after SIGHUP: {e}\n--- last lines of the gunicorn log ---\n{}",
                    inst.child.log_tail(20)
                ))
            })?;
        let new: Vec<i32> = new.into_iter().map(|(w, _)| w).collect();
        ctx.steps.record_serving(
            "new workers ready",
            t,
            format!("SIGHUP to master {master}; new workers {new:?} reported ready"),
        );
        let t = ctx.steps.now_ms();
        wait_gone(master, &old, timeout).await?;
        ctx.steps
            .record_serving("old workers exited", t, format!("old workers {old:?} gone"));
        master_alive(inst)?;
        inst.set_version(version);
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.inst.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}
