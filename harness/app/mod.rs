//! App topologies: starting, probing and stopping app instances.
//!
//! An [`AppEnv`] knows the scenario's app settings and the private run directory;
//! strategies ask it for instances listening on a given endpoint with a given
//! version, and decide themselves how instances are switched and stopped.
//!
//! Each app kind file also owns its `[app]` options (a serde struct with their
//! defaults, checks and docs, see [`AppKind`]); [`KINDS`] has one line per kind and is
//! all the scenario module knows about them.

pub mod builtin;
pub mod config;
pub mod external;
pub mod flup;
pub mod granian;
pub mod gunicorn;
pub mod hypercorn;
pub mod python;
pub mod server_version;
pub mod uvicorn;
pub mod uwsgi;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::load::Endpoint;
pub use config::AppConfig;

use crate::config::{keys_of, AppTable, Common, OptionDoc, Programs, Without};
use crate::front::nginx;
use crate::sys::child::Child;
use crate::sys::readiness;
use crate::sys::spawn_netns;
use crate::sys::tools::Tool;

/// What an app kind brings to the [`KINDS`] registry: its name, its own `[app]`
/// options (with their defaults, checks and docs, in its file) and what the rest of
/// the harness may ask of them.
pub trait AppKind: 'static {
    /// The name in `app.kind`.
    const NAME: &'static str;
    /// One line: what it runs (the reference and `explain` show it).
    const SUMMARY: &'static str;
    /// The docs of its own `[app]` keys: exactly the keys of [`AppKind::Options`]
    /// (a unit test checks it).
    const OPTIONS: &'static [OptionDoc];
    /// Whether zdt-check starts its instances (false: the user's own stack); only
    /// then do the common keys `socket` and `startup_delay` apply.
    const STARTS_INSTANCES: bool = true;
    /// The error to show when the scenario has no `[front]` and the kind needs one.
    const NEEDS_FRONT: Option<&'static str> = None;
    /// What must be installed to run it.
    const TOOLS: &'static [Tool] = &[];
    /// Whether its app serves websockets (`[websockets]` needs it): an echo that
    /// greets with `version=<V>`.
    const WEBSOCKETS: bool = false;
    /// Its own `[app]` keys: a serde struct with `deny_unknown_fields` and `default`
    /// (the common keys, see [`common_keys`], are taken out before it sees the table),
    /// `toml::Spanned` where an error must point at a value.
    type Options: DeserializeOwned + Default + Clone + std::fmt::Debug + Send + Sync + 'static;
    /// Checks what serde cannot (allowed values, combinations with the common keys in
    /// `app`), with errors located by `at`.
    fn validate(_opts: &Self::Options, _app: &AppConfig<()>, _at: &AppTable) -> Result<()> {
        Ok(())
    }
    /// The venv its programs come from, if its options name one.
    fn venv(_opts: &Self::Options) -> Option<&Path> {
        None
    }
    /// The programs its options name (`zdt-check check` resolves them).
    fn programs(_opts: &Self::Options) -> Programs<'_> {
        Vec::new()
    }
    /// Sets the worker count (a `[sweep]` point); false if the kind has no `workers`.
    fn set_workers(_opts: &mut Self::Options, _n: u32) -> bool {
        false
    }
    /// Whether its app reads its version from a file at import (a Python app: the
    /// file is written before the instance starts, see [`Launch::version_file`]).
    const VERSION_FILE: bool = true;
    /// How a front server passes requests to one of its instances at `endpoint`.
    fn upstream(endpoint: Endpoint) -> nginx::Upstream {
        nginx::Upstream::Http(endpoint)
    }
    /// Starts one instance (without waiting for it to be ready); the default: zdt-check
    /// does not start instances of this kind.
    fn spawn(_opts: &Self::Options, _env: &AppEnv, _l: &Launch) -> Result<Spawned> {
        Err(Error::Harness(format!(
            "app kind {:?} has no instances zdt-check starts",
            Self::NAME
        )))
    }
}

