//! haproxy (Debian 12's 2.6) as a front server over a pool of app instances, run
//! without root privileges being needed, in `run_dir/hap`: master-worker in the
//! foreground (`-W -db`), the absolute binary path (the master re-executes
//! `argv[0]` on reload), an admin stats socket (`level admin`, what `set server`
//! needs) and a master CLI socket, both with short names (haproxy binds
//! `<path>.<pid>.tmp` first and refuses paths of about 97 characters or more).
//! No `user`, `group`, `chroot` or `daemon`: they need root. The config is checked
//! with `haproxy -c` before the start.
//!
//! One backend `be` with a server `s1..sN` per app instance, health-checked with
//! `GET <status_path>` expecting 200 (fast `inter`/`fall`/`rise` for tests), and
//! by default `retries 0` without `option redispatch`, so that the balancer hides
//! nothing from the client. Ready means every server's `check_status` is `L7OK`:
//! haproxy counts servers as UP before their first check.
//!
//! [`Haproxy::command`] is a small admin-socket client; [`Haproxy::servers`]
//! parses `show stat` (by column name, not position).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Site;
use crate::error::{Error, Result};
use crate::load::Endpoint;
use crate::sys::child::Child;
use crate::sys::tools;

/// The backend's name in the config and on the admin socket.
pub const BACKEND: &str = "be";
/// The longest unix socket path haproxy binds (it appends `.<pid>.tmp` first).
const MAX_SOCK_PATH: usize = 80;
/// How often the admin socket is polled while waiting for a state.
const POLL: Duration = Duration::from_millis(20);

/// The backend's settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The servers' addresses, in order (`s1`, `s2`, ...).
    pub servers: Vec<Endpoint>,
    /// Health-check interval.
    pub inter: Duration,
    /// Consecutive failed checks before a server is DOWN.
    pub fall: u32,
    /// Consecutive passed checks before a server is UP.
    pub rise: u32,
    /// `retries` (0: a failed connect is the client's 503).
    pub retries: u32,
    /// `option redispatch` (retry on another server).
    pub redispatch: bool,
    /// `http-check disable-on-404`: a status page answering 404 puts the server in NOLB.
    pub disable_on_404: bool,
    /// The health-check path (the app's status path).
    pub status_path: String,
}

impl PoolConfig {
    /// Server name of the `i`th (0-based) server.
    pub fn server_name(i: usize) -> String {
        format!("s{}", i + 1)
    }
}

/// A value inside haproxy double quotes.
fn quoted(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
    )
}

/// A server address line's address part.
fn server_addr(e: &Endpoint) -> String {
    match e {
        Endpoint::Tcp(a) => a.to_string(),
        Endpoint::Unix(p) => quoted(&format!("unix@{}", p.display())),
    }
}

/// A `maxconn` that fits the fd limit (two fds per proxied connection, some spare).
fn fitting_maxconn() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        1024
    };
    (nofile.saturating_sub(64) / 2).clamp(64, 4000)
}

