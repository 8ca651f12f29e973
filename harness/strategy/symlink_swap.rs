//! Symlink swap (django_graceful): two instances on their own unix sockets, clients
//! connect through a symlink; a reload starts the inactive instance on the new
//! version, waits until it answers, atomically replaces the link (symlink to a
//! temporary name, then rename over the link), lets connections already queued on
//! the old instance be served, then drains and stops the old instance.
//!
//! Its broken forms are negative controls: switching before the new instance is
//! ready, unlink-then-link (a window with no socket at the path), and stopping the
//! old instance at once without a drain.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::{Instance, StopHow};
use crate::config::{Dur, ReloadTable};
use crate::error::{Error, Result};
use crate::load::{Endpoint, Target};

/// `[reload]` options of symlink-swap. `step_timeout` is accepted and not used (the
/// new instance's start is bounded by `app.ready_timeout`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// How the link is replaced: `rename` (the default: a new link renamed over the
    /// old one, atomic) or `unlink-then-link` (broken: a window with no socket).
    pub switch: Spanned<String>,
    /// With `switch = "unlink-then-link"`: the time between the unlink and the new
    /// link, as a deploy script's `rm` and `ln` take (default 20ms).
    pub unlink_gap: Option<Spanned<Dur>>,
    /// Wait until the new instance answers before switching (default true; false is broken).
    pub wait_ready: bool,
    /// Time between the switch and stopping the old instance, so the connections it
    /// already queued are served (default 500ms).
    pub settle: Dur,
    /// How the old instance is stopped: `drain` (graceful, the default) or `kill`
    /// (SIGKILL at once: broken).
    pub stop_old: Spanned<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            switch: Spanned::new(0..0, "rename".into()),
            unlink_gap: None,
            wait_ready: true,
            settle: Dur::ms(500),
            stop_old: Spanned::new(0..0, "drain".into()),
        }
    }
}

impl Spec for SymlinkSwap {
    const NAME: &'static str = "symlink-swap";
    const SUMMARY: &'static str = "two instances on their own unix sockets behind a symlink; a reload starts the inactive one on the new version, waits until it answers, atomically replaces the link, then stops the old one";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("switch", "`\"rename\"`", "how the link is replaced: `rename` (a new link renamed over the old one: atomic) or `unlink-then-link` (broken: a window with no socket)"),
        OptionDoc::new("unlink_gap", "`\"20ms\"`", "with `switch = \"unlink-then-link\"`: the time a deploy script takes between its `rm` and its `ln`"),
        OptionDoc::new("wait_ready", "`true`", "wait until the new instance answers before switching (`false` is broken)"),
        OptionDoc::new("settle", "`\"500ms\"`", "time between the switch and stopping the old instance, so the connections it already queued are served"),
        OptionDoc::new("stop_old", "`\"drain\"`", "how the old instance is stopped: `drain` (graceful) or `kill` (SIGKILL at once: broken)"),
    ];
    const APP_KINDS: &'static [&'static str] =
        &["builtin", "flup", "gunicorn", "uwsgi", "uvicorn", "granian"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.switch, "reload.switch", &["rename", "unlink-then-link"])?;
        at.one_of(&o.stop_old, "reload.stop_old", super::STOP_OLD)?;
        match &o.unlink_gap {
            Some(gap) if o.switch.get_ref() != "unlink-then-link" => Err(at.error(
                gap.span(),
                "reload.unlink_gap",
                "only applies with switch = \"unlink-then-link\"",
            )),
            _ => Ok(()),
        }
    }

    fn build(o: &Options, _: &Build) -> Box<dyn Strategy> {
        Box::new(SymlinkSwap::new(Config {
            switch: match o.switch.get_ref().as_str() {
                "unlink-then-link" => Switch::UnlinkThenLink {
                    gap: o
                        .unlink_gap
                        .as_ref()
                        .map_or(Duration::from_millis(20), |g| g.get_ref().0),
                },
                _ => Switch::Rename,
            },
            wait_ready: o.wait_ready,
            settle: o.settle.0,
            stop_old: super::stop_how(&o.stop_old),
        }))
    }
}

/// How the link is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// symlink(tmp) + rename(tmp, link): the path always resolves.
    Rename,
    /// unlink(link), wait `gap`, symlink(link): connects in between get ENOENT.
    UnlinkThenLink {
        /// The time a deploy script takes between its `rm` and its `ln`.
        gap: Duration,
    },
}

