//! SO_REUSEPORT handover: old and new instances of the built-in fixture on one TCP
//! port, each bound with SO_REUSEPORT (what gunicorn `--reuse-port`, nginx `listen
//! ... reuseport`, granian or envoy do for a hot restart). A reload starts the new
//! instance beside the old one on the same address, waits until it answers (a probe
//! that reaches it: the kernel spreads new connections over both listeners, so a
//! probe may land on either), then stops the old one with a drain.
//!
//! Each listener of a SO_REUSEPORT group has its own accept queue. When the old one
//! closes its listener, the connections still in that queue are reset, unless
//! `net.ipv4.tcp_migrate_req` (Linux 5.14+, per network namespace, 0 by default)
//! moves them to another listener of the group. The load sees the loss as
//! `reset_fresh` (or `connect_other`, a reset during the handshake) at the moment the
//! old listener closes.
//!
//! `hosts = "netns"` (the default) runs both instances on one test host (a network
//! namespace of the run, see [`crate::sys::netns`]) and the load reaches it over its
//! link; `tcp_migrate_req` sets the sysctl in that namespace only, never the
//! harness's own. `hosts = "local"` binds a loopback port in the harness's namespace
//! (whatever its `tcp_migrate_req` is: a run there says nothing about the kernel fix).
//!
//! Whether the old queue holds anything when it closes depends on the server: the
//! fixture's `app.close_listener_after` makes it stop accepting at once on a drain and
//! close its listener only that long after (as a worker whose inherited listening
//! socket closes only when it exits, after its last request), so under a load of new
//! connections the old queue is never empty at the close.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::builtin::Builtin;
use crate::app::{Instance, StopHow};
use crate::config::{OptionDoc, ReloadTable};
use crate::error::{Error, Result};
use crate::load::{Endpoint, Target};
use crate::sys::netns::{self, TestHosts};
use crate::sys::readiness;

/// `hosts` values: a loopback port in the harness's namespace, or a test host.
pub const HOSTS: &[&str] = &["local", "netns"];
/// The TCP port both instances bind on the test host.
pub const HOST_PORT: u16 = 8000;
/// The sysctl `tcp_migrate_req` sets.
pub const MIGRATE_REQ: &str = "net.ipv4.tcp_migrate_req";

/// `[reload]` options of reuseport. `step_timeout`: the longest the new instance may
/// take to answer (default `app.ready_timeout`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// `netns` (default: both instances on a test host of their own; needs root) or
    /// `local` (a loopback port in the harness's namespace).
    pub hosts: Spanned<String>,
    /// With `hosts = "netns"`: `net.ipv4.tcp_migrate_req` in the test host's
    /// namespace, 0 (queued connections reset when a listener closes) or 1 (moved to
    /// another listener of the group); absent: the namespace's default, left alone.
    pub tcp_migrate_req: Option<Spanned<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hosts: Spanned::new(0..0, "netns".into()),
            tcp_migrate_req: None,
        }
    }
}

impl Spec for Reuseport {
    const NAME: &'static str = "reuseport";
    const SUMMARY: &'static str = "old and new instances on one TCP port with SO_REUSEPORT: a reload starts the new one beside the old, waits until it answers, then drains the old one, whose listener's accept queue is reset on close unless `net.ipv4.tcp_migrate_req` moves it";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("hosts", "`\"netns\"`", "`netns`: both instances on a test host of their own (a network namespace; needs root, else exit 2); `local`: a loopback port in the harness's namespace"),
        OptionDoc::new("tcp_migrate_req", "—", "with `hosts = \"netns\"`: `net.ipv4.tcp_migrate_req` in the test host's namespace only, `0` (a closing listener's queued connections are reset) or `1` (moved to another listener); absent: left at the namespace's default"),
    ];
    const APP_KINDS: &'static [&'static str] = &["builtin"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.hosts, "reload.hosts", HOSTS)?;
        if let Some(m) = &o.tcp_migrate_req {
            if *m.get_ref() > 1 {
                return Err(at.error(m.span(), "reload.tcp_migrate_req", "must be 0 or 1"));
            }
            if o.hosts.get_ref() != "netns" {
                return Err(at.error(
                    m.span(),
                    "reload.tcp_migrate_req",
                    "needs hosts = \"netns\" (it is set in a test host's namespace, never the harness's own)",
                ));
            }
        }
        Ok(())
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(Reuseport {
            netns: o.hosts.get_ref() == "netns",
            migrate_req: o.tcp_migrate_req.as_ref().map(|m| *m.get_ref()),
            step_timeout: b.step_timeout,
            hosts: None,
            endpoint: None,
            active: None,
        })
    }
}