/// What one instance is started with.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The slot (names its socket, log, pidfile).
    pub slot: &'a str,
    /// Its name for reports and errors.
    pub name: &'a str,
    /// Where it listens.
    pub endpoint: &'a Endpoint,
    /// The version it serves.
    pub version: &'a str,
    /// Kinds with [`AppKind::VERSION_FILE`]: the file holding `version` (else empty).
    pub version_file: &'a Path,
    /// Where its output goes.
    pub log: &'a Path,
}

/// A started instance's process and the control channels its kind has.
#[derive(Debug)]
pub struct Spawned {
    /// Its process group.
    pub child: Child,
    /// gunicorn, uvicorn, granian, hypercorn: the workers' readiness datagrams.
    pub ready_rx: Option<tokio::net::UnixDatagram>,
    /// uWSGI: the master FIFO and touch-reload file.
    pub uwsgi: Option<uwsgi::Control>,
}

impl Spawned {
    /// A process whose workers report on `ready` (the Python servers' kinds).
    pub fn with_ready((child, ready): (Child, tokio::net::UnixDatagram)) -> Self {
        Spawned {
            child,
            ready_rx: Some(ready),
            uwsgi: None,
        }
    }
}

impl From<Child> for Spawned {
    fn from(child: Child) -> Self {
        Spawned {
            child,
            ready_rx: None,
            uwsgi: None,
        }
    }
}

/// An app kind's parsed and checked options, kept on the scenario (shared by the
/// runs of a sweep or a `compare --repeat`). Its kind's file reads them back typed,
/// with [`AppConfig::kind_options`].
pub trait AppOptions: std::fmt::Debug + Send + Sync {
    /// The app kind these options configure.
    fn kind(&self) -> &'static str;
    /// The options themselves, to downcast to the kind's `Options`.
    fn as_any(&self) -> &dyn Any;
    /// The venv the kind's programs come from, if the options name one.
    fn venv(&self) -> Option<&Path>;
    /// The same options with `workers = n`; `None` if the kind has no `workers`.
    fn with_workers(&self, n: u32) -> Option<Arc<dyn AppOptions>>;
    /// See [`AppKind::programs`].
    fn programs(&self) -> Programs<'_>;
    /// See [`AppKind::VERSION_FILE`].
    fn version_file(&self) -> bool;
    /// See [`AppKind::upstream`].
    fn upstream(&self, endpoint: Endpoint) -> nginx::Upstream;
    /// See [`AppKind::spawn`].
    fn spawn(&self, env: &AppEnv, l: &Launch) -> Result<Spawned>;
}

struct Parsed<K: AppKind>(K::Options);

impl<K: AppKind> std::fmt::Debug for Parsed<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: AppKind> AppOptions for Parsed<K> {
    fn kind(&self) -> &'static str {
        K::NAME
    }
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
    fn venv(&self) -> Option<&Path> {
        K::venv(&self.0)
    }
    fn with_workers(&self, n: u32) -> Option<Arc<dyn AppOptions>> {
        let mut o = self.0.clone();
        K::set_workers(&mut o, n).then(|| Arc::new(Parsed::<K>(o)) as Arc<dyn AppOptions>)
    }
    fn programs(&self) -> Programs<'_> {
        K::programs(&self.0)
    }
    fn version_file(&self) -> bool {
        K::VERSION_FILE
    }
    fn upstream(&self, endpoint: Endpoint) -> nginx::Upstream {
        K::upstream(endpoint)
    }
    fn spawn(&self, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        K::spawn(&self.0, env, l)
    }
}

impl AppConfig {
    /// The options of app kind `K`: an error if the app is of another kind (a
    /// strategy that lists `K` in its `APP_KINDS` always gets them).
    pub fn kind_options<K: AppKind>(&self) -> Result<&K::Options> {
        self.options
            .as_any()
            .downcast_ref::<K::Options>()
            .ok_or_else(|| {
                Error::Harness(format!(
                    "app kind {:?} has no {} options",
                    self.options.kind(),
                    K::NAME
                ))
            })
    }

    /// The venv the app's programs come from, if the scenario names one (`app.venv`).
    pub fn venv(&self) -> Option<&Path> {
        self.options.venv()
    }
}

