//! The user's own deploy command as the reload step: what CI gating is for.
//!
//! With an `external` app the stack is the user's own (brought up by its start
//! command, see app/external.rs) and the command gets the run's `ZDT_*` variables
//! with the iteration and the expected version (docs/guide/gate-your-own-deploy.md).
//! With a built-in app kind the harness starts the first version in the symlink
//! layout (two slots, the load or nginx connecting through `app.sock`) and the
//! command gets that layout's paths (docs/strategies/command.md). The command must leave the new version serving; how it does that
//! is its business, and what it gets wrong is what the run shows. A non-zero exit
//! or a timeout fails the step. Processes the command leaves running (the new app
//! instance, started in the background) stay in its process group, which the
//! harness stops at the end of the run.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::external::{self, ExternalStack};
use crate::app::{Instance, StopHow};
use crate::config::{Programs, ReloadTable};
use crate::error::{Error, Result};
use crate::load::{Endpoint, Target};
use crate::sys::child::{log_tail, Child};
use crate::sys::procfs::pid_listening_on;
use crate::sys::tools;

/// `[reload]` options of command. `step_timeout`: the longest one run of the command
/// may take; a command still running then is killed and the step fails (default 60s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The deploy command as an argument list (no shell; required). A relative
    /// program path is taken from the scenario file's directory, which is also its
    /// working directory.
    pub command: Option<Spanned<Vec<String>>>,
}

impl Spec for Command {
    const NAME: &'static str = "command";
    const SUMMARY: &'static str = "the user's own deploy command is the reload step (CI gating); with an `external` app the stack is the user's own";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("command", "required", "the deploy command, as an argument list (no shell); a relative program path is taken from the scenario's directory, its working directory"),
    ];
    const APP_KINDS: &'static [&'static str] =
        &["builtin", "flup", "gunicorn", "uwsgi", "external"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        match &o.command {
            None => Err(at.missing(
                "reload.command",
                "strategy \"command\" needs `command = [\"./deploy.sh\", ...]`",
            )),
            Some(c) if c.get_ref().first().is_none_or(|p| p.is_empty()) => Err(at.error(
                c.span(),
                "reload.command",
                "must name a program: command = [\"./deploy.sh\"]",
            )),
            Some(_) => Ok(()),
        }
    }

    fn programs(o: &Options) -> Programs<'_> {
        o.command.iter().map(|c| ("reload.command", c)).collect()
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(Command::new(
            o.command
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_default(),
            b.base_dir.to_path_buf(),
            b.step_timeout.unwrap_or(Duration::from_secs(60)),
        ))
    }
}

const SLOTS: [&str; 2] = ["app-a", "app-b"];

/// The command strategy.
pub struct Command {
    argv: Vec<String>,
    cwd: PathBuf,
    timeout: Duration,
    first: Option<Instance>,
    /// Each run of the command, kept (with whatever it left running) until shutdown.
    runs: Vec<Child>,
    target: Option<Target>,
    /// The user's stack, for an `external` app.
    stack: Option<ExternalStack>,
}

impl Command {
    /// Runs `argv` (argv[0] relative to `cwd` if it contains a slash) in `cwd`, for at most
    /// `timeout`. `cwd` is absolute (the scenario's `Loaded::dir`), so the program path does
    /// not depend on where zdt-check was started.
    pub fn new(argv: Vec<String>, cwd: PathBuf, timeout: Duration) -> Command {
        Command {
            argv,
            cwd,
            timeout,
            first: None,
            runs: Vec::new(),
            target: None,
            stack: None,
        }
    }

