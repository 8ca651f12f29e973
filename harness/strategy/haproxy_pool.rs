//! The load-balancer deploy of the gunicorn-rolling-restart seed: `servers` app
//! instances (`s1..sN`, each on its own socket) behind haproxy (see
//! [`crate::front::haproxy`]), rolled one at a time:
//! 1. `set server be/sN state drain`: no new load-balanced requests, checks go on;
//!    wait until the status is DRAIN;
//! 2. wait until `scur` = 0 and `qcur` = 0 (nothing in flight or queued for it);
//! 3. stop the old instance gracefully and wait for it to exit;
//! 4. start the new version on the same socket; wait until it answers directly;
//! 5. wait until haproxy's own check says so: `check_status` L7OK with full
//!    `check_health` (it has passed `rise` checks);
//! 6. `set server be/sN state ready`; wait until the status is UP; next server.
//!
//! After each reload a step "haproxy counters" gives the backend's `wretr`,
//! `wredis`, `econ`, `eresp` and `hrsp_5xx` since haproxy started: what the
//! balancer retried behind the client's back; "haproxy counters (whole run)" at
//! shutdown gives them once the load has ended. `max_hidden_retries` turns a
//! `wretr + wredis` above it into a failed reload.
//!
//! `take_out = "404"` is the seed's own way: the app's status page answers 404 and
//! `http-check disable-on-404` puts the server in NOLB at its next check; it comes
//! back UP by itself once the new version's status page answers 200.
//!
//! The broken forms, as options (each a negative control in scenarios/negative/):
//! `take_out = "none"` restarts a server still in rotation; `wait_idle = false`
//! stops it while requests are in flight; `take_out = "maint"` with
//! `wait_check = false` (and `wait_ready = false`) puts it back at once;
//! `retries`/`redispatch` let haproxy hide failed connects from the client.
//!
//! `hosts = "netns"` puts each server on its own test host (a network namespace with
//! a veth link, see [`crate::sys::netns`]): the instance runs inside it, bound to TCP
//! port [`HOST_PORT`] on the host's address, and haproxy, on the harness's side,
//! reaches it over the link. `link_down = "sN"` (test hosts only) does, instead of a
//! roll, what a pulled cable does: sN's link goes down without any drain, the
//! harness waits until haproxy's checks mark sN DOWN (the step's length is the
//! detection time), keeps it off for `link_down_for`, puts the link back and waits
//! until sN is UP again. An error while the link is down (the wait for DOWN timed
//! out) puts it back up too, before the reload fails (step "sN link back up after an
//! error").
//!
//! Measured with haproxy 2.6.12 (Debian 12): checks go on during DRAIN (a stopped
//! server goes DOWN and comes back through `rise` checks while still DRAIN). In
//! MAINT `check_status` is empty, and `state ready` brings back the check state of
//! before MAINT: the server showed UP, or "UP 1/2" with the old L7OK when v2 had
//! not bound its socket yet, and got requests until `fall` checks had failed (once,
//! with the backend gone 20 ms before, it showed DOWN at once).

use crate::config::OptionDoc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::{Instance, StopHow};
use crate::config::{Dur, ReloadTable};
use crate::error::{Error, Result};
use crate::front::haproxy::{Counters, Haproxy, PoolConfig};
use crate::load::{Endpoint, Target};
use crate::sys::netns::{self, TestHost, TestHosts};
use crate::sys::tools::Tool;

/// `take_out` values.
pub const TAKE_OUT: &[&str] = &["drain", "maint", "404", "none"];

/// `hosts` values: every instance on the harness's host, or each on its own test host.
pub const HOSTS: &[&str] = &["local", "netns"];

/// The longest `link_down_for` accepted (a typo such as "10h" must not hold a run).
pub const MAX_LINK_DOWN_FOR: Duration = Duration::from_secs(300);

/// The TCP port an instance listens on inside its test host.
pub const HOST_PORT: u16 = 8000;

