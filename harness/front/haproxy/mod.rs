//! haproxy (Debian 12's 2.6) as a front server over a pool of app instances, run
//! without root privileges being needed, in `run_dir/hap`: master-worker in the
//! foreground (`-W -db`), the absolute binary path (the master re-executes
//! `argv[0]` on reload), an admin stats socket (`level admin`, what `set server`
//! needs) and a master CLI socket, both with short names (haproxy binds
//! `<path>.<pid>.tmp` first and refuses paths of about 97 characters or more).
//! No `user`, `group`, `chroot` or `daemon`: they need root. The config is checked
//! with `haproxy -c` before the start.
//!
//! Ready means every server's `check_status` is `L7OK`: haproxy counts servers as
//! UP before their first check.
//!
//! Here: the lifecycle (start, checks, config replacement, stop). Beside it:
//! `config.rs` (haproxy.cfg and its settings), `admin_socket.rs` (the admin socket's
//! client), `show_stat.rs` (its `show stat`, parsed by column name), `master_cli.rs`
//! (the master CLI's client and its `show proc`). `Haproxy::command` sends an
//! admin-socket command; `Haproxy::servers` parses `show stat`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Site;
use crate::error::{Error, Result};
use crate::load::Endpoint;
use crate::sys::child::Child;
use crate::sys::tools;

mod admin_socket;
mod config;
mod master_cli;
mod show_stat;

pub(crate) use admin_socket::cli;
pub(crate) use config::{
    check_inter_problem, render, PoolConfig, TlsBind, ALPN, ALPN_H2, BACKEND, HARD_STOP_AFTER,
};
pub(crate) use master_cli::{master_cli, master_prompt, parse_show_proc, ProcList};
pub(crate) use show_stat::{parse_stat, Counters, ServerStat};

/// The longest unix socket path haproxy binds (it appends `.<pid>.tmp` first).
const MAX_SOCK_PATH: usize = 80;
/// How often the admin socket is polled while waiting for a state.
const POLL: Duration = Duration::from_millis(20);

/// A running haproxy in front of a pool.
#[derive(Debug)]
pub(crate) struct Haproxy {
    dir: PathBuf,
    listen: SocketAddr,
    child: Child,
}

impl Haproxy {
    /// Renders the config into `run_dir/hap`, checks it with `haproxy -c`, starts
    /// haproxy on `listen` (or a free loopback port), and waits until every server
    /// has passed its checks (`L7OK`) and a request through haproxy answers 2xx.
    pub async fn start(
        env: &Site<'_>,
        cfg: &PoolConfig,
        listen: Option<SocketAddr>,
    ) -> Result<Haproxy> {
        let listen = match listen {
            Some(a) => a,
            None => crate::sys::port::free_loopback()?,
        };
        Self::start_as(env, cfg, listen, &RunMode::MasterWorker).await
    }

