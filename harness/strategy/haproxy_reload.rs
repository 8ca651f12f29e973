//! haproxy reloads itself while the pool behind it keeps serving (see
//! [`crate::front::haproxy`]): `servers` app instances are haproxy's servers
//! `be/s1..sN`, and each deploy moves the balancer, not the app, through a reload.
//!
//! So that the new version takes over (and the verdict's version check means
//! something), each deploy first starts a fresh set of `servers` instances on the new
//! version, on new sockets (slots `g<deploy>s<i>`), and waits until each answers
//! directly. Then it renders a config whose backend points at them, checks it with
//! `haproxy -c` and puts it where haproxy's `-f` reads it, and reloads haproxy `how`:
//!
//! - `how = "master-cli"` (the correct way): haproxy runs master-worker (`-W -db -S
//!   m.sock`). Record `show proc` on the master CLI (its `reloads` count, the worker's
//!   pid), send `reload`, then wait until the master CLI answers again with `reloads`
//!   up by one, `[failed: N]` unchanged, a new worker pid, the prompt not
//!   `master[ReloadFailed]>`, and one more "Loading success." in haproxy's output;
//!   then until the new worker's own checks say L7OK for every server (`@!<pid>
//!   show stat` on the master CLI); then until the old
//!   worker has left `show proc` (it finishes its connections; `hard-stop-after`,
//!   30s unless `hard_stop_after` says, bounds it). The master passes the listening sockets to the new worker
//!   (`-x sockpair@N`), so no connection is refused or reset.
//! - `how = "restart"` (broken, a negative control): stop haproxy (soft stop, in-flight
//!   requests finish), then start it again on the same port with the new config:
//!   nothing listens in between, and new connections are refused (`connect_refused`).
//! - `how = "sf"` (broken, a negative control): the legacy reload.
//!   haproxy runs as one standalone process (`-db`, no `-W`, no master CLI); the new
//!   one is started with `-sf <old pid>` and without `-x`, binds its own listener
//!   beside the old one (SO_REUSEPORT), and tells the old one to stop. Connections the
//!   kernel had queued on the old listener when it closes are reset
//!   (`reset_fresh`); haproxy's doc puts it at about 1 per reload per 10k new
//!   connections/s: an unsaturated haproxy accepts at once, so whether a run sees
//!   one is luck. A saturated one (`frontend_maxconn` reached: it stops accepting
//!   and new connections wait in the kernel) always has a queue, so every soft stop
//!   resets it. The reload
//!   waits until the new process serves (every check L7OK, admin socket answering
//!   with its pid) and the old one has exited.
//!
//! Whatever `how`, the old instances are then stopped gracefully.
//!
//! Measured with haproxy 2.6.12 (Debian 12), and where it differs from the notes:
//! - the master CLI does not close the connection after an answer; it waits for the
//!   client to shut down its side (the client here does). `reload` answers nothing
//!   and the connection closes, as the notes say;
//! - a failed reload counts in `reloads` too (`1 [failed: 1]`, the old worker
//!   stays, the interactive prompt turns `master[ReloadFailed]>`): the wait stops
//!   at a higher `failed` count and the prompt is read (`prompt`) after each reload;
//! - with 20 ms requests, the old worker is gone from `show proc` by the time the
//!   master answers again (0.1-0.2 s after `reload`); with 1.5 s requests it is
//!   listed under "# old workers" and leaves 0.7-1.5 s later;
//! - legacy `-sf`: until the new process has bound the stats socket, the old one
//!   answers on its path (with its own servers, all L7OK): a new standalone process
//!   is waited for until `show info` gives its own pid, then its checks;
//! - legacy `-sf` under load (2000 new connections/s): the old process now and then
//!   ends with SIGSEGV instead of exit 0 during its soft stop (18 of 200 reloads);
//!   the step "old process gone" shows it. The resets do not follow the crashes
//!   (runs with a crash passed, runs without one failed): they come from the
//!   listener handover;
//! - the resets' rate: at 2000 new connections/s, 4 of 20 runs of 5 reloads saw any
//!   (4-5 `reset_fresh` each: a whole accept queue at once), about 1 reload in 20
//!   rather than the doc's 1 connection per reload per 10k conn/s;
//!   the unsaturated form caught it in 6 of 10 busy debug runs and 0 of 20 quiet
//!   release runs; negative/haproxy-reload-sf.toml saturates haproxy
//!   (`frontend_maxconn = 4`, 24 connections): 20 resets per reload, every run.