/// `[reload]` options of haproxy-pool. `step_timeout`: the longest each wait of a
/// roll (drained, idle, ready, check passed, UP) may take (default 30s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// App instances behind haproxy (at least 2; default 3).
    pub servers: Spanned<u32>,
    /// How a server leaves rotation before its restart: `drain` (the default),
    /// `maint`, `404` (the seed's: the app's status page answers 404 and
    /// `http-check disable-on-404` puts it in NOLB; built-in app only), or `none`
    /// (broken: restarted while still in rotation).
    pub take_out: Spanned<String>,
    /// Wait until haproxy has no session (`scur`) or queued request (`qcur`) for the
    /// server before stopping it (default true; false is broken).
    pub wait_idle: bool,
    /// Wait until the new instance answers directly (default true).
    pub wait_ready: bool,
    /// Wait until haproxy's check passed before `state ready` (default true; false is broken).
    pub wait_check: bool,
    /// How the old instance is stopped: `drain` (graceful, the default) or `kill`.
    pub stop_old: Spanned<String>,
    /// Health-check interval (`inter`, default 100ms).
    pub check_inter: Spanned<Dur>,
    /// Failed checks before DOWN (`fall`, default 2).
    pub fall: Spanned<u32>,
    /// Passed checks before UP (`rise`, default 2).
    pub rise: Spanned<u32>,
    /// haproxy's `retries` (default 0: a failed connect reaches the client as a 503).
    pub retries: u32,
    /// `option redispatch` (default false).
    pub redispatch: bool,
    /// Fail the reload when haproxy retried or redispatched more than this many
    /// connects (`wretr + wredis`) since it started (absent: only reported).
    pub max_hidden_retries: Option<u64>,
    /// Where the instances run: `local` (the default: on this host, on `app.socket`)
    /// or `netns` (each on its own test host, a network namespace, over TCP; needs root).
    pub hosts: Spanned<String>,
    /// Instead of a roll, take this server's host off the network (`s1`..`sN`; needs
    /// `hosts = "netns"`) without draining it first.
    pub link_down: Option<Spanned<String>>,
    /// How long the link stays down once haproxy has marked the server DOWN (default
    /// 1s, at most [`MAX_LINK_DOWN_FOR`]).
    pub link_down_for: Spanned<Dur>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            servers: Spanned::new(0..0, 3),
            take_out: Spanned::new(0..0, "drain".into()),
            wait_idle: true,
            wait_ready: true,
            wait_check: true,
            stop_old: Spanned::new(0..0, "drain".into()),
            check_inter: Spanned::new(0..0, Dur::ms(100)),
            fall: Spanned::new(0..0, 2),
            rise: Spanned::new(0..0, 2),
            retries: 0,
            redispatch: false,
            max_hidden_retries: None,
            hosts: Spanned::new(0..0, "local".into()),
            link_down: None,
            link_down_for: Spanned::new(0..0, Dur::ms(1000)),
        }
    }
}

