//! The user's own stack (`[app] kind = "external"`): brought up by the user's start
//! command, or already running; probed at the user's target; taken down by the user's
//! stop command, then by killing the start command's process group.
//!
//! zdt-check knows nothing of what runs inside: it only hands the commands the run's
//! `ZDT_*` variables (see docs/guide/gate-your-own-deploy.md), waits for the probe to pass,
//! and makes sure nothing the commands started outlives the run.

use crate::config::OptionDoc;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::AppConfig;
use super::{AppEnv, AppKind};
use crate::config::{AppTable, Programs};
use crate::error::{Error, Result};
use crate::load::Target;
use crate::sys::child::{log_tail, Child};
use crate::sys::{program, readiness, tools};

/// The `external` app kind: the user's own stack.
pub struct External;

/// `[app]` options of the user's own stack (besides the common keys; `socket` and
/// `startup_delay` do not apply: zdt-check starts no instances of it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The command that brings up version 1 of the stack (argument list, no shell;
    /// absent: the stack is already running).
    pub start: Option<Spanned<Vec<String>>>,
    /// The command that takes the stack down at the end (before its process group
    /// is killed).
    pub stop: Option<Spanned<Vec<String>>>,
    /// Where the load connects (required): `http://127.0.0.1:PORT/`,
    /// `https://127.0.0.1:PORT/` (trusting what `load.ca_file`, `insecure_skip_verify`
    /// and `server_name` say) or `unix:/path.sock` (`${ZDT_RUN_DIR}` is replaced by the run directory, `${ZDT_PORT}`
    /// by a free port picked for the run).
    pub target: Option<Spanned<String>>,
    /// The status the readiness probe must answer (default 200).
    pub ready_status: Spanned<u16>,
    /// Extra environment for the start, stop and deploy commands (names may not
    /// start with `ZDT_`).
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    /// A venv handed to the commands as `$ZDT_VENV` (default: $ZDT_VENV, or a
    /// `.venv` near the binary or the current directory).
    pub venv: Option<PathBuf>,
    /// Allow a `target` off this machine (a host name or an address that is not
    /// loopback): without it, such a target is bad input.
    pub allow_remote: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            start: None,
            stop: None,
            target: None,
            ready_status: Spanned::new(0..0, 200),
            env: None,
            venv: None,
            allow_remote: false,
        }
    }
}

impl Options {
    /// Whether the target is `https://`.
    pub fn is_https(&self) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| t.get_ref().trim_start().starts_with("https://"))
    }
}

impl AppKind for External {
    const WEBSOCKETS: bool = true;
    const NAME: &'static str = "external";
    const SUMMARY: &'static str = "your own stack, brought up by `start` or already running, probed at `target` and taken down by `stop`: see [Gate your own deploy](guide/gate-your-own-deploy.md)";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("start", "—", "the command that brings up version 1 (argument list, no shell); absent: already running"),
        OptionDoc::new("stop", "—", "the command that takes the stack down at the end (before its process group is killed)"),
        OptionDoc::new("target", "required", "`http://127.0.0.1:PORT/` or `https://127.0.0.1:PORT/` (loopback, unless `allow_remote`; https trusts the system bundle, or what `load.ca_file`, `load.insecure_skip_verify` and `load.server_name` say, in the readiness probe too) or `unix:/path.sock`; `${ZDT_RUN_DIR}` is expanded, and `${ZDT_PORT}` (`${ZDT_PORT_2}` to `_4`) to a free loopback port picked for the run, also in the commands' environment"),
        OptionDoc::new("allow_remote", "`false`", "allow a `target` off this machine: a host name (resolved once per run; the report names the address) or an address that is not loopback. Only for hosts you own"),
        OptionDoc::new("ready_status", "`200`", "the status `status_path` must answer"),
        OptionDoc::new("env", "—", "extra environment for the start, stop and deploy commands (names may not start with `ZDT_`)"),
        OptionDoc::new("venv", "—", "a venv handed to the commands as `$ZDT_VENV` (default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
    ];
    const STARTS_INSTANCES: bool = false;
    type Options = Options;