/// Renders haproxy.cfg: the admin socket in `dir`, a frontend on `listen`, backend `be`.
pub fn render(dir: &Path, listen: SocketAddr, cfg: &PoolConfig) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
    let mut s = String::new();
    s.push_str(
        "# written by zdt-check; run as haproxy -W -db -f <this> -p haproxy.pid -S master.sock\n",
    );
    s.push_str("global\n");
    s.push_str(&format!(
        "    stats socket {} mode 600 level admin\n",
        quoted(&dir.join("a.sock").display().to_string())
    ));
    s.push_str(&format!("    maxconn {}\n", fitting_maxconn()));
    s.push_str("    hard-stop-after 30s\n");
    s.push_str("defaults\n    mode http\n    log global\n");
    s.push_str("    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n");
    s.push_str(&format!(
        "    timeout check {}\n",
        ms(cfg.inter.max(Duration::from_millis(500)))
    ));
    s.push_str(&format!("    retries {}\n", cfg.retries));
    if cfg.redispatch {
        // Redispatch on every retry (not only the last), so a retry never waits on the dead server.
        s.push_str("    option redispatch 1\n");
    } else {
        s.push_str("    no option redispatch\n");
    }
    s.push_str(&format!(
        "frontend fe\n    bind {listen}\n    default_backend {BACKEND}\n"
    ));
    s.push_str(&format!("backend {BACKEND}\n    balance roundrobin\n"));
    s.push_str(&format!(
        "    option httpchk GET {}\n",
        cfg.status_path.replace(' ', "%20")
    ));
    s.push_str("    http-check expect status 200\n");
    if cfg.disable_on_404 {
        s.push_str("    http-check disable-on-404\n");
    }
    s.push_str(&format!(
        "    default-server check inter {} fall {} rise {}\n",
        ms(cfg.inter),
        cfg.fall,
        cfg.rise
    ));
    for (i, e) in cfg.servers.iter().enumerate() {
        s.push_str(&format!(
            "    server {} {}\n",
            PoolConfig::server_name(i),
            server_addr(e)
        ));
    }
    s
}

/// One server's row of `show stat`, the fields a roll needs (and every field by name).
#[derive(Debug, Clone, Default)]
pub struct ServerStat {
    /// `svname` (`s1`, ..., or `BACKEND`).
    pub name: String,
    /// Requests queued for the server.
    pub qcur: u64,
    /// Sessions on the server now.
    pub scur: u64,
    /// Failed connects to the server.
    pub econ: u64,
    /// Response errors.
    pub eresp: u64,
    /// Connect retries (hidden from the client).
    pub wretr: u64,
    /// Redispatches to another server (hidden from the client).
    pub wredis: u64,
    /// `status`: UP, DOWN, DRAIN, NOLB, MAINT, `UP 1/2`, ...
    pub status: String,
    /// `check_status` without the `* ` (check in progress) prefix: L7OK, L4CON, ...
    pub check_status: String,
    /// `check_health` (rise + fall - 1 when fully up).
    pub check_health: u64,
    /// 5xx responses.
    pub hrsp_5xx: u64,
    /// Every column, by name.
    pub fields: BTreeMap<String, String>,
}

/// Parses `show stat` CSV (header `# pxname,svname,...`).
pub fn parse_stat(csv: &str) -> Result<Vec<ServerStat>> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| Error::Step(format!("haproxy show stat: no CSV header in {csv:?}")))?;
    let names: Vec<&str> = header.split(',').collect();
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: BTreeMap<String, String> = names
            .iter()
            .zip(line.split(','))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let num = |k: &str| fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        let text = |k: &str| fields.get(k).cloned().unwrap_or_default();
        out.push(ServerStat {
            name: text("svname"),
            qcur: num("qcur"),
            scur: num("scur"),
            econ: num("econ"),
            eresp: num("eresp"),
            wretr: num("wretr"),
            wredis: num("wredis"),
            status: text("status"),
            check_status: text("check_status").trim_start_matches("* ").to_string(),
            check_health: num("check_health"),
            hrsp_5xx: num("hrsp_5xx"),
            fields,
        });
    }
    Ok(out)
}

/// The balancer's own counters: what it retried or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connect retries.
    pub wretr: u64,
    /// Redispatches.
    pub wredis: u64,
    /// Failed connects.
    pub econ: u64,
    /// Response errors.
    pub eresp: u64,
    /// 5xx responses (haproxy's own 503s included).
    pub hrsp_5xx: u64,
}

impl Counters {
    /// The counters of a `show stat` row.
    pub fn of(s: &ServerStat) -> Counters {
        Counters {
            wretr: s.wretr,
            wredis: s.wredis,
            econ: s.econ,
            eresp: s.eresp,
            hrsp_5xx: s.hrsp_5xx,
        }
    }