    /// The environment handed to the command for deploy number `n` (1-based).
    fn env(&self, ctx: &Ctx, version: &str, n: usize) -> Vec<(String, String)> {
        if ctx.app.config.is_external() {
            return self.external_env(ctx, version, n);
        }
        let link = ctx.app.path("app.sock");
        let active = std::fs::read_link(&link).unwrap_or_else(|_| ctx.app.path("app-a.sock"));
        let next = if active.ends_with("app-a.sock") {
            ctx.app.path("app-b.sock")
        } else {
            ctx.app.path("app-a.sock")
        };
        let c = &ctx.app.config;
        let versions = c.versions();
        let old = versions
            .iter()
            .position(|v| v == version)
            .and_then(|i| i.checked_sub(1))
            .map_or("", |i| versions[i].as_str());
        let d = |p: &Path| p.display().to_string();
        let mut env = vec![
            ("ZDT_RUN_DIR", d(&ctx.app.run_dir)),
            ("ZDT_BIN", d(&ctx.app.exe)),
            ("ZDT_APP_KIND", c.kind.get_ref().clone()),
            ("ZDT_OLD_VERSION", old.to_string()),
            ("ZDT_NEW_VERSION", version.to_string()),
            ("ZDT_LINK", d(&link)),
            ("ZDT_ACTIVE_SOCKET", d(&active)),
            ("ZDT_NEXT_SOCKET", d(&next)),
            (
                "ZDT_OLD_PID",
                pid_listening_on(&active)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
            (
                "ZDT_STARTUP_DELAY",
                format!("{}ms", c.startup_delay().as_millis()),
            ),
            ("ZDT_STATUS_PATH", c.status_path.clone()),
            (
                "ZDT_TARGET",
                self.target
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            ),
        ];
        if c.kind.get_ref() != "builtin" {
            env.push(("ZDT_APP_DIR", d(&ctx.app.path("py"))));
            env.push((
                "ZDT_VENV",
                tools::venv(c.venv()).map(|v| d(&v)).unwrap_or_default(),
            ));
        }
        if let Some(ngx) = &ctx.front {
            env.push(("ZDT_NGINX_PREFIX", d(ngx.prefix())));
            env.push(("ZDT_NGINX_CONF", d(&ngx.conf())));
            env.push(("ZDT_NGINX_PID", ngx.pid().to_string()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// An external stack's variables plus this deploy's: iteration, count, versions.
    fn external_env(&self, ctx: &Ctx, version: &str, n: usize) -> Vec<(String, String)> {
        let target = self
            .target
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut env = external::base_env(&ctx.app, &self.cwd, &target);
        let versions = ctx.app.config.versions();
        let old = if versions.is_empty() {
            ""
        } else {
            versions.get(n - 1).map_or("", String::as_str)
        };
        env.extend([
            ("ZDT_ITERATION".to_string(), n.to_string()),
            ("ZDT_DEPLOYS".to_string(), ctx.deploys.to_string()),
            ("ZDT_NEW_VERSION".to_string(), version.to_string()),
            ("ZDT_OLD_VERSION".to_string(), old.to_string()),
        ]);
        env
    }
}

#[async_trait]
impl Strategy for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        if ctx.app.config.is_external() {
            let stack = ExternalStack::start(&ctx.app, &self.cwd, version).await?;
            let target = stack.target.clone();
            self.stack = Some(stack);
            self.target = Some(target.clone());
            return Ok(target);
        }
        let endpoint = Endpoint::Unix(ctx.app.path(&format!("{}.sock", SLOTS[0])));
        let mut inst = ctx.app.start(SLOTS[0], endpoint.clone(), version)?;
        ctx.app.wait_ready(&mut inst).await?;
        let link = ctx.app.path("app.sock");
        super::symlink_swap::atomic_relink(&link, &ctx.app.path(&format!("{}.sock", SLOTS[0])))
            .map_err(|e| Error::io(&link, e))?;
        self.first = Some(inst);
        let target = super::expose(ctx, &Endpoint::Unix(link)).await?;
        self.target = Some(target.clone());
        Ok(target)
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let n = self.runs.len() + 1;
        let log = ctx.app.path(&format!("zdt-deploy-{n}.log"));
        let env = self.env(ctx, version, n);
        let t = ctx.steps.now_ms();
        let mut child = external::spawn_program(
            &format!("deploy command #{n}"),
            &self.argv,
            &env,
            &self.cwd,
            &log,
        )?;
        // Reap the first instance as soon as the command stops it: a zombie still answers
        // `kill -0`, and a script waiting for its old pid to go would wait forever.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let status = loop {
            if let Some(s) = child.wait_exit(Duration::from_millis(50)).await {
                break Some(s);
            }
            if let Some(first) = self.first.as_mut() {
                first.child.try_exited();
            }
            if tokio::time::Instant::now() >= deadline {
                break None;
            }
        };
        let output = log_tail(&log, 30);
        self.runs.push(child);
        let (ok, what) = match status {
            None => (
                false,
                format!("did not finish within {:?}; stopped", self.timeout),
            ),
            Some(s) if s.success() => (true, "exit 0".to_string()),
            Some(s) => (false, format!("failed ({s})")),
        };
        let to = if version.is_empty() {
            String::new()
        } else {
            format!(" (to {version})")
        };
        ctx.steps.record_with_output(
            "deploy command",
            t,
            format!("#{n}{to}: {} {what}", self.argv.join(" ")),
            output.clone(),
            true,
        );
        if ok {
            Ok(())
        } else {
            if status.is_none() {
                if let Some(c) = self.runs.last_mut() {
                    c.kill().await;
                }
            }
            Err(Error::Step(format!(
                "deploy command {what}; its last output:\n{output}"
            )))
        }
    }

    /// In this order: the user's stop command (while everything still runs), then the
    /// deploy commands' groups (what they started lives there), then the start command's
    /// group; the run then sweeps orphans (see docs/guide/gate-your-own-deploy.md).
    async fn shutdown(&mut self, ctx: &mut Ctx) {
        let t = ctx.steps.now_ms();
        let mut notes = Vec::new();
        if let Some(stack) = &self.stack {
            notes.extend(stack.run_stop_command(&ctx.app).await);
        }
        for mut c in self.runs.drain(..).rev() {
            c.stop_group(ctx.app.config.stop_timeout.0).await;
        }
        if let Some(mut inst) = self.first.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
        if let Some(mut stack) = self.stack.take() {
            notes.extend(stack.stop_start_group(&ctx.app).await);
            ctx.steps.record("stack stopped", t, notes.join("; "));
        }
    }
}