    fn validate(o: &Options, _app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        let Some(target) = &o.target else {
            return Err(at.missing(
                "app.target",
                "an external app needs `target = \"http://127.0.0.1:PORT/\"` (or \"unix:/path.sock\"): where the load connects",
            ));
        };
        // The run's ports are picked at run time; any port stands in for them here.
        let placeholder = expand_target(target.get_ref(), Path::new("/run"), &[1; RUN_PORTS]);
        check_target(&placeholder, o.allow_remote)
            .map_err(|why| at.error(target.span(), "app.target", &why))?;
        argv_ok(at, &o.start, "app.start")?;
        argv_ok(at, &o.stop, "app.stop")?;
        if !(100..=599).contains(o.ready_status.get_ref()) {
            return Err(at.error(
                o.ready_status.span(),
                "app.ready_status",
                "must be an HTTP status, 100..=599",
            ));
        }
        if let Some(env) = &o.env {
            if let Some(k) = env.get_ref().keys().find(|k| {
                k.is_empty() || k.contains('=') || k.contains('\0') || k.starts_with("ZDT_")
            }) {
                return Err(at.error(
                    env.span(),
                    "app.env",
                    &format!("{k:?}: a variable name must be non-empty, without `=`, and not start with ZDT_ (those are set by zdt-check)"),
                ));
            }
        }
        Ok(())
    }

    fn venv(o: &Options) -> Option<&Path> {
        o.venv.as_deref()
    }

    fn programs(o: &Options) -> Programs<'_> {
        [("app.start", &o.start), ("app.stop", &o.stop)]
            .into_iter()
            .filter_map(|(key, c)| c.as_ref().map(|c| (key, c)))
            .collect()
    }
}

impl AppConfig {
    /// The external stack's options (an error if the app is of another kind).
    pub fn external(&self) -> Result<&Options> {
        self.kind_options::<External>()
    }
}

/// Fails unless a command is an argument list naming a program.
fn argv_ok(at: &AppTable, v: &Option<Spanned<Vec<String>>>, field: &str) -> Result<()> {
    match v {
        Some(c) if c.get_ref().first().is_none_or(|p| p.is_empty()) => Err(at.error(
            c.span(),
            field,
            "must name a program, as an argument list: [\"./start.sh\", \"--env\", \"ci\"]",
        )),
        _ => Ok(()),
    }
}

/// Free loopback ports picked for each run: `ZDT_PORT`, `ZDT_PORT_2`, ... in the
/// commands' environment and in `target`, so a TCP stack needs no fixed port and two
/// runs of one scenario at once do not collide.
pub const RUN_PORTS: usize = 4;

/// The name of run port `i` (0-based): `ZDT_PORT`, then `ZDT_PORT_2`, ...
pub fn port_var(i: usize) -> String {
    match i {
        0 => "ZDT_PORT".into(),
        n => format!("ZDT_PORT_{}", n + 1),
    }
}

/// Picks [`RUN_PORTS`] distinct loopback ports nobody listens on now (all bound at
/// once, then released for the stack to bind).
pub fn pick_ports() -> Result<Vec<u16>> {
    let held: Vec<std::net::TcpListener> = (0..RUN_PORTS)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::Harness(format!("cannot find free loopback ports: {e}")))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::Harness(format!("cannot find free loopback ports: {e}")))
}