use crate::config::OptionDoc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::{Instance, StopHow};
use crate::config::{Dur, ReloadTable};
use crate::error::{Error, Result};
use crate::front::haproxy::{Haproxy, PoolConfig, ProcList, RunMode};
use crate::load::{Endpoint, Target};
use crate::sys::tools::Tool;

/// `how` values.
pub const HOW: &[&str] = &["master-cli", "restart", "sf"];

/// How often the master CLI or the processes are polled while waiting.
const POLL: Duration = Duration::from_millis(20);

/// `[reload]` options of haproxy-reload. `step_timeout`: the longest each wait of a
/// reload (instances ready, master answering, new worker checked, old worker gone)
/// may take (default 40s: haproxy's `hard-stop-after` is 30s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// App instances behind haproxy, a fresh set per deploy (1 to 16; default 2).
    pub servers: Spanned<u32>,
    /// How haproxy reloads: `master-cli` (the default: `reload` on the master CLI,
    /// sockets passed to the new worker), `restart` (broken: stop, then start) or
    /// `sf` (broken: a standalone process replaced with `-sf`, no `-x`; resets what
    /// the old listener had queued).
    pub how: Spanned<String>,
    /// Health-check interval (`inter`, 10ms to 60s, default 100ms).
    pub check_inter: Spanned<Dur>,
    /// The frontend's `maxconn` (1 to 100000; absent: only the global limit), with
    /// `backlog 1024`. At that many connections haproxy stops accepting and new ones
    /// wait in its listener's kernel queue: a saturated haproxy.
    pub frontend_maxconn: Option<Spanned<u32>>,
    /// `option idle-close-on-response` on the frontend: on a soft stop, the old worker
    /// keeps its idle keep-alive connections until each carries one more request, and
    /// answers it with `Connection: close` (default false, haproxy's default: it closes
    /// them at once, racing clients that reuse them).
    pub idle_close_on_response: bool,
    /// haproxy's `hard-stop-after` (100ms to 1h, default 30s): how long an old worker
    /// may finish its connections after a reload before haproxy closes what is left.
    pub hard_stop_after: Spanned<Dur>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            servers: Spanned::new(0..0, 2),
            how: Spanned::new(0..0, "master-cli".into()),
            check_inter: Spanned::new(0..0, Dur::ms(100)),
            frontend_maxconn: None,
            idle_close_on_response: false,
            hard_stop_after: Spanned::new(0..0, Dur(crate::front::haproxy::HARD_STOP_AFTER)),
        }
    }
}

