//! Reload strategies: one file each, behind the [`Strategy`] trait.
//!
//! A strategy owns its topology: it starts the first version, carries out each
//! reload while recording its steps on the load clock, and stops everything it
//! started. The run loop never needs to know which strategy it drives.

pub mod command;
pub mod gunicorn_hup;
pub mod gunicorn_usr2;
pub mod naive_restart;
pub mod nginx_reload;
pub mod rolling_kill;
pub mod symlink_swap;
pub mod uwsgi_chain;
pub mod uwsgi_fastrouter;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::app::nginx::Nginx;
use crate::app::{AppEnv, StopHow};
use crate::error::{Error, Result};
use crate::load::{Clock, Endpoint, Target};
use crate::scenario::{FrontConfig, Scenario};

/// One step of a reload, on the load clock.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    /// What happened, e.g. `new instance ready`, `switched`, `old instance stopped`.
    pub name: String,
    /// When the step began, ms since load start.
    pub start_ms: f64,
    /// When it ended.
    pub end_ms: f64,
    /// Details (which instance, how it exited).
    pub detail: String,
    /// What a deploy command printed (its last lines), for the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The steps recorded so far.
#[derive(Debug, Default)]
pub struct StepLog {
    clock: Option<Clock>,
    /// Recorded steps, in order.
    pub events: Vec<StepEvent>,
    /// The last step's name, shared with the live progress display.
    pub last: std::sync::Arc<std::sync::Mutex<String>>,
}

impl StepLog {
    /// Puts steps on the load's clock (before the load starts, steps are not recorded).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = Some(clock);
    }

    /// Now, in ms on the load clock (0 before the load started).
    pub fn now_ms(&self) -> f64 {
        self.clock.map_or(0.0, |c| c.now_ns() as f64 / 1e6)
    }

    /// Records a step that began at `start_ms` and ends now.
    pub fn record(&mut self, name: &str, start_ms: f64, detail: impl Into<String>) {
        self.push(name, start_ms, detail.into(), None);
    }

    /// Records a step with the output of a command it ran.
    pub fn record_with_output(
        &mut self,
        name: &str,
        start_ms: f64,
        detail: String,
        output: String,
    ) {
        self.push(name, start_ms, detail, Some(output));
    }

    fn push(&mut self, name: &str, start_ms: f64, detail: String, output: Option<String>) {
        if self.clock.is_some() {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = name.to_string();
            let end_ms = self.now_ms();
            self.events.push(StepEvent {
                name: name.to_string(),
                start_ms,
                end_ms,
                detail,
                output,
            });
        }
    }
}

/// What a strategy works with.
#[derive(Debug)]
pub struct Ctx {
    /// Starting and stopping app instances.
    pub app: AppEnv,
    /// The steps recorded.
    pub steps: StepLog,
    /// The front server, once started by [`expose`].
    pub front: Option<Nginx>,
    /// The scenario's front server settings, if it has one.
    pub front_config: Option<FrontConfig>,
    /// How many reloads the run will carry out.
    pub deploys: usize,
}

/// Makes `upstream` reachable by the load: through a front server if the scenario has
/// one (started here and kept in `ctx.front`), else directly.
pub async fn expose(ctx: &mut Ctx, upstream: &Endpoint) -> Result<Target> {
    let Some(fc) = ctx.front_config.clone() else {
        let host = match upstream {
            Endpoint::Tcp(a) => a.to_string(),
            Endpoint::Unix(_) => "localhost".into(),
        };
        return Ok(Target {
            endpoint: upstream.clone(),
            host,
            path: "/".into(),
        });
    };
    let up = ctx.app.upstream(upstream.clone());
    let listen = fc
        .listen
        .as_ref()
        .and_then(|l| crate::scenario::front_listen(l).ok());
    let ngx = Nginx::start(&ctx.app, &up, *fc.worker_processes.get_ref(), listen).await?;
    let endpoint = ngx.endpoint();
    ctx.front = Some(ngx);
    let host = match &endpoint {
        Endpoint::Tcp(a) => a.to_string(),
        Endpoint::Unix(_) => "localhost".into(),
    };
    Ok(Target {
        endpoint,
        host,
        path: "/".into(),
    })
}

/// A reload strategy.
#[async_trait]
pub trait Strategy: Send {
    /// The strategy's name as written in scenarios.
    fn name(&self) -> &'static str;

    /// Starts `version` and returns where the load should connect, once it serves.
    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target>;

