//! uWSGI emperor + fastrouter (the uwsgi_reload.py setup): an emperor runs
//! `vassals` single-process vassals (one ini file each in the run dir), every
//! vassal subscribes to a fastrouter (subscription server on a unix datagram
//! socket), and nginx `uwsgi_pass`es to the fastrouter, which spreads requests
//! over the subscribed nodes.
//!
//! A reload moves one vassal after the other (as many at once as
//! `vassals - minimum_active` allows, so at least `minimum_active` stay
//! subscribed and serving at every moment) through these steps:
//! 1. write the new version into the vassal's version file;
//! 2. take it out of rotation: block its own re-announcements (`S` on its master
//!    FIFO), send the fastrouter an unsubscribe packet for its socket, and wait
//!    until the fastrouter's stats no longer list the node (the fastrouter only
//!    drops a node once no session is using it, so nothing is in flight to it);
//! 3. touch its ini (mtime strictly later): the emperor gracefully reloads it,
//!    it re-imports the app and subscribes again;
//! 4. wait until the fastrouter lists the node again and a uwsgi-protocol probe
//!    sent straight to the vassal's socket answers with the new version.
//!
//! Each vassal has `step_timeout`; one that times out stays counted as down, so a
//! reload never takes out the last healthy vassals after a timeout, and the
//! reload fails with the vassals that did not come back.
//!
//! Measured with uWSGI 2.0 here: touching a vassal's ini while it is still
//! subscribed (a plain `touch`, skipping step 2) did not stall or fail requests
//! (3 vassals, 2 s import, 100 req/s: p99 7.7 ms, no failure), so it is not offered
//! as a negative control; taking the vassal out first is still the safe order.
//! Reloading too many at once leaves no vassal to serve: `minimum_active = 0`
//! does exactly that (every vassal out of rotation and reloading at once), the
//! negative control scenarios/negative/uwsgi-fastrouter-all-at-once.toml. The
//! fastrouter then has no node for the key and nginx answers 502 until the first
//! vassal has re-imported the app and subscribed again.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use toml::Spanned;

use super::uwsgi_chain::LogFollower;
use super::{Build, Ctx, Spec, Strategy};
use crate::app::{python, uwsgi};
use crate::config::ReloadTable;
use crate::error::{Error, Result};
use crate::load::{Endpoint, Target};
use crate::sys::child::Child;
use crate::sys::tools;

/// The subscription key (nginx sends it as `UWSGI_FASTROUTER_KEY`).
const KEY: &str = "zdt";
/// How often the stats are polled.
const POLL: Duration = Duration::from_millis(50);

/// `[reload]` options of uwsgi-fastrouter. `step_timeout`: the longest one vassal
/// may take to be reloaded (default 30s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Vassals behind the fastrouter (at least 2; default 3).
    pub vassals: Spanned<u32>,
    /// Vassals that must stay subscribed and serving at every moment (less than
    /// `vassals`; default `vassals - 1`). 0 is broken: every vassal is reloaded at
    /// once, a negative control.
    pub minimum_active: Option<Spanned<u32>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vassals: Spanned::new(0..0, 3),
            minimum_active: None,
        }
    }
}

impl Spec for UwsgiFastrouter {
    const NAME: &'static str = "uwsgi-fastrouter";
    const SUMMARY: &'static str = "a uWSGI emperor runs single-process vassals subscribed to a fastrouter behind nginx; a reload restarts the vassals a few at a time, keeping `minimum_active` subscribed";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("vassals", "`3`", "vassals behind the fastrouter (at least 2)"),
        OptionDoc::new("minimum_active", "vassals − 1", "vassals that stay subscribed and serving at every moment (less than `vassals`; 0 reloads every vassal at once, a negative control)"),
    ];
    const APP_KINDS: &'static [&'static str] = &["uwsgi"];
    const NEEDS_FRONT: Option<&'static str> = Some(
        "uwsgi-fastrouter needs a front server (the fastrouter speaks the uwsgi protocol): add [front] kind = \"nginx\"",
    );
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        let vassals = *o.vassals.get_ref();
        if let Some(m) = &o.minimum_active {
            if *m.get_ref() >= vassals {
                return Err(at.error(
                    m.span(),
                    "reload.minimum_active",
                    &format!("must be less than vassals ({vassals})"),
                ));
            }
        }
        if vassals < 2 {
            return Err(at.error(o.vassals.span(), "reload.vassals", "must be at least 2"));
        }
        Ok(())
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        let vassals = *o.vassals.get_ref();
        Box::new(UwsgiFastrouter::new(Config {
            vassals,
            minimum_active: o
                .minimum_active
                .as_ref()
                .map_or(vassals.saturating_sub(1), |m| *m.get_ref()),
            step_timeout: b.step_timeout.unwrap_or(Duration::from_secs(30)),
        }))
    }
}

