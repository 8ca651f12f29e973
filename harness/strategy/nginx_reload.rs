//! nginx reload onto a new upstream (healthchecks.io's deploy): every version runs
//! on its own fresh socket (`app-1`, `app-2`, ...). A reload starts the new version
//! next to the old one, waits until it answers, rewrites nginx's upstream to the new
//! socket and runs `nginx -s reload`, waits until the *old nginx workers* have
//! exited (only then has nothing left a reason to connect to the old socket), and
//! only then stops the old app.
//!
//! Done badly it fails with 502s: `nginx -s reload` only signals the master and
//! returns at once, while the old workers keep accepting and proxying to the old
//! upstream until the master has started new workers and told the old ones to
//! quit. Stopping the old app right after `nginx -s reload` returns
//! (`wait_old_workers = false`) makes every request those old workers still pass
//! on fail to connect (`connect() ... failed` in error.log, 502 to the client);
//! switching before the new app is ready (`wait_ready = false`) sends requests to
//! a socket that is not there yet (502 as well).
//!
//! A side effect that is nginx's, not the strategy's: on reload the old workers
//! close their *idle* keep-alive client connections. A client that reuses such a
//! connection sees it closed before any response byte (`reset_reused`); real
//! clients retry idempotent requests on a reused connection.
//!
//! Open websockets (`[websockets]`) keep the old workers alive: an old worker does
//! not exit while it proxies one, so the wait for the old workers runs into
//! `step_timeout` and the reload fails, with the old app still serving them. nginx's
//! `worker_shutdown_timeout` (`[front]`) ends the wait by closing those connections,
//! without a websocket close frame: the clients see them dropped. See
//! scenarios/negative/websockets-nginx-*.toml for the figures.
//!
//! With `[front] tls = true`, `rotate_cert` rotates the server certificate in the
//! same reload: a new certificate signed by the run's CA replaces the files nginx
//! reads ([`crate::front::tls::rotate`]) just before `nginx -s reload`, and the
//! verdict checks `new_cert_served`. `atomic` is the right way; `key-mismatch` (the
//! new certificate with the old key) and `torn` (the new key written in place, the
//! reload before the new certificate) are wrong. Measured on nginx 1.22.1:
//! `nginx -s reload` loads the certificates itself before it signals the master, so
//! it exits 1 (`SSL_CTX_use_PrivateKey(...) failed (... key values mismatch)`), the
//! master is never told, and the old workers keep serving the old certificate (and
//! the old upstream): nothing fails, the reload fails, `new_cert_served` fails.
//! Were the files changed between that check and the master's own load, the master
//! would refuse the config and start no worker: the wait for the old workers then
//! ends in an error quoting error.log's last `[emerg]` line.

use crate::config::OptionDoc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::{Instance, StopHow};
use crate::config::ReloadTable;
use crate::error::{Error, Result};
use crate::front::tls::CertRotation;
use crate::front::tls::Rotation;
use crate::load::{Endpoint, Target};

/// Default limit for the old nginx workers to exit.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// `[reload]` options of nginx-reload. `step_timeout`: the longest the old nginx
/// workers may take to exit (default 10s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Wait until the new app answers before pointing nginx at it (default true; false is broken).
    pub wait_ready: bool,
    /// Wait until the old nginx workers have exited before stopping the old app
    /// (default true; false is broken: `nginx -s reload` returns at once).
    pub wait_old_workers: bool,
    /// How the old app is stopped: `drain` (graceful, the default) or `kill` (SIGKILL at once).
    pub stop_old: Spanned<String>,
    /// Rotate the server certificate in the reload: `none` (the default), `atomic`,
    /// or done wrong, `key-mismatch` or `torn` (needs `front.tls`).
    pub rotate_cert: Spanned<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait_ready: true,
            wait_old_workers: true,
            stop_old: Spanned::new(0..0, "drain".into()),
            rotate_cert: Spanned::new(0..0, "none".into()),
        }
    }
}

