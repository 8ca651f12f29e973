//! App topologies: starting, probing and stopping app instances.
//!
//! An [`AppEnv`] knows the scenario's app settings and the private run directory;
//! strategies ask it for instances listening on a given endpoint with a given
//! version, and decide themselves how instances are switched and stopped.

pub mod builtin;
pub mod external;
pub mod flup;
pub mod gunicorn;
pub mod haproxy;
pub mod nginx;
pub mod process;
pub mod python;
pub mod readiness;
pub mod reaper;
pub mod tools;
pub mod uwsgi;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::load::Endpoint;
use crate::scenario::AppConfig;
use process::Child;

/// One running app instance.
#[derive(Debug)]
pub struct Instance {
    /// Short name for reports, e.g. `app-b v2`.
    pub name: String,
    /// The slot it was started in (names its socket, log, pidfile).
    pub slot: String,
    /// The version it serves.
    pub version: String,
    /// Where it listens (its own socket, not a symlink).
    pub endpoint: Endpoint,
    /// Its process group.
    pub child: Child,
    /// Python apps: the file the app reads its version from at import (rewrite it, then reload in place).
    pub version_file: Option<PathBuf>,
    /// gunicorn: where each worker reports "ready" once it has loaded the app.
    pub ready_rx: Option<tokio::net::UnixDatagram>,
    /// uWSGI: the master FIFO and touch-reload file.
    pub uwsgi: Option<uwsgi::Control>,
}

impl Instance {
    /// Records that the instance now serves `version` (after an in-place reload).
    pub fn set_version(&mut self, version: &str) {
        self.version = version.to_string();
        self.name = format!("{} {version}", self.slot);
    }
}

/// How an instance is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopHow {
    /// SIGTERM, then wait up to the stop timeout for a graceful drain.
    Drain,
    /// SIGKILL to the whole group at once (requests in flight are lost).
    Kill,
}

/// What the strategies need to start and stop app instances.
#[derive(Debug)]
pub struct AppEnv {
    /// The private run directory (0700) for sockets, configs and logs.
    pub run_dir: PathBuf,
    /// The scenario's app settings.
    pub config: AppConfig,
    /// The zdt-check binary (runs the built-in fixture).
    pub exe: PathBuf,
    /// A front server will sit between the load and the app (uWSGI then speaks the uwsgi protocol).
    pub has_front: bool,
}

impl AppEnv {
    /// A path inside the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    /// Starts an instance serving `version` on `endpoint` (does not wait for it to be ready).
    pub fn start(&self, slot: &str, endpoint: Endpoint, version: &str) -> Result<Instance> {
        let name = format!("{slot} {version}");
        let log = self.path(&format!("{slot}.log"));
        let kind = self.config.kind.get_ref().as_str();
        let version_file = (kind != "builtin").then(|| self.path(&format!("{slot}.version")));
        if let Some(f) = &version_file {
            python::write_version(f, version)?;
        }
        let vf = version_file.as_deref().unwrap_or(std::path::Path::new(""));
        let (child, ready_rx, uwsgi) = match kind {
            "builtin" => (
                builtin::spawn(self, &name, &endpoint, version, &log)?,
                None,
                None,
            ),
            "flup" => (flup::spawn(self, &name, &endpoint, vf, &log)?, None, None),
            "gunicorn" => {
                let (child, ready) = gunicorn::spawn(self, slot, &name, &endpoint, vf, &log)?;
                (child, Some(ready), None)
            }
            "uwsgi" => {
                let (child, control) =
                    uwsgi::spawn(self, slot, &name, &endpoint, self.has_front, vf, &log)?;
                (child, None, Some(control))
            }
            other => {
                return Err(Error::Harness(format!(
                    "app kind {other:?} is not supported"
                )))
            }
        };
        Ok(Instance {
            name,
            slot: slot.to_string(),
            version: version.to_string(),
            endpoint,
            child,
            version_file,
            ready_rx,
            uwsgi,
        })
    }