impl Spec for HaproxyPool {
    const NAME: &'static str = "haproxy-pool";
    const SUMMARY: &'static str = "`servers` app instances behind haproxy, rolled one at a time: drain the server, wait until it is idle, restart it on the new version, wait for haproxy's check, put it back in rotation";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("servers", "`3`", "app instances behind haproxy (at least 2)"),
        OptionDoc::new("take_out", "`\"drain\"`", "how a server leaves rotation before its restart: `drain`, `maint`, `404` (built-in app only) or `none` (broken); see below"),
        OptionDoc::new("wait_idle", "`true`", "wait until haproxy has no session (`scur`) or queued request (`qcur`) for the server before stopping it (`false` is broken)"),
        OptionDoc::new("wait_ready", "`true`", "wait until the new instance answers directly before handing it back to haproxy"),
        OptionDoc::new("wait_check", "`true`", "wait until haproxy's own check passed (L7OK, full health) before and after `state ready` (`false` is broken)"),
        OptionDoc::new("stop_old", "`\"drain\"`", "how the old instance is stopped: `drain` (graceful) or `kill` (SIGKILL at once: broken)"),
        OptionDoc::new("check_inter", "`\"100ms\"`", "haproxy's health-check `inter` (10ms to 60s)"),
        OptionDoc::new("fall", "`2`", "failed checks before a server is DOWN"),
        OptionDoc::new("rise", "`2`", "passed checks before a server is UP"),
        OptionDoc::new("retries", "`0`", "haproxy's `retries` (above 0 it hides failed connects from the client)"),
        OptionDoc::new("redispatch", "`false`", "`option redispatch 1`: retry on another server (hides failures)"),
        OptionDoc::new("max_hidden_retries", "—", "fail the reload when `wretr + wredis` since haproxy started exceeds it (absent: only reported)"),
        OptionDoc::new("hosts", "`\"local\"`", "`local`, or `netns`: each instance on its own test host (see below; needs root, else exit 2)"),
        OptionDoc::new("link_down", "—", "with `hosts = \"netns\"`, instead of a roll: take this server's host (`\"s2\"`) off the network without a drain (see below)"),
        OptionDoc::new("link_down_for", "`\"1s\"`", "how long `link_down` keeps the link down after haproxy marked the server DOWN (at most `\"5m\"`)"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Haproxy];
    const FRONT_KIND: &'static str = "haproxy";
    const APP_KINDS: &'static [&'static str] =
        &["builtin", "gunicorn", "uvicorn", "granian", "hypercorn"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.take_out, "reload.take_out", TAKE_OUT)?;
        let kind = at.app_kind();
        if o.take_out.get_ref() == "404"
            && kind != "builtin"
            && crate::app::find_kind(kind).is_some()
        {
            return Err(at.error(
                o.take_out.span(),
                "reload.take_out",
                &format!("\"404\" needs app.kind = \"builtin\" (only its status page has the 404 switch), not {kind:?}: use \"drain\" or \"maint\""),
            ));
        }
        at.one_of(&o.stop_old, "reload.stop_old", super::STOP_OLD)?;
        if *o.servers.get_ref() < 2 {
            return Err(at.error(o.servers.span(), "reload.servers", "must be at least 2"));
        }
        if let Some(why) = crate::front::haproxy::check_inter_problem(o.check_inter.get_ref().0) {
            return Err(at.error(o.check_inter.span(), "reload.check_inter", why));
        }
        for (v, field) in [(&o.fall, "reload.fall"), (&o.rise, "reload.rise")] {
            if *v.get_ref() == 0 {
                return Err(at.error(v.span(), field, "must be at least 1"));
            }
        }
        at.one_of(&o.hosts, "reload.hosts", HOSTS)?;
        if *o.hosts.get_ref() == "netns" && *o.servers.get_ref() > 63 {
            return Err(at.error(
                o.servers.span(),
                "reload.servers",
                "at most 63 with hosts = \"netns\"",
            ));
        }
        if o.link_down_for.get_ref().0 > MAX_LINK_DOWN_FOR {
            return Err(at.error(o.link_down_for.span(), "reload.link_down_for", "at most 5m"));
        }
        if let Some(l) = &o.link_down {
            if *o.hosts.get_ref() != "netns" {
                return Err(at.error(
                    l.span(),
                    "reload.link_down",
                    "needs hosts = \"netns\" (a host of its own to take off the network)",
                ));
            }
            if server_index(l.get_ref(), *o.servers.get_ref()).is_none() {
                return Err(at.error(
                    l.span(),
                    "reload.link_down",
                    &format!("no such server: s1 to s{}", o.servers.get_ref()),
                ));
            }
        }
        Ok(())
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(HaproxyPool::new(Config {
            servers: *o.servers.get_ref(),
            take_out: o.take_out.get_ref().clone(),
            wait_idle: o.wait_idle,
            wait_ready: o.wait_ready,
            wait_check: o.wait_check,
            stop_old: super::stop_how(&o.stop_old),
            inter: o.check_inter.get_ref().0,
            fall: *o.fall.get_ref(),
            rise: *o.rise.get_ref(),
            retries: o.retries,
            redispatch: o.redispatch,
            max_hidden_retries: o.max_hidden_retries,
            step_timeout: b.step_timeout.unwrap_or(Duration::from_secs(30)),
            netns: *o.hosts.get_ref() == "netns",
            link_down: o
                .link_down
                .as_ref()
                .and_then(|l| server_index(l.get_ref(), *o.servers.get_ref())),
            link_down_for: o.link_down_for.get_ref().0,
        }))
    }
}

