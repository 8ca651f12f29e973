//! uWSGI as an app instance: master + N workers (lazy-apps by default, so each
//! worker imports the app and a chain reload loads new code), a master FIFO for
//! control, and a touch file for `touch-chain-reload`.
//!
//! uWSGI treats SIGTERM as "reload" and SIGINT/SIGQUIT as a brutal stop; the
//! graceful stop is `q` on the master FIFO.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toml::Spanned;

use super::AppConfig;
use super::{python, AppEnv, AppKind, Launch, Spawned};
use crate::config::AppTable;
use crate::error::{Error, Result};
use crate::front::nginx::Upstream;
use crate::load::Endpoint;
use crate::sys::child::Child;
use crate::sys::tools;
use crate::sys::tools::Tool;

/// The `uwsgi` app kind: the sample WSGI app under uWSGI.
pub struct Uwsgi;

/// `[app]` options of a uWSGI app (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Worker processes per instance, 1 to 64 (default 2).
    pub workers: Spanned<u32>,
    /// `--lazy-apps`: each worker imports the app, needed for a chain reload to load
    /// new code (default true).
    pub lazy_apps: bool,
    /// A venv handed to deploy commands as `$ZDT_VENV` (uWSGI itself runs its system
    /// python3 plugin; default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: Spanned::new(0..0, 2),
            lazy_apps: true,
            venv: None,
        }
    }
}

impl AppKind for Uwsgi {
    const NAME: &'static str = "uwsgi";
    const SUMMARY: &'static str = "the sample WSGI app under a uWSGI master with N workers, a master FIFO and a touch-reload file";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("workers", "`2`", "worker processes per instance (1 to 64)"),
        OptionDoc::new("lazy_apps", "`true`", "`--lazy-apps`: each worker imports the app (needed for a chain reload to load new code)"),
        OptionDoc::new("venv", "—", "a venv handed to deploy commands as `$ZDT_VENV` (uWSGI itself runs its system python3 plugin; default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Uwsgi];
    type Options = Options;

    fn validate(o: &Options, _app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        super::check_workers(&o.workers, at)
    }

    fn venv(o: &Options) -> Option<&Path> {
        o.venv.as_deref()
    }

    fn set_workers(o: &mut Options, n: u32) -> bool {
        o.workers = Spanned::new(0..0, n);
        true
    }

    fn upstream(endpoint: Endpoint) -> Upstream {
        Upstream::Uwsgi(endpoint)
    }

    fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        let (child, control) = spawn(o, env, l, env.has_front)?;
        Ok(Spawned {
            child,
            ready_rx: None,
            uwsgi: Some(control),
        })
    }
}

impl AppConfig {
    /// The uWSGI options (an error if the app is of another kind).
    pub fn uwsgi(&self) -> Result<&Options> {
        self.kind_options::<Uwsgi>()
    }
}

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
    o: &Options,
    env: &AppEnv,
    l: &Launch,
    uwsgi_protocol: bool,
) -> Result<(Child, Control)> {
    let Launch {
        slot,
        name,
        endpoint,
        version_file,
        log,
        ..
    } = *l;
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
        o.workers.get_ref().to_string(),
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
    if o.lazy_apps {
        args.push("--lazy-apps".into());
    }
    let envs = python::app_env(version_file, c.startup_delay());
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

/// Appends one uwsgi-protocol var (little-endian 16-bit lengths).
fn push_var(out: &mut Vec<u8>, k: &str, v: &str) {
    out.extend_from_slice(&(k.len() as u16).to_le_bytes());
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v.as_bytes());
}

/// A uwsgi packet: modifier1, body length, modifier2, body.
pub fn packet(modifier1: u8, modifier2: u8, vars: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in vars {
        push_var(&mut body, k, v);
    }
    let mut p = vec![modifier1];
    p.extend_from_slice(&(body.len() as u16).to_le_bytes());
    p.push(modifier2);
    p.extend_from_slice(&body);
    p
}

/// Tells the subscription server to drop `node` from `key` (modifier1 224, modifier2 1).
pub fn unsubscribe(server: &Path, key: &str, node: &Path) -> Result<()> {
    let pkt = packet(
        224,
        1,
        &[("key", key), ("address", &node.display().to_string())],
    );
    let s = std::os::unix::net::UnixDatagram::unbound().map_err(|e| Error::io(server, e))?;
    s.send_to(&pkt, server).map_err(|e| Error::io(server, e))?;
    Ok(())
}

/// Sends `GET path` over the uwsgi protocol straight to a vassal's socket; returns
/// the status and the `X-App-Version` header.
pub async fn probe(socket: &Path, path: &str) -> Result<(u16, Option<String>)> {
    let pkt = packet(
        0,
        0,
        &[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", path),
            ("PATH_INFO", path),
            ("QUERY_STRING", ""),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("HTTP_HOST", "localhost"),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
    );
    let io = async {
        let mut s = tokio::net::UnixStream::connect(socket).await?;
        s.write_all(&pkt).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step(format!("{}: probe timed out", socket.display())))?
        .map_err(|e| Error::io(socket, e))?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Error::Step(format!("{}: no HTTP status in reply", socket.display())))?;
    let version = lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-app-version")
            .then(|| v.trim().to_string())
    });
    Ok((status, version))
}