/// The strategy's settings, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How the link is replaced.
    pub switch: Switch,
    /// Wait for the new instance to answer before switching.
    pub wait_ready: bool,
    /// Time between the switch and stopping the old instance.
    pub settle: Duration,
    /// How the old instance is stopped.
    pub stop_old: StopHow,
}

/// The symlink-swap strategy.
pub struct SymlinkSwap {
    opts: Config,
    active: Option<Instance>,
    /// Index of the active slot (0 = a, 1 = b).
    slot: usize,
}

const SLOTS: [&str; 2] = ["app-a", "app-b"];

impl SymlinkSwap {
    /// A symlink swap with `opts`.
    pub fn new(opts: Config) -> SymlinkSwap {
        SymlinkSwap {
            opts,
            active: None,
            slot: 0,
        }
    }

    fn link(ctx: &Ctx) -> PathBuf {
        ctx.app.path("app.sock")
    }
}

/// Points `link` at `to` atomically: a symlink under a temporary name, renamed over the link.
pub fn atomic_relink(link: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = link.with_extension("sock.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(to, &tmp)?;
    std::fs::rename(&tmp, link)
}

fn socket_path(inst: &Instance) -> Result<&Path> {
    match &inst.endpoint {
        Endpoint::Unix(p) => Ok(p),
        Endpoint::Tcp(_) => Err(Error::Harness(
            "symlink-swap needs unix sockets (app.socket = \"unix\")".into(),
        )),
    }
}

#[async_trait]
impl Strategy for SymlinkSwap {
    fn name(&self) -> &'static str {
        "symlink-swap"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let endpoint = Endpoint::Unix(ctx.app.path(&format!("{}.sock", SLOTS[0])));
        let mut inst = ctx.app.start(SLOTS[0], endpoint, version)?;
        ctx.app.wait_ready(&mut inst).await?;
        let link = Self::link(ctx);
        atomic_relink(&link, socket_path(&inst)?).map_err(|e| Error::io(&link, e))?;
        self.active = Some(inst);
        self.slot = 0;
        super::expose(ctx, &Endpoint::Unix(link)).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let next = 1 - self.slot;
        let link = Self::link(ctx);
        let endpoint = Endpoint::Unix(ctx.app.path(&format!("{}.sock", SLOTS[next])));
        let t = ctx.steps.now_ms();
        let mut new = ctx.app.start(SLOTS[next], endpoint, version)?;
        ctx.steps
            .record("new instance started", t, new.name.clone());
        if self.opts.wait_ready {
            let t = ctx.steps.now_ms();
            ctx.app.wait_ready(&mut new).await?;
            ctx.steps.record("new instance ready", t, new.name.clone());
        }
        let t = ctx.steps.now_ms();
        let target = socket_path(&new)?.to_path_buf();
        match self.opts.switch {
            Switch::Rename => atomic_relink(&link, &target).map_err(|e| Error::io(&link, e))?,
            Switch::UnlinkThenLink { gap } => {
                std::fs::remove_file(&link).map_err(|e| Error::io(&link, e))?;
                tokio::time::sleep(gap).await;
                std::os::unix::fs::symlink(&target, &link).map_err(|e| Error::io(&link, e))?;
            }
        }
        ctx.steps.record_serving(
            "switched",
            t,
            format!("{} -> {}", link.display(), target.display()),
        );
        if !self.opts.wait_ready {
            let t = ctx.steps.now_ms();
            ctx.app.wait_ready(&mut new).await?;
            ctx.steps.record(
                "new instance ready",
                t,
                format!("{} (after the switch)", new.name),
            );
        }
        let old = self.active.replace(new);
        self.slot = next;
        if let Some(mut old) = old {
            if self.opts.stop_old == StopHow::Drain {
                let t = ctx.steps.now_ms();
                tokio::time::sleep(self.opts.settle).await;
                ctx.steps.record(
                    "settled",
                    t,
                    format!("{} left to serve what it had queued", old.name),
                );
            }
            let t = ctx.steps.now_ms();
            let how = ctx.app.stop(&mut old, self.opts.stop_old).await;
            ctx.steps
                .record_serving("old instance stopped", t, format!("{}: {how}", old.name));
        }
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.active.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}