/// The 0-based index of server `name` (`s1`..`s<servers>`).
fn server_index(name: &str, servers: u32) -> Option<usize> {
    let n: u32 = name.strip_prefix('s')?.parse().ok()?;
    (1..=servers)
        .contains(&n)
        .then(|| (n - 1) as usize)
        .filter(|i| PoolConfig::server_name(*i) == name)
}

/// The strategy's settings, defaults filled in.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of servers.
    pub servers: u32,
    /// `drain`, `maint` or `none`.
    pub take_out: String,
    /// Wait for scur = qcur = 0 before the stop.
    pub wait_idle: bool,
    /// Wait until the new instance answers directly.
    pub wait_ready: bool,
    /// Wait for haproxy's check before `state ready`.
    pub wait_check: bool,
    /// How the old instance is stopped.
    pub stop_old: StopHow,
    /// Check interval.
    pub inter: Duration,
    /// `fall`.
    pub fall: u32,
    /// `rise`.
    pub rise: u32,
    /// `retries`.
    pub retries: u32,
    /// `option redispatch`.
    pub redispatch: bool,
    /// Most `wretr + wredis` a reload accepts.
    pub max_hidden_retries: Option<u64>,
    /// Longest each wait may take.
    pub step_timeout: Duration,
    /// Each instance on its own test host.
    pub netns: bool,
    /// Instead of a roll, take this server's (0-based) host off the network.
    pub link_down: Option<usize>,
    /// How long the link stays down after haproxy marked the server DOWN.
    pub link_down_for: Duration,
}

/// The haproxy-pool strategy.
pub struct HaproxyPool {
    opts: Config,
    haproxy: Option<Haproxy>,
    /// One per server; `None` while it is being replaced.
    instances: Vec<Option<Instance>>,
    endpoints: Vec<Endpoint>,
    /// The backend's counters once haproxy was ready (before any load).
    base: Counters,
    /// The test hosts (`hosts = "netns"`), removed at shutdown.
    hosts: Option<TestHosts>,
}

impl HaproxyPool {
    /// A pool rolled with `opts`.
    pub fn new(opts: Config) -> HaproxyPool {
        HaproxyPool {
            opts,
            haproxy: None,
            instances: Vec::new(),
            endpoints: Vec::new(),
            base: Counters::default(),
            hosts: None,
        }
    }

    /// Server `i`'s test host, if the pool runs on test hosts.
    fn host(&self, i: usize) -> Option<&TestHost> {
        self.hosts.as_ref().and_then(|h| h.hosts().get(i))
    }

    /// Starts server `i`'s instance on `version`, on its test host if it has one.
    fn start_instance(&self, ctx: &Ctx, i: usize, version: &str) -> Result<Instance> {
        let name = PoolConfig::server_name(i);
        let netns = self.host(i).map(TestHost::netns_path);
        ctx.app
            .start_in(&name, self.endpoints[i].clone(), version, netns.as_deref())
    }

    /// Takes server `i`'s host off the network without draining it, waits until
    /// haproxy marks it DOWN, keeps it off for `link_down_for`, then puts it back and
    /// waits until it is UP again. On an error before the link is back (the wait for
    /// DOWN timed out, say) the link is put back up all the same (bounded), so the rest
    /// of the load does not run with a server off the network.
    async fn link_down(&mut self, ctx: &mut Ctx, i: usize) -> Result<()> {
        let name = PoolConfig::server_name(i);
        let host = self
            .host(i)
            .cloned()
            .ok_or_else(|| Error::Step(format!("haproxy-pool: {name} has no test host")))?;
        let timeout = self.opts.step_timeout;
        let before = self.hap()?.server(&name).await?;
        if let Err(e) = self.link_down_and_up(ctx, &name, &host, &before).await {
            let t = ctx.steps.now_ms();
            let detail = match restore_link(&host).await {
                Ok(route) => format!("after an error ({e}); route: {route}"),
                Err(up) => format!("after an error ({e}), and failed: {up}"),
            };
            ctx.steps
                .record(&format!("{name} link back up after an error"), t, detail);
            return Err(e);
        }
        let t = ctx.steps.now_ms();
        let full = u64::from(self.opts.rise + self.opts.fall - 1);
        let r = self
            .hap()?
            .wait_server(&name, timeout, "UP with its checks passed", |r| {
                r.status == "UP" && r.check_status == "L7OK" && r.check_health >= full
            })
            .await?;
        ctx.steps.record_serving(
            &format!("{name} back UP"),
            t,
            format!("status {}, check {}", r.status, r.check_status),
        );
        Ok(())
    }

