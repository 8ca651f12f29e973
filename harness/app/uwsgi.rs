//! uWSGI as an app instance: master + N workers (lazy-apps by default, so each
//! worker imports the app and a chain reload loads new code), a master FIFO for
//! control, and a touch file for `touch-chain-reload`.
//!
//! uWSGI treats SIGTERM as "reload" and SIGINT/SIGQUIT as a brutal stop; the
//! graceful stop is `q` on the master FIFO.

use std::path::{Path, PathBuf};

use super::process::Child;
use super::{python, tools, AppEnv};
use crate::error::{Error, Result};
use crate::load::Endpoint;

/// Control files of one uWSGI instance.
#[derive(Debug, Clone)]
pub struct Control {
    /// The master FIFO (`c` chain reload, `q` graceful stop, `r` reload).
    pub fifo: PathBuf,
    /// The touch-chain-reload file.
    pub touch: PathBuf,
}

/// Spawns uWSGI for `slot` speaking the uwsgi protocol (`uwsgi_socket`) or HTTP.
pub fn spawn(
    env: &AppEnv,
    slot: &str,
    name: &str,
    endpoint: &Endpoint,
    uwsgi_protocol: bool,
    version_file: &Path,
    log: &Path,
) -> Result<(Child, Control)> {
    let c = &env.config;
    let uwsgi = tools::require("uwsgi")?;
    let py = python::write_app_dir(&env.run_dir)?;
    let socket = match endpoint {
        Endpoint::Unix(p) => p.display().to_string(),
        Endpoint::Tcp(a) => a.to_string(),
    };
    let control = Control {
        fifo: env.path(&format!("{slot}.fifo")),
        touch: env.path(&format!("{slot}.touch")),
    };
    let mut args = vec![
        "--plugin".to_string(),
        "python3".into(),
        "--chdir".into(),
        py.display().to_string(),
        "--module".into(),
        "app:application".into(),
        if uwsgi_protocol {
            "--uwsgi-socket".into()
        } else {
            "--http-socket".into()
        },
        socket,
        "--chmod-socket=666".into(),
        "--master".into(),
        "--workers".into(),
        c.workers.get_ref().to_string(),
        "--need-app".into(),
        "--strict".into(),
        "--disable-logging".into(),
        "--master-fifo".into(),
        control.fifo.display().to_string(),
        "--touch-chain-reload".into(),
        control.touch.display().to_string(),
        "--die-on-term".into(),
        "--vacuum".into(),
        "--pidfile".into(),
        env.path(&format!("{slot}.pid")).display().to_string(),
    ];
    if c.lazy_apps {
        args.push("--lazy-apps".into());
    }
    let envs = python::app_env(version_file, c.startup_delay.0);
    let child = Child::spawn(name, &uwsgi, &args, &envs, &env.run_dir, log)?;
    Ok((child, control))
}

/// Writes one command to the master FIFO (non-blocking open: fails if the master is not reading).
pub fn send(fifo: &Path, cmd: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .map_err(|e| Error::io(fifo, e))?;
    f.write_all(cmd.as_bytes()).map_err(|e| Error::io(fifo, e))
}