/// Expands `${ZDT_RUN_DIR}` (or `$ZDT_RUN_DIR`) and the run ports (`${ZDT_PORT}`,
/// `${ZDT_PORT_2}`, ...) in an external app's target.
pub fn expand_target(s: &str, run_dir: &Path, ports: &[u16]) -> String {
    let dir = run_dir.display().to_string();
    let mut out = s
        .replace("${ZDT_RUN_DIR}", &dir)
        .replace("$ZDT_RUN_DIR", &dir);
    // The longest names first: `$ZDT_PORT` is a prefix of `$ZDT_PORT_2`.
    for (i, port) in ports.iter().enumerate().rev() {
        let var = port_var(i);
        out = out
            .replace(&format!("${{{var}}}"), &port.to_string())
            .replace(&format!("${var}"), &port.to_string());
    }
    out
}

/// Checks an external app's target: `http://` or `https://` on a loopback IP (any host with
/// `allow_remote`, resolved later, once per run), or `unix:`, with no path (the request
/// path is `load.path`).
pub fn check_target(raw: &str, allow_remote: bool) -> std::result::Result<(), String> {
    if raw.trim().is_empty() {
        return Err(
            "is empty; write e.g. \"http://127.0.0.1:8000/\" or \"unix:${ZDT_RUN_DIR}/app.sock\""
                .into(),
        );
    }
    if let Some(rest) = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
    {
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if !path.is_empty() {
            return Err(format!(
                "{raw:?} has a path: give only scheme, address and port here, and the request path in `load.path`"
            ));
        }
        if let Some(port) = crate::load::target::port_of(authority) {
            crate::load::target::check_port(port)?;
        }
        if allow_remote {
            let host = crate::load::target::port_of(authority)
                .and_then(|port| authority.strip_suffix(port)?.strip_suffix(':'))
                .unwrap_or(authority);
            if host.is_empty() {
                return Err("has no host (e.g. \"http://staging.example:8000/\")".into());
            }
            return Ok(());
        }
        let addr: std::net::SocketAddr = authority.parse().map_err(|_| {
            format!("{authority:?} is not an IP address with a port (e.g. \"http://127.0.0.1:8000/\"; host names are resolved only for a remote target: `app.allow_remote = true`)")
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{} is not a loopback address: zdt-check sends load off this machine only with `app.allow_remote = true` (and only to hosts you own)",
                addr.ip()
            ));
        }
        return Ok(());
    }
    crate::load::Target::parse(raw, None).map(|_| ())
}

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
/// directory; a bare name is looked up on PATH (`sys::program::resolve`).
pub fn resolve_program(argv0: &str, cwd: &Path) -> PathBuf {
    program::resolve(argv0, cwd)
}

/// Starts `argv` as `name`, like [`Child::spawn`]; a program that cannot be started
/// is explained with how its path was resolved (`sys::program::explain_spawn_error`).
pub fn spawn_program(
    name: &str,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    log: &Path,
) -> Result<Child> {
    Child::spawn(
        name,
        &resolve_program(&argv[0], cwd),
        &argv[1..],
        env,
        cwd,
        log,
    )
    .map_err(|e| {
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| std::ffi::OsStr::new(v));
        program::explain_spawn_error(e, &argv[0], cwd, path)
    })
}

