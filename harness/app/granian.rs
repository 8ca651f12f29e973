//! granian as an app instance: the sample app under the real `granian` command (a Rust
//! HTTP server), N worker processes under granian's main process, and a readiness
//! datagram from each worker once it has imported the app.
//!
//! Two interfaces: `asgi` (the sample `asgi_app.py`, which sends the datagram at
//! lifespan startup) and `wsgi` (the sample `app.py` through `wsgi_ready.py`, which
//! sends it at the end of its import: granian's WSGI workers have no lifespan and no
//! post-fork hook, and a worker imports the app before it listens, so the end of the
//! import is the same point as the ASGI lifespan startup).
//!
//! Unlike uvicorn, granian always runs a main process, even with one worker. On TCP
//! (Linux) each worker binds its own listening socket with SO_REUSEPORT; on a unix
//! socket the main process holds one socket the workers share.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::net::UnixDatagram;
use toml::Spanned;

use super::{python, AppConfig, AppEnv, AppKind, Launch, Spawned};
use crate::config::{AppTable, Dur, OptionDoc};
use crate::error::Result;
use crate::sys::child::Child;
use crate::sys::tools::{self, Tool};

/// The `granian` app kind: the sample ASGI or WSGI app under granian.
pub struct Granian;

/// granian's application interface (`--interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// ASGI with lifespan: the sample `asgi_app.py`.
    Asgi,
    /// WSGI: the sample `app.py` (through `wsgi_ready.py`).
    Wsgi,
}

impl Interface {
    /// The `--interface` value.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Asgi => "asgi",
            Interface::Wsgi => "wsgi",
        }
    }

    /// The sample app granian serves for it, as `module:attribute`.
    fn target(self) -> &'static str {
        match self {
            Interface::Asgi => "asgi_app:app",
            Interface::Wsgi => "wsgi_ready:app",
        }
    }
}

/// `[app]` options of a granian app (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// `--workers`: worker processes per instance, 1 to 64 (default 2).
    pub workers: Spanned<u32>,
    /// `--interface`: "asgi" (default) or "wsgi".
    pub interface: Interface,
    /// `--respawn-interval`: how long granian waits after starting a new worker
    /// before it stops the old one (granian's default: 3.5 s).
    pub respawn_interval: Option<Spanned<Dur>>,
    /// `--workers-kill-timeout`, whole seconds: how long an old worker may take to stop
    /// before granian kills it (granian's default: no limit).
    pub workers_kill_timeout: Option<Spanned<Dur>>,
    /// A venv with granian (default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: Spanned::new(0..0, 2),
            interface: Interface::Asgi,
            respawn_interval: None,
            workers_kill_timeout: None,
            venv: None,
        }
    }
}

impl AppKind for Granian {
    const NAME: &'static str = "granian";
    const SUMMARY: &'static str = "the sample ASGI or WSGI app under granian, N workers under its main process, each reporting when it has imported the app";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("workers", "`2`", "`--workers`: worker processes per instance (1 to 64), under granian's main process (also with 1)"),
        OptionDoc::new("interface", "`\"asgi\"`", "`--interface`: `\"asgi\"` (the sample `asgi_app.py`, ready at lifespan startup) or `\"wsgi\"` (the sample `app.py`, through `wsgi_ready.py`, ready once imported)"),
        OptionDoc::new("respawn_interval", "granian's (3.5 s)", "`--respawn-interval`: how long granian waits after starting a new worker before it stops the old one; it does not wait for the new one to be ready"),
        OptionDoc::new("workers_kill_timeout", "granian's (none)", "`--workers-kill-timeout`, whole seconds: how long an old worker may take to stop before granian kills it"),
        OptionDoc::new("venv", "—", "a venv with granian, also handed to commands as `$ZDT_VENV` (default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Granian];
    type Options = Options;

    fn validate(o: &Options, _app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        super::check_workers(&o.workers, at)?;
        if let Some(r) = &o.respawn_interval {
            if r.get_ref().0.is_zero() {
                return Err(at.error(r.span(), "app.respawn_interval", "must be more than 0"));
            }
        }
        if let Some(k) = &o.workers_kill_timeout {
            let d = k.get_ref().0;
            if d.is_zero() || d.subsec_nanos() != 0 {
                return Err(at.error(
                    k.span(),
                    "app.workers_kill_timeout",
                    "must be a whole number of seconds, at least 1s (granian takes seconds)",
                ));
            }
        }
        Ok(())
    }

    fn venv(o: &Options) -> Option<&Path> {
        o.venv.as_deref()
    }

    fn set_workers(o: &mut Options, n: u32) -> bool {
        o.workers = Spanned::new(0..0, n);
        true
    }

    fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        spawn(o, env, l).map(Spawned::with_ready)
    }
}

