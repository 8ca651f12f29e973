//! hypercorn HUP: write the new version, send SIGHUP to hypercorn's main process. Its
//! handler (hypercorn 0.18.0, `run.py`) sets the workers' shared shutdown event and
//! joins every worker; only once all of them have exited does its loop start the new
//! ones (multiprocessing `spawn`: a fresh interpreter that imports hypercorn and the
//! app, then runs the lifespan startup, then accepts). So, unlike uvicorn 0.51+ and
//! granian, it stops all the old workers first: from the last old worker's exit until
//! a new one has imported the app, no worker serves.
//!
//! The main process keeps the listening socket open throughout, so nothing is
//! refused: connections wait in its accept queue (`--backlog`, 100 by default) for the
//! length of an import, a stall with no failed request on TCP. What else goes wrong
//! is how an old worker stops: it closes its idle keep-alive connections (a client
//! that reuses one without retrying sees it reset), and it gives its requests
//! `--graceful-timeout` (`app.graceful_timeout`) to finish, then cancels them (each
//! gets a 500).
//!
//! Knowing it is done: the old worker pids are gone, then N workers that were not
//! serving before the HUP have each sent their readiness datagram (asgi_app.py, at
//! lifespan startup, after its import): [`super::signal_respawn`] with
//! [`Server::old_first`], shared with uvicorn-hup and granian-hup.

use async_trait::async_trait;
use serde::Deserialize;

use super::signal_respawn::{Respawned, Respawner, Server};
use super::{Build, Ctx, Spec, Strategy};
use crate::config::OptionDoc;
use crate::error::Result;
use crate::load::Target;

/// `[reload]` options of hypercorn-hup: none of its own. `step_timeout`: the longest
/// the old workers may take to exit and the new ones to report ready (default
/// `app.ready_timeout`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl Spec for HypercornHup {
    const NAME: &'static str = "hypercorn-hup";
    const SUMMARY: &'static str = "write the new version and send SIGHUP to hypercorn's main process: it stops every old worker (each given the graceful timeout), then starts the new ones, unready";
    const OPTIONS: &'static [OptionDoc] = &[];
    const APP_KINDS: &'static [&'static str] = &["hypercorn"];
    type Options = Options;

    fn build(_: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(HypercornHup(Respawner::new(&HYPERCORN, b.step_timeout)))
    }
}

/// The hypercorn-hup strategy.
pub struct HypercornHup(Respawner);

/// hypercorn, as the signal-respawn mechanics see it: it stops its old workers before
/// it starts new ones, never abandons a respawn, and logs nothing of it.
const HYPERCORN: Server = Server {
    name: "hypercorn",
    abandoned: None,
    notable: &[],
    old_first: true,
};

#[async_trait]
impl Strategy for HypercornHup {
    fn name(&self) -> &'static str {
        "hypercorn-hup"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let n = *ctx.app.config.hypercorn()?.workers.get_ref() as usize;
        self.0.start(ctx, n, version).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let n = *ctx.app.config.hypercorn()?.workers.get_ref() as usize;
        let sig = (libc::SIGHUP, "SIGHUP");
        match self.0.respawn(ctx, n, sig, version).await? {
            Respawned::Workers(_) => Ok(()),
            Respawned::Exited { status, .. } => Err(self.0.instance()?.child.error(format!(
                "the hypercorn main process exited ({status}) during the respawn"
            ))),
        }
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        self.0.shutdown(ctx).await
    }
}
