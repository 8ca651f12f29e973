//! gunicorn as an app instance: the sample WSGI app with N workers, a pidfile, and
//! a readiness datagram from each worker once it has loaded the app
//! (`post_worker_init` in the embedded gunicorn_conf.py).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::net::UnixDatagram;
use toml::Spanned;

use super::process::Child;
use super::{python, tools, AppEnv, Kind, Launch, Spawned};
use crate::error::{Error, Result};
use crate::load::Endpoint;
use crate::scenario::{AppConfig, AppTable};

/// The `gunicorn` app kind: the sample WSGI app under gunicorn.
pub struct Gunicorn;

/// `[app]` options of a gunicorn app (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Worker processes per instance, 1 to 64 (default 2).
    pub workers: Spanned<u32>,
    /// `sync` (default) or `gthread`.
    pub worker_class: Spanned<String>,
    /// gthread: threads per worker (default 4).
    pub threads: u32,
    /// `--preload`: the app is imported once in the master, so reloads keep the old
    /// code (default false: a negative control).
    pub preload: bool,
    /// A venv with gunicorn (default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: Spanned::new(0..0, 2),
            worker_class: Spanned::new(0..0, "sync".into()),
            threads: 4,
            preload: false,
            venv: None,
        }
    }
}

impl Kind for Gunicorn {
    const NAME: &'static str = "gunicorn";
    type Options = Options;

    fn validate(o: &Options, _app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        at.one_of(&o.worker_class, "app.worker_class", &["sync", "gthread"])?;
        super::check_workers(&o.workers, at)
    }

    fn venv(o: &Options) -> Option<&Path> {
        o.venv.as_deref()
    }

    fn set_workers(o: &mut Options, n: u32) -> bool {
        o.workers = Spanned::new(0..0, n);
        true
    }

    fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        let (child, ready) = spawn(o, env, l.slot, l.name, l.endpoint, l.version_file, l.log)?;
        Ok(Spawned {
            child,
            ready_rx: Some(ready),
            uwsgi: None,
        })
    }
}

impl AppConfig {
    /// The gunicorn options (an error if the app is of another kind).
    pub fn gunicorn(&self) -> Result<&Options> {
        self.kind_options::<Gunicorn>()
    }
}

/// The `--bind` argument.
fn bind_arg(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp(a) => a.to_string(),
        Endpoint::Unix(p) => format!("unix:{}", p.display()),
    }
}

/// Spawns gunicorn for `slot`; returns the master and the bound readiness socket.
pub fn spawn(
    o: &Options,
    env: &AppEnv,
    slot: &str,
    name: &str,
    endpoint: &Endpoint,
    version_file: &Path,
    log: &Path,
) -> Result<(Child, UnixDatagram)> {
    let c = &env.config;
    let gunicorn = tools::require_venv_program(o.venv.as_deref(), "gunicorn")?;
    let py = python::write_app_dir(&env.run_dir)?;
    let ready_path = env.path(&format!("{slot}.ready"));
    let _ = std::fs::remove_file(&ready_path);
    let ready = UnixDatagram::bind(&ready_path).map_err(|e| Error::io(&ready_path, e))?;
    let mut args = vec![
        "-c".to_string(),
        py.join("gunicorn_conf.py").display().to_string(),
        "--chdir".into(),
        py.display().to_string(),
        "--bind".into(),
        bind_arg(endpoint),
        "--workers".into(),
        o.workers.get_ref().to_string(),
        "--worker-class".into(),
        o.worker_class.get_ref().clone(),
        "--no-control-socket".into(),
        "--pid".into(),
        env.path(&format!("{slot}.pid")).display().to_string(),
        "--graceful-timeout".into(),
        c.stop_timeout.0.as_secs().max(1).to_string(),
    ];
    if o.worker_class.get_ref() == "gthread" {
        args.extend(["--threads".into(), o.threads.to_string()]);
    }
    if o.preload {
        args.push("--preload".into());
    }
    args.push("app:application".into());
    let mut envs = python::app_env(version_file, c.startup_delay());
    envs.push(("ZDT_READY_SOCKET".into(), ready_path.display().to_string()));
    let child = Child::spawn(name, &gunicorn, &args, &envs, &env.run_dir, log)?;
    Ok((child, ready))
}

/// Reads readiness datagrams until `n` workers have reported or `timeout` passes;
/// returns the worker pids that reported.
pub async fn wait_workers_ready(
    ready: &UnixDatagram,
    n: usize,
    timeout: std::time::Duration,
) -> Result<Vec<i32>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pids = Vec::new();
    let mut buf = [0u8; 128];
    while pids.len() < n {
        match tokio::time::timeout_at(deadline, ready.recv(&mut buf)).await {
            Err(_) => {
                return Err(Error::Step(format!(
                    "only {} of {n} gunicorn workers reported ready within {timeout:?}",
                    pids.len()
                )));
            }
            Ok(Err(e)) => return Err(Error::Step(format!("reading the readiness socket: {e}"))),
            Ok(Ok(len)) => {
                if let Some(pid) = parse_ready(&buf[..len]) {
                    pids.push(pid);
                }
            }
        }
    }
    Ok(pids)
}

/// `ready <worker pid> <master pid>` -> the worker pid.
pub fn parse_ready(msg: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(msg).ok()?;
    let mut f = text.split_whitespace();
    (f.next()? == "ready").then_some(())?;
    f.next()?.parse().ok()
}

/// `ready <worker pid> <master pid>` -> (worker pid, master pid).
pub fn parse_ready_from(msg: &[u8]) -> Option<(i32, i32)> {
    let text = std::str::from_utf8(msg).ok()?;
    let mut f = text.split_whitespace();
    (f.next()? == "ready").then_some(())?;
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Reads readiness datagrams until `n` of them satisfy `wanted(worker, master)` (e.g. "a
/// worker of the new master", "not one of the old workers") or `timeout` passes; returns
/// the (worker, master) pairs that counted. Other datagrams are skipped.
pub async fn wait_ready_where(
    ready: &UnixDatagram,
    n: usize,
    timeout: std::time::Duration,
    mut wanted: impl FnMut(i32, i32) -> bool,
) -> Result<Vec<(i32, i32)>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 128];
    while seen.len() < n {
        match tokio::time::timeout_at(deadline, ready.recv(&mut buf)).await {
            Err(_) => {
                return Err(Error::Step(format!(
                    "only {} of {n} expected gunicorn workers reported ready within {timeout:?}",
                    seen.len()
                )));
            }
            Ok(Err(e)) => return Err(Error::Step(format!("reading the readiness socket: {e}"))),
            Ok(Ok(len)) => {
                if let Some((w, m)) = parse_ready_from(&buf[..len]) {
                    if !seen.iter().any(|&(s, _)| s == w) && wanted(w, m) {
                        seen.push((w, m));
                    }
                }
            }
        }
    }
    Ok(seen)
}

/// Discards readiness messages already queued (e.g. from workers that started before a step).
pub fn drain_ready(ready: &UnixDatagram) {
    let mut buf = [0u8; 128];
    while ready.try_recv(&mut buf).is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ready_messages() {
        assert_eq!(parse_ready(b"ready 123 45"), Some(123));
        assert_eq!(parse_ready(b"hello 1"), None);
        assert_eq!(parse_ready(b"ready x"), None);
        assert_eq!(parse_ready_from(b"ready 123 45"), Some((123, 45)));
        assert_eq!(parse_ready_from(b"ready 123"), None);
    }
}