    /// Probes a uwsgi-protocol socket until it answers the status path with the instance's version.
    async fn wait_ready_uwsgi(&self, inst: &mut Instance) -> Result<()> {
        let Endpoint::Unix(sock) = &inst.endpoint else {
            return readiness::wait_accepting(
                &inst.endpoint,
                self.config.ready_timeout.0,
                &mut inst.child,
            )
            .await;
        };
        let deadline = tokio::time::Instant::now() + self.config.ready_timeout.0;
        let mut last;
        loop {
            if let Some(status) = inst.child.try_exited() {
                return Err(inst
                    .child
                    .error(format!("exited ({status}) before it was ready")));
            }
            match uwsgi::probe(sock, &self.config.status_path).await {
                Ok((200..=299, Some(v))) if v == inst.version => return Ok(()),
                Ok((code, v)) => last = format!("status {code}, version {v:?}"),
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(inst.child.error(format!(
                    "not ready after {} (last probe: {last})",
                    self.config.ready_timeout
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// How a front server passes requests to an instance of this app kind at `endpoint`.
    pub fn upstream(&self, endpoint: Endpoint) -> nginx::Upstream {
        match self.config.kind.get_ref().as_str() {
            "flup" => nginx::Upstream::FastCgi(endpoint),
            "uwsgi" => nginx::Upstream::Uwsgi(endpoint),
            _ => nginx::Upstream::Http(endpoint),
        }
    }

    /// Waits until `inst` answers the status probe with its own version.
    /// (An app behind a uwsgi or FastCGI socket cannot be probed over HTTP: there
    /// the strategy probes through the front server, or waits for the socket to accept.)
    pub async fn wait_ready(&self, inst: &mut Instance) -> Result<()> {
        let kind = self.config.kind.get_ref().as_str();
        if kind == "flup" {
            return readiness::wait_accepting(
                &inst.endpoint,
                self.config.ready_timeout.0,
                &mut inst.child,
            )
            .await;
        }
        if kind == "uwsgi" && self.has_front {
            // Behind nginx uWSGI speaks the uwsgi protocol; it binds before its (lazy)
            // workers have imported the app, so accepting is not ready: ask /_status.
            return self.wait_ready_uwsgi(inst).await;
        }
        let seen = readiness::wait_ready(
            &inst.endpoint,
            &self.config.status_path,
            self.config.ready_timeout.0,
            Some(&mut inst.child),
        )
        .await?;
        match seen {
            Some(v) if v != inst.version => Err(inst.child.error(format!(
                "answered as version {v:?}, expected {:?}",
                inst.version
            ))),
            _ => Ok(()),
        }
    }

    /// Stops `inst`; returns a short description of how it ended.
    pub async fn stop(&self, inst: &mut Instance, how: StopHow) -> String {
        match how {
            StopHow::Kill => {
                inst.child.kill().await;
                "killed (SIGKILL)".into()
            }
            StopHow::Drain => {
                // uWSGI: SIGTERM is a reload and SIGINT a brutal stop; `q` on the FIFO drains.
                let sig = match &inst.uwsgi {
                    Some(ctl) if uwsgi::send(&ctl.fifo, "q").is_ok() => 0,
                    _ => libc::SIGTERM,
                };
                let (status, killed) = inst.child.stop(sig, self.config.stop_timeout.0).await;
                if killed {
                    format!("did not exit within {}; killed", self.config.stop_timeout)
                } else {
                    format!(
                        "exited ({})",
                        status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "unknown".into())
                    )
                }
            }
        }
    }

    /// Picks a free loopback TCP port (bound and released; the kernel will not hand it out again soon).
    pub fn free_tcp_endpoint() -> Result<Endpoint> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::Harness(format!("cannot find a free port: {e}")))?;
        let addr = l.local_addr().map_err(|e| Error::Harness(e.to_string()))?;
        Ok(Endpoint::Tcp(addr))
    }

    /// The endpoint for slot `slot`: a unix socket in the run dir, or a fresh TCP port.
    pub fn endpoint_for(&self, slot: &str) -> Result<Endpoint> {
        match self.config.socket.get_ref().as_str() {
            "tcp" => Self::free_tcp_endpoint(),
            _ => Ok(Endpoint::Unix(self.path(&format!("{slot}.sock")))),
        }
    }
}

/// Waits until `path` exists (or `timeout` passes); for files an app writes once up.
pub async fn wait_for_path(path: &Path, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    path.exists()
}