impl Spec for NginxReload {
    const NAME: &'static str = "nginx-reload";
    const SUMMARY: &'static str = "every version on its own fresh socket; a reload starts the new one, waits until it answers, points nginx's upstream at it with `nginx -s reload`, waits for the old nginx workers to exit, then stops the old app";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("wait_ready", "`true`", "wait until the new app answers before pointing nginx at it (`false` is broken)"),
        OptionDoc::new("wait_old_workers", "`true`", "wait until the old nginx workers have exited before stopping the old app (`false` is broken: `nginx -s reload` returns at once)"),
        OptionDoc::new("stop_old", "`\"drain\"`", "how the old app is stopped: `drain` (graceful) or `kill` (SIGKILL at once: broken)"),
        OptionDoc::new("rotate_cert", "`\"none\"`", "with `front.tls`, rotate the server certificate in the reload (a new one signed by the run's CA) and check `new_cert_served`: `atomic` (new files renamed over the old, key first), or done wrong: `key-mismatch` (the new certificate with the old key) or `torn` (the new key written in place, the reload before the new certificate); `nginx -s reload` refuses both (exit 1) and nginx keeps serving the old certificate"),
    ];
    const APP_KINDS: &'static [&'static str] =
        &["builtin", "flup", "gunicorn", "uwsgi", "uvicorn", "granian"];
    const NEEDS_FRONT: Option<&'static str> =
        Some("nginx-reload needs a front server: add [front] kind = \"nginx\"");
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.stop_old, "reload.stop_old", super::STOP_OLD)?;
        at.one_of(&o.rotate_cert, "reload.rotate_cert", Rotation::NAMES)?;
        if Rotation::of(o.rotate_cert.get_ref()).is_some() && !at.front_tls() {
            return Err(at.error(
                o.rotate_cert.span(),
                "reload.rotate_cert",
                "a certificate rotation needs nginx serving https: add `tls = true` to [front]",
            ));
        }
        Ok(())
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(NginxReload::new(Config {
            wait_ready: o.wait_ready,
            wait_old_workers: o.wait_old_workers,
            stop_old: super::stop_how(&o.stop_old),
            rotate_cert: Rotation::of(o.rotate_cert.get_ref()),
            step_timeout: b.step_timeout.unwrap_or(DEFAULT_STEP_TIMEOUT),
        }))
    }
}

/// The strategy's settings, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Wait until the new app answers before pointing nginx at it (false is broken).
    pub wait_ready: bool,
    /// Wait until the old nginx workers have exited before stopping the old app (false is broken).
    pub wait_old_workers: bool,
    /// How the old app is stopped.
    pub stop_old: StopHow,
    /// Rotate the server certificate in the reload, so (None: no rotation).
    pub rotate_cert: Option<Rotation>,
    /// Longest the old nginx workers may take to exit.
    pub step_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            wait_ready: true,
            wait_old_workers: true,
            stop_old: StopHow::Drain,
            rotate_cert: None,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// The nginx-reload strategy.
pub struct NginxReload {
    opts: Config,
    /// The instance nginx points at.
    active: Option<Instance>,
    /// Instances left running by a reload that failed half-way (stopped at shutdown).
    stray: Vec<Instance>,
    /// Slots used so far (the next one is `app-{count + 1}`).
    count: u32,
}

impl NginxReload {
    /// An nginx reload with `opts`.
    pub fn new(opts: Config) -> NginxReload {
        NginxReload {
            opts,
            active: None,
            stray: Vec::new(),
            count: 0,
        }
    }

    /// The next fresh slot: `app-1`, `app-2`, ...
    fn next_slot(&mut self) -> String {
        self.count += 1;
        format!("app-{}", self.count)
    }
}

/// A short description of where an instance listens.
fn describe(inst: &Instance) -> String {
    match &inst.endpoint {
        Endpoint::Unix(p) => format!("{} on {}", inst.name, p.display()),
        Endpoint::Tcp(a) => format!("{} on {a}", inst.name),
    }
}

