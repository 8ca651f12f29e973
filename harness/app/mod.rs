//! App topologies: starting, probing and stopping app instances.
//!
//! An [`AppEnv`] knows the scenario's app settings and the private run directory;
//! strategies ask it for instances listening on a given endpoint with a given
//! version, and decide themselves how instances are switched and stopped.

pub mod builtin;
pub mod process;
pub mod readiness;

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
    /// The version it serves.
    pub version: String,
    /// Where it listens (its own socket, not a symlink).
    pub endpoint: Endpoint,
    /// Its process group.
    pub child: Child,
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
        let child = match self.config.kind.get_ref().as_str() {
            "builtin" => builtin::spawn(self, &name, &endpoint, version, &log)?,
            other => {
                return Err(Error::Harness(format!(
                    "app kind {other:?} is not supported"
                )))
            }
        };
        Ok(Instance {
            name,
            version: version.to_string(),
            endpoint,
            child,
        })
    }

    /// Waits until `inst` answers the status probe with its own version.
    pub async fn wait_ready(&self, inst: &mut Instance) -> Result<()> {
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
                let (status, killed) = inst
                    .child
                    .stop(libc::SIGTERM, self.config.stop_timeout.0)
                    .await;
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