    /// Moves the running topology to `version`, recording each step.
    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()>;

    /// Stops everything it started (gracefully where it can, killed after a timeout).
    async fn shutdown(&mut self, ctx: &mut Ctx);
}

/// Builds the strategy a (validated) scenario names; `base_dir` is the scenario
/// file's absolute directory, `Loaded::dir` (a deploy command runs there).
pub fn build(s: &Scenario, base_dir: &std::path::Path) -> Box<dyn Strategy> {
    let r = &s.reload;
    let stop_old = match r.stop_old.as_ref().map(|v| v.get_ref().as_str()) {
        Some("kill") => StopHow::Kill,
        _ => StopHow::Drain,
    };
    match r.strategy.get_ref().as_str() {
        "naive-restart" => Box::new(naive_restart::NaiveRestart::new(stop_old)),
        "command" => Box::new(command::Command::new(
            r.command
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_default(),
            base_dir.to_path_buf(),
            r.step_timeout
                .as_ref()
                .map_or(Duration::from_secs(60), |t| t.get_ref().0),
        )),
        "symlink-swap" => Box::new(symlink_swap::SymlinkSwap::new(symlink_swap::Options {
            switch: match r.switch.as_ref().map(|v| v.get_ref().as_str()) {
                Some("unlink-then-link") => symlink_swap::Switch::UnlinkThenLink {
                    gap: r
                        .unlink_gap
                        .as_ref()
                        .map_or(Duration::from_millis(20), |g| g.get_ref().0),
                },
                _ => symlink_swap::Switch::Rename,
            },
            wait_ready: r.wait_ready.as_ref().is_none_or(|v| *v.get_ref()),
            settle: r
                .settle
                .as_ref()
                .map_or(Duration::from_millis(500), |v| v.get_ref().0),
            stop_old,
        })),
        "uwsgi-chain" => Box::new(uwsgi_chain::UwsgiChain::new(
            match r.trigger.as_ref().map(|v| v.get_ref().as_str()) {
                Some("touch") => uwsgi_chain::Trigger::Touch,
                _ => uwsgi_chain::Trigger::Fifo,
            },
            r.step_timeout
                .as_ref()
                .map_or(Duration::from_secs(30), |v| v.get_ref().0),
        )),
        "uwsgi-fastrouter" => Box::new(uwsgi_fastrouter::UwsgiFastrouter::new(
            uwsgi_fastrouter::Options::from_reload(r),
        )),
        "nginx-reload" => Box::new(nginx_reload::NginxReload::new(nginx_reload::Options {
            wait_ready: r.wait_ready.as_ref().is_none_or(|v| *v.get_ref()),
            wait_old_workers: r.wait_old_workers.as_ref().is_none_or(|v| *v.get_ref()),
            stop_old,
            step_timeout: r
                .step_timeout
                .as_ref()
                .map_or(nginx_reload::DEFAULT_STEP_TIMEOUT, |v| v.get_ref().0),
        })),
        "rolling-kill" => Box::new(rolling_kill::RollingKill::new(rolling_kill::Options {
            wait_ready: r.wait_ready.as_ref().is_none_or(|v| *v.get_ref()),
            fixed_wait: r
                .fixed_wait
                .as_ref()
                .map_or(Duration::from_millis(100), |v| v.get_ref().0),
            step_timeout: r.step_timeout.as_ref().map(|v| v.get_ref().0),
        })),
        "gunicorn-hup" => Box::new(gunicorn_hup::GunicornHup::new(
            r.step_timeout.as_ref().map(|v| v.get_ref().0),
        )),
        "gunicorn-usr2" => Box::new(gunicorn_usr2::GunicornUsr2::new(
            r.step_timeout.as_ref().map(|v| v.get_ref().0),
        )),
        other => Box::new(NotYet(other.to_string())),
    }
}

/// A strategy named in the schema whose implementation has not landed yet.
struct NotYet(String);

#[async_trait]
impl Strategy for NotYet {
    fn name(&self) -> &'static str {
        "not-implemented"
    }

    async fn start(&mut self, _ctx: &mut Ctx, _version: &str) -> Result<Target> {
        Err(Error::Harness(format!(
            "strategy {:?} is not implemented yet",
            self.0
        )))
    }

    async fn reload(&mut self, _ctx: &mut Ctx, _version: &str) -> Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self, _ctx: &mut Ctx) {}
}