    /// `self - earlier`, per counter.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            wretr: self.wretr.saturating_sub(earlier.wretr),
            wredis: self.wredis.saturating_sub(earlier.wredis),
            econ: self.econ.saturating_sub(earlier.econ),
            eresp: self.eresp.saturating_sub(earlier.eresp),
            hrsp_5xx: self.hrsp_5xx.saturating_sub(earlier.hrsp_5xx),
        }
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wretr={} wredis={} econ={} eresp={} hrsp_5xx={}",
            self.wretr, self.wredis, self.econ, self.eresp, self.hrsp_5xx
        )
    }
}

/// A running haproxy in front of a pool.
#[derive(Debug)]
pub struct Haproxy {
    dir: PathBuf,
    listen: SocketAddr,
    child: Child,
}

/// Sends one command to a haproxy CLI socket and reads the answer to the end.
pub async fn cli(sock: &Path, cmd: &str) -> Result<String> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(format!("{cmd}\n").as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step(format!("haproxy `{cmd}`: no answer within 2s")))?
        .map_err(|e| Error::Step(format!("haproxy `{cmd}` on {}: {e}", sock.display())))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The range a health-check interval (`inter`) must lie in: haproxy rejects
/// timers past about 24 days and treats 0 as its default; below 10 ms the checks
/// would load the app more than the requests under test.
pub const CHECK_INTER_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(60));

/// What is wrong with `inter` as a check interval, if anything.
pub fn check_inter_problem(inter: Duration) -> Option<&'static str> {
    let (lo, hi) = CHECK_INTER_RANGE;
    (inter < lo || inter > hi).then_some("must be between 10ms and 60s")
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

/// Sends one command to haproxy's master CLI (`-S`) and reads its answer. Unlike
/// the stats socket, 2.6.12's master CLI keeps the connection open after answering
/// until the client shuts its side down, so this shuts down its write side first.
pub async fn master_cli(sock: &Path, cmd: &str) -> Result<String> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(format!("{cmd}\n").as_bytes()).await?;
        s.shutdown().await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step(format!("haproxy master `{cmd}`: no answer within 2s")))?
        .map_err(|e| Error::Step(format!("haproxy master `{cmd}` on {}: {e}", sock.display())))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The master CLI's prompt (after `prompt`, its interactive mode): `master> `, or
/// `master[ReloadFailed]> ` once a reload has failed (measured on 2.6.12).
pub async fn master_prompt(sock: &Path) -> Result<String> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(b"prompt\n").await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        while !buf.ends_with(b"> ") {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step("haproxy master `prompt`: no prompt within 2s".into()))?
        .map_err(|e| {
            Error::Step(format!(
                "haproxy master `prompt` on {}: {e}",
                sock.display()
            ))
        })?;
    Ok(String::from_utf8_lossy(&buf).trim().to_string())
}

/// The master CLI's `show proc`: the master's reload counters and its workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcList {
    /// The master's pid.
    pub master: i32,
    /// Reloads since the master started.
    pub reloads: u64,
    /// Of those, how many failed (`[failed: N]`).
    pub failed: u64,
    /// The current worker(s).
    pub workers: Vec<i32>,
    /// Workers still finishing their connections after a reload.
    pub old_workers: Vec<i32>,
}

impl ProcList {
    /// Whether `pid` is still listed, as a worker or an old worker.
    pub fn lists(&self, pid: i32) -> bool {
        self.workers.contains(&pid) || self.old_workers.contains(&pid)
    }
}

impl std::fmt::Display for ProcList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "master {} reloads {} [failed: {}], workers {:?}, old workers {:?}",
            self.master, self.reloads, self.failed, self.workers, self.old_workers
        )
    }
}

