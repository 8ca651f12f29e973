//! granian HUP: write the new version, send SIGHUP to granian's main process, which
//! respawns its workers one after the other: for each, it starts a new worker, sleeps
//! `--respawn-interval` (3.5 s by default), then stops the old one (SIGTERM, waiting for
//! it up to `--workers-kill-timeout`, then SIGKILL). It does not wait for the new
//! worker to be ready: a new worker that takes longer than the interval to import the
//! app is not serving yet when its old one stops.
//!
//! On TCP (Linux) each worker listens on its own SO_REUSEPORT socket, bound once it has
//! imported the app; on a unix socket the main process holds one the workers share.
//! granian runs its main process with one worker too, so SIGHUP never ends the server.
//!
//! Knowing it is done: N workers that were not serving before the HUP have each sent
//! their readiness datagram (the sample apps, once imported), and the old worker pids
//! are gone ([`super::signal_respawn`], shared with uvicorn-hup). An old worker granian
//! had to kill (it logs "Killing old worker-N") is recorded as a step of its own.

use async_trait::async_trait;
use serde::Deserialize;

use super::signal_respawn::{Respawned, Respawner, Server};
use super::{Build, Ctx, Spec, Strategy};
use crate::config::OptionDoc;
use crate::error::Result;
use crate::load::Target;

/// `[reload]` options of granian-hup: none of its own. `step_timeout`: the longest the
/// new workers may take to report ready and the old ones to exit (default
/// `app.ready_timeout`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl Spec for GranianHup {
    const NAME: &'static str = "granian-hup";
    const SUMMARY: &'static str = "write the new version and send SIGHUP to granian's main process: it replaces the workers one after the other, each old one stopped a respawn interval after its replacement started, ready or not";
    const OPTIONS: &'static [OptionDoc] = &[];
    const APP_KINDS: &'static [&'static str] = &["granian"];
    type Options = Options;

    fn build(_: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(GranianHup(Respawner::new(&GRANIAN, b.step_timeout)))
    }
}

/// The granian-hup strategy.
pub struct GranianHup(Respawner);

/// granian, as the signal-respawn mechanics see it: it never abandons a respawn, and
/// logs an old worker it had to kill (one that outlived `--workers-kill-timeout`).
const GRANIAN: Server = Server {
    name: "granian",
    abandoned: None,
    notable: &[("Killing old worker", "old worker killed")],
    old_first: false,
};

#[async_trait]
impl Strategy for GranianHup {
    fn name(&self) -> &'static str {
        "granian-hup"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let n = *ctx.app.config.granian()?.workers.get_ref() as usize;
        self.0.start(ctx, n, version).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let n = *ctx.app.config.granian()?.workers.get_ref() as usize;
        let sig = (libc::SIGHUP, "SIGHUP");
        match self.0.respawn(ctx, n, sig, version).await? {
            Respawned::Workers(_) => Ok(()),
            Respawned::Exited { status, .. } => Err(self.0.instance()?.child.error(format!(
                "the granian main process exited ({status}) during the respawn"
            ))),
        }
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        self.0.shutdown(ctx).await
    }
}