    /// [`Self::link_down`] from the link going down until it is up again: `Ok` only
    /// once it is.
    async fn link_down_and_up(
        &mut self,
        ctx: &mut Ctx,
        name: &str,
        host: &TestHost,
        before: &crate::front::haproxy::ServerStat,
    ) -> Result<()> {
        let timeout = self.opts.step_timeout;
        let t = ctx.steps.now_ms();
        let h = host.clone();
        let route = tokio::task::spawn_blocking(move || netns::set_link(&h, false))
            .await
            .map_err(|e| Error::Step(format!("link down: {e}")))??;
        ctx.steps.record_serving(
            &format!("{name} link down"),
            t,
            format!(
                "ip -n {} link set {} down, no drain (status was {}, scur {}); route now: {route}",
                host.name,
                netns::INNER_IF,
                before.status,
                before.scur
            ),
        );
        let (fall, inter) = (self.opts.fall, self.opts.inter);
        let r = self
            .hap()?
            .wait_server(name, timeout, "marked DOWN by its checks", |r| {
                r.status == "DOWN"
            })
            .await?;
        let detected = ctx.steps.now_ms() - t;
        ctx.steps.record_serving(
            &format!("{name} marked DOWN"),
            t,
            format!(
                "{detected:.0} ms after the link went down (fall {fall} x inter {inter:?}): check {}, chkfail +{}, econ +{}, scur {}",
                r.check_status,
                field(&r, "chkfail").saturating_sub(field(before, "chkfail")),
                r.econ.saturating_sub(before.econ),
                r.scur
            ),
        );
        let t = ctx.steps.now_ms();
        tokio::time::sleep(self.opts.link_down_for).await;
        let h = host.clone();
        let route = tokio::task::spawn_blocking(move || netns::set_link(&h, true))
            .await
            .map_err(|e| Error::Step(format!("link up: {e}")))??;
        ctx.steps.record_serving(
            &format!("{name} link up"),
            t,
            format!(
                "after {:?} off the network; route: {route}",
                self.opts.link_down_for
            ),
        );
        Ok(())
    }

    fn hap(&mut self) -> Result<&mut Haproxy> {
        self.haproxy
            .as_mut()
            .ok_or_else(|| Error::Step("haproxy-pool: haproxy is not running".into()))
    }

    /// Records a step `name` with the backend's counters since haproxy started (and
    /// each server's); returns the backend's.
    async fn record_counters(&mut self, ctx: &mut Ctx, name: &str) -> Result<Counters> {
        let t = ctx.steps.now_ms();
        let base = self.base;
        let rows = self.hap()?.servers().await?;
        let total = rows
            .iter()
            .find(|r| r.name == "BACKEND")
            .map(Counters::of)
            .unwrap_or_default()
            .since(&base);
        let per_server: Vec<String> = rows
            .iter()
            .filter(|r| r.name != "BACKEND")
            .map(|r| {
                format!(
                    "{}: wretr={} wredis={} econ={} eresp={}",
                    r.name, r.wretr, r.wredis, r.econ, r.eresp
                )
            })
            .collect();
        ctx.steps.record(
            name,
            t,
            format!("since haproxy started: {total} ({})", per_server.join("; ")),
        );
        Ok(total)
    }

    /// The file that makes server `name`'s status page answer 404 (built-in app).
    fn status_404_file(&self, ctx: &Ctx, name: &str) -> std::path::PathBuf {
        crate::app::builtin::status_404_file(&ctx.app.path(&format!("{name}.log")))
    }