/// One registered app kind.
pub struct AppKindEntry {
    /// The name in `app.kind`.
    pub name: &'static str,
    /// Whether zdt-check starts its instances (`socket`, `startup_delay` apply).
    pub starts_instances: bool,
    /// The error to show when it needs a `[front]` and the scenario has none.
    pub needs_front: Option<&'static str>,
    /// What must be installed to run it (`doctor` checks these).
    pub tools: &'static [Tool],
    /// Whether its app serves websockets.
    pub websockets: bool,
    /// One line: what it runs.
    pub summary: &'static str,
    /// The docs of its own `[app]` keys (exactly [`AppKindEntry::keys`]).
    pub options: &'static [OptionDoc],
    keys: fn() -> &'static [&'static str],
    parse: ParseFn,
}

/// How a registry line parses its kind's options.
type ParseFn = fn(&AppConfig<()>, &AppTable) -> Result<Arc<dyn AppOptions>>;

impl AppKindEntry {
    /// Its own `[app]` keys (besides the common ones).
    pub fn keys(&self) -> &'static [&'static str] {
        (self.keys)()
    }

    /// Parses and checks its options from the scenario's `[app]` table (`app` is what
    /// the first pass read: the common keys).
    pub fn parse_options(
        &self,
        app: &AppConfig<()>,
        table: &AppTable,
    ) -> Result<Arc<dyn AppOptions>> {
        (self.parse)(app, table)
    }
}

/// The registry line for app kind `K`.
const fn entry<K: AppKind>() -> AppKindEntry {
    AppKindEntry {
        name: K::NAME,
        starts_instances: K::STARTS_INSTANCES,
        needs_front: K::NEEDS_FRONT,
        tools: K::TOOLS,
        websockets: K::WEBSOCKETS,
        summary: K::SUMMARY,
        options: K::OPTIONS,
        keys: keys_of::<K::Options>,
        parse: parse_options::<K>,
    }
}

/// Every app kind, one line each, in the order messages and docs list them.
pub const KINDS: &[AppKindEntry] = &[
    entry::<builtin::Builtin>(),
    entry::<gunicorn::Gunicorn>(),
    entry::<uwsgi::Uwsgi>(),
    entry::<flup::Flup>(),
    entry::<uvicorn::Uvicorn>(),
    entry::<granian::Granian>(),
    entry::<hypercorn::Hypercorn>(),
    entry::<external::External>(),
];

/// The registered app kind called `name`.
pub fn find_kind(name: &str) -> Option<&'static AppKindEntry> {
    KINDS.iter().find(|e| e.name == name)
}

/// The keys every app kind accepts (read by the scenario itself; `socket` and
/// `startup_delay` only where zdt-check starts the instances).
pub fn common_keys() -> &'static [&'static str] {
    keys_of::<AppConfig<()>>()
}

/// The common keys that apply only to a kind whose instances zdt-check starts.
pub const INSTANCE_KEYS: &[&str] = &["socket", "startup_delay"];

/// The common `[app]` keys, skipped by a kind's options pass.
struct AppCommon;

impl Common for AppCommon {
    fn keys() -> &'static [&'static str] {
        common_keys()
    }
}

/// Second pass over the scenario text: only `app`, as `K`'s options.
fn parse_options<K: AppKind>(app: &AppConfig<()>, table: &AppTable) -> Result<Arc<dyn AppOptions>> {
    #[derive(Deserialize)]
    struct Doc<O> {
        #[serde(default)]
        app: Option<Without<AppCommon, O>>,
    }
    let common: Vec<&str> = common_keys()
        .iter()
        .copied()
        .filter(|k| K::STARTS_INSTANCES || !INSTANCE_KEYS.contains(k))
        .collect();
    let doc: Doc<K::Options> = toml::from_str(table.src()).map_err(|e| {
        table.unknown_key(&e, "app kind", &common, keys_of::<K::Options>(), |key| {
            KINDS
                .iter()
                .filter(|x| x.keys().contains(&key))
                .map(|x| x.name)
                .collect()
        })
    })?;
    let opts = doc.app.map(|a| a.0).unwrap_or_default();
    K::validate(&opts, app, table)?;
    Ok(Arc::new(Parsed::<K>(opts)))
}