/// The variables every command of an external stack gets, plus the scenario's `[app] env`.
pub fn base_env(env: &AppEnv, cwd: &Path, target: &str) -> Vec<(String, String)> {
    let c = &env.config;
    let extra = c.external().ok().and_then(|o| o.env.as_ref());
    let d = |p: &Path| p.display().to_string();
    let mut out: Vec<(String, String)> = vec![
        ("ZDT_RUN_DIR".into(), d(&env.run_dir)),
        ("ZDT_BIN".into(), d(&env.exe)),
        ("ZDT_TARGET".into(), target.to_string()),
        ("ZDT_SCENARIO_DIR".into(), d(cwd)),
        ("ZDT_STATUS_PATH".into(), c.status_path.clone()),
        (
            "ZDT_VENV".into(),
            tools::venv(c.venv()).map(|v| d(&v)).unwrap_or_default(),
        ),
    ];
    out.extend(
        env.ports
            .iter()
            .enumerate()
            .map(|(i, p)| (port_var(i), p.to_string())),
    );
    if let Some(extra) = extra {
        out.extend(extra.get_ref().iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The target of `opts`, with the run directory and ports expanded.
fn target_of(opts: &Options, run_dir: &Path, ports: &[u16]) -> Result<Target> {
    let raw = opts
        .target
        .as_ref()
        .map(|t| t.get_ref().as_str())
        .unwrap_or_default();
    Target::parse(&expand_target(raw, run_dir, ports), None).map_err(Error::Usage)
}

/// What the load trusts on an https target (`load.ca_file`, `load.insecure_skip_verify`,
/// `load.server_name`): the readiness probe of an external https stack trusts the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetTrust {
    /// PEM file of the CAs trusted instead of the default (resolved already).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
    /// The name the certificate must be valid for, instead of the default.
    pub server_name: Option<String>,
}

impl TargetTrust {
    /// Whether any key is given.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.insecure_skip_verify || self.server_name.is_some()
    }

    /// These settings over an https target's defaults.
    pub fn apply(&self, t: &mut crate::load::tls::TlsSettings) {
        if let Some(ca) = &self.ca_file {
            t.ca_file = Some(ca.clone());
        }
        if self.insecure_skip_verify {
            t.insecure_skip_verify = true;
            t.ca_file = None;
        }
        if let Some(n) = &self.server_name {
            t.server_name = n.clone();
        }
    }
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
    let mut child = spawn_program(name, argv, env, cwd, log)?;
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
        let o = c.external()?;
        let mut target = target_of(o, &env.run_dir, &env.ports)?;
        if let Some(t) = target.tls.as_mut() {
            env.target_trust.apply(t);
        }
        let mut stack = ExternalStack {
            target,
            start: None,
            cwd: cwd.to_path_buf(),
        };
        if let Some(argv) = &o.start {
            let argv = argv.get_ref();
            let mut vars = base_env(env, cwd, &stack.target.to_string());
            vars.push(("ZDT_VERSION".into(), first_version.to_string()));
            stack.start = Some(spawn_program(
                "start command",
                argv,
                &vars,
                cwd,
                &env.path("zdt-start.log"),
            )?);
        }
        stack.wait_ready(c, *o.ready_status.get_ref()).await?;
        Ok(stack)
    }

    async fn wait_ready(&mut self, c: &AppConfig, want: u16) -> Result<()> {
        let timeout = c.ready_timeout.0;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last;
        let tls = match &self.target.tls {
            Some(t) => Some(crate::load::tls::TlsClient::new(t).map_err(Error::Usage)?),
            None => None,
        };
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
            match readiness::probe_once(&self.target.endpoint, tls.as_ref(), &c.status_path).await {
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

    /// Runs the stop command, if any, within `stop_timeout`: first of all, while every
    /// process the start and deploy commands left is still running (a stop script that
    /// drains or deregisters the live instance finds it). Returns what happened.
    pub async fn run_stop_command(&self, env: &AppEnv) -> Option<String> {
        let c = &env.config;
        let argv = c.external().ok().and_then(|o| o.stop.as_ref())?;
        let vars = base_env(env, &self.cwd, &self.target.to_string());
        Some(
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
                Ok((_, what)) => what,
                Err(e) => e.to_string(),
            },
        )
    }

    /// Stops the start command's process group (SIGTERM, `stop_timeout`, SIGKILL), after
    /// the stop command ran. Returns what happened.
    pub async fn stop_start_group(&mut self, env: &AppEnv) -> Option<String> {
        let c = &env.config;
        let mut child = self.start.take()?;
        // The command may have exited long ago, leaving the stack in its group.
        let killed = child.stop_group(c.stop_timeout.0).await;
        (killed > 0).then(|| {
            format!(
                "{killed} processes of the start command's group still running {} after SIGTERM; killed",
                c.stop_timeout
            )
        })
    }
}