#[async_trait]
impl Strategy for NginxReload {
    fn name(&self) -> &'static str {
        "nginx-reload"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        if ctx.front_config.is_none() {
            return Err(Error::Harness(
                "nginx-reload needs a front server: add [front] kind = \"nginx\"".into(),
            ));
        }
        if self.opts.rotate_cert.is_some() && !ctx.front_config.as_ref().is_some_and(|f| f.is_tls())
        {
            return Err(Error::Harness(
                "reload.rotate_cert needs a TLS front: add tls = true to [front]".into(),
            ));
        }
        let slot = self.next_slot();
        let endpoint = ctx.app.endpoint_for(&slot)?;
        let mut inst = ctx.app.start(&slot, endpoint.clone(), version)?;
        let ready = ctx.app.wait_ready(&mut inst).await;
        self.active = Some(inst);
        ready?;
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let slot = self.next_slot();
        let endpoint = ctx.app.endpoint_for(&slot)?;
        let t = ctx.steps.now_ms();
        let mut new = ctx.app.start(&slot, endpoint.clone(), version)?;
        if self.opts.wait_ready {
            if let Err(e) = ctx.app.wait_ready(&mut new).await {
                self.stray.push(new);
                return Err(e);
            }
            ctx.steps.record("new app ready", t, describe(&new));
        } else {
            ctx.steps.record("new app started", t, describe(&new));
        }

        // From here on nginx may route to `new`: it is the active instance.
        let old = self.active.replace(new);
        if let Some(old) = old {
            self.stray.push(old);
        }
        let upstream = ctx.app.upstream(endpoint);
        let Some(ngx) = ctx.front.as_mut() else {
            return Err(Error::Step("nginx-reload: no front server running".into()));
        };
        if let Some(how) = self.opts.rotate_cert {
            let Some(files) = ngx.tls_files() else {
                return Err(Error::Step("rotate_cert: nginx serves no TLS".into()));
            };
            let at_ms = ctx.steps.now_ms();
            let new_cert = crate::front::tls::rotate(files, how)?;
            let name = Rotation::NAMES
                .iter()
                .find(|n| Rotation::of(n) == Some(how))
                .copied()
                .unwrap_or_default();
            ctx.steps.record(
                "certificate rotated",
                at_ms,
                format!("{name}: new certificate {new_cert} signed by the run CA"),
            );
            ctx.cert_rotation = Some(CertRotation {
                new_cert,
                how: name.to_string(),
                at_ms,
            });
        }
        let t = ctx.steps.now_ms();
        let old_workers = ngx.reload(&upstream).await?;
        ctx.steps.record_serving(
            "nginx reloaded",
            t,
            format!(
                "`nginx -s reload` returned; old workers {old_workers:?}; upstream {:?}",
                upstream.endpoint()
            ),
        );
        if !self.opts.wait_ready {
            let t = ctx.steps.now_ms();
            if let Some(new) = self.active.as_mut() {
                ctx.app.wait_ready(new).await?;
                ctx.steps.record(
                    "new app ready",
                    t,
                    format!("{} (after the switch)", describe(new)),
                );
            }
        }
        if self.opts.wait_old_workers {
            let t = ctx.steps.now_ms();
            let Some(ngx) = ctx.front.as_ref() else {
                return Err(Error::Step("nginx-reload: no front server running".into()));
            };
            ngx.wait_workers_gone(&old_workers, self.opts.step_timeout)
                .await?;
            ctx.steps.record_serving(
                "old nginx workers exited",
                t,
                format!("{old_workers:?} gone; now {:?}", ngx.worker_pids()),
            );
        }
        // Every stray instance is a predecessor nginx no longer routes to.
        for mut old in std::mem::take(&mut self.stray) {
            let t = ctx.steps.now_ms();
            let how = ctx.app.stop(&mut old, self.opts.stop_old).await;
            ctx.steps
                .record_serving("old app stopped", t, format!("{}: {how}", old.name));
        }
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        for mut inst in self.stray.drain(..).chain(self.active.take()) {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(front: &str, rotate: &str) -> crate::error::Result<crate::scenario::Scenario> {
        let src = format!(
            "[app]\nkind = \"builtin\"\n[front]\nkind = \"nginx\"\n{front}[reload]\nstrategy = \"nginx-reload\"\nrotate_cert = \"{rotate}\"\n"
        );
        crate::scenario::parse(Path::new("s.toml"), &src)
    }

    #[test]
    fn rotate_cert_is_a_rotation_and_needs_a_tls_front() {
        assert!(parse("tls = true\n", "atomic").is_ok());
        assert!(parse("", "none").is_ok());
        let e = parse("", "key-mismatch").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:7:15: `reload.rotate_cert`: a certificate rotation needs nginx serving https"),
            "{e}"
        );
        let e = parse("tls = true\n", "sideways").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:8:15: `reload.rotate_cert`:") && e.contains("torn"),
            "{e}"
        );
    }
}
