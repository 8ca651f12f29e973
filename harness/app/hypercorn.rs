//! hypercorn as an app instance: the sample ASGI app (asgi_app.py) under the real
//! `hypercorn` command, N worker processes under hypercorn's main process, and a
//! readiness datagram from each worker once it has imported the app (asgi_app.py
//! sends it at lifespan startup), as for uvicorn.
//!
//! hypercorn's main process creates and binds the listening socket (TCP or unix) and
//! hands it to each worker, which it starts with multiprocessing's `spawn` (a fresh
//! interpreter that imports hypercorn and the app); a worker listens once its lifespan
//! startup is done. With `workers = 1` the main process still runs (only hypercorn's
//! `--workers 0` serves from the main process, which zdt-check does not use).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::net::UnixDatagram;
use toml::Spanned;

use super::{python, AppConfig, AppEnv, AppKind, Launch, Spawned};
use crate::config::{AppTable, Dur, OptionDoc};
use crate::error::Result;
use crate::sys::child::Child;
use crate::sys::tools::{self, Tool};

/// The `hypercorn` app kind: the sample ASGI app under hypercorn.
pub struct Hypercorn;

/// The sample ASGI app hypercorn serves, as `module:attribute` (found through
/// `PYTHONPATH`, the sample apps' directory).
const TARGET: &str = "asgi_app:app";

/// `[app]` options of a hypercorn app (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// `--workers`: worker processes per instance, 1 to 64 (default 2), under
    /// hypercorn's main process.
    pub workers: Spanned<u32>,
    /// `--graceful-timeout`, whole seconds: how long a stopping worker lets its
    /// requests finish before it cancels them (default: `app.stop_timeout`, at least 1 s).
    pub graceful_timeout: Option<Spanned<Dur>>,
    /// A venv with hypercorn (default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: Spanned::new(0..0, 2),
            graceful_timeout: None,
            venv: None,
        }
    }
}

impl Options {
    /// The `--graceful-timeout` value in seconds: the option, else `stop_timeout`
    /// (at least 1 s).
    pub fn graceful_timeout_secs(&self, stop_timeout: std::time::Duration) -> u64 {
        match &self.graceful_timeout {
            Some(g) => g.get_ref().0.as_secs(),
            None => stop_timeout.as_secs().max(1),
        }
    }
}

impl AppKind for Hypercorn {
    const NAME: &'static str = "hypercorn";
    const SUMMARY: &'static str = "the sample ASGI app under hypercorn, N workers under its main process, each reporting when it has imported the app";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("workers", "`2`", "`--workers`: worker processes per instance (1 to 64), under hypercorn's main process (also with 1)"),
        OptionDoc::new("graceful_timeout", "`app.stop_timeout` (at least 1 s)", "`--graceful-timeout`, whole seconds: how long a stopping worker (on SIGTERM, or on SIGHUP's restart) lets its requests finish; then it cancels them, and each unanswered one gets a 500"),
        OptionDoc::new("venv", "—", "a venv with hypercorn, also handed to commands as `$ZDT_VENV` (default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Hypercorn];
    type Options = Options;

    fn validate(o: &Options, _app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        super::check_workers(&o.workers, at)?;
        if let Some(g) = &o.graceful_timeout {
            if g.get_ref().0.subsec_nanos() != 0 {
                return Err(at.error(
                    g.span(),
                    "app.graceful_timeout",
                    "must be a whole number of seconds (hypercorn takes seconds)",
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
    /// The hypercorn options (an error if the app is of another kind).
    pub fn hypercorn(&self) -> Result<&Options> {
        self.kind_options::<Hypercorn>()
    }
}

/// The command-line arguments of one instance (without the bind and the app).
fn args(o: &Options, stop_timeout: std::time::Duration) -> Vec<String> {
    vec![
        "--workers".into(),
        o.workers.get_ref().to_string(),
        // The stdlib event loop: no uvloop even where it is installed.
        "--worker-class".into(),
        "asyncio".into(),
        "--graceful-timeout".into(),
        o.graceful_timeout_secs(stop_timeout).to_string(),
        "--log-level".into(),
        "info".into(),
        "--error-logfile".into(),
        "-".into(),
    ]
}

/// Spawns hypercorn for `l.slot`; returns its main process and the bound readiness socket.
pub fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<(Child, UnixDatagram)> {
    let c = &env.config;
    let hypercorn = tools::require_venv_program(o.venv.as_deref(), "hypercorn")?;
    let py = python::write_app_dir(&env.run_dir)?;
    let (ready, ready_var) = python::ready_socket(env, l.slot)?;
    let mut args = args(o, c.stop_timeout.0);
    args.push("--bind".into());
    args.push(python::bind_address(l.endpoint));
    args.push(TARGET.into());
    let mut envs = python::app_env(l.version_file, c.startup_delay());
    envs.push(ready_var);
    envs.push(("PYTHONPATH".into(), py.display().to_string()));
    let child = Child::spawn(l.name, &hypercorn, &args, &envs, &env.run_dir, l.log)?;
    Ok((child, ready))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(app: &str) -> Result<crate::scenario::Scenario> {
        crate::scenario::parse(
            Path::new("s.toml"),
            &format!("[app]\nkind = \"hypercorn\"\n{app}[reload]\nstrategy = \"hypercorn-hup\"\n"),
        )
    }

    #[test]
    fn options_and_their_arguments() {
        let s = parse("workers = 3\ngraceful_timeout = \"2s\"\n").unwrap();
        let o = s.app.hypercorn().unwrap();
        assert_eq!(*o.workers.get_ref(), 3);
        let a = args(o, Duration::from_secs(10)).join(" ");
        assert!(
            a.starts_with("--workers 3 --worker-class asyncio --graceful-timeout 2 "),
            "{a}"
        );
        let d = parse("").unwrap();
        let o = d.app.hypercorn().unwrap();
        assert_eq!(*o.workers.get_ref(), 2);
        // The default: the app's stop timeout, at least 1 s.
        let a = args(o, Duration::from_secs(7)).join(" ");
        assert!(a.contains("--graceful-timeout 7 "), "{a}");
        let a = args(o, Duration::from_millis(300)).join(" ");
        assert!(a.contains("--graceful-timeout 1 "), "{a}");
        let z = parse("graceful_timeout = \"0s\"\n").unwrap();
        let a = args(z.app.hypercorn().unwrap(), Duration::from_secs(7)).join(" ");
        assert!(a.contains("--graceful-timeout 0 "), "{a}");
    }

    #[test]
    fn bad_options_name_the_key() {
        let e = parse("workers = 0\n").unwrap_err().to_string();
        assert!(e.starts_with("s.toml:3:11: `app.workers`"), "{e}");
        let e = parse("graceful_timeout = \"1500ms\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:3:20: `app.graceful_timeout`: must be a whole number"),
            "{e}"
        );
        let e = parse("threads = 2\n").unwrap_err().to_string();
        assert!(e.contains("s.toml:3:") && e.contains("threads"), "{e}");
    }
}
