//! The part the signal-respawn strategies share (uvicorn-hup, granian-hup,
//! hypercorn-hup): one server
//! process whose workers each send a readiness datagram once they have imported the
//! app (`ready <worker pid> <parent pid>`), and which replaces its workers when it gets
//! a signal. Each strategy keeps its own file for its options, docs and what it makes
//! of the server exiting.
//!
//! Knowing a respawn is done: N workers that were not serving before the signal have
//! each sent their readiness datagram (one step each, so a one-at-a-time respawn shows
//! as steps one import apart), and the old worker pids are gone. A server that starts
//! new workers before it stops the old ones (uvicorn 0.51+, granian) is waited for in
//! that order; one that stops every old worker first (hypercorn, [`Server::old_first`])
//! in its own: old pids gone, then the new workers ready, so each step is recorded
//! when it happened.

use std::path::Path;
use std::time::Duration;

use super::gunicorn_hup::wait_gone;
use super::Ctx;
use crate::app::gunicorn::{drain_ready, parse_ready_from};
use crate::app::{python, Instance, StopHow};
use crate::error::{Error, Result};
use crate::load::Target;
use crate::steps::StepLog;

/// The server a strategy drives, as this module needs to know it.
pub struct Server {
    /// Its name in steps and messages ("uvicorn").
    pub name: &'static str,
    /// What it logs when it abandons a respawn, if it can.
    pub abandoned: Option<Abandoned>,
    /// Log lines worth a step of their own after a respawn: (a fragment of the line,
    /// the step's name); each such line is recorded, changing who serves.
    pub notable: &'static [(&'static str, &'static str)],
    /// Whether it stops every old worker before it starts a new one (hypercorn):
    /// then the old pids are waited for first, and no worker serves from their exit
    /// until the first new one is ready.
    pub old_first: bool,
}

/// A server's log line that says it abandoned a respawn.
pub struct Abandoned {
    /// A fragment of the line.
    pub line: &'static str,
    /// Why, and what that leaves serving (appended to the step's error).
    pub why: &'static str,
}

/// What came of waiting for readiness datagrams.
pub enum Waited {
    /// These workers reported ready, in order.
    Ready(Vec<i32>),
    /// The server process exited first (with this status).
    Exited(String),
}

/// What came of a signal.
pub enum Respawned {
    /// These new workers serve, and the old ones are gone.
    Workers(Vec<i32>),
    /// The server process exited (with this status) after the signal sent at `at` (ms
    /// on the load clock), before the new workers were ready.
    Exited {
        /// Its exit status.
        status: String,
        /// When the signal was sent.
        at: f64,
    },
}

/// The log's length now (where the lines of the next step begin).
pub fn log_len(inst: &Instance) -> u64 {
    std::fs::metadata(inst.child.log_path()).map_or(0, |m| m.len())
}