/// Parses `show proc` (2.6: a `#<PID> <type> <reloads> ...` header, the master's
/// line `PID master N [failed: F] ...`, then `# workers`, `# old workers` and
/// `# programs` sections).
pub fn parse_show_proc(text: &str) -> Result<ProcList> {
    let mut out = ProcList::default();
    let mut section = "";
    let mut seen_master = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('#') {
            section = match name.trim() {
                "workers" => "workers",
                "old workers" => "old",
                "programs" => "programs",
                _ => section,
            };
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(pid), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        match (kind, section) {
            ("master", _) => {
                out.master = pid;
                out.reloads = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                let rest: Vec<&str> = words.collect();
                out.failed = rest
                    .windows(2)
                    .find(|w| w[0] == "[failed:")
                    .and_then(|w| w[1].trim_end_matches(']').parse().ok())
                    .unwrap_or(0);
                seen_master = true;
            }
            ("worker", "workers") => out.workers.push(pid),
            ("worker", "old") => out.old_workers.push(pid),
            _ => {}
        }
    }
    if !seen_master {
        return Err(Error::Step(format!(
            "haproxy show proc: no master line in {text:?}"
        )));
    }
    Ok(out)
}

/// How haproxy runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMode {
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
            Ok(()) => crate::sys::readiness::wait_ready(
                &hap.endpoint(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_servers_checks_and_no_masking_by_default() {
        let cfg = PoolConfig {
            servers: vec![
                Endpoint::Unix("/tmp/run dir/s1.sock".into()),
                Endpoint::Tcp("127.0.0.1:9001".parse().unwrap()),
            ],
            inter: Duration::from_millis(100),
            fall: 2,
            rise: 3,
            retries: 0,
            redispatch: false,
            disable_on_404: false,
            status_path: "/_status".into(),
        };
        let c = render(
            Path::new("/tmp/r/hap"),
            "127.0.0.1:8080".parse().unwrap(),
            &cfg,
        );
        assert!(
            c.contains("stats socket \"/tmp/r/hap/a.sock\" mode 600 level admin"),
            "{c}"
        );
        assert!(
            c.contains("server s1 \"unix@/tmp/run dir/s1.sock\"\n"),
            "{c}"
        );
        assert!(c.contains("server s2 127.0.0.1:9001\n"), "{c}");
        assert!(
            c.contains("default-server check inter 100ms fall 2 rise 3"),
            "{c}"
        );
        assert!(c.contains("option httpchk GET /_status\n    http-check expect status 200"));
        assert!(
            c.contains("retries 0") && c.contains("no option redispatch"),
            "{c}"
        );
        for root_only in ["user ", "group ", "chroot", "daemon", "pidfile"] {
            assert!(!c.contains(root_only), "{root_only}: {c}");
        }
        assert!(!c.contains("disable-on-404"));
    }

    #[test]
    fn parses_show_stat_by_column_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,\n\
be,s1,0,0,2,3,,10,0,0,,0,,1,0,2,1,DRAIN,1,1,0,1,0,5,0,,1,3,1,,10,,2,0,,3,* L7OK,200,1,0,10,0,0,4,\n\
be,BACKEND,1,0,2,3,,10,0,0,0,0,,5,0,2,1,UP,1,1,0,,0,5,0,,1,3,0,,10,,1,0,,3,,,,0,10,0,0,6,\n";
        let rows = parse_stat(csv).unwrap();
        assert_eq!(rows.len(), 2);
        let s1 = &rows[0];
        assert_eq!((s1.name.as_str(), s1.scur, s1.qcur), ("s1", 2, 0));
        assert_eq!(
            (s1.status.as_str(), s1.check_status.as_str()),
            ("DRAIN", "L7OK")
        );
        assert_eq!((s1.econ, s1.wretr, s1.wredis, s1.hrsp_5xx), (1, 2, 1, 4));
        let b = Counters::of(&rows[1]);
        let d = b.since(&Counters {
            econ: 2,
            ..Counters::default()
        });
        assert_eq!(d.econ, 3);
        assert_eq!(d.to_string(), "wretr=2 wredis=1 econ=3 eresp=0 hrsp_5xx=6");
        assert!(parse_stat("Unknown command\n").is_err());
    }
}
