//! uWSGI chain reload: one uWSGI master with N workers (`--lazy-apps`, so every
//! worker imports the app itself), in front of the load directly or behind nginx.
//! A reload writes the new version into the version file and triggers a chain
//! reload (`c` on the master FIFO, or touching the `--touch-chain-reload` file):
//! the master gracefully stops ONE worker, respawns it, waits until the new worker
//! has loaded the app, and only then moves on to the next. The other workers keep
//! accepting from the shared socket the whole time.
//!
//! The strategy follows the chain in the instance log ("chain next victim is
//! worker N" … "chain reloading complete"), records one step per worker, and
//! finally checks that every worker pid was replaced.
//!
//! How it goes wrong: with a single worker there is nobody to take over while the
//! one worker re-imports the app, so requests wait in the listen backlog (a gap in
//! service, or errors once the backlog overflows); without `--lazy-apps` the
//! workers are forked from a master that never re-imports, so the "reload"
//! completes but keeps serving the old code. A second trigger sent while a chain
//! is running is dropped by uWSGI, so a reload must wait for the chain to finish.

use crate::config::OptionDoc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::{Build, Ctx, Spec, Strategy};
use crate::app::{python, uwsgi, Instance, StopHow};
use crate::config::ReloadTable;
use crate::error::{Error, Result};
use crate::load::Target;
use crate::sys::procfs::proc_children;

/// `[reload]` options of uwsgi-chain. `step_timeout`: the longest one worker's
/// replacement (and the wait for the chain to start) may take (default 30s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// How the chain reload is triggered: `fifo` (`c` written to the master FIFO, the
    /// default) or `touch` (touching the `--touch-chain-reload` file).
    pub trigger: Spanned<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            trigger: Spanned::new(0..0, "fifo".into()),
        }
    }
}

impl Spec for UwsgiChain {
    const NAME: &'static str = "uwsgi-chain";
    const SUMMARY: &'static str = "one uWSGI master with N lazy-apps workers; a reload writes the new version and triggers a chain reload, which replaces the workers one at a time";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("trigger", "`\"fifo\"`", "how the chain reload is triggered: `fifo` (`c` on the master FIFO) or `touch` (the touch-chain-reload file)"),
    ];
    const APP_KINDS: &'static [&'static str] = &["uwsgi"];
    type Options = Options;

    fn validate(o: &Options, at: &ReloadTable) -> Result<()> {
        at.one_of(&o.trigger, "reload.trigger", &["fifo", "touch"])
    }

    fn build(o: &Options, b: &Build) -> Box<dyn Strategy> {
        let trigger = match o.trigger.get_ref().as_str() {
            "touch" => Trigger::Touch,
            _ => Trigger::Fifo,
        };
        Box::new(UwsgiChain::new(
            trigger,
            b.step_timeout.unwrap_or(Duration::from_secs(30)),
        ))
    }
}

/// How the chain reload is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `c` written to the master FIFO.
    Fifo,
    /// Touching the `--touch-chain-reload` file.
    Touch,
}

/// The uwsgi-chain strategy.
pub struct UwsgiChain {
    trigger: Trigger,
    step_timeout: Duration,
    active: Option<Instance>,
}

/// How often the log is polled.
const POLL: Duration = Duration::from_millis(25);

impl UwsgiChain {
    /// A chain reload triggered by `trigger`; `step_timeout` bounds each worker's
    /// replacement (and the wait for the chain to start).
    pub fn new(trigger: Trigger, step_timeout: Duration) -> UwsgiChain {
        UwsgiChain {
            trigger,
            step_timeout,
            active: None,
        }
    }
}

/// Reads the lines appended to a log since the last call (only whole lines).
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    offset: u64,
}

impl LogFollower {
    /// Follows `path` from its current end.
    pub fn from_end(path: &Path) -> LogFollower {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogFollower {
            path: path.to_path_buf(),
            offset,
        }
    }

