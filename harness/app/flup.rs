//! flup's FastCGI server as an app instance (django_graceful's setup): the sample
//! app under flup's threaded WSGIServer on a unix socket, behind nginx's fastcgi_pass.

use std::path::Path;

use super::process::Child;
use super::{python, tools, AppEnv};
use crate::error::{Error, Result};
use crate::load::Endpoint;

/// Spawns the FastCGI runner on `endpoint` (a unix socket).
pub fn spawn(
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
    let python = tools::require_venv_program(c.venv.as_deref(), "python")?;
    let py = python::write_app_dir(&env.run_dir)?;
    let mut args = vec![
        py.join("fcgi_runner.py").display().to_string(),
        "--socket".into(),
        sock.display().to_string(),
    ];
    if c.bind_early {
        args.extend(["--bind-early".into(), "bind".into()]);
    }
    let envs = python::app_env(version_file, c.startup_delay.0);
    Child::spawn(name, &python, &args, &envs, &env.run_dir, log)
}