    /// Rolls server `i` onto `version`.
    async fn roll(&mut self, ctx: &mut Ctx, i: usize, version: &str) -> Result<()> {
        let name = PoolConfig::server_name(i);
        let timeout = self.opts.step_timeout;
        let take_out = self.opts.take_out.clone();
        let wait_idle = self.opts.wait_idle;
        if take_out != "none" {
            let t = ctx.steps.now_ms();
            let want = match take_out.as_str() {
                "maint" => "MAINT",
                "404" => "NOLB",
                _ => "DRAIN",
            };
            let switch = self.status_404_file(ctx, &name);
            let hap = self.hap()?;
            let how = if take_out == "404" {
                // The seed's way: the app's status page says 404, haproxy's next check
                // (disable-on-404) puts the server in NOLB; nothing is sent to haproxy.
                std::fs::write(&switch, "").map_err(|e| Error::io(&switch, e))?;
                "status page 404 (disable-on-404)".to_string()
            } else {
                hap.set_state(&name, &take_out).await?;
                format!("state {take_out}")
            };
            let r = hap
                .wait_server(&name, timeout, want, |r| r.status == want)
                .await?;
            ctx.steps.record_serving(
                &format!("{name} out of rotation"),
                t,
                format!(
                    "{how}: status {}, scur {}, qcur {}",
                    r.status, r.scur, r.qcur
                ),
            );
            if wait_idle {
                let t = ctx.steps.now_ms();
                let r = hap
                    .wait_server(&name, timeout, "idle (scur = 0, qcur = 0)", |r| {
                        r.scur == 0 && r.qcur == 0
                    })
                    .await?;
                ctx.steps.record(
                    &format!("{name} idle"),
                    t,
                    format!("scur {}, qcur {}", r.scur, r.qcur),
                );
            }
        }
        if let Some(mut old) = self.instances[i].take() {
            let t = ctx.steps.now_ms();
            let in_flight = self.hap()?.server(&name).await.map(|r| r.scur).unwrap_or(0);
            let how = ctx.app.stop(&mut old, self.opts.stop_old).await;
            ctx.steps.record_serving(
                &format!("{name} old app stopped"),
                t,
                format!("{}: {how}; scur was {in_flight} at the stop", old.name),
            );
        }
        if take_out == "404" {
            let switch = self.status_404_file(ctx, &name);
            std::fs::remove_file(&switch).map_err(|e| Error::io(&switch, e))?;
        }
        let t = ctx.steps.now_ms();
        let mut new = self.start_instance(ctx, i, version)?;
        if self.opts.wait_ready {
            let ready = ctx.app.wait_ready(&mut new).await;
            self.instances[i] = Some(new);
            ready?;
            ctx.steps.record(
                &format!("{name} new app ready"),
                t,
                format!("{version} answers directly"),
            );
        } else {
            self.instances[i] = Some(new);
            ctx.steps.record(
                &format!("{name} new app started"),
                t,
                format!("{version}, not waited for"),
            );
        }
        let wait_check = self.opts.wait_check;
        let full = u64::from(self.opts.rise + self.opts.fall - 1);
        // In MAINT haproxy shows no check result: leave it first, then wait for the check.
        if take_out == "drain" && wait_check {
            let t = ctx.steps.now_ms();
            let hap = self.hap()?;
            let r = hap
                .wait_server(&name, timeout, "passing its checks (L7OK)", |r| {
                    r.status == "DRAIN" && r.check_status == "L7OK" && r.check_health >= full
                })
                .await?;
            ctx.steps.record(
                &format!("{name} check passed"),
                t,
                format!(
                    "status {}, check {} health {}",
                    r.status, r.check_status, r.check_health
                ),
            );
        }
        if take_out != "none" && take_out != "404" {
            let t = ctx.steps.now_ms();
            let hap = self.hap()?;
            hap.set_state(&name, "ready").await?;
            let detail = if wait_check {
                let r = hap
                    .wait_server(&name, timeout, "UP with its checks passed", |r| {
                        r.status == "UP" && r.check_status == "L7OK" && r.check_health >= full
                    })
                    .await?;
                format!("status {}, check {}", r.status, r.check_status)
            } else {
                let r = hap.server(&name).await?;
                format!(
                    "not waited for: status {}, check {:?}",
                    r.status, r.check_status
                )
            };
            ctx.steps
                .record_serving(&format!("{name} back in rotation"), t, detail);
        } else if wait_check {
            let t = ctx.steps.now_ms();
            let hap = self.hap()?;
            let r = hap
                .wait_server(&name, timeout, "UP with its checks passed", |r| {
                    r.status == "UP" && r.check_status == "L7OK" && r.check_health >= full
                })
                .await?;
            ctx.steps.record_serving(
                &format!("{name} check passed"),
                t,
                format!("status {}, check {}", r.status, r.check_status),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Strategy for HaproxyPool {
    fn name(&self) -> &'static str {
        "haproxy-pool"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let tls = super::haproxy_front_tls(ctx)?;
        let n = self.opts.servers as usize;
        if self.opts.netns {
            if ctx
                .app
                .config
                .socket
                .as_ref()
                .is_some_and(|s| s.get_ref() != "tcp")
            {
                return Err(Error::Harness(
                    "haproxy-pool: hosts = \"netns\" serves each instance over TCP on its test host: drop app.socket or set it to \"tcp\"".into(),
                ));
            }
            // Kept before anything else can fail, so that shutdown (or drop) removes them.
            let hosts = tokio::task::spawn_blocking(move || TestHosts::create(n))
                .await
                .map_err(|e| Error::Harness(format!("creating test hosts: {e}")))??;
            let hosts = self.hosts.insert(hosts);
            self.endpoints = hosts
                .hosts()
                .iter()
                .map(|h| Endpoint::Tcp((h.addr, HOST_PORT).into()))
                .collect();
        } else {
            for i in 0..n {
                self.endpoints
                    .push(ctx.app.endpoint_for(&PoolConfig::server_name(i))?);
            }
        }
        for i in 0..n {
            let inst = self.start_instance(ctx, i, version)?;
            self.instances.push(Some(inst));
        }
        for inst in self.instances.iter_mut().flatten() {
            ctx.app.wait_ready(inst).await?;
        }
        let cfg = PoolConfig {
            servers: self.endpoints.clone(),
            inter: self.opts.inter,
            fall: self.opts.fall,
            rise: self.opts.rise,
            retries: self.opts.retries,
            redispatch: self.opts.redispatch,
            disable_on_404: self.opts.take_out == "404",
            status_path: ctx.app.config.status_path.clone(),
            frontend_maxconn: None,
            idle_close_on_response: false,
            tls: tls.as_ref().map(|(bind, _)| bind.clone()),
            http2: super::haproxy_front_http2(ctx),
            hard_stop_after: crate::front::haproxy::HARD_STOP_AFTER,
        };
        let hap = Haproxy::start(&ctx.app.site(), &cfg, None).await?;
        let endpoint = hap.endpoint();
        // Kept before anything else can fail, so that shutdown stops it.
        let hap = self.haproxy.insert(hap);
        self.base = hap.counters().await?;
        let host = match &endpoint {
            Endpoint::Tcp(a) => a.to_string(),
            Endpoint::Unix(_) => "localhost".into(),
        };
        Ok(Target {
            endpoint,
            host,
            path: "/".into(),
            tls: tls.map(|(_, trust)| trust),
        })
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let mut result = Ok(());
        if let Some(i) = self.opts.link_down {
            result = self.link_down(ctx, i).await;
        } else {
            for i in 0..self.instances.len() {
                if let Err(e) = self.roll(ctx, i, version).await {
                    result = Err(e);
                    break;
                }
            }
        }
        // What the balancer hid or failed, whether or not the roll went through.
        let total = self.record_counters(ctx, "haproxy counters").await;
        // A roll's own error comes first; the counters' only if the roll went through.
        result?;
        let total = total?;
        if let Some(max) = self.opts.max_hidden_retries {
            let hidden = total.wretr + total.wredis;
            if hidden > max {
                return Err(Error::Step(format!(
                    "haproxy retried or redispatched {hidden} connects the client never saw ({total}); max_hidden_retries = {max}"
                )));
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if self.haproxy.is_some() {
            // The load has ended: the counters of the whole run, cool-down included.
            let _ = self
                .record_counters(ctx, "haproxy counters (whole run)")
                .await;
        }
        if let Some(mut hap) = self.haproxy.take() {
            hap.stop().await;
        }
        for mut inst in self.instances.drain(..).flatten() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
        // Their processes are gone: now the namespaces can go too.
        if let Some(hosts) = self.hosts.take() {
            super::remove_test_hosts(ctx, hosts).await;
        }
    }
}

/// Puts `host`'s link back up after an error (each `ip` call is bounded, and so is
/// the whole): the route afterwards, or why not.
async fn restore_link(host: &TestHost) -> Result<String> {
    let h = host.clone();
    let up = tokio::task::spawn_blocking(move || netns::set_link(&h, true));
    match tokio::time::timeout(Duration::from_secs(30), up).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(Error::Step(format!("link up: {e}"))),
        Err(_) => Err(Error::Step("link up: no answer within 30s".into())),
    }
}

/// A numeric `show stat` field by name (0 if absent).
fn field(r: &crate::front::haproxy::ServerStat, name: &str) -> u64 {
    r.fields.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    fn parse(reload: &str) -> crate::error::Result<crate::scenario::Scenario> {
        crate::scenario::parse(
            std::path::Path::new("s.toml"),
            &format!("[app]\nkind = \"builtin\"\n[reload]\nstrategy = \"haproxy-pool\"\n{reload}"),
        )
    }

    #[test]
    fn options_are_checked_where_they_are_written() {
        parse("servers = 4\ntake_out = \"404\"\nretries = 2\nredispatch = true\nmax_hidden_retries = 0\n").unwrap();
        let e = crate::scenario::parse(
            std::path::Path::new("s.toml"),
            "[app]\nkind = \"granian\"\n[reload]\nstrategy = \"haproxy-pool\"\ntake_out = \"404\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml:5:12: `reload.take_out`: \"404\" needs app.kind = \"builtin\""),
            "{e}"
        );
        let e = parse("servers = 1\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:11: `reload.servers`: must be at least 2"),
            "{e}"
        );
        let e = parse("check_inter = \"0ms\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:15: `reload.check_inter`: must be between 10ms and 60s"),
            "{e}"
        );
        let e = parse("take_out = \"weight\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:12: `reload.take_out`: unknown value"),
            "{e}"
        );
        let e = parse("rise = 0\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:8: `reload.rise`: must be at least 1"),
            "{e}"
        );
        let e = parse("stop_old = \"nope\"\n").unwrap_err().to_string();
        assert!(e.contains("`reload.stop_old`"), "{e}");
        parse("hosts = \"netns\"\nlink_down = \"s3\"\nlink_down_for = \"2s\"\n").unwrap();
        parse("hosts = \"netns\"\nlink_down = \"s3\"\nlink_down_for = \"5m\"\n").unwrap();
        let e = parse("hosts = \"netns\"\nlink_down = \"s3\"\nlink_down_for = \"10h\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:7:17: `reload.link_down_for`: at most 5m"),
            "{e}"
        );
        let e = parse("hosts = \"vm\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:9: `reload.hosts`: unknown value"),
            "{e}"
        );
        let e = parse("link_down = \"s2\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:5:13: `reload.link_down`: needs hosts = \"netns\""),
            "{e}"
        );
        let e = parse("servers = 64\nhosts = \"netns\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:5:11: `reload.servers`: at most 63 with hosts = \"netns\""),
            "{e}"
        );
        for bad in ["s4", "s0", "s01", "2", "s"] {
            let e = parse(&format!("hosts = \"netns\"\nlink_down = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("s.toml:6:13: `reload.link_down`: no such server: s1 to s3"),
                "{bad}: {e}"
            );
        }
    }
}