/// Checks `workers`: 1 to 64 processes (gunicorn, uWSGI).
pub fn check_workers(workers: &toml::Spanned<u32>, at: &AppTable) -> Result<()> {
    if (1..=64).contains(workers.get_ref()) {
        Ok(())
    } else {
        Err(at.error(workers.span(), "app.workers", "must be between 1 and 64"))
    }
}

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
    /// Free loopback ports picked for this run (`ZDT_PORT`, `ZDT_PORT_2`, ...: see
    /// [`external::RUN_PORTS`]).
    pub ports: Vec<u16>,
    /// What the load trusts on an https target (an external stack's probe trusts the same).
    pub target_trust: external::TargetTrust,
}

impl AppEnv {
    /// What a front server needs of the run: its directory and the app's probe.
    pub fn site(&self) -> crate::front::Site<'_> {
        crate::front::Site {
            run_dir: &self.run_dir,
            status_path: &self.config.status_path,
            ready_timeout: self.config.ready_timeout.0,
        }
    }

    /// `name` inside the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    /// Starts an instance serving `version` on `endpoint` (does not wait for it to be ready).
    pub fn start(&self, slot: &str, endpoint: Endpoint, version: &str) -> Result<Instance> {
        self.start_in(slot, endpoint, version, None)
    }

    /// [`AppEnv::start`] in the network namespace `netns` (a test host's, see
    /// [`netns::TestHost::netns_path`]; `None`: the harness's own).
    pub fn start_in(
        &self,
        slot: &str,
        endpoint: Endpoint,
        version: &str,
        netns: Option<&Path>,
    ) -> Result<Instance> {
        let name = format!("{slot} {version}");
        let log = self.path(&format!("{slot}.log"));
        let kind = &self.config.options;
        let version_file = kind
            .version_file()
            .then(|| self.path(&format!("{slot}.version")));
        if let Some(f) = &version_file {
            python::write_version(f, version)?;
        }
        let Spawned {
            child,
            ready_rx,
            uwsgi,
        } = spawn_netns::in_netns(netns, || {
            kind.spawn(
                self,
                &Launch {
                    slot,
                    name: &name,
                    endpoint: &endpoint,
                    version,
                    version_file: version_file.as_deref().unwrap_or(Path::new("")),
                    log: &log,
                },
            )
        })?;
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
        self.config.options.upstream(endpoint)
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
            None,
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
        Ok(Endpoint::Tcp(crate::sys::port::free_loopback()?))
    }

    /// The endpoint for slot `slot`: a unix socket in the run dir, or a fresh TCP port.
    pub fn endpoint_for(&self, slot: &str) -> Result<Endpoint> {
        match self.config.socket() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{expand_sweep, parse, Loaded, Scenario};

    fn parse_str(src: &str) -> Result<Scenario> {
        parse(Path::new("s.toml"), src)
    }

    /// A scenario for kind `e` with a strategy that works with it.
    fn minimal(e: &AppKindEntry) -> String {
        let strategy = crate::strategy::REGISTRY
            .iter()
            .find(|s| s.app_kinds.contains(&e.name))
            .expect("every kind has a strategy");
        let front = if e.needs_front.is_some() || strategy.needs_front.is_some() {
            "[front]\n"
        } else {
            ""
        };
        let extra = match e.name {
            "external" => "target = \"http://127.0.0.1:9/\"\n",
            _ => "",
        };
        let command = match strategy.name {
            "command" => "command = [\"true\"]\n",
            _ => "",
        };
        format!(
            "[app]\nkind = \"{}\"\nready_timeout = \"3s\"\n{extra}{front}[reload]\nstrategy = \"{}\"\n{command}",
            e.name, strategy.name
        )
    }

    #[test]
    fn every_kind_parses_with_its_defaults() {
        let mut names: Vec<&str> = KINDS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "names are unique");
        for e in KINDS {
            for k in e.keys() {
                assert!(!common_keys().contains(k), "{}: {k} is common", e.name);
            }
            let s = parse_str(&minimal(e)).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(s.app.options.kind(), e.name);
            assert_eq!(s.app.ready_timeout.0.as_secs(), 3);
        }
    }

    #[test]
    fn keys_come_from_the_options_types() {
        assert_eq!(
            common_keys(),
            [
                "kind",
                "socket",
                "startup_delay",
                "versions",
                "ready_timeout",
                "status_path",
                "stop_timeout"
            ]
        );
        assert_eq!(
            find_kind("builtin").map(AppKindEntry::keys),
            Some(
                &[
                    "on_term",
                    "bind_early",
                    "reuse_port",
                    "close_listener_after",
                    "keep_alive_timeout",
                    "idle_close"
                ][..]
            )
        );
        assert!(find_kind("teleport").is_none());
    }

    #[test]
    fn options_are_typed_and_kept() {
        let s = parse_str("[app]\nkind = \"gunicorn\"\nworkers = 5\nworker_class = \"gthread\"\nvenv = \"/v\"\n[reload]\nstrategy = \"gunicorn-hup\"\n").unwrap();
        let g = s.app.gunicorn().unwrap();
        assert_eq!(*g.workers.get_ref(), 5);
        assert_eq!(g.worker_class.get_ref(), "gthread");
        assert_eq!(g.threads, 4);
        assert_eq!(s.app.venv(), Some(Path::new("/v")));
        // Another kind's options are an error, not a panic.
        assert!(s.app.uwsgi().is_err());
        assert!(s.app.kind_options::<builtin::Builtin>().is_err());
        let s = parse_str("[reload]\nstrategy = \"symlink-swap\"\n").unwrap();
        assert_eq!(
            s.app
                .kind_options::<builtin::Builtin>()
                .unwrap()
                .on_term
                .get_ref(),
            "drain"
        );
        assert_eq!(s.app.venv(), None);
    }

    #[test]
    fn a_sweep_over_workers_sets_the_kinds_option() {
        let src = "[app]\nkind = \"uwsgi\"\nlazy_apps = false\n[reload]\nstrategy = \"uwsgi-chain\"\n[sweep]\nworkers = [1, 3]\n";
        let l = Loaded {
            path: "s.toml".into(),
            dir: "/".into(),
            name: "s".into(),
            scenario: parse_str(src).unwrap(),
        };
        let all = expand_sweep(&l);
        let w: Vec<u32> = all
            .iter()
            .map(|l| *l.scenario.app.uwsgi().unwrap().workers.get_ref())
            .collect();
        assert_eq!(w, [1, 3]);
        assert!(all
            .iter()
            .all(|l| !l.scenario.app.uwsgi().unwrap().lazy_apps));
        let e = parse_str("[app]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n[sweep]\nstartup_delay = [\"1s\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:8:17: `sweep.startup_delay`: app kind \"external\" has no"),
            "{e}"
        );
    }

    #[test]
    fn a_key_of_another_kind_is_located() {
        let e = parse_str(
            "[app]\nkind = \"uwsgi\"\npreload = true\n[reload]\nstrategy = \"uwsgi-chain\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml:3:11: `app.preload`: not an option of app kind \"uwsgi\" (it applies to: gunicorn)"),
            "{e}"
        );
        let e = parse_str(
            "[app]\nkind = \"builtin\"\nvenv = \"/v\"\n[reload]\nstrategy = \"naive-restart\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "(it applies to: gunicorn, uwsgi, flup, uvicorn, granian, hypercorn, external)"
            ),
            "{e}"
        );
        let e = parse_str("[app]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\nstartup_delay = \"1s\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:4:17: `app.startup_delay`: not an option of app kind \"external\" (it applies to: builtin, gunicorn, uwsgi, flup, uvicorn, granian, hypercorn)"),
            "{e}"
        );
        let e = parse_str("[app]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\nnope = 1\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:4:1: `app.nope`: unknown field `nope`")
                && !e.contains("`socket`"),
            "{e}"
        );
    }

    /// Each kind documents exactly its own keys, and the common docs exactly the
    /// common keys: the generated reference cannot drift from the `Options` types.
    #[test]
    fn every_kind_documents_exactly_its_keys() {
        use crate::config::option_doc::{doc_keys, sorted};
        assert_eq!(doc_keys(config::COMMON_DOCS), sorted(common_keys()));
        for e in KINDS {
            assert_eq!(doc_keys(e.options), sorted(e.keys()), "{}", e.name);
            assert!(
                !e.summary.is_empty() && !e.summary.contains('\n'),
                "{}",
                e.name
            );
        }
    }
}