    /// Where the load connects.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::Tcp(self.listen)
    }

    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// The admin (stats) socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.dir.join("a.sock")
    }

    /// The master CLI socket.
    pub fn master_socket(&self) -> PathBuf {
        self.dir.join("m.sock")
    }

    /// One admin-socket command; its answer.
    pub async fn command(&self, cmd: &str) -> Result<String> {
        cli(&self.admin_socket(), cmd).await
    }

    /// `show stat` of the backend: its servers and the `BACKEND` row.
    pub async fn servers(&self) -> Result<Vec<ServerStat>> {
        parse_stat(&self.command(&format!("show stat {BACKEND} 6 -1")).await?)
    }

    /// One server's row.
    pub async fn server(&self, name: &str) -> Result<ServerStat> {
        self.servers()
            .await?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::Step(format!("haproxy: no server {BACKEND}/{name}")))
    }

    /// The backend's counters (its `BACKEND` row).
    pub async fn counters(&self) -> Result<Counters> {
        Ok(Counters::of(&self.server("BACKEND").await?))
    }

    /// `set server be/<name> state <state>` (ready, drain, maint); fails on any answer.
    pub async fn set_state(&self, name: &str, state: &str) -> Result<()> {
        let out = self
            .command(&format!("set server {BACKEND}/{name} state {state}"))
            .await?;
        if out.trim().is_empty() {
            Ok(())
        } else {
            Err(Error::Step(format!(
                "haproxy `set server {BACKEND}/{name} state {state}`: {}",
                out.trim()
            )))
        }
    }

    /// Polls `show stat` until `done` holds for server `name`, up to `timeout`.
    pub async fn wait_server(
        &mut self,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&ServerStat) -> bool,
    ) -> Result<ServerStat> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let row = self.server(name).await?;
            if done(&row) {
                return Ok(row);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Step(format!(
                    "haproxy {BACKEND}/{name}: not {what} after {timeout:?} (status {:?}, check {:?}, scur {}, qcur {})",
                    row.status, row.check_status, row.scur, row.qcur
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `show stat` until `done` holds for all rows, up to `timeout`.
    async fn wait_all(
        &mut self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[ServerStat]) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::from("admin socket not up");
        loop {
            self.check_alive()?;
            if let Ok(rows) = self.servers().await {
                if done(&rows) {
                    return Ok(());
                }
                last = rows
                    .iter()
                    .filter(|r| r.name != "BACKEND")
                    .map(|r| format!("{} {} {}", r.name, r.status, r.check_status))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Step(format!(
                    "haproxy: not {what} after {timeout:?} (last: {last})"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails if haproxy has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_exited() {
            Some(status) => Err(self.child.error(format!("exited ({status})"))),
            None => Ok(()),
        }
    }

    /// Soft stop (SIGUSR1: finish the connections in flight), then the whole group is killed.
    pub async fn stop(&mut self) {
        self.child.stop(libc::SIGUSR1, Duration::from_secs(5)).await;
    }
}

/// How haproxy runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunMode {
    /// `-W -db -S m.sock`: a master that re-executes itself on `reload` and passes
    /// the listening sockets to the new worker.
    MasterWorker,
    /// The legacy single process, `-db` without `-W`; `finish` are old pids to
    /// soft-stop once bound (`-sf`), and there is no `-x`: no socket transfer.
    Standalone {
        /// Old pids for `-sf`.
        finish: Vec<i32>,
    },
}

/// The haproxy binary (absolute: the master re-executes `argv[0]`).
fn haproxy_bin() -> Result<PathBuf> {
    let bin = tools::on_path("haproxy")
        .or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")).filter(|p| p.exists()))
        .map_or_else(|| tools::require("haproxy"), Ok)?;
    Ok(std::fs::canonicalize(&bin).unwrap_or(bin))
}

/// `haproxy -c -q -f conf`, within 10 s.
async fn check_config(bin: &Path, conf: &Path) -> Result<()> {
    let check = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(bin)
            .args(["-c", "-q", "-f"])
            .arg(conf)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| Error::Harness("haproxy -c did not return within 10s".into()))?
    .map_err(|e| Error::Harness(format!("haproxy -c: {e}")))?;
    if check.status.success() {
        Ok(())
    } else {
        Err(Error::Child {
            what: "haproxy -c".into(),
            why: format!("{} rejects {}", check.status, conf.display()),
            log_tail: Some(String::from_utf8_lossy(&check.stderr).into_owned()),
        })
    }
}

impl Haproxy {
    /// Like [`Haproxy::start`], run as `mode`, listening on `listen`, with the config
    /// in `run_dir/hap/haproxy.cfg` (overwritten after `haproxy -c` accepted it).
    /// Waits until every server passed its checks and a request through it answers.
    pub async fn start_as(
        env: &Site<'_>,
        cfg: &PoolConfig,
        listen: SocketAddr,
        mode: &RunMode,
    ) -> Result<Haproxy> {
        let bin = haproxy_bin()?;
        let dir = env.run_dir.join("hap");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for name in ["a.sock", "m.sock"] {
            let p = dir.join(name);
            if p.as_os_str().len() > MAX_SOCK_PATH {
                return Err(Error::Harness(format!(
                    "haproxy socket path {} is too long for a unix socket (haproxy binds <path>.<pid>.tmp): use a shorter run dir",
                    p.display()
                )));
            }
        }
        let conf = Self::install_config(&bin, &dir, listen, cfg).await?;
        let mut args: Vec<String> = Vec::new();
        if *mode == RunMode::MasterWorker {
            args.push("-W".into());
        }
        args.extend([
            "-db".into(),
            "-f".into(),
            conf.display().to_string(),
            "-p".into(),
            dir.join("haproxy.pid").display().to_string(),
        ]);
        match mode {
            RunMode::MasterWorker => {
                args.push("-S".into());
                args.push(format!("{},mode,600", dir.join("m.sock").display()));
            }
            RunMode::Standalone { finish } if !finish.is_empty() => {
                args.push("-sf".into());
                args.extend(finish.iter().map(|p| p.to_string()));
            }
            RunMode::Standalone { .. } => {}
        }
        // Over https, the probe trusts the run's CA and checks the name the certificate is for.
        let probe_tls = match &cfg.tls {
            Some(t) => Some(
                crate::load::tls::TlsClient::new(&crate::load::tls::TlsSettings {
                    server_name: super::tls::SERVER_NAME.into(),
                    ca_file: Some(t.ca.clone()),
                    insecure_skip_verify: false,
                })
                .map_err(Error::Harness)?,
            ),
            None => None,
        };
        let child = Child::spawn("haproxy", &bin, &args, &[], &dir, &dir.join("haproxy.out"))?;
        let mut hap = Haproxy { dir, listen, child };
        let limit = env.ready_timeout;
        let n = cfg.servers.len();
        // A standalone process replacing another: until it has bound the admin socket,
        // the old one answers there (with its own, old servers all L7OK).
        let mut waited = Ok(());
        if *mode != RunMode::MasterWorker {
            waited = hap.wait_own_admin_socket(limit).await;
        }
        let waited = match waited {
            Ok(()) => {
                hap.wait_all(
                    limit,
                    "every server passing its checks (L7OK, UP)",
                    |rows| {
                        rows.iter()
                            .filter(|r| {
                                r.name != "BACKEND" && r.check_status == "L7OK" && r.status == "UP"
                            })
                            .count()
                            == n
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        let waited = match waited {
            // An h2c-only bind (`proto h2`): the probe speaks h2c too.
            Ok(()) => crate::sys::readiness::wait_ready_speaking(
                &hap.endpoint(),
                probe_tls.as_ref(),
                cfg.http2 && cfg.tls.is_none(),
                env.status_path,
                limit,
                Some(&mut hap.child),
            )
            .await
            .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = waited {
            let tail = crate::sys::child::log_tail(&hap.dir.join("haproxy.out"), 20);
            hap.stop().await;
            return Err(Error::Child {
                what: "haproxy".into(),
                why: e.to_string(),
                log_tail: Some(tail),
            });
        }
        Ok(hap)
    }

    /// The pid answering `show info` on the admin socket.
    pub async fn admin_pid(&self) -> Result<i32> {
        let info = self.command("show info").await?;
        info.lines()
            .find_map(|l| l.strip_prefix("Pid: "))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| Error::Step(format!("haproxy show info: no Pid in {info:?}")))
    }

    /// Waits until the admin socket is this (standalone) process's own: `show info`
    /// answers with its pid.
    async fn wait_own_admin_socket(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let me = self.pid();
        loop {
            self.check_alive()?;
            let last = self.admin_pid().await;
            if matches!(last, Ok(p) if p == me) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Step(format!(
                    "haproxy {me}: its admin socket is not its own after {timeout:?} (last: {last:?})"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Renders `cfg` into `dir/haproxy.cfg.new`, checks it with `haproxy -c`, and only
    /// then renames it onto `dir/haproxy.cfg` (what `-f` names); returns that path.
    async fn install_config(
        bin: &Path,
        dir: &Path,
        listen: SocketAddr,
        cfg: &PoolConfig,
    ) -> Result<PathBuf> {
        let conf = dir.join("haproxy.cfg");
        let new = dir.join("haproxy.cfg.new");
        std::fs::write(&new, render(dir, listen, cfg)).map_err(|e| Error::io(&new, e))?;
        check_config(bin, &new).await?;
        std::fs::rename(&new, &conf).map_err(|e| Error::io(&conf, e))?;
        Ok(conf)
    }

    /// Writes the config for `cfg` (same listener and sockets), checked with
    /// `haproxy -c` before it replaces the running one's file; a reload reads it.
    pub async fn replace_config(&self, cfg: &PoolConfig) -> Result<()> {
        let bin = haproxy_bin()?;
        Self::install_config(&bin, &self.dir, self.listen, cfg)
            .await
            .map(|_| ())
    }

    /// `show proc` on the master CLI.
    pub async fn show_proc(&self) -> Result<ProcList> {
        parse_show_proc(&master_cli(&self.master_socket(), "show proc").await?)
    }

    /// `show stat` of the backend as worker `pid` sees it (through the master CLI, `@!pid`).
    pub async fn worker_servers(&self, pid: i32) -> Result<Vec<ServerStat>> {
        parse_stat(
            &master_cli(
                &self.master_socket(),
                &format!("@!{pid} show stat {BACKEND} 6 -1"),
            )
            .await?,
        )
    }

    /// How many times haproxy's output says "Loading success." (once per start or reload).
    pub fn loading_successes(&self) -> usize {
        std::fs::read_to_string(self.dir.join("haproxy.out"))
            .map(|s| s.matches("Loading success.").count())
            .unwrap_or(0)
    }

    /// The last `lines` lines of haproxy's output.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::sys::child::log_tail(&self.dir.join("haproxy.out"), lines)
    }

    /// Waits up to `timeout` for this haproxy process to exit (e.g. after `-sf`).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.child.wait_exit(timeout).await
    }
}