impl AppConfig {
    /// The granian options (an error if the app is of another kind).
    pub fn granian(&self) -> Result<&Options> {
        self.kind_options::<Granian>()
    }
}

/// The command-line arguments of one instance (without the bind arguments).
fn args(o: &Options, py: &Path) -> Vec<String> {
    let mut args = vec![
        "--interface".into(),
        o.interface.name().into(),
        "--workers".into(),
        o.workers.get_ref().to_string(),
        "--working-dir".into(),
        py.display().to_string(),
        // The stdlib event loop: no uvloop/rloop even where they are installed.
        "--loop".into(),
        "asyncio".into(),
        "--no-access-log".into(),
        "--log-level".into(),
        "info".into(),
    ];
    if let Some(r) = &o.respawn_interval {
        args.push("--respawn-interval".into());
        args.push(format!("{}", r.get_ref().0.as_secs_f64()));
    }
    if let Some(k) = &o.workers_kill_timeout {
        args.push("--workers-kill-timeout".into());
        args.push(k.get_ref().0.as_secs().to_string());
    }
    args
}

/// Spawns granian for `l.slot`; returns its main process and the bound readiness socket.
pub fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<(Child, UnixDatagram)> {
    let c = &env.config;
    let granian = tools::require_venv_program(o.venv.as_deref(), "granian")?;
    let py = python::write_app_dir(&env.run_dir)?;
    let (ready, ready_var) = python::ready_socket(env, l.slot)?;
    python::remove_stale_socket(l.endpoint)?;
    let mut args = args(o, &py);
    args.extend(python::bind_args(l.endpoint));
    args.push(o.interface.target().into());
    let mut envs = python::app_env(l.version_file, c.startup_delay());
    envs.push(ready_var);
    let child = Child::spawn(l.name, &granian, &args, &envs, &env.run_dir, l.log)?;
    Ok((child, ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(app: &str) -> Result<crate::scenario::Scenario> {
        crate::scenario::parse(
            Path::new("s.toml"),
            &format!("[app]\nkind = \"granian\"\n{app}[reload]\nstrategy = \"granian-hup\"\n"),
        )
    }

    #[test]
    fn options_and_their_arguments() {
        let s = parse("workers = 3\ninterface = \"wsgi\"\nrespawn_interval = \"500ms\"\nworkers_kill_timeout = \"2s\"\n").unwrap();
        let o = s.app.granian().unwrap();
        assert_eq!(*o.workers.get_ref(), 3);
        assert_eq!(o.interface, Interface::Wsgi);
        let a = args(o, Path::new("/py")).join(" ");
        assert!(
            a.starts_with("--interface wsgi --workers 3 --working-dir /py"),
            "{a}"
        );
        assert!(
            a.ends_with("--respawn-interval 0.5 --workers-kill-timeout 2"),
            "{a}"
        );
        let d = parse("").unwrap();
        let o = d.app.granian().unwrap();
        assert_eq!((*o.workers.get_ref(), o.interface), (2, Interface::Asgi));
        assert!(!args(o, Path::new("/py")).join(" ").contains("respawn"));
    }

    #[test]
    fn bad_options_name_the_key() {
        let e = parse("workers = 0\n").unwrap_err().to_string();
        assert!(e.starts_with("s.toml:3:11: `app.workers`"), "{e}");
        let e = parse("interface = \"rsgi\"\n").unwrap_err().to_string();
        assert!(e.contains("s.toml:3:") && e.contains("interface"), "{e}");
        let e = parse("workers_kill_timeout = \"1500ms\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:3:24: `app.workers_kill_timeout`: must be a whole number"),
            "{e}"
        );
        let e = parse("respawn_interval = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:3:20: `app.respawn_interval`"), "{e}");
    }
}