/// The reuseport strategy.
pub struct Reuseport {
    netns: bool,
    migrate_req: Option<u8>,
    step_timeout: Option<Duration>,
    /// The test host (`hosts = "netns"`), removed at shutdown.
    hosts: Option<TestHosts>,
    /// The address both instances bind.
    endpoint: Option<Endpoint>,
    active: Option<Instance>,
}

impl Reuseport {
    /// The test host's namespace file, if the instances run on one.
    fn netns_path(&self) -> Option<std::path::PathBuf> {
        self.hosts
            .as_ref()
            .and_then(|h| h.hosts().first())
            .map(netns::TestHost::netns_path)
    }

    /// Probes until the new instance itself answers (a probe may reach the old one:
    /// the kernel picks a listener per connection), up to `timeout`.
    async fn wait_answers(ctx: &Ctx, inst: &mut Instance, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(status) = inst.child.try_exited() {
                return Err(inst
                    .child
                    .error(format!("exited ({status}) before it was ready")));
            }
            match readiness::probe_once(&inst.endpoint, None, &ctx.app.config.status_path).await {
                Ok((200..=299, Some(v))) if v == inst.version => return Ok(()),
                Ok((code, v)) => last = format!("status {code}, version {v:?}"),
                Err(e) => last = e,
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(inst.child.error(format!(
                    "did not answer as {} within {timeout:?} (last probe: {last})",
                    inst.version
                )));
            }
            tokio::time::sleep(readiness::PROBE_EVERY).await;
        }
    }
}

