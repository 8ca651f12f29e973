//! flup's FastCGI server as an app instance (django_graceful's setup): the sample
//! app under flup's threaded WSGIServer on a unix socket, behind nginx's fastcgi_pass.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::AppConfig;
use super::{python, AppEnv, AppKind, Launch, Spawned};
use crate::config::AppTable;
use crate::error::{Error, Result};
use crate::front::nginx::Upstream;
use crate::load::Endpoint;
use crate::sys::child::Child;
use crate::sys::tools;
use crate::sys::tools::Tool;

/// The `flup` app kind: a FastCGI app behind nginx.
pub struct Flup;

/// `[app]` options of a flup FastCGI app (besides the common keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// A venv with flup (default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
    /// Bind the socket at once, listen only after the startup delay (default false).
    pub bind_early: bool,
}

impl AppKind for Flup {
    const NAME: &'static str = "flup";
    const SUMMARY: &'static str = "the sample WSGI app under flup's threaded FastCGI server on a unix socket, behind nginx's `fastcgi_pass`";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("venv", "—", "a venv with flup (default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
        OptionDoc::new("bind_early", "`false`", "bind the socket at once, listen only after the startup delay"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Flup];
    const NEEDS_FRONT: Option<&'static str> =
        Some("a FastCGI app needs a front server: add [front] kind = \"nginx\"");
    type Options = Options;

    fn validate(_o: &Options, app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        match &app.socket {
            Some(s) if s.get_ref() == "tcp" => Err(at.error(
                s.span(),
                "app.socket",
                "the FastCGI app listens on a unix socket only: drop `socket` or write \"unix\"",
            )),
            _ => Ok(()),
        }
    }

    fn venv(o: &Options) -> Option<&Path> {
        o.venv.as_deref()
    }

    fn upstream(endpoint: Endpoint) -> Upstream {
        Upstream::FastCgi(endpoint)
    }

    fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        spawn(o, env, l.name, l.endpoint, l.version_file, l.log).map(Spawned::from)
    }
}

/// Spawns the FastCGI runner on `endpoint` (a unix socket).
pub fn spawn(
    o: &Options,
    env: &AppEnv,
    name: &str,
    endpoint: &Endpoint,
    version_file: &Path,
    log: &Path,
) -> Result<Child> {
    let c = &env.config;
    let Endpoint::Unix(sock) = endpoint else {
        return Err(Error::Harness(
            "the FastCGI app listens on a unix socket only (app.socket = \"unix\")".into(),
        ));
    };
    let python = tools::require_venv_program(o.venv.as_deref(), "python")?;
    let py = python::write_app_dir(&env.run_dir)?;
    let mut args = vec![
        py.join("fcgi_runner.py").display().to_string(),
        "--socket".into(),
        sock.display().to_string(),
    ];
    if o.bind_early {
        args.extend(["--bind-early".into(), "bind".into()]);
    }
    let envs = python::app_env(version_file, c.startup_delay());
    Child::spawn(name, &python, &args, &envs, &env.run_dir, log)
}
