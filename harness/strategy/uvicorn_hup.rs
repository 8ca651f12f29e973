//! uvicorn HUP: write the new version, send SIGHUP to the uvicorn supervisor (`--workers
//! N`, N ≥ 2). The supervisor holds the listening socket throughout, so nothing is
//! refused; how the workers are replaced depends on the version:
//! - 0.51.0 and later (PR 3025): one at a time, each replacement started and healthy
//!   before its old worker is stopped, so N - 1 workers always serve;
//! - before 0.51: each old worker is stopped (and waited for), then its replacement is
//!   started without waiting for it to import the app; after the last old worker stops
//!   no worker serves until the new ones have imported: requests wait in the backlog
//!   for about one import time (a stall, with no failed request).
//!
//! With `workers = 1` uvicorn runs no supervisor and does not handle SIGHUP: the server
//! exits, and nothing listens any more. The strategy records that and does not restart
//! it (that would hide what a `kill -HUP` deploy does).
//!
//! Since 0.51 the supervisor gives each new worker `--timeout-worker-healthcheck` (5 s
//! by default) to become ready; one that is not (an import slower than that) is killed,
//! and the restart is abandoned: the old workers keep serving the old version, and
//! uvicorn only logs it. The strategy reads that line from the log and fails the step
//! (`reload_completed`) at once, rather than waiting out `step_timeout`.
//!
//! Knowing it is done: N workers that were not serving before the HUP have each sent
//! their readiness datagram (asgi_app.py, at lifespan startup, after its import), and
//! the old worker pids are gone.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::gunicorn_hup::wait_gone;
use super::{Build, Ctx, Spec, Strategy};
use crate::app::gunicorn::{drain_ready, parse_ready_from};
use crate::app::{python, Instance, StopHow};
use crate::config::OptionDoc;
use crate::error::{Error, Result};
use crate::load::Target;
use crate::steps::StepLog;

/// `[reload]` options of uvicorn-hup: none of its own. `step_timeout`: the longest the new
/// workers may take to report ready and the old ones to exit (default `app.ready_timeout`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl Spec for UvicornHup {
    const NAME: &'static str = "uvicorn-hup";
    const SUMMARY: &'static str = "write the new version and send SIGHUP to the uvicorn supervisor: 0.51+ replaces the workers one at a time, earlier versions stop each and start its replacement unready";
    const OPTIONS: &'static [OptionDoc] = &[];
    const APP_KINDS: &'static [&'static str] = &["uvicorn"];
    type Options = Options;

    fn build(_: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(UvicornHup {
            step_timeout: b.step_timeout,
            inst: None,
            workers: Vec::new(),
        })
    }
}

/// The uvicorn-hup strategy.
pub struct UvicornHup {
    step_timeout: Option<Duration>,
    inst: Option<Instance>,
    /// The serving workers' pids (the server's own with `workers = 1`).
    workers: Vec<i32>,
}

/// What came of waiting for readiness datagrams.
enum Waited {
    /// These workers reported ready, in order.
    Ready(Vec<i32>),
    /// The uvicorn process exited first (with this status).
    Exited(String),
}

/// What uvicorn (0.51+) logs when it abandons a SIGHUP restart.
const ABORTED: &str = "aborting the restart";

/// The line of `log` after byte `from` that says uvicorn abandoned the restart, if any.
fn aborted_since(log: &std::path::Path, from: u64) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let new = text.get(from as usize..)?;
    String::from_utf8_lossy(new)
        .lines()
        .find(|l| l.contains(ABORTED))
        .map(|l| l.trim().to_string())
}

/// The log's length now (where the lines of the next step begin).
fn log_len(inst: &Instance) -> u64 {
    std::fs::metadata(inst.child.log_path()).map_or(0, |m| m.len())
}