#[async_trait]
impl Strategy for Reuseport {
    fn name(&self) -> &'static str {
        "reuseport"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        if ctx.front_config.is_some() {
            return Err(Error::Harness(
                "reuseport: the load connects to the instances' shared port itself: drop [front]"
                    .into(),
            ));
        }
        if !ctx.app.config.kind_options::<Builtin>()?.reuse_port {
            return Err(Error::Harness(
                "reuseport: both instances bind one port: set app.reuse_port = true (and app.socket = \"tcp\")".into(),
            ));
        }
        let endpoint = if self.netns {
            // Kept before anything else can fail, so that shutdown (or drop) removes it.
            let hosts = tokio::task::spawn_blocking(|| TestHosts::create(1))
                .await
                .map_err(|e| Error::Harness(format!("creating a test host: {e}")))??;
            let hosts = self.hosts.insert(hosts);
            let host = hosts.hosts()[0].clone();
            if let Some(m) = self.migrate_req {
                let t = ctx.steps.now_ms();
                let h = host.clone();
                let before = tokio::task::spawn_blocking(move || {
                    netns::set_sysctl(&h, MIGRATE_REQ, &m.to_string())
                })
                .await
                .map_err(|e| Error::Harness(format!("{MIGRATE_REQ}: {e}")))??;
                ctx.steps.record(
                    "sysctl set",
                    t,
                    format!("{MIGRATE_REQ} = {m} in {} (was {before})", host.name),
                );
            }
            Endpoint::Tcp((host.addr, HOST_PORT).into())
        } else {
            crate::app::AppEnv::free_tcp_endpoint()?
        };
        self.endpoint = Some(endpoint.clone());
        let netns = self.netns_path();
        let inst = ctx
            .app
            .start_in("app-a", endpoint.clone(), version, netns.as_deref())?;
        let inst = self.active.insert(inst);
        ctx.app.wait_ready(inst).await?;
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let (Some(endpoint), Some(mut old)) = (self.endpoint.clone(), self.active.take()) else {
            return Ok(());
        };
        let slot = if old.slot == "app-a" {
            "app-b"
        } else {
            "app-a"
        };
        let netns = self.netns_path();
        let t = ctx.steps.now_ms();
        let mut new = match ctx.app.start_in(slot, endpoint, version, netns.as_deref()) {
            Ok(new) => new,
            Err(e) => {
                self.active = Some(old);
                return Err(e);
            }
        };
        let timeout = self.step_timeout.unwrap_or(ctx.app.config.ready_timeout.0);
        let ready = Self::wait_answers(ctx, &mut new, timeout).await;
        // The new listener joins the group when it binds: it takes connections from then.
        ctx.steps.record_serving(
            "new instance ready",
            t,
            format!("{} beside {} on one port", new.name, old.name),
        );
        if let Err(e) = ready {
            ctx.app.stop(&mut new, StopHow::Kill).await;
            self.active = Some(old);
            return Err(e);
        }
        self.active = Some(new);
        // What decides the old queue's fate, as it is when the old listener closes.
        let migrate = match self.hosts.as_ref().and_then(|h| h.hosts().first()).cloned() {
            Some(h) => {
                let read = tokio::task::spawn_blocking(move || {
                    netns::read_sysctl(&h, MIGRATE_REQ).map(|v| format!("{v} in {}", h.name))
                })
                .await;
                match read {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                }
            }
            None => netns::sysctl_file(MIGRATE_REQ)
                .and_then(|f| std::fs::read_to_string(f).ok())
                .map_or("unknown".into(), |v| {
                    format!("{} in the harness's own namespace", v.trim())
                }),
        };
        let t = ctx.steps.now_ms();
        let how = ctx.app.stop(&mut old, StopHow::Drain).await;
        ctx.steps.record_serving(
            "old instance stopped",
            t,
            format!("{}: {how}; {MIGRATE_REQ} = {migrate}", old.name),
        );
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.active.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
        // Its processes are gone: now the namespace can go too.
        if let Some(hosts) = self.hosts.take() {
            super::remove_test_hosts(ctx, hosts).await;
        }
    }
}

#[cfg(test)]
mod tests {
    fn parse(reload: &str) -> crate::error::Result<crate::scenario::Scenario> {
        let src = format!(
            "[app]\nkind = \"builtin\"\nsocket = \"tcp\"\nreuse_port = true\n[reload]\nstrategy = \"reuseport\"\n{reload}"
        );
        crate::scenario::parse(std::path::Path::new("s.toml"), &src)
    }

    #[test]
    fn options_are_checked() {
        parse("").unwrap();
        parse("tcp_migrate_req = 1\n").unwrap();
        parse("hosts = \"local\"\n").unwrap();
        let e = parse("tcp_migrate_req = 2\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:7:19: `reload.tcp_migrate_req`: must be 0 or 1"),
            "{e}"
        );
        let e = parse("hosts = \"local\"\ntcp_migrate_req = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:8:19: `reload.tcp_migrate_req`: needs hosts = \"netns\""),
            "{e}"
        );
        let e = parse("hosts = \"vm\"\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:7:9: `reload.hosts`: unknown value"),
            "{e}"
        );
    }

    #[test]
    fn reuse_port_needs_tcp() {
        let e = crate::scenario::parse(
            std::path::Path::new("s.toml"),
            "[app]\nkind = \"builtin\"\nreuse_port = true\n[reload]\nstrategy = \"reuseport\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml:3:14: `app.reuse_port`: needs app.socket = \"tcp\""),
            "{e}"
        );
    }
}
