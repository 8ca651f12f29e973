//! gunicorn as an app instance: the sample WSGI app with N workers, a pidfile, and
//! a readiness datagram from each worker once it has loaded the app
//! (`post_worker_init` in the embedded gunicorn_conf.py). With `worker_class =
//! "uvicorn"` the workers are uvicorn-worker's `UvicornWorker` serving the sample
//! ASGI app, which sends the same datagram at lifespan startup.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::net::UnixDatagram;
use toml::Spanned;

use super::AppConfig;
use super::{python, server_version, AppEnv, AppKind, Launch, Spawned};
use crate::config::{AppTable, Dur};
use crate::error::{Error, Result};
use crate::load::Endpoint;
use crate::sys::child::Child;
use crate::sys::tools::Tool;

/// The `gunicorn` app kind: the sample WSGI app under gunicorn.
pub struct Gunicorn;

/// `worker_class` values.
pub const WORKER_CLASSES: &[&str] = &["sync", "gthread", "uvicorn"];

/// uvicorn-worker's class, what `worker_class = "uvicorn"` runs.
pub const UVICORN_WORKER: &str = "uvicorn_worker.UvicornWorker";

/// `[app]` options of a gunicorn app (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Worker processes per instance, 1 to 64 (default 2).
    pub workers: Spanned<u32>,
    /// `sync` (default), `gthread`, or `uvicorn` (uvicorn-worker's `UvicornWorker`
    /// with the sample ASGI app).
    pub worker_class: Spanned<String>,
    /// gthread: threads per worker (default 4).
    pub threads: u32,
    /// `--preload`: the app is imported once in the master, so reloads keep the old
    /// code (default false: a negative control).
    pub preload: bool,
    /// A venv with gunicorn (default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
    /// `--graceful-timeout`: how long a stopping master lets its workers finish the
    /// requests they hold before it kills them; whole seconds, 1 s to
    /// `app.stop_timeout` (default: `app.stop_timeout`, rounded down, at least 1 s).
    pub graceful_timeout: Option<Spanned<Dur>>,
    /// A pinned gunicorn version from its own venv `<venv>-gunicorn-<version>`
    /// (default: the venv's gunicorn).
    pub server_version: Option<Spanned<String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: Spanned::new(0..0, 2),
            worker_class: Spanned::new(0..0, "sync".into()),
            threads: 4,
            preload: false,
            venv: None,
            graceful_timeout: None,
            server_version: None,
        }
    }
}

