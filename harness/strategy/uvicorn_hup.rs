//! uvicorn HUP: write the new version, send SIGHUP to the uvicorn supervisor (`--workers
//! N`, N ≥ 2). The supervisor holds the listening socket throughout, so nothing is
//! refused; how the workers are replaced depends on the version:
//! - 0.51.0 and later (PR 3025): one at a time, each replacement started and healthy
//!   before its old worker is stopped, so N - 1 workers always serve;
//! - before 0.51: each old worker is stopped (and waited for), then its replacement is
//!   started without waiting for it to import the app; after the last old worker stops
//!   no worker serves until the new ones have imported: requests wait in the backlog
//!   for about one import time (a stall, with no failed request).
//!
//! With `workers = 1` uvicorn runs no supervisor and does not handle SIGHUP: the server
//! exits, and nothing listens any more. The strategy records that and does not restart
//! it (that would hide what a `kill -HUP` deploy does).
//!
//! Since 0.51 the supervisor gives each new worker `--timeout-worker-healthcheck` (5 s
//! by default) to become ready; one that is not (an import slower than that) is killed,
//! and the restart is abandoned: the old workers keep serving the old version, and
//! uvicorn only logs it. The strategy reads that line from the log and fails the step
//! (`reload_completed`) at once, rather than waiting out `step_timeout`.
//!
//! Knowing it is done: N workers that were not serving before the HUP have each sent
//! their readiness datagram (asgi_app.py, at lifespan startup, after its import), and
//! the old worker pids are gone (before 0.51, waited for in that server's order: the
//! old pids first, then the new workers) (the mechanics shared with granian-hup, in
//! [`super::signal_respawn`]).

use async_trait::async_trait;
use serde::Deserialize;

use super::signal_respawn::{Abandoned, Respawned, Respawner, Server};
use super::{Build, Ctx, Spec, Strategy};
use crate::app::server_version;
use crate::config::OptionDoc;
use crate::error::Result;
use crate::load::Target;

/// `[reload]` options of uvicorn-hup: none of its own. `step_timeout`: the longest the new
/// workers may take to report ready and the old ones to exit (default `app.ready_timeout`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl Spec for UvicornHup {
    const NAME: &'static str = "uvicorn-hup";
    const SUMMARY: &'static str = "write the new version and send SIGHUP to the uvicorn supervisor: 0.51+ replaces the workers one at a time, earlier versions stop each and start its replacement unready";
    const OPTIONS: &'static [OptionDoc] = &[];
    const APP_KINDS: &'static [&'static str] = &["uvicorn"];
    type Options = Options;

    fn build(_: &Options, b: &Build) -> Box<dyn Strategy> {
        Box::new(UvicornHup(Respawner::new(&UVICORN, b.step_timeout)))
    }
}

/// The uvicorn-hup strategy.
pub struct UvicornHup(Respawner);

/// uvicorn, as the signal-respawn mechanics see it: 0.51+ logs "aborting the restart"
/// when it abandons one.
const UVICORN: Server = Server {
    name: "uvicorn",
    abandoned: Some(Abandoned {
        line: "aborting the restart",
        why: "a new worker has --timeout-worker-healthcheck, 5 s by default, to start and import \
              the app; the old workers keep serving the old version",
    }),
    notable: &[],
    old_first: false,
};

/// uvicorn before 0.51: its old workers are all stopped before the new ones have
/// imported the app, so they are waited for first (each step then recorded when it
/// happened); it has no healthcheck to abandon a restart on.
const UVICORN_BEFORE_051: Server = Server {
    name: "uvicorn",
    abandoned: None,
    notable: &[],
    old_first: true,
};

#[async_trait]
impl Strategy for UvicornHup {
    fn name(&self) -> &'static str {
        "uvicorn-hup"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let o = ctx.app.config.uvicorn()?;
        let n = *o.workers.get_ref() as usize;
        if !server_version::at_least(o.server_version.as_ref(), "0.51.0") {
            self.0.set_server(&UVICORN_BEFORE_051);
        }
        self.0.start(ctx, n, version).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let n = *ctx.app.config.uvicorn()?.workers.get_ref() as usize;
        let pid = self.0.instance()?.child.pid();
        let sig = (libc::SIGHUP, "SIGHUP");
        if let Respawned::Exited { status, at } = self.0.respawn(ctx, n, sig, version).await? {
            // workers = 1: no supervisor, and SIGHUP's default action ends the server.
            ctx.steps.record_serving(
                "uvicorn exited",
                at,
                format!(
                    "uvicorn {pid} exited ({status}) on SIGHUP: with {n} worker(s) it runs no supervisor \
                     and does not handle SIGHUP; nothing serves now"
                ),
            );
        }
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        self.0.shutdown(ctx).await
    }
}