impl Spec for HaproxyReload {
    const NAME: &'static str = "haproxy-reload";
    const SUMMARY: &'static str = "haproxy itself reloads while the pool behind it keeps serving: each deploy starts a fresh set of `servers` and moves haproxy to them through a reload";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("servers", "`2`", "app instances behind haproxy, a fresh set per deploy (1 to 16)"),
        OptionDoc::new("how", "`\"master-cli\"`", "how haproxy reloads: `master-cli` (`reload` on the master CLI, sockets passed to the new worker), `restart` (broken: stop, then start) or `sf` (broken: replaced with `-sf`, no `-x`; the old listener's queue is reset)"),
        OptionDoc::new("check_inter", "`\"100ms\"`", "haproxy's health-check `inter` (10ms to 60s)"),
        OptionDoc::new("idle_close_on_response", "`false`", "`option idle-close-on-response` on the frontend: on a soft stop the old worker keeps its idle keep-alive connections until each carries one more request, answered with `Connection: close`; false (haproxy's default): it closes them at once, and a client reusing one just then gets a reset"),
        OptionDoc::new("hard_stop_after", "`\"30s\"`", "haproxy's `hard-stop-after` (100ms to 1h): how long the old worker may finish its connections after a reload before haproxy closes what is left (requests, HTTP/2 streams in flight are cut); `step_timeout` must outlast it"),
        OptionDoc::new("frontend_maxconn", "—", "the frontend's `maxconn` (1 to 100000): at that many connections haproxy stops accepting and new ones wait in its listener's kernel queue (a saturated haproxy); absent: only the global limit"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Haproxy];
    const FRONT_KIND: &'static str = "haproxy";
    const APP_KINDS: &'static [&'static str] =
        &["builtin", "gunicorn", "uvicorn", "granian", "hypercorn"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.how, "reload.how", HOW)?;
        let n = *o.servers.get_ref();
        if !(1..=16).contains(&n) {
            return Err(at.error(
                o.servers.span(),
                "reload.servers",
                "must be between 1 and 16",
            ));
        }
        if let Some(why) = crate::front::haproxy::check_inter_problem(o.check_inter.get_ref().0) {
            return Err(at.error(o.check_inter.span(), "reload.check_inter", why));
        }
        let hsa = o.hard_stop_after.get_ref().0;
        if hsa < Duration::from_millis(100) || hsa > Duration::from_secs(3600) {
            return Err(at.error(
                o.hard_stop_after.span(),
                "reload.hard_stop_after",
                "must be between 100ms and 1h",
            ));
        }
        if let Some(m) = &o.frontend_maxconn {
            if !(1..=100_000).contains(m.get_ref()) {
                return Err(at.error(
                    m.span(),
                    "reload.frontend_maxconn",
                    "must be between 1 and 100000",
                ));
            }
        }
        Ok(())
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(HaproxyReload {
            servers: *o.servers.get_ref(),
            how: o.how.get_ref().clone(),
            inter: o.check_inter.get_ref().0,
            frontend_maxconn: o.frontend_maxconn.as_ref().map(|m| *m.get_ref()),
            idle_close_on_response: o.idle_close_on_response,
            hard_stop_after: o.hard_stop_after.get_ref().0,
            step_timeout: b.step_timeout.unwrap_or(Duration::from_secs(40)),
            haproxy: None,
            instances: Vec::new(),
            generation: 0,
            listen: None,
            tls: None,
            http2: false,
        })
    }
}

/// The haproxy-reload strategy.
pub struct HaproxyReload {
    servers: u32,
    how: String,
    inter: Duration,
    frontend_maxconn: Option<u32>,
    idle_close_on_response: bool,
    hard_stop_after: Duration,
    step_timeout: Duration,
    haproxy: Option<Haproxy>,
    /// The instances haproxy's current config points at.
    instances: Vec<Instance>,
    /// Deploys so far (names the instances' slots).
    generation: u32,
    /// haproxy's listening address (kept across restarts).
    listen: Option<std::net::SocketAddr>,
    /// The frontend's TLS (`[front] kind = "haproxy"`, `tls = true`), kept across reloads.
    tls: Option<crate::front::haproxy::TlsBind>,
    /// HTTP/2 on the frontend (`[front] http2 = true`), kept across reloads.
    http2: bool,
}

impl HaproxyReload {
    fn hap(&self) -> Result<&Haproxy> {
        self.haproxy
            .as_ref()
            .ok_or_else(|| Error::Step("haproxy-reload: haproxy is not running".into()))
    }

    fn mode(&self) -> RunMode {
        if self.how == "sf" {
            RunMode::Standalone { finish: Vec::new() }
        } else {
            RunMode::MasterWorker
        }
    }

    fn pool(&self, ctx: &Ctx, servers: &[Instance]) -> PoolConfig {
        PoolConfig {
            servers: servers.iter().map(|i| i.endpoint.clone()).collect(),
            inter: self.inter,
            fall: 2,
            rise: 2,
            retries: 0,
            redispatch: false,
            disable_on_404: false,
            status_path: ctx.app.config.status_path.clone(),
            frontend_maxconn: self.frontend_maxconn,
            idle_close_on_response: self.idle_close_on_response,
            tls: self.tls.clone(),
            http2: self.http2,
            hard_stop_after: self.hard_stop_after,
        }
    }