/// The strategy's settings, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Number of vassals.
    pub vassals: u32,
    /// Vassals that must stay subscribed and serving at every moment.
    pub minimum_active: u32,
    /// Longest one vassal may take to be reloaded.
    pub step_timeout: Duration,
}

/// One vassal: its ini, socket, FIFO, version file and log.
#[derive(Debug, Clone)]
struct Vassal {
    name: String,
    ini: PathBuf,
    socket: PathBuf,
    fifo: PathBuf,
    version_file: PathBuf,
    log: PathBuf,
}

/// The uwsgi-fastrouter strategy.
pub struct UwsgiFastrouter {
    opts: Config,
    fastrouter: Option<Child>,
    emperor: Option<Child>,
    vassals: Vec<Vassal>,
    dir: PathBuf,
}

impl UwsgiFastrouter {
    /// An emperor + fastrouter topology with `opts`.
    pub fn new(opts: Config) -> UwsgiFastrouter {
        UwsgiFastrouter {
            opts,
            fastrouter: None,
            emperor: None,
            vassals: Vec::new(),
            dir: PathBuf::new(),
        }
    }

    fn subscription_sock(&self) -> PathBuf {
        self.dir.join("subscription.sock")
    }

    fn fr_stats(&self) -> PathBuf {
        self.dir.join("fr-stats.sock")
    }

    /// Fails if the fastrouter or the emperor has exited.
    fn check_alive(&mut self) -> Result<()> {
        for c in [self.fastrouter.as_mut(), self.emperor.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(status) = c.try_exited() {
                return Err(c.error(format!("exited ({status})")));
            }
        }
        Ok(())
    }
}

/// Reads the JSON document a uWSGI stats socket sends on connect.
pub async fn read_stats(path: &Path) -> Result<serde_json::Value> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(path).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step(format!("{}: no stats within 2s", path.display())))?
        .map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&buf)
        .map_err(|e| Error::Step(format!("{}: bad stats JSON: {e}", path.display())))
}

/// The nodes subscribed under `key` in a fastrouter stats document (name, death-marked).
pub fn subscribed_nodes(stats: &serde_json::Value, key: &str) -> Vec<(String, bool)> {
    stats["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["key"] == key)
        .flat_map(|s| s["nodes"].as_array().into_iter().flatten())
        .filter_map(|n| {
            let name = n["name"].as_str()?.to_string();
            let dead = n["death_mark"].as_u64().unwrap_or(0) != 0;
            Some((name, dead))
        })
        .collect()
}

/// Whether `v` answers the status probe with `version`.
async fn serves(v: &Vassal, status_path: &str, version: &str) -> bool {
    matches!(uwsgi::probe(&v.socket, status_path).await, Ok((200..=299, Some(got))) if got == version)
}

/// Writes a file atomically (temp name outside the emperor's glob, then rename).
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Sets `path`'s mtime to a later second than it had (the emperor compares whole seconds).
fn touch_later(path: &Path) -> Result<()> {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let old = f
        .metadata()
        .and_then(|m| m.modified())
        .map_err(|e| Error::io(path, e))?;
    let old_secs = old
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let next = SystemTime::UNIX_EPOCH + Duration::from_secs(old_secs + 1);
    f.set_modified(SystemTime::now().max(next))
        .map_err(|e| Error::io(path, e))
}

/// Where a vassal is in its reload.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Not started yet.
    Waiting,
    /// Unsubscribed; waiting for the fastrouter to drop the node. (Start of the step.)
    Leaving(f64),
    /// Ini touched; waiting for it to come back on the new version.
    Reloading(f64, f64),
    /// Serving the new version.
    Done,
    /// Did not come back within the step timeout.
    TimedOut,
}

