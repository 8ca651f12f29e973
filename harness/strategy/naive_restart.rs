//! Naive restart (negative control): stop the running instance, then start the new
//! one on the same socket. Every request in between fails: refused on TCP, missing
//! socket on a unix path, for the whole startup time of the new instance.

use crate::config::OptionDoc;
use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::{Instance, StopHow};
use crate::config::ReloadTable;
use crate::error::Result;
use crate::load::Target;

/// `[reload]` options of naive-restart. `step_timeout` is accepted and not used (the
/// new instance's start is bounded by `app.ready_timeout`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// How the old instance is stopped: `drain` (graceful, the default) or `kill`
    /// (SIGKILL at once).
    pub stop_old: Spanned<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stop_old: Spanned::new(0..0, "drain".into()),
        }
    }
}

impl Spec for NaiveRestart {
    const NAME: &'static str = "naive-restart";
    const SUMMARY: &'static str = "negative control: stop the running instance, then start the new one on the same socket; every request in between fails";
    const OPTIONS: &'static [OptionDoc] = &[OptionDoc::new(
        "stop_old",
        "`\"drain\"`",
        "how the old instance is stopped: `drain` (graceful) or `kill` (SIGKILL at once)",
    )];
    const APP_KINDS: &'static [&'static str] = &["builtin", "flup", "gunicorn", "uwsgi"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.stop_old, "reload.stop_old", super::STOP_OLD)
    }

    fn build(o: &Options, _: &Build) -> Box<dyn Strategy> {
        Box::new(NaiveRestart::new(super::stop_how(&o.stop_old)))
    }
}

/// The naive-restart strategy.
pub struct NaiveRestart {
    stop_old: StopHow,
    active: Option<Instance>,
}

impl NaiveRestart {
    /// A naive restart that stops the old instance with `stop_old`.
    pub fn new(stop_old: StopHow) -> NaiveRestart {
        NaiveRestart {
            stop_old,
            active: None,
        }
    }
}

#[async_trait]
impl Strategy for NaiveRestart {
    fn name(&self) -> &'static str {
        "naive-restart"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let endpoint = ctx.app.endpoint_for("app")?;
        let mut inst = ctx.app.start("app", endpoint.clone(), version)?;
        ctx.app.wait_ready(&mut inst).await?;
        self.active = Some(inst);
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let Some(mut old) = self.active.take() else {
            return Ok(());
        };
        let endpoint = old.endpoint.clone();
        let t = ctx.steps.now_ms();
        let how = ctx.app.stop(&mut old, self.stop_old).await;
        ctx.steps
            .record_serving("old instance stopped", t, format!("{}: {how}", old.name));
        drop(old);
        let t = ctx.steps.now_ms();
        let mut new = ctx.app.start("app", endpoint, version)?;
        let result = ctx.app.wait_ready(&mut new).await;
        ctx.steps
            .record_serving("new instance ready", t, new.name.clone());
        self.active = Some(new);
        result
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.active.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}