    /// Starts `servers` instances of `version` on fresh sockets and waits until each
    /// answers directly (all are returned, even on error, so that they get stopped).
    async fn start_instances(
        &mut self,
        ctx: &mut Ctx,
        version: &str,
    ) -> (Vec<Instance>, Result<()>) {
        self.generation += 1;
        let mut started = Vec::new();
        for i in 0..self.servers as usize {
            let slot = format!("g{}s{}", self.generation, i + 1);
            let started_one = ctx
                .app
                .endpoint_for(&slot)
                .and_then(|e| ctx.app.start(&slot, e, version));
            match started_one {
                Ok(inst) => started.push(inst),
                Err(e) => return (started, Err(e)),
            }
        }
        for inst in started.iter_mut() {
            if let Err(e) = ctx.app.wait_ready(inst).await {
                return (started, Err(e));
            }
        }
        (started, Ok(()))
    }

    /// Polls `show proc` until `done` holds (errors, e.g. while the master
    /// re-executes itself, count as not yet), up to the step timeout.
    async fn wait_proc(&self, what: &str, done: impl Fn(&ProcList) -> bool) -> Result<ProcList> {
        let hap = self.hap()?;
        let deadline = tokio::time::Instant::now() + self.step_timeout;
        loop {
            let last = match hap.show_proc().await {
                Ok(p) if done(&p) => return Ok(p),
                Ok(p) => p.to_string(),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Step(format!(
                    "haproxy master: not {what} after {:?} (last: {last})\n{}",
                    self.step_timeout,
                    hap.log_tail(10)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The correct reload: `reload` on the master CLI, then the waits of the module doc.
    async fn reload_master_cli(&mut self, ctx: &mut Ctx) -> Result<()> {
        let t = ctx.steps.now_ms();
        let before = self.hap()?.show_proc().await?;
        let successes = self.hap()?.loading_successes();
        let old = *before.workers.first().ok_or_else(|| {
            Error::Step(format!(
                "haproxy master: no worker before the reload ({before})"
            ))
        })?;
        ctx.steps.record("show proc before", t, before.to_string());

        let t = ctx.steps.now_ms();
        let answer =
            crate::front::haproxy::master_cli(&self.hap()?.master_socket(), "reload").await?;
        ctx.steps.record(
            "reload sent",
            t,
            format!("master CLI `reload`; answer {:?}", answer.trim()),
        );

        let t = ctx.steps.now_ms();
        let after = self
            .wait_proc("reloaded (reloads + 1, no failure, a new worker)", |p| {
                // A failed reload counts too (reloads + 1, failed + 1): stop waiting.
                p.failed > before.failed
                    || (p.reloads == before.reloads + 1
                        && p.workers.iter().any(|w| *w != old)
                        && !p.workers.contains(&old))
            })
            .await?;
        let prompt = crate::front::haproxy::master_prompt(&self.hap()?.master_socket()).await?;
        if after.failed > before.failed || prompt.contains("ReloadFailed") {
            return Err(Error::Step(format!(
                "haproxy reload failed: {after}, prompt {prompt:?}\n{}",
                self.hap()?.log_tail(10)
            )));
        }
        let new = *after.workers.iter().find(|w| **w != old).unwrap_or(&0);
        // The master prints "Loading success." once the new worker is up.
        let deadline = tokio::time::Instant::now() + self.step_timeout;
        while self.hap()?.loading_successes() <= successes {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Step(format!(
                    "haproxy: no new \"Loading success.\" after the reload\n{}",
                    self.hap()?.log_tail(10)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        ctx.steps.record_serving(
            "new worker up",
            t,
            format!("worker {old} -> {new}: {after}; prompt {prompt:?}; \"Loading success.\""),
        );

        let t = ctx.steps.now_ms();
        let n = self.servers as usize;
        let deadline = tokio::time::Instant::now() + self.step_timeout;
        let rows = loop {
            let last = match self.hap()?.worker_servers(new).await {
                Ok(rows) => {
                    let up = rows
                        .iter()
                        .filter(|r| {
                            r.name != "BACKEND" && r.status == "UP" && r.check_status == "L7OK"
                        })
                        .count();
                    if up == n {
                        break rows;
                    }
                    format!("{up}/{n} UP with L7OK")
                }
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Step(format!(
                    "haproxy worker {new}: its servers did not pass their checks within {:?} (last: {last})",
                    self.step_timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        };
        ctx.steps.record(
            "new worker checks passed",
            t,
            rows.iter()
                .filter(|r| r.name != "BACKEND")
                .map(|r| format!("{} {} {}", r.name, r.status, r.check_status))
                .collect::<Vec<_>>()
                .join(", "),
        );

        let t = ctx.steps.now_ms();
        let gone = self
            .wait_proc(&format!("rid of old worker {old}"), |p| !p.lists(old))
            .await?;
        ctx.steps
            .record_serving("old worker gone", t, format!("{old} left: {gone}"));
        Ok(())
    }

    /// The hard restart: stop haproxy, then start it with the new config.
    async fn reload_restart(&mut self, ctx: &mut Ctx, cfg: &PoolConfig) -> Result<()> {
        let listen = self
            .listen
            .ok_or_else(|| Error::Step("haproxy never started".into()))?;
        let t = ctx.steps.now_ms();
        if let Some(mut hap) = self.haproxy.take() {
            let pid = hap.pid();
            hap.stop().await;
            ctx.steps.record_serving(
                "haproxy stopped",
                t,
                format!("master {pid}: soft stop (SIGUSR1)"),
            );
        }
        let t = ctx.steps.now_ms();
        let hap = Haproxy::start_as(&ctx.app.site(), cfg, listen, &self.mode()).await?;
        let pid = hap.pid();
        self.haproxy = Some(hap);
        ctx.steps.record_serving(
            "haproxy started",
            t,
            format!("master {pid} on {listen}, every server L7OK"),
        );
        Ok(())
    }

    /// The legacy reload: a new standalone process with `-sf <old>`, no `-x`.
    async fn reload_sf(&mut self, ctx: &mut Ctx, cfg: &PoolConfig) -> Result<()> {
        let listen = self
            .listen
            .ok_or_else(|| Error::Step("haproxy never started".into()))?;
        let mut old = self
            .haproxy
            .take()
            .ok_or_else(|| Error::Step("haproxy-reload: haproxy is not running".into()))?;
        let old_pid = old.pid();
        let t = ctx.steps.now_ms();
        let started = Haproxy::start_as(
            &ctx.app.site(),
            cfg,
            listen,
            &RunMode::Standalone {
                finish: vec![old_pid],
            },
        )
        .await;
        let new = match started {
            Ok(h) => h,
            Err(e) => {
                // Nothing replaced it: keep the old one for shutdown to stop.
                self.haproxy = Some(old);
                return Err(e);
            }
        };
        let new_pid = new.pid();
        self.haproxy = Some(new);
        ctx.steps.record_serving(
            "new process up",
            t,
            format!(
                "haproxy -sf {old_pid} (no -x): pid {new_pid} answers on the admin socket, every server L7OK"
            ),
        );
        let t = ctx.steps.now_ms();
        match old.wait_exit(self.step_timeout).await {
            Some(status) => {
                ctx.steps.record_serving(
                    "old process gone",
                    t,
                    format!("{old_pid} exited ({status})"),
                );
                Ok(())
            }
            None => {
                old.stop().await;
                Err(Error::Step(format!(
                    "haproxy {old_pid} had not exited {:?} after -sf",
                    self.step_timeout
                )))
            }
        }
    }

    /// Stops `old` instances gracefully, recording how each ended.
    async fn stop_instances(ctx: &mut Ctx, old: Vec<Instance>) {
        for mut inst in old {
            let t = ctx.steps.now_ms();
            let how = ctx.app.stop(&mut inst, StopHow::Drain).await;
            ctx.steps
                .record_serving("old app stopped", t, format!("{}: {how}", inst.name));
        }
    }
}

#[async_trait]
impl Strategy for HaproxyReload {
    fn name(&self) -> &'static str {
        "haproxy-reload"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let tls = super::haproxy_front_tls(ctx)?;
        self.tls = tls.as_ref().map(|(bind, _)| bind.clone());
        self.http2 = super::haproxy_front_http2(ctx);
        let (instances, ready) = self.start_instances(ctx, version).await;
        self.instances = instances;
        ready?;
        let listen = crate::sys::port::free_loopback()?;
        self.listen = Some(listen);
        let cfg = self.pool(ctx, &self.instances);
        let hap = Haproxy::start_as(&ctx.app.site(), &cfg, listen, &self.mode()).await?;
        self.haproxy = Some(hap);
        Ok(Target {
            endpoint: Endpoint::Tcp(listen),
            host: listen.to_string(),
            path: "/".into(),
            tls: tls.map(|(_, trust)| trust),
        })
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let t = ctx.steps.now_ms();
        let (new, ready) = self.start_instances(ctx, version).await;
        if let Err(e) = ready {
            Self::stop_instances(ctx, new).await;
            return Err(e);
        }
        ctx.steps.record(
            "new apps ready",
            t,
            format!(
                "{} answer {version} directly",
                new.iter()
                    .map(|i| i.slot.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let cfg = self.pool(ctx, &new);
        let old = std::mem::replace(&mut self.instances, new);
        let result = match self.how.as_str() {
            "restart" => self.reload_restart(ctx, &cfg).await,
            "sf" => self.reload_sf(ctx, &cfg).await,
            _ => {
                let t = ctx.steps.now_ms();
                match self.hap()?.replace_config(&cfg).await {
                    Ok(()) => {
                        ctx.steps.record(
                            "config checked",
                            t,
                            "haproxy -c accepts the new backend; haproxy.cfg replaced",
                        );
                        self.reload_master_cli(ctx).await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        // Whatever happened, the old instances go (a failed reload is reported as such).
        Self::stop_instances(ctx, old).await;
        result
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut hap) = self.haproxy.take() {
            hap.stop().await;
        }
        for mut inst in self.instances.drain(..) {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}

#[cfg(test)]
mod tests {
    fn parse(reload: &str) -> crate::error::Result<crate::scenario::Scenario> {
        crate::scenario::parse(
            std::path::Path::new("s.toml"),
            &format!(
                "[app]\nkind = \"builtin\"\n[reload]\nstrategy = \"haproxy-reload\"\n{reload}"
            ),
        )
    }

    #[test]
    fn options_are_checked_where_they_are_written() {
        parse("servers = 3\nhow = \"sf\"\ncheck_inter = \"200ms\"\n").unwrap();
        let e = parse("servers = 0\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:11: `reload.servers`: must be between 1 and 16"),
            "{e}"
        );
        let e = parse("check_inter = \"2m\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:15: `reload.check_inter`: must be between 10ms and 60s"),
            "{e}"
        );
        let e = parse("how = \"usr2\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:7: `reload.how`: unknown value"),
            "{e}"
        );
        let e = parse("take_out = \"drain\"\n").unwrap_err().to_string();
        assert!(e.contains("`reload.take_out`"), "{e}");
    }

    /// `show proc` as 2.6.12 prints it: after a good reload, after a failed one
    /// (the worker stays, `failed` counts it), and with an old worker finishing.
    #[test]
    fn show_proc_is_parsed_by_section() {
        use crate::front::haproxy::parse_show_proc;
        let head =
            "#<PID>          <type>          <reloads>       <uptime>        <version>      \n";
        let ok = parse_show_proc(&format!("{head}10747           master          1 [failed: 0]   0d00h20m17s     2.6.12-1+deb12u4\n# workers\n30196           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n# programs\n\n")).unwrap();
        assert_eq!(
            (ok.master, ok.reloads, ok.failed, ok.workers.clone()),
            (10747, 1, 0, vec![30196])
        );
        assert!(ok.old_workers.is_empty() && ok.lists(30196) && !ok.lists(10747));
        let failed = parse_show_proc(&format!("{head}27397           master          1 [failed: 1]   0d00h00m03s     2.6.12-1+deb12u4\n# workers\n27400           worker          1               0d00h00m03s     2.6.12-1+deb12u4\n# programs\n")).unwrap();
        assert_eq!((failed.reloads, failed.failed), (1, 1));
        assert_eq!(failed.workers, [27400]);
        let old = parse_show_proc(&format!("{head}5 master 2 [failed: 0] 0d 2.6\n# workers\n9 worker 0 0d 2.6\n# old workers\n7 worker 1 0d 2.6\n# programs\n")).unwrap();
        assert_eq!(
            (old.workers.clone(), old.old_workers.clone()),
            (vec![9], vec![7])
        );
        assert!(old.lists(7));
        assert!(parse_show_proc("Unknown command.\n").is_err());
    }
}