    /// Follows `path` from its beginning.
    pub fn from_start(path: &Path) -> LogFollower {
        LogFollower {
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    /// The complete lines written since the last call.
    pub fn new_lines(&mut self) -> Vec<String> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        self.offset += last_nl as u64 + 1;
        String::from_utf8_lossy(&buf[..last_nl])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The number after `key` in `line` (e.g. `worker ` in "chain next victim is worker 2").
fn number_after(line: &str, key: &str) -> Option<u32> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Counts "WSGI app ... ready" lines (one per worker that loaded the app, or one for the master without lazy-apps).
fn is_app_ready(line: &str) -> bool {
    line.contains("WSGI app") && line.contains("ready in")
}

/// Waits until the instance's log says `want` apps have loaded.
async fn wait_apps_loaded(inst: &mut Instance, want: usize, timeout: Duration) -> Result<()> {
    let mut log = LogFollower::from_start(inst.child.log_path());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = 0;
    loop {
        seen += log.new_lines().iter().filter(|l| is_app_ready(l)).count();
        if seen >= want {
            return Ok(());
        }
        if let Some(status) = inst.child.try_exited() {
            return Err(inst
                .child
                .error(format!("exited ({status}) while loading the app")));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(inst.child.error(format!(
                "only {seen} of {want} workers loaded the app within {timeout:?}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[async_trait]
impl Strategy for UwsgiChain {
    fn name(&self) -> &'static str {
        "uwsgi-chain"
    }

    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target> {
        let opts = ctx.app.config.uwsgi()?;
        let want = if opts.lazy_apps {
            *opts.workers.get_ref() as usize
        } else {
            1
        };
        let endpoint = ctx.app.endpoint_for("uwsgi")?;
        let mut inst = ctx.app.start("uwsgi", endpoint.clone(), version)?;
        ctx.app.wait_ready(&mut inst).await?;
        let timeout = ctx.app.config.ready_timeout.0;
        let res = wait_apps_loaded(&mut inst, want, timeout).await;
        self.active = Some(inst);
        res?;
        super::expose(ctx, &endpoint).await
    }

    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()> {
        let Some(inst) = self.active.as_mut() else {
            return Err(Error::Step("no running uWSGI instance to reload".into()));
        };
        let (Some(ctl), Some(vf)) = (inst.uwsgi.clone(), inst.version_file.clone()) else {
            return Err(Error::Step(format!(
                "{} is not a uWSGI instance",
                inst.name
            )));
        };
        let master = inst.child.pid();
        let old_workers = proc_children(master);
        let mut log = LogFollower::from_end(inst.child.log_path());

        let t = ctx.steps.now_ms();
        python::write_version(&vf, version)?;
        match self.trigger {
            Trigger::Fifo => uwsgi::send(&ctl.fifo, "c")?,
            Trigger::Touch => {
                std::fs::write(&ctl.touch, version).map_err(|e| Error::io(&ctl.touch, e))?
            }
        }
        let how = match self.trigger {
            Trigger::Fifo => format!("`c` to {}", ctl.fifo.display()),
            Trigger::Touch => format!("touched {}", ctl.touch.display()),
        };
        // Follow the chain in the log: start, one victim after the other, complete.
        let mut started = false;
        let mut current: Option<(u32, f64, Option<u32>)> = None; // (worker, start, new pid)
        let mut deadline = tokio::time::Instant::now() + self.step_timeout;
        let mut replaced = 0;
        'follow: loop {
            for line in log.new_lines() {
                if line.contains("chain reload starting") {
                    started = true;
                    ctx.steps.record("chain reload triggered", t, how.clone());
                } else if line.contains("chain reload already running") {
                    return Err(Error::Step(format!(
                        "{}: a chain reload was already running; the trigger was dropped",
                        inst.name
                    )));
                } else if let Some(w) = number_after(&line, "chain next victim is worker ") {
                    if let Some((pw, ps, np)) = current.take() {
                        record_worker(ctx, pw, ps, np);
                        replaced += 1;
                    }
                    current = Some((w, ctx.steps.now_ms(), None));
                    deadline = tokio::time::Instant::now() + self.step_timeout;
                } else if let Some(p) = number_after(&line, "(new pid: ") {
                    if let Some(c) = current.as_mut() {
                        c.2 = Some(p);
                    }
                } else if line.contains("chain reloading complete") {
                    if let Some((pw, ps, np)) = current.take() {
                        record_worker(ctx, pw, ps, np);
                        replaced += 1;
                    }
                    break 'follow;
                }
            }
            if let Some(status) = inst.child.try_exited() {
                return Err(inst
                    .child
                    .error(format!("exited ({status}) during the chain reload")));
            }
            if tokio::time::Instant::now() >= deadline {
                let what = match (&current, started) {
                    (Some((w, _, _)), _) => format!("worker {w} was not replaced"),
                    (None, true) => "the chain did not move on".to_string(),
                    (None, false) => format!("the chain reload did not start ({how})"),
                };
                return Err(Error::Step(format!(
                    "{}: {what} within {:?}; log tail:\n{}",
                    inst.name,
                    self.step_timeout,
                    inst.child.log_tail(10)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        // Every worker must be a new process now.
        let now = proc_children(master);
        let survivors: Vec<i32> = old_workers
            .iter()
            .copied()
            .filter(|p| now.contains(p))
            .collect();
        if !survivors.is_empty() {
            return Err(Error::Step(format!(
                "{}: chain reload complete but workers {survivors:?} were not replaced",
                inst.name
            )));
        }
        ctx.steps.record(
            "chain reload complete",
            t,
            format!(
                "{replaced} worker(s) of {} replaced: pids {old_workers:?} -> {now:?}",
                inst.slot
            ),
        );
        inst.set_version(version);
        Ok(())
    }

    async fn shutdown(&mut self, ctx: &mut Ctx) {
        if let Some(mut inst) = self.active.take() {
            ctx.app.stop(&mut inst, StopHow::Drain).await;
        }
    }
}

fn record_worker(ctx: &mut Ctx, worker: u32, start: f64, new_pid: Option<u32>) {
    let detail = match new_pid {
        Some(p) => format!("worker {worker} stopped gracefully, respawned as pid {p}"),
        None => format!("worker {worker} stopped gracefully and respawned"),
    };
    ctx.steps.record_serving("worker replaced", start, detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chain_log_lines() {
        assert_eq!(
            number_after(
                "Sun Nov 22 00:04:05 2026 - chain next victim is worker 12",
                "chain next victim is worker "
            ),
            Some(12)
        );
        assert_eq!(
            number_after("Respawned uWSGI worker 1 (new pid: 26848)", "(new pid: "),
            Some(26848)
        );
        assert!(is_app_ready(
            "WSGI app 0 (mountpoint='') ready in 1 seconds on interpreter 0x7f pid: 26848 (default app)"
        ));
    }

    #[test]
    fn follower_returns_only_whole_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "old\n").unwrap();
        let mut f = LogFollower::from_end(&p);
        assert!(f.new_lines().is_empty());
        std::fs::write(&p, "old\nnew 1\nhalf").unwrap();
        assert_eq!(f.new_lines(), vec!["new 1".to_string()]);
        std::fs::write(&p, "old\nnew 1\nhalf line\n").unwrap();
        assert_eq!(f.new_lines(), vec!["half line".to_string()]);
    }
}