/// Waits until `n` workers not in `old` report ready (children of the uvicorn process,
/// or the process itself when it has no supervisor), until the uvicorn process exits,
/// or `timeout`. With `steps`, records a step per new worker as it reports, from the
/// previous one (the first from `since`): a one-at-a-time restart shows as steps one
/// import time apart.
async fn wait_new_workers(
    mut steps: Option<&mut StepLog>,
    since: f64,
    inst: &mut Instance,
    n: usize,
    old: &[i32],
    timeout: Duration,
) -> Result<Waited> {
    let pid = inst.child.pid();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: Vec<i32> = Vec::new();
    let mut from = since;
    let mut buf = [0u8; 128];
    let log_from = log_len(inst);
    let mut slices = 0u32;
    while seen.len() < n {
        if let Some(status) = inst.child.try_exited() {
            return Ok(Waited::Exited(status.to_string()));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Step(format!(
                "only {} of {n} new uvicorn workers reported ready within {timeout:?}\n\
                 --- last lines of the uvicorn log ---\n{}",
                seen.len(),
                inst.child.log_tail(20)
            )));
        }
        let ready = inst
            .ready_rx
            .as_ref()
            .ok_or_else(|| Error::Harness("uvicorn instance without a readiness socket".into()))?;
        // Short slices: the process exiting is noticed within 50 ms, an abandoned
        // restart within 250 ms.
        let slice = tokio::time::timeout(Duration::from_millis(50), ready.recv(&mut buf)).await;
        slices += 1;
        if slices % 5 == 0 {
            if let Some(line) = aborted_since(inst.child.log_path(), log_from) {
                if let Some(steps) = steps.as_deref_mut() {
                    steps.record("restart abandoned", from, line.clone());
                }
                return Err(Error::Step(format!(
                    "uvicorn abandoned the restart after {} of {n} new workers were ready: {line}\n\
                     (a new worker has --timeout-worker-healthcheck, 5 s by default, to start and import \
                     the app; the old workers keep serving the old version)",
                    seen.len()
                )));
            }
        }
        match slice {
            Err(_) => continue,
            Ok(Err(e)) => return Err(Error::Step(format!("reading the readiness socket: {e}"))),
            Ok(Ok(len)) => {
                if let Some((w, m)) = parse_ready_from(&buf[..len]) {
                    let ours = m == pid || w == pid;
                    if ours && !old.contains(&w) && !seen.contains(&w) {
                        seen.push(w);
                        if let Some(steps) = steps.as_deref_mut() {
                            steps.record_serving(
                                "new worker ready",
                                from,
                                format!("new worker {w} ({} of {n}) reported ready", seen.len()),
                            );
                            from = steps.now_ms();
                        }
                    }
                }
            }
        }
    }
    Ok(Waited::Ready(seen))
}

/// Fails with the uvicorn log tail if the process is no longer running.
fn alive(inst: &mut Instance) -> Result<()> {
    match inst.child.try_exited() {
        Some(s) => Err(inst
            .child
            .error(format!("the uvicorn process has exited ({s})"))),
        None => Ok(()),
    }
}

#[async_trait]
impl Strategy for UvicornHup {
    fn name(&self) -> &'static str {
        "uvicorn-hup"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let n = *ctx.app.config.uvicorn()?.workers.get_ref() as usize;
        let endpoint = ctx.app.endpoint_for("app")?;
        let mut inst = ctx.app.start("app", endpoint, version)?;
        let timeout = ctx.app.config.ready_timeout.0;
        let workers = match wait_new_workers(None, 0.0, &mut inst, n, &[], timeout).await {
            Ok(Waited::Ready(w)) => w,
            Ok(Waited::Exited(s)) => {
                return Err(inst
                    .child
                    .error(format!("exited ({s}) before it was ready")))
            }
            Err(e) => return Err(inst.child.error(format!("not ready: {e}"))),
        };
        ctx.app.wait_ready(&mut inst).await?;
        let endpoint = inst.endpoint.clone();
        self.inst = Some(inst);
        self.workers = workers;
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let timeout = self.step_timeout.unwrap_or(ctx.app.config.ready_timeout.0);
        let n = *ctx.app.config.uvicorn()?.workers.get_ref() as usize;
        let Some(inst) = self.inst.as_mut() else {
            return Err(Error::Harness("uvicorn-hup: reload before start".into()));
        };
        alive(inst)?;
        let pid = inst.child.pid();
        let old = self.workers.clone();
        if let Some(f) = &inst.version_file {
            python::write_version(f, version)?;
        }
        if let Some(r) = inst.ready_rx.as_ref() {
            drain_ready(r);
        }
        let t = ctx.steps.now_ms();
        inst.child.signal(libc::SIGHUP);
        ctx.steps
            .record("SIGHUP", t, format!("SIGHUP to uvicorn {pid}"));
        let new = match wait_new_workers(Some(&mut ctx.steps), t, inst, n, &old, timeout).await? {
            Waited::Ready(new) => new,
            Waited::Exited(status) => {
                // workers = 1: no supervisor, and SIGHUP's default action ends the server.
                ctx.steps.record_serving(
                    "uvicorn exited",
                    t,
                    format!(
                        "uvicorn {pid} exited ({status}) on SIGHUP: with {n} worker(s) it runs no supervisor \
                         and does not handle SIGHUP; nothing serves now"
                    ),
                );
                return Ok(());
            }
        };
        let t = ctx.steps.now_ms();
        wait_gone(pid, &old, timeout).await?;
        ctx.steps
            .record_serving("old workers exited", t, format!("old workers {old:?} gone"));
        alive(inst)?;
        inst.set_version(version);
        self.workers = new;
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.inst.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}