impl AppKind for Gunicorn {
    const NAME: &'static str = "gunicorn";
    const SUMMARY: &'static str =
        "the sample WSGI app under gunicorn, N workers each reporting when it has loaded the app";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("workers", "`2`", "worker processes per instance (1 to 64)"),
        OptionDoc::new("worker_class", "`\"sync\"`", "`sync`, `gthread`, or `uvicorn` (uvicorn-worker's `UvicornWorker` serving the sample ASGI app, fixtures/python/asgi_app.py: FastAPI's usual production setup)"),
        OptionDoc::new("threads", "`4`", "gthread: threads per worker"),
        OptionDoc::new("preload", "`false`", "`--preload`: the app is imported once in the master, so reloads keep the old code (a negative control)"),
        OptionDoc::new("venv", "—", "a venv with gunicorn, also handed to commands as `$ZDT_VENV` (default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
        OptionDoc::new("server_version", "the venv's", "a pinned gunicorn version, e.g. `\"20.1.0\"`, taken from its own venv `<venv>-gunicorn-<version>` beside the venv (`bash .ci/install-servers.sh` installs 20.1.0 there); a scenario run on two versions gates a server upgrade"),
        OptionDoc::new("graceful_timeout", "`stop_timeout`", "`--graceful-timeout`: how long a stopping master (TERM: USR2's old master, a drained instance) lets its workers finish what they hold before killing them; whole seconds, 1 s to `stop_timeout`"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Gunicorn];
    type Options = Options;

    fn validate(o: &Options, app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        at.one_of(&o.worker_class, "app.worker_class", WORKER_CLASSES)?;
        if let Some(v) = &o.server_version {
            server_version::validate(v, o.venv.as_deref(), "gunicorn", "gunicorn", at)?;
        }
        if let Some(g) = &o.graceful_timeout {
            check_graceful_timeout(g.get_ref().0, app.stop_timeout.0)
                .map_err(|msg| at.error(g.span(), "app.graceful_timeout", &msg))?;
        }
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
        spawn(o, env, l.slot, l.name, l.endpoint, l.version_file, l.log).map(Spawned::with_ready)
    }
}

impl AppConfig {
    /// The gunicorn options (an error if the app is of another kind).
    pub fn gunicorn(&self) -> Result<&Options> {
        self.kind_options::<Gunicorn>()
    }
}

/// `graceful_timeout` is whole seconds (gunicorn takes an integer), at least 1 s, and
/// no longer than `stop_timeout` (past it the harness kills the instance anyway).
fn check_graceful_timeout(g: Duration, stop_timeout: Duration) -> std::result::Result<(), String> {
    if g.subsec_nanos() != 0 || g.is_zero() {
        return Err(
            "must be a whole number of seconds, at least 1s (gunicorn takes an integer)".into(),
        );
    }
    if g > stop_timeout {
        return Err(format!(
            "must not exceed app.stop_timeout ({}): the harness kills the instance then",
            Dur(stop_timeout)
        ));
    }
    Ok(())
}

impl Options {
    /// The `--graceful-timeout` in seconds: the option, else `stop_timeout` (at least 1).
    pub fn graceful_timeout_secs(&self, stop_timeout: Duration) -> u64 {
        self.graceful_timeout
            .as_ref()
            .map_or(stop_timeout, |g| g.get_ref().0)
            .as_secs()
            .max(1)
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
    let gunicorn = server_version::program(
        o.server_version.as_ref(),
        o.venv.as_deref(),
        "gunicorn",
        "gunicorn",
    )?;
    let py = python::write_app_dir(&env.run_dir)?;
    let (ready, ready_var) = python::ready_socket(env, slot)?;
    let mut args = vec![
        "-c".to_string(),
        py.join("gunicorn_conf.py").display().to_string(),
        "--chdir".into(),
        py.display().to_string(),
        "--bind".into(),
        python::bind_address(endpoint),
        "--workers".into(),
        o.workers.get_ref().to_string(),
        "--worker-class".into(),
        match o.worker_class.get_ref().as_str() {
            "uvicorn" => UVICORN_WORKER.into(),
            other => other.into(),
        },
        "--pid".into(),
        env.path(&format!("{slot}.pid")).display().to_string(),
        "--graceful-timeout".into(),
        o.graceful_timeout_secs(c.stop_timeout.0).to_string(),
    ];
    if server_version::at_least(o.server_version.as_ref(), "25.1.0") {
        // No control socket in $HOME (gunicorn 25.1.0 added it; older ones reject the flag).
        args.push("--no-control-socket".into());
    }
    if o.worker_class.get_ref() == "gthread" {
        args.extend(["--threads".into(), o.threads.to_string()]);
    }
    if o.preload {
        args.push("--preload".into());
    }
    args.push(
        if o.worker_class.get_ref() == "uvicorn" {
            "asgi_app:application"
        } else {
            "app:application"
        }
        .into(),
    );
    let mut envs = python::app_env(version_file, c.startup_delay());
    envs.push(ready_var);
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

    #[test]
    fn graceful_timeout_in_a_scenario() {
        let src = |g: &str| {
            format!("[app]\nkind = \"gunicorn\"\ngraceful_timeout = \"{g}\"\n[reload]\nstrategy = \"gunicorn-usr2\"\n")
        };
        let parse = |g: &str| crate::scenario::parse(Path::new("s.toml"), &src(g));
        let s = parse("2s").unwrap();
        let o = s.app.gunicorn().unwrap();
        assert_eq!(o.graceful_timeout_secs(s.app.stop_timeout.0), 2);
        for bad in ["20s", "1500ms", "0s"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("app.graceful_timeout"), "{bad}: {e}");
        }
    }

    #[test]
    fn graceful_timeout_is_whole_seconds_within_stop_timeout() {
        let s = Duration::from_secs;
        assert!(check_graceful_timeout(s(1), s(10)).is_ok());
        assert!(check_graceful_timeout(s(10), s(10)).is_ok());
        assert!(check_graceful_timeout(s(0), s(10)).is_err());
        assert!(check_graceful_timeout(Duration::from_millis(1500), s(10)).is_err());
        assert!(check_graceful_timeout(s(11), s(10)).is_err());
        let mut o = Options::default();
        assert_eq!(o.graceful_timeout_secs(Duration::from_millis(500)), 1);
        assert_eq!(o.graceful_timeout_secs(s(30)), 30);
        o.graceful_timeout = Some(Spanned::new(0..0, Dur(s(2))));
        assert_eq!(o.graceful_timeout_secs(s(30)), 2);
    }
}