#[async_trait]
impl Strategy for UwsgiFastrouter {
    fn name(&self) -> &'static str {
        "uwsgi-fastrouter"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let n = self.opts.vassals;
        if n < 2 || self.opts.minimum_active >= n {
            return Err(Error::Harness(format!(
                "uwsgi-fastrouter needs vassals >= 2 and minimum_active < vassals (got {n} and {})",
                self.opts.minimum_active
            )));
        }
        if ctx.front_config.is_none() {
            return Err(Error::Harness(
                "uwsgi-fastrouter needs a front server (the fastrouter speaks the uwsgi protocol): add [front] kind = \"nginx\"".into(),
            ));
        }
        let uwsgi_bin = tools::require("uwsgi")?;
        self.dir = ctx.app.run_dir.clone();
        let d = self.dir.clone();
        let py = python::write_app_dir(&d)?;
        let vdir = d.join("vassals");
        std::fs::create_dir_all(&vdir).map_err(|e| Error::io(&vdir, e))?;
        let fr_sock = d.join("fastrouter.sock");

        let fr_args: Vec<String> = [
            "--plugin",
            "fastrouter",
            "--master",
            "--fastrouter",
            &fr_sock.display().to_string(),
            "--chmod-socket=666",
            "--fastrouter-subscription-server",
            &self.subscription_sock().display().to_string(),
            "--fastrouter-stats",
            &self.fr_stats().display().to_string(),
            "--die-on-term",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.fastrouter = Some(Child::spawn(
            "fastrouter",
            &uwsgi_bin,
            &fr_args,
            &[],
            &d,
            &d.join("fastrouter.log"),
        )?);
        // The subscription server must exist before vassals announce themselves.
        if !crate::app::wait_for_path(&self.fr_stats(), Duration::from_secs(10)).await {
            self.check_alive()?;
            return Err(self
                .fastrouter
                .as_ref()
                .map(|c| c.error("no stats socket after 10s"))
                .unwrap_or_else(|| Error::Harness("fastrouter missing".into())));
        }

        let app = &ctx.app.config;
        let envs = |vf: &Path| -> String {
            python::app_env(vf, app.startup_delay())
                .into_iter()
                .map(|(k, v)| format!("env = {k}={v}\n"))
                .collect()
        };
        for i in 1..=n {
            let name = format!("v{i:02}");
            let v = Vassal {
                ini: vdir.join(format!("{name}.ini")),
                socket: d.join(format!("vassal-{name}.sock")),
                fifo: d.join(format!("{name}.fifo")),
                version_file: d.join(format!("{name}.version")),
                log: d.join(format!("vassal-{name}.log")),
                name,
            };
            python::write_version(&v.version_file, version)?;
            let ini = format!(
                "[uwsgi]\nplugin = python3\nchdir = {py}\nmodule = app:application\n{env}\
                 uwsgi-socket = {sock}\nchmod-socket = 666\nmaster = true\nprocesses = 1\n\
                 need-app = true\nstrict = true\ndisable-logging = true\n\
                 master-fifo = {fifo}\nlogto = {log}\nunsubscribe-on-graceful-reload = true\n\
                 subscribe-to = {sub}:{KEY}\n",
                py = py.display(),
                env = envs(&v.version_file),
                sock = v.socket.display(),
                fifo = v.fifo.display(),
                log = v.log.display(),
                sub = self.subscription_sock().display(),
            );
            write_atomic(&v.ini, &ini)?;
            self.vassals.push(v);
        }
        let emp_args: Vec<String> = [
            "--emperor",
            &vdir.display().to_string(),
            "--emperor-stats",
            &d.join("emperor-stats.sock").display().to_string(),
            "--emperor-freq",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.emperor = Some(Child::spawn(
            "emperor",
            &uwsgi_bin,
            &emp_args,
            &[],
            &d,
            &d.join("emperor.log"),
        )?);

        // Every vassal subscribed and answering the first version.
        let deadline = tokio::time::Instant::now() + ctx.app.config.ready_timeout.0;
        let status_path = ctx.app.config.status_path.clone();
        loop {
            self.check_alive()?;
            let nodes = read_stats(&self.fr_stats()).await.unwrap_or_default();
            let nodes = subscribed_nodes(&nodes, KEY);
            let mut ready = 0;
            for v in &self.vassals {
                let sock = v.socket.display().to_string();
                if nodes.iter().any(|(n, dead)| *n == sock && !dead)
                    && serves(v, &status_path, version).await
                {
                    ready += 1;
                }
            }
            if ready == self.vassals.len() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let tail = self
                    .vassals
                    .iter()
                    .map(|v| format!("{}: {}", v.name, crate::sys::child::log_tail(&v.log, 3)))
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(Error::Harness(format!(
                    "only {ready} of {n} vassals subscribed and serving {version} after {:?}; \
                     subscribed: {nodes:?}\n{tail}",
                    ctx.app.config.ready_timeout.0
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        super::expose(ctx, &Endpoint::Unix(fr_sock)).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let n = self.vassals.len();
        let min = self.opts.minimum_active as usize;
        let parallel = n - min;
        let status_path = ctx.app.config.status_path.clone();
        let sub = self.subscription_sock();
        let mut phase = vec![Phase::Waiting; n];
        let mut logs: Vec<Option<LogFollower>> = (0..n).map(|_| None).collect();
        let t_all = ctx.steps.now_ms();
        let mut since: Vec<tokio::time::Instant> = vec![tokio::time::Instant::now(); n];
        loop {
            self.check_alive()?;
            // Start as many as the minimum allows. A vassal that timed out counts as down,
            // so with a minimum of 1 or more the last healthy one is never taken out.
            let down = phase
                .iter()
                .filter(|p| {
                    matches!(
                        p,
                        Phase::Leaving(..) | Phase::Reloading(..) | Phase::TimedOut
                    )
                })
                .count();
            let busy = phase
                .iter()
                .filter(|p| matches!(p, Phase::Leaving(..) | Phase::Reloading(..)))
                .count();
            if let Some(i) = phase.iter().position(|p| *p == Phase::Waiting) {
                let healthy = n - down;
                if busy < parallel && healthy > min {
                    let v = &self.vassals[i];
                    let t = ctx.steps.now_ms();
                    python::write_version(&v.version_file, version)?;
                    let mut log = LogFollower::from_end(&v.log);
                    // Block its own re-announcements, then drop it from the fastrouter.
                    uwsgi::send(&v.fifo, "S")?;
                    let blocked = tokio::time::Instant::now() + Duration::from_secs(5);
                    loop {
                        if log
                            .new_lines()
                            .iter()
                            .any(|l| l.contains("subscriptions blocked"))
                        {
                            break;
                        }
                        if tokio::time::Instant::now() >= blocked {
                            return Err(Error::Step(format!(
                                "{}: `S` on its FIFO did not block its subscriptions",
                                v.name
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    uwsgi::unsubscribe(&sub, KEY, &v.socket)?;
                    logs[i] = Some(log);
                    since[i] = tokio::time::Instant::now();
                    phase[i] = Phase::Leaving(t);
                    continue;
                }
            }
            if phase
                .iter()
                .all(|p| matches!(p, Phase::Done | Phase::TimedOut))
            {
                break;
            }
            if busy == 0 {
                // Nothing in progress and nothing may start: the minimum cannot be kept.
                break;
            }
            let stats = read_stats(&self.fr_stats()).await?;
            let nodes = subscribed_nodes(&stats, KEY);
            for i in 0..n {
                let v = self.vassals[i].clone();
                let sock = v.socket.display().to_string();
                let listed = nodes.iter().any(|(name, _)| *name == sock);
                let live = nodes.iter().any(|(name, dead)| *name == sock && !dead);
                match phase[i] {
                    Phase::Leaving(t0) if !listed => {
                        ctx.steps.record_serving(
                            "vassal unsubscribed",
                            t0,
                            format!("{} out of the fastrouter, nothing in flight", v.name),
                        );
                        let t = ctx.steps.now_ms();
                        touch_later(&v.ini)?;
                        since[i] = tokio::time::Instant::now();
                        phase[i] = Phase::Reloading(t0, t);
                    }
                    Phase::Reloading(_t0, t) if live && serves(&v, &status_path, version).await => {
                        let pid = logs[i]
                            .as_mut()
                            .map(|l| {
                                l.new_lines()
                                    .iter()
                                    .filter_map(|l| {
                                        let p = l.find("spawned uWSGI worker 1 (pid: ")?;
                                        l[p + 29..].split(',').next().map(str::to_string)
                                    })
                                    .next_back()
                            })
                            .unwrap_or_default();
                        ctx.steps.record_serving(
                            "vassal reloaded",
                            t,
                            format!(
                                "{} subscribed again, serving {version}{}",
                                v.name,
                                pid.map(|p| format!(" (worker pid {p})"))
                                    .unwrap_or_default()
                            ),
                        );
                        phase[i] = Phase::Done;
                    }
                    Phase::Leaving(t0) | Phase::Reloading(t0, _)
                        if since[i].elapsed() >= self.opts.step_timeout =>
                    {
                        ctx.steps.record_serving(
                            "vassal timed out",
                            t0,
                            format!(
                                "{} not back within {:?}; log tail:\n{}",
                                v.name,
                                self.opts.step_timeout,
                                crate::sys::child::log_tail(&v.log, 5)
                            ),
                        );
                        phase[i] = Phase::TimedOut;
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(POLL).await;
        }
        let failed: Vec<&str> = self
            .vassals
            .iter()
            .zip(&phase)
            .filter(|(_, p)| !matches!(p, Phase::Done))
            .map(|(v, p)| {
                if *p == Phase::TimedOut {
                    v.name.as_str()
                } else {
                    "(skipped)"
                }
            })
            .collect();
        if !failed.is_empty() {
            return Err(Error::Step(format!(
                "vassals not reloaded: {failed:?} (timed out, or skipped to keep {min} active)"
            )));
        }
        ctx.steps.record(
            "all vassals reloaded",
            t_all,
            format!("{n} vassals on {version}, at most {parallel} out of rotation at a time"),
        );
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        let grace = ctx.app.config.stop_timeout.0;
        // The emperor stops its vassals (they are in its process group: whatever is left is killed with it).
        if let Some(mut emp) = self.emperor.take() {
            emp.stop(libc::SIGINT, grace).await;
        }
        if let Some(mut fr) = self.fastrouter.take() {
            fr.stop(libc::SIGTERM, grace).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_packet_layout() {
        let p = crate::app::uwsgi::packet(224, 1, &[("key", "zdt")]);
        assert_eq!(p[0], 224);
        assert_eq!(u16::from_le_bytes([p[1], p[2]]) as usize, p.len() - 4);
        assert_eq!(p[3], 1);
        assert_eq!(&p[4..], b"\x03\x00key\x03\x00zdt");
    }

    #[test]
    fn finds_subscribed_nodes() {
        let stats: serde_json::Value = serde_json::from_str(
            r#"{"subscriptions":[{"key":"zdt","nodes":[{"name":"/r/a.sock","death_mark":0},{"name":"/r/b.sock","death_mark":1}]},{"key":"other","nodes":[{"name":"/r/c.sock","death_mark":0}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            subscribed_nodes(&stats, "zdt"),
            vec![
                ("/r/a.sock".to_string(), false),
                ("/r/b.sock".to_string(), true)
            ]
        );
    }
}
