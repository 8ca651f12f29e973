//! The user's own stack (`[app] kind = "external"`): brought up by the user's start
//! command, or already running; probed at the user's target; taken down by the user's
//! stop command, then by killing the start command's process group.
//!
//! zdt-check knows nothing of what runs inside: it only hands the commands the run's
//! `ZDT_*` variables (see README, "Gate your own deploy"), waits for the probe to pass,
//! and makes sure nothing the commands started outlives the run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{log_tail, Child};
use super::{readiness, tools, AppEnv};
use crate::error::{Error, Result};
use crate::load::Target;
use crate::scenario::{expand_run_dir, AppConfig};

/// A running external stack.
#[derive(Debug)]
pub struct ExternalStack {
    /// Where the load connects (`${ZDT_RUN_DIR}` expanded).
    pub target: Target,
    /// The start command, while it runs (or until the end of the run, to kill its group).
    start: Option<Child>,
    /// The scenario's directory: the commands' working directory.
    cwd: PathBuf,
}

/// A program named in a scenario: a path with a `/` is relative to the scenario's
/// directory; a bare name is looked up on PATH.
pub fn resolve_program(argv0: &str, cwd: &Path) -> PathBuf {
    let p = Path::new(argv0);
    if p.is_absolute() || !argv0.contains('/') {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// The variables every command of an external stack gets, plus the scenario's `[app] env`.
pub fn base_env(env: &AppEnv, cwd: &Path, target: &str) -> Vec<(String, String)> {
    let c = &env.config;
    let d = |p: &Path| p.display().to_string();
    let mut out: Vec<(String, String)> = vec![
        ("ZDT_RUN_DIR".into(), d(&env.run_dir)),
        ("ZDT_BIN".into(), d(&env.exe)),
        ("ZDT_TARGET".into(), target.to_string()),
        ("ZDT_SCENARIO_DIR".into(), d(cwd)),
        ("ZDT_STATUS_PATH".into(), c.status_path.clone()),
        (
            "ZDT_VENV".into(),
            tools::venv(c.venv.as_deref())
                .map(|v| d(&v))
                .unwrap_or_default(),
        ),
    ];
    if let Some(extra) = &c.env {
        out.extend(extra.get_ref().iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The target of `config`, with `${ZDT_RUN_DIR}` expanded.
fn target_of(config: &AppConfig, run_dir: &Path) -> Result<Target> {
    let raw = config
        .target
        .as_ref()
        .map(|t| t.get_ref().as_str())
        .unwrap_or_default();
    Target::parse(&expand_run_dir(raw, run_dir), None).map_err(Error::Usage)
}

/// Runs `argv` to completion (at most `timeout`, then its group is killed); returns
/// whether it exited 0 and a description with its output tail.
pub async fn run_to_end(
    name: &str,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<(bool, String)> {
    let mut child = Child::spawn(
        name,
        &resolve_program(&argv[0], cwd),
        &argv[1..],
        env,
        cwd,
        log,
    )?;
    let status = child.wait_exit(timeout).await;
    // Whatever it left in its group goes too.
    child.kill().await;
    let tail = log_tail(log, 20);
    Ok(match status {
        Some(s) if s.success() => (true, format!("{name}: exit 0")),
        Some(s) => (
            false,
            format!("{name} failed ({s}); its last output:\n{tail}"),
        ),
        None => (
            false,
            format!("{name} did not finish within {timeout:?}; killed. Its last output:\n{tail}"),
        ),
    })
}

impl ExternalStack {
    /// Runs the start command (if any) and waits until the target answers the probe
    /// with `ready_status`. A start command may stay in the foreground or exit 0 once
    /// the stack is up; one that exits non-zero, or a stack not ready within
    /// `ready_timeout`, is an error with the tail of the command's output.
    pub async fn start(env: &AppEnv, cwd: &Path, first_version: &str) -> Result<ExternalStack> {
        let c = &env.config;
        let target = target_of(c, &env.run_dir)?;
        let mut stack = ExternalStack {
            target,
            start: None,
            cwd: cwd.to_path_buf(),
        };
        if let Some(argv) = &c.start {
            let argv = argv.get_ref();
            let mut vars = base_env(env, cwd, &stack.target.to_string());
            vars.push(("ZDT_VERSION".into(), first_version.to_string()));
            stack.start = Some(Child::spawn(
                "start command",
                &resolve_program(&argv[0], cwd),
                &argv[1..],
                &vars,
                cwd,
                &env.path("zdt-start.log"),
            )?);
        }
        stack.wait_ready(c).await?;
        Ok(stack)
    }

    async fn wait_ready(&mut self, c: &AppConfig) -> Result<()> {
        let want = *c.ready_status.get_ref();
        let timeout = c.ready_timeout.0;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(child) = self.start.as_mut() {
                if let Some(status) = child.try_exited() {
                    if !status.success() {
                        return Err(
                            child.error(format!("exited ({status}) before the stack was ready"))
                        );
                    }
                }
            }
            match readiness::probe_once(&self.target.endpoint, &c.status_path).await {
                Ok((status, _)) if status == want => return Ok(()),
                Ok((status, _)) => last = format!("status {status}, expected {want}"),
                Err(why) => last = why,
            }
            if tokio::time::Instant::now() >= deadline {
                let why = format!(
                    "{} did not answer GET {} with {want} within {} (last probe: {last})",
                    self.target, c.status_path, c.ready_timeout
                );
                return Err(match &self.start {
                    Some(child) => child.error(why),
                    None => Error::Harness(format!(
                        "the stack (no start command: it should be running already): {why}"
                    )),
                });
            }
            tokio::time::sleep(readiness::PROBE_EVERY).await;
        }
    }

    /// Runs the stop command (if any, within `stop_timeout`), then stops the start
    /// command's process group (SIGTERM, `stop_timeout`, SIGKILL). Returns what happened.
    pub async fn stop(&mut self, env: &AppEnv) -> Vec<String> {
        let c = &env.config;
        let mut notes = Vec::new();
        if let Some(argv) = &c.stop {
            let vars = base_env(env, &self.cwd, &self.target.to_string());
            match run_to_end(
                "stop command",
                argv.get_ref(),
                &vars,
                &self.cwd,
                &env.path("zdt-stop.log"),
                c.stop_timeout.0,
            )
            .await
            {
                Ok((_, what)) => notes.push(what),
                Err(e) => notes.push(e.to_string()),
            }
        }
        if let Some(mut child) = self.start.take() {
            // The command may have exited long ago, leaving the stack in its group.
            let killed = child.stop_group(c.stop_timeout.0).await;
            if killed > 0 {
                notes.push(format!(
                    "{killed} processes of the start command's group still running {} after SIGTERM; killed",
                    c.stop_timeout
                ));
            }
        }
        notes
    }
}
