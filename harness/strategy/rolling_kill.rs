//! Rolling kill (the seed's `restart.sh`): one gunicorn master with N workers on one
//! listening socket. A reload writes the new version, then kills the workers that
//! were serving when it began, one at a time, with SIGTERM (a gunicorn worker's
//! graceful exit: it stops accepting and finishes the request in hand). The master
//! forks a replacement, which imports the new code; the next worker is killed only
//! once the replacement has reported ready (its `post_worker_init` datagram). At
//! every moment N-1 workers accept: the capacity dips by 1/N, nothing is refused.
//!
//! Done badly (`wait_ready = false`): a fixed sleep instead of the readiness signal.
//! When the sleep is shorter than the app's import, the kills outrun the
//! replacements and, for a while, *no* worker accepts. The master still holds the
//! listening socket, so connections are not refused: they wait in its backlog until
//! a new worker has finished importing. Nothing fails; instead nothing succeeds for
//! about one import time (a `max_gap` breach, or timeouts if the import outlasts
//! the request timeout), and the strategy reports success long before the new
//! workers exist. SIGKILL instead of SIGTERM would also reset requests in flight;
//! with `--preload` the replacements would fork from the master's copy of the old
//! code and the new version would never serve.

use crate::config::OptionDoc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::gunicorn::{drain_ready, wait_ready_where, wait_workers_ready};
use crate::app::{python, Instance, StopHow};
use crate::config::Dur;
use crate::error::{Error, Result};
use crate::load::Target;
use crate::sys::procfs::proc_children;

/// `[reload]` options of rolling-kill. `step_timeout`: the longest a replacement
/// worker may take to report ready (default `app.ready_timeout`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Wait for each replacement's readiness datagram before the next kill (default
    /// true; false is broken).
    pub wait_ready: bool,
    /// With `wait_ready = false`: the fixed pause after each kill, the classic
    /// mistake (default 100ms).
    pub fixed_wait: Dur,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait_ready: true,
            fixed_wait: Dur::ms(100),
        }
    }
}

impl Spec for RollingKill {
    const NAME: &'static str = "rolling-kill";
    const SUMMARY: &'static str = "one gunicorn master with N workers on one socket; a reload writes the new version, then kills the old workers one at a time with SIGTERM, and the master forks their replacements";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("wait_ready", "`true`", "wait for each replacement worker's readiness datagram before the next kill (`false` is broken)"),
        OptionDoc::new("fixed_wait", "`\"100ms\"`", "with `wait_ready = false`: the fixed pause after each kill (the classic mistake)"),
    ];
    const APP_KINDS: &'static [&'static str] = &["gunicorn"];
    type Options = Options;

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(RollingKill::new(Config {
            wait_ready: o.wait_ready,
            fixed_wait: o.fixed_wait.0,
            step_timeout: b.step_timeout,
        }))
    }
}

/// The strategy's settings, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Wait for each replacement's readiness datagram before the next kill (false is broken).
    pub wait_ready: bool,
    /// With `wait_ready = false`: the fixed pause after each kill.
    pub fixed_wait: Duration,
    /// Longest a replacement may take to report ready (default: `app.ready_timeout`).
    pub step_timeout: Option<Duration>,
}

/// The rolling-kill strategy.
pub struct RollingKill {
    opts: Config,
    inst: Option<Instance>,
}

impl RollingKill {
    /// A rolling kill with `opts`.
    pub fn new(opts: Config) -> RollingKill {
        RollingKill { opts, inst: None }
    }
}

/// Starts gunicorn in slot `app` and waits until all its workers reported ready and it
/// answers the status probe with `version` (shared by the gunicorn strategies).
pub async fn start_gunicorn(ctx: &mut Ctx, version: &str) -> Result<Instance> {
    let n = *ctx.app.config.gunicorn()?.workers.get_ref() as usize;
    let endpoint = ctx.app.endpoint_for("app")?;
    let mut inst = ctx.app.start("app", endpoint, version)?;
    let timeout = ctx.app.config.ready_timeout.0;
    let ready = inst
        .ready_rx
        .as_ref()
        .ok_or_else(|| Error::Harness("gunicorn instance without a readiness socket".into()))?;
    if let Err(e) = wait_workers_ready(ready, n, timeout).await {
        return Err(inst.child.error(format!("not ready: {e}")));
    }
    ctx.app.wait_ready(&mut inst).await?;
    Ok(inst)
}

/// Fails with the master's log tail if it is no longer running.
pub fn master_alive(inst: &mut Instance) -> Result<()> {
    match inst.child.try_exited() {
        Some(s) => Err(inst
            .child
            .error(format!("the gunicorn master has exited ({s})"))),
        None => Ok(()),
    }
}

#[async_trait]
impl Strategy for RollingKill {
    fn name(&self) -> &'static str {
        "rolling-kill"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let inst = start_gunicorn(ctx, version).await?;
        let endpoint = inst.endpoint.clone();
        self.inst = Some(inst);
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let timeout = self
            .opts
            .step_timeout
            .unwrap_or(ctx.app.config.ready_timeout.0);
        let Some(inst) = self.inst.as_mut() else {
            return Err(Error::Harness("rolling-kill: reload before start".into()));
        };
        master_alive(inst)?;
        let master = inst.child.pid();
        let t0 = ctx.steps.now_ms();
        let mut old = proc_children(master);
        old.sort_unstable();
        if old.is_empty() {
            return Err(Error::Step(format!(
                "the gunicorn master {master} has no workers to replace"
            )));
        }
        if let Some(f) = &inst.version_file {
            python::write_version(f, version)?;
        }
        let ready = inst
            .ready_rx
            .as_ref()
            .ok_or_else(|| Error::Harness("gunicorn instance without a readiness socket".into()))?;
        for (i, &pid) in old.iter().enumerate() {
            let t = if i == 0 { t0 } else { ctx.steps.now_ms() };
            let step = format!("worker {} replaced", i + 1);
            // Only a pid that is still one of this master's workers (never a reused pid).
            if !proc_children(master).contains(&pid) {
                ctx.steps
                    .record_serving(&step, t, format!("worker {pid} had already exited"));
                continue;
            }
            drain_ready(ready);
            // SAFETY: kill(2) on a worker of the master we started, checked just above.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            if self.opts.wait_ready {
                let got = wait_ready_where(ready, 1, timeout, |w, m| {
                    m == master && !old.contains(&w)
                })
                .await
                .map_err(|e| {
                    Error::Step(format!(
                        "worker {pid} was killed but no replacement reported ready: {e}\n--- last lines of the gunicorn log ---\n{}",
                        inst.child.log_tail(20)
                    ))
                })?;
                ctx.steps.record_serving(
                    &step,
                    t,
                    format!(
                        "worker {pid} sent SIGTERM; replacement {} reported ready",
                        got[0].0
                    ),
                );
            } else {
                tokio::time::sleep(self.opts.fixed_wait).await;
                ctx.steps.record_serving(
                    &step,
                    t,
                    format!(
                        "worker {pid} sent SIGTERM; assumed replaced after a fixed {:?} sleep (readiness not checked)",
                        self.opts.fixed_wait
                    ),
                );
            }
        }
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