/// The lines of `log` after byte `from` that contain `needle`, trimmed.
pub fn lines_since(log: &Path, from: u64, needle: &str) -> Vec<String> {
    let Ok(text) = std::fs::read(log) else {
        return Vec::new();
    };
    let Some(new) = text.get(from as usize..) else {
        return Vec::new();
    };
    String::from_utf8_lossy(new)
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Waits until `n` workers not in `old` report ready (children of the server process,
/// or the process itself), until the server process exits, or `timeout`. With
/// `steps`, records a step per new worker as it reports, from the previous one (the
/// first from `since`).
pub async fn wait_new_workers(
    server: &Server,
    mut steps: Option<&mut StepLog>,
    since: f64,
    inst: &mut Instance,
    n: usize,
    old: &[i32],
    timeout: Duration,
) -> Result<Waited> {
    let name = server.name;
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
                "only {} of {n} new {name} workers reported ready within {timeout:?}\n\
                 --- last lines of the {name} log ---\n{}",
                seen.len(),
                inst.child.log_tail(20)
            )));
        }
        let ready = inst
            .ready_rx
            .as_ref()
            .ok_or_else(|| Error::Harness(format!("{name} instance without a readiness socket")))?;
        // Short slices: the process exiting is noticed within 50 ms, an abandoned
        // respawn within 250 ms.
        let slice = tokio::time::timeout(Duration::from_millis(50), ready.recv(&mut buf)).await;
        slices += 1;
        if let Some(a) = server.abandoned.as_ref().filter(|_| slices % 5 == 0) {
            if let Some(line) = lines_since(inst.child.log_path(), log_from, a.line)
                .into_iter()
                .next()
            {
                if let Some(steps) = steps.as_deref_mut() {
                    steps.record("restart abandoned", from, line.clone());
                }
                return Err(Error::Step(format!(
                    "{name} abandoned the restart after {} of {n} new workers were ready: {line}\n({})",
                    seen.len(),
                    a.why
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

/// Fails with the server's log tail if its process is no longer running.
pub fn alive(server: &Server, inst: &mut Instance) -> Result<()> {
    match inst.child.try_exited() {
        Some(s) => Err(inst
            .child
            .error(format!("the {} process has exited ({s})", server.name))),
        None => Ok(()),
    }
}

/// A signal-respawn strategy's state: the one instance and its serving workers.
pub struct Respawner {
    server: &'static Server,
    step_timeout: Option<Duration>,
    inst: Option<Instance>,
    /// The serving workers' pids.
    workers: Vec<i32>,
}

impl Respawner {
    /// Nothing started yet; `step_timeout` bounds each respawn's waits (default
    /// `app.ready_timeout`).
    pub fn new(server: &'static Server, step_timeout: Option<Duration>) -> Self {
        Respawner {
            server,
            step_timeout,
            inst: None,
            workers: Vec::new(),
        }
    }

    /// Drives `server` instead (a version of it that respawns differently); before `start`.
    pub fn set_server(&mut self, server: &'static Server) {
        self.server = server;
    }

    /// Starts the first instance (slot `app`), waits until its `n` workers have
    /// reported ready and it answers, and exposes it.
    pub async fn start(&mut self, ctx: &mut Ctx, n: usize, version: &str) -> Result<Target> {
        let server = self.server;
        let endpoint = ctx.app.endpoint_for("app")?;
        let mut inst = ctx.app.start("app", endpoint, version)?;
        let timeout = ctx.app.config.ready_timeout.0;
        let workers = match wait_new_workers(server, None, 0.0, &mut inst, n, &[], timeout).await {
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

    /// The running instance.
    pub fn instance(&mut self) -> Result<&mut Instance> {
        self.inst
            .as_mut()
            .ok_or_else(|| Error::Harness(format!("{}: reload before start", self.server.name)))
    }

    /// Writes `version`, sends `signal` (called `signal_name` in the steps) to the
    /// server, waits until `n` new workers have reported ready and the old ones are
    /// gone, and marks the instance as serving `version`; then records the server's
    /// notable log lines of the respawn.
    pub async fn respawn(
        &mut self,
        ctx: &mut Ctx,
        n: usize,
        (signal, signal_name): (i32, &str),
        version: &str,
    ) -> Result<Respawned> {
        let server = self.server;
        let timeout = self.step_timeout.unwrap_or(ctx.app.config.ready_timeout.0);
        let old = self.workers.clone();
        let inst = self.instance()?;
        let log_from = log_len(inst);
        let t = ctx.steps.now_ms();
        let done = respawn(
            server,
            ctx,
            inst,
            &old,
            n,
            (signal, signal_name),
            version,
            timeout,
        )
        .await;
        for (fragment, step) in server.notable {
            for line in lines_since(inst.child.log_path(), log_from, fragment) {
                ctx.steps.record_serving(step, t, line);
            }
        }
        let done = done?;
        if let Respawned::Workers(new) = &done {
            self.workers = new.clone();
        }
        Ok(done)
    }

    /// Stops the instance, draining it.
    pub async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.inst.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}

/// Writes `version`, sends `signal` to the server, waits until `n` new workers have
/// reported ready and the `old` ones are gone (each within `timeout`), and marks the
/// instance as serving `version`.
#[allow(clippy::too_many_arguments)]
async fn respawn(
    server: &Server,
    ctx: &mut Ctx,
    inst: &mut Instance,
    old: &[i32],
    n: usize,
    (signal, signal_name): (i32, &str),
    version: &str,
    timeout: Duration,
) -> Result<Respawned> {
    alive(server, inst)?;
    let pid = inst.child.pid();
    if let Some(f) = &inst.version_file {
        python::write_version(f, version)?;
    }
    if let Some(r) = inst.ready_rx.as_ref() {
        drain_ready(r);
    }
    let t = ctx.steps.now_ms();
    inst.child.signal(signal);
    ctx.steps.record(
        signal_name,
        t,
        format!("{signal_name} to {} {pid}", server.name),
    );
    let mut since = t;
    if server.old_first {
        wait_gone(pid, old, timeout).await?;
        ctx.steps.record_serving(
            "old workers exited",
            t,
            format!(
                "old workers {old:?} gone before any new one was ready: no {} worker serves",
                server.name
            ),
        );
        since = ctx.steps.now_ms();
    }
    let new =
        match wait_new_workers(server, Some(&mut ctx.steps), since, inst, n, old, timeout).await? {
            Waited::Ready(new) => new,
            Waited::Exited(status) => return Ok(Respawned::Exited { status, at: t }),
        };
    if !server.old_first {
        let t = ctx.steps.now_ms();
        wait_gone(pid, old, timeout).await?;
        ctx.steps
            .record_serving("old workers exited", t, format!("old workers {old:?} gone"));
    }
    alive(server, inst)?;
    inst.set_version(version);
    Ok(Respawned::Workers(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_since_reads_only_the_new_part() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "a gone\nb\n").unwrap();
        let from = std::fs::metadata(&log).unwrap().len();
        std::fs::write(&log, "a gone\nb\n  c gone  \nd\ne gone\n").unwrap();
        assert_eq!(lines_since(&log, from, "gone"), ["c gone", "e gone"]);
        assert!(lines_since(&log, 1000, "gone").is_empty());
        assert!(lines_since(&dir.path().join("none"), 0, "gone").is_empty());
    }
}
