//! Scenario files: what to start, how to load it, which reload to trigger, what to assert.
//!
//! Unknown keys are rejected; every error names the file, line, column and field.
//! See docs/reference.md for every key with its default. This module is the
//! composition root: each section's owner (app kind, strategy, front server, verdict)
//! owns its config type and checks; here they are read through the registries.

pub mod mix;
pub mod needs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use mix::MixEntry;
pub use needs::{needs, Need};

use crate::app::{self, AppConfig, AppOptions};
use crate::config::{one_of, AppTable, Dur, Locator, ReloadTable};
use crate::error::{Error, Result};
use crate::front::FrontConfig;
use crate::load::limits;
use crate::strategy::{self, ReloadConfig, StrategyOptions};
use crate::verdict::AssertConfig;

/// A whole scenario file; `O` is the reload strategy's parsed options and `A` the app
/// kind's (both `()` while the file is read, before their own passes, see [`parse`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "O: Default, A: Default", serialize = "")
)]
pub struct Scenario<O = Arc<dyn StrategyOptions>, A = Arc<dyn AppOptions>> {
    /// Short name shown in reports (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario shows.
    #[serde(default)]
    pub description: Option<String>,
    /// The app under test.
    #[serde(default)]
    pub app: AppConfig<A>,
    /// A front server (nginx) between the load and the app; absent: the load hits the app directly.
    #[serde(default)]
    pub front: Option<FrontConfig>,
    /// The load driven during the reload.
    #[serde(default)]
    pub load: LoadConfig,
    /// The reload strategy and its options.
    pub reload: ReloadConfig<O>,
    /// What must hold for a pass.
    #[serde(default)]
    pub assert: AssertConfig,
    /// WebSocket connections held open across the reload (absent: none).
    #[serde(default)]
    pub websockets: Option<WebsocketsConfig>,
    /// Parameter lists: the scenario runs once per combination (a grid).
    #[serde(default)]
    pub sweep: Option<SweepConfig>,
}

/// Lists of values to sweep over; the run covers their cartesian product.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Values for `app.startup_delay`.
    #[serde(default)]
    pub startup_delay: Vec<Dur>,
    /// Values for `app.workers` (an app kind with workers: gunicorn, uwsgi).
    #[serde(default)]
    pub workers: Vec<u32>,
    /// Values for `load.rate`.
    #[serde(default)]
    pub rate: Vec<f64>,
    /// Values for `load.connections`.
    #[serde(default)]
    pub connections: Vec<usize>,
}

/// The load.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// `open` (fixed rate) or `closed` (N connections back to back).
    pub mode: Spanned<String>,
    /// Open loop: requests per second.
    pub rate: Spanned<f64>,
    /// Connections (open loop: the most requests in flight).
    pub connections: Spanned<usize>,
    /// Reuse connections (true) or open one per request (false, what nginx does to upstreams).
    pub keep_alive: bool,
    /// Before reusing a kept connection: `pooled` (look whether the server closed it, and
    /// reopen it if so, as pooled clients do) or `naive` (reuse it blindly).
    pub reuse: Spanned<String>,
    /// Open-loop engine: `epoll` (the default) or `io_uring` (a measured prototype,
    /// see docs/benchmarks.md; falls back to epoll, with a note, where it cannot run).
    pub engine: Spanned<String>,
    /// `h1` (HTTP/1.1), `h2` (HTTP/2 by ALPN, an https target) or `h2c` (HTTP/2 with
    /// prior knowledge, a plain target): the load's, and each mix kind's default.
    pub protocol: Spanned<String>,
    /// HTTP/2: concurrent streams per connection (1 to 1000); with h2 kinds the load
    /// runs `connections` x `streams` workers, one request in flight each.
    pub streams: Spanned<usize>,
    /// Request path, e.g. `/slow?ms=20` to keep requests in flight across the reload.
    pub path: Spanned<String>,
    /// Per-request time limit (more than 0).
    pub timeout: Spanned<Dur>,
    /// Connect time limit (more than 0).
    pub connect_timeout: Spanned<Dur>,
    /// Load before the first reload step.
    pub warmup: Dur,
    /// Load after the last reload step.
    pub cooldown: Dur,
    /// After scheduling stops, how long requests in flight may take before they count as
    /// hung. Unset: the request timeout plus 1 s (see [`LoadConfig::grace`]).
    #[serde(rename = "grace")]
    pub grace_set: Option<Dur>,
    /// Timeline window.
    pub window: Spanned<Dur>,
    /// Response header naming the serving version ("" for none).
    pub version_header: String,
    /// Regex over the body whose first group is the version (used if the header is absent).
    pub version_regex: Option<Spanned<String>>,
    /// The request kinds to send, by weight (`[[load.mix]]`; empty: GET `path`).
    pub mix: Vec<MixEntry>,
    /// Seed of the generator that draws each request's kind (same seed, same draws
    /// on each connection).
    pub seed: u64,
    /// https: PEM file of the CAs the load trusts, relative to the scenario file
    /// (default: the CA made for the run's TLS front).
    pub ca_file: Option<Spanned<String>>,
    /// https: accept any certificate (not with `ca_file`).
    pub insecure_skip_verify: Spanned<bool>,
    /// https: the name the certificate must be valid for, sent as SNI (default:
    /// `localhost`, what the run's certificate is made for).
    pub server_name: Option<Spanned<String>>,
    /// `ca_file` resolved against the scenario file's directory (set once it is read).
    #[serde(skip)]
    pub ca_path: Option<PathBuf>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            mode: Spanned::new(0..0, "open".into()),
            rate: Spanned::new(0..0, 500.0),
            connections: Spanned::new(0..0, 32),
            keep_alive: false,
            reuse: Spanned::new(0..0, "pooled".into()),
            engine: Spanned::new(0..0, "epoll".into()),
            protocol: Spanned::new(0..0, "h1".into()),
            streams: Spanned::new(0..0, 1),
            path: Spanned::new(0..0, "/".into()),
            timeout: Spanned::new(0..0, Dur::ms(5000)),
            connect_timeout: Spanned::new(0..0, Dur::ms(2000)),
            warmup: Dur::ms(1000),
            cooldown: Dur::ms(1000),
            grace_set: None,
            window: Spanned::new(0..0, Dur::ms(100)),
            version_header: "X-App-Version".into(),
            version_regex: None,
            mix: Vec::new(),
            seed: 1,
            ca_file: None,
            insecure_skip_verify: Spanned::new(0..0, false),
            server_name: None,
            ca_path: None,
        }
    }
}

/// The default `grace` beyond the request timeout: a request sent as scheduling stops
/// may take its whole timeout, and then ends as `timeout`, not `hung`.
pub const GRACE_SLACK: std::time::Duration = std::time::Duration::from_secs(1);

impl LoadConfig {
    /// The TLS keys given (`load.ca_file`, ...), with where each is.
    pub fn tls_keys(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut keys = Vec::new();
        if let Some(c) = &self.ca_file {
            keys.push(("load.ca_file", c.span()));
        }
        if *self.insecure_skip_verify.get_ref() {
            keys.push((
                "load.insecure_skip_verify",
                self.insecure_skip_verify.span(),
            ));
        }
        if let Some(n) = &self.server_name {
            keys.push(("load.server_name", n.span()));
        }
        keys
    }

    /// The TLS keys, as what an https target's client trusts.
    pub fn trust(&self) -> crate::app::external::TargetTrust {
        crate::app::external::TargetTrust {
            ca_file: self.ca_path.clone(),
            insecure_skip_verify: *self.insecure_skip_verify.get_ref(),
            server_name: self.server_name.as_ref().map(|n| n.get_ref().clone()),
        }
    }

    /// The TLS keys onto an https target's settings; given for a plain target, an error.
    pub fn apply_tls(&self, target: &mut crate::load::Target) -> Result<()> {
        let Some(t) = target.tls.as_mut() else {
            return match self.tls_keys().first() {
                Some((key, _)) => Err(Error::Usage(format!(
                    "{key}: the target {target} is not https"
                ))),
                None => Ok(()),
            };
        };
        self.trust().apply(t);
        Ok(())
    }

    /// How long requests in flight when scheduling stops may take before they count as
    /// hung: `grace` if set, else the request timeout plus [`GRACE_SLACK`] (every kind of a
    /// mix shares that timeout, so the slowest request allowed still ends in its class).
    pub fn grace(&self) -> std::time::Duration {
        match self.grace_set {
            Some(g) => g.0,
            None => self.timeout.get_ref().0 + GRACE_SLACK,
        }
    }
}

/// `[websockets]`: K connections opened at load start to the load's target, each
/// exchanging a message every `interval`; a connection dropped without a close frame
/// fails the run (beyond `max_dropped`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebsocketsConfig {
    /// Connections opened at load start (0: off).
    pub connections: Spanned<usize>,
    /// How often each connection sends a message and expects its echo.
    pub interval: Spanned<Dur>,
    /// The websocket path (the built-in fixture serves `/ws`).
    pub path: Spanned<String>,
    /// Time limit for the opening handshake, for each echo and for the closing handshake.
    pub timeout: Spanned<Dur>,
    /// Most connections allowed to end without a close frame (EOF, reset, no echo in time).
    pub max_dropped: u64,
    /// Open a connection again (after `interval`) when the server ended it; the
    /// greeting of the new one shows which version took it.
    pub reconnect: bool,
}

impl Default for WebsocketsConfig {
    fn default() -> Self {
        WebsocketsConfig {
            connections: Spanned::new(0..0, 0),
            interval: Spanned::new(0..0, Dur::ms(100)),
            path: Spanned::new(0..0, "/ws".into()),
            timeout: Spanned::new(0..0, Dur::ms(2000)),
            max_dropped: 0,
            reconnect: false,
        }
    }
}

impl WebsocketsConfig {
    /// Whether connections are to be opened at all.
    pub fn enabled(&self) -> bool {
        *self.connections.get_ref() > 0
    }
}

/// A scenario with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file, as given.
    pub path: PathBuf,
    /// The directory the file is in, absolute (resolved once, at load): what a relative
    /// deploy command is relative to and where it runs, wherever zdt-check was started.
    pub dir: PathBuf,
    /// Its name (the `name` key or the file stem).
    pub name: String,
    /// The parsed, validated scenario.
    pub scenario: Scenario,
}

impl Loaded {
    /// A hash of what makes two runs of this scenario comparable: its name, its reload
    /// strategy and its `[load]` (not the app or the servers, which a baseline
    /// compares across: the same deploy before and after a server upgrade). FNV-1a
    /// over their JSON, 16 hex digits, stable across builds.
    pub fn scenario_hash(&self) -> String {
        let text = serde_json::to_string(&(
            &self.name,
            self.scenario.reload.strategy.get_ref(),
            &self.scenario.load,
        ))
        .expect("the load section serializes");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<Loaded> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        Error::Scenario(format!(
            "{}: cannot read scenario file: {e}",
            path.display()
        ))
    })?;
    let scenario = parse(path, &src)?;
    let name = scenario.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(Loaded {
        path: path.to_path_buf(),
        dir: dir_of(path),
        name,
        scenario,
    })
}

/// The absolute directory of the file at `path` (a bare file name is in the current
/// directory, whose `parent()` is the empty path).
pub fn dir_of(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::canonicalize(parent)
        .or_else(|_| std::path::absolute(parent))
        .unwrap_or_else(|_| parent.to_path_buf())
}

/// One scenario per point of its `[sweep]` grid (just the scenario if it has none),
/// each named after the values it takes, e.g. `symlink (startup_delay=3s, rate=500)`.
pub fn expand_sweep(l: &Loaded) -> Vec<Loaded> {
    let Some(sw) = &l.scenario.sweep else {
        return vec![l.clone()];
    };
    let mut points: Vec<(Vec<String>, Scenario)> = vec![(Vec::new(), l.scenario.clone())];
    fn extend<T: Clone>(
        points: Vec<(Vec<String>, Scenario)>,
        values: &[T],
        label: impl Fn(&T) -> String,
        set: impl Fn(&mut Scenario, &T),
    ) -> Vec<(Vec<String>, Scenario)> {
        if values.is_empty() {
            return points;
        }
        let mut out = Vec::new();
        for (names, sc) in points {
            for v in values {
                let mut sc = sc.clone();
                set(&mut sc, v);
                let mut names = names.clone();
                names.push(label(v));
                out.push((names, sc));
            }
        }
        out
    }
    points = extend(
        points,
        &sw.startup_delay,
        |d| format!("startup_delay={d}"),
        |s, d| s.app.startup_delay = Some(Spanned::new(0..0, *d)),
    );
    points = extend(
        points,
        &sw.workers,
        |w| format!("workers={w}"),
        |s, w| {
            // A kind without workers was refused at parse time.
            if let Some(o) = s.app.options.with_workers(*w) {
                s.app.options = o;
            }
        },
    );
    points = extend(
        points,
        &sw.rate,
        |r| format!("rate={r}"),
        |s, r| s.load.rate = Spanned::new(0..0, *r),
    );
    points = extend(
        points,
        &sw.connections,
        |c| format!("connections={c}"),
        |s, c| s.load.connections = Spanned::new(0..0, *c),
    );
    points
        .into_iter()
        .map(|(names, mut scenario)| {
            scenario.sweep = None;
            Loaded {
                path: l.path.clone(),
                dir: l.dir.clone(),
                name: format!("{} ({})", l.name, names.join(", ")),
                scenario,
            }
        })
        .collect()
}

/// Parses and validates scenario text; `path` is only used in messages. The error
/// lists every problem found (see [`parse_all`]), one after the other.
pub fn parse(path: &Path, src: &str) -> Result<Scenario> {
    match parse_all(path, src) {
        (Some(s), problems) if problems.is_empty() => Ok(s),
        (_, problems) => Err(Error::Scenario(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

/// Parses and validates scenario text, gathering every problem rather than stopping
/// at the first: a TOML error (wrong type, unknown key) ends the reading at once, but
/// the checks of each section, and the app kind's and the strategy's option passes,
/// each add theirs. Returns the scenario as far as it was read (when the text and
/// both option passes parsed, even if other checks failed) and the problems, in the
/// file's section order (the first is the one `run` always reported).
///
/// Passes over the text keep every value's location: the scenario with the common
/// `[app]` and `[reload]` keys, then the app kind's own options (its registry entry
/// reads `app` again as its `Options`), then the named strategy's (`reload`).
pub fn parse_all(path: &Path, src: &str) -> (Option<Scenario>, Vec<Error>) {
    let loc = Locator { path, src };
    let s: Scenario<(), ()> = match toml::from_str(src) {
        Ok(s) => s,
        Err(e) => return (None, vec![loc.toml_error(&e)]),
    };
    let mut problems = Vec::new();
    let app_options = validate(&s, &loc, &mut problems);
    let mut s = s;
    s.load.ca_path = s
        .load
        .ca_file
        .as_ref()
        .map(|c| dir_of(path).join(c.get_ref()));
    let options = validate_reload(&s, &loc, &mut problems);
    let (Some(app_options), Some(options)) = (app_options, options) else {
        return (None, problems);
    };
    let scenario = Scenario {
        name: s.name,
        description: s.description,
        app: s.app.with_options(app_options),
        front: s.front,
        load: s.load,
        reload: s.reload.with_options(options),
        assert: s.assert,
        websockets: s.websockets,
        sweep: s.sweep,
    };
    (Some(scenario), problems)
}

/// Whether `app.kind` names a known kind (checks that depend on the kind are skipped
/// when it does not: the unknown kind is the one problem to report).
fn kind_known<O, A>(s: &Scenario<O, A>) -> bool {
    app::find_kind(s.app.kind.get_ref()).is_some()
}

impl<O, A> Scenario<O, A> {
    /// The version each reload moves to, in order: the listed versions after the first, or
    /// one empty string per deploy when versions are discovered.
    pub fn deploys(&self) -> Vec<String> {
        let versions = self.app.versions();
        if versions.is_empty() {
            let n = self.reload.deploys.as_ref().map_or(1, |d| *d.get_ref());
            vec![String::new(); n as usize]
        } else {
            versions[1..].to_vec()
        }
    }
}

/// The version rules of an `external` app (its own keys are its kind's to check), or
/// of an app with listed versions.
fn validate_versions(s: &Scenario<(), ()>, loc: &Locator) -> Result<()> {
    let a = &s.app;
    if !a.is_external() {
        if let Some(d) = &s.reload.deploys {
            let want = a.versions().len() as u32 - 1;
            if *d.get_ref() != want {
                return Err(loc.error(
                    d.span(),
                    Some("reload.deploys"),
                    &format!("{} deploys, but app.versions lists {want} after the first: drop `deploys`, or list one version per deploy", d.get_ref()),
                ));
            }
        }
        return Ok(());
    }
    match (&a.versions, &s.reload.deploys) {
        (Some(v), Some(d)) if *d.get_ref() as usize != v.get_ref().len() - 1 => {
            return Err(loc.error(
                d.span(),
                Some("reload.deploys"),
                &format!("{} deploys, but app.versions lists {} after the first: drop `deploys`, or list one version per deploy", d.get_ref(), v.get_ref().len() - 1),
            ));
        }
        (None, Some(d)) if !(1..=100).contains(d.get_ref()) => {
            return Err(loc.error(
                d.span(),
                Some("reload.deploys"),
                "must be between 1 and 100",
            ));
        }
        _ => {}
    }
    if s.front.is_some() {
        return Err(loc.error(
            loc.table_at("front"),
            Some("front"),
            "an external app brings its own front server: drop [front] and point `app.target` at it",
        ));
    }
    Ok(())
}

/// Checks the common `[app]` keys against the kind, then has its registry entry
/// parse and check its own options.
fn validate_app(s: &Scenario<(), ()>, loc: &Locator) -> Result<Arc<dyn AppOptions>> {
    let a = &s.app;
    let Some(entry) = app::find_kind(a.kind.get_ref()) else {
        let names: Vec<&str> = app::KINDS.iter().map(|e| e.name).collect();
        return Err(crate::config::not_one_of(loc, &a.kind, "app.kind", &names));
    };
    let instance_keys = [
        ("socket", a.socket.as_ref().map(Spanned::span)),
        ("startup_delay", a.startup_delay.as_ref().map(Spanned::span)),
    ];
    if !entry.starts_instances {
        if let Some((key, Some(span))) = instance_keys.iter().find(|(_, sp)| sp.is_some()) {
            let users: Vec<&str> = app::KINDS
                .iter()
                .filter(|e| e.starts_instances)
                .map(|e| e.name)
                .collect();
            return Err(loc.error(
                span.clone(),
                Some(&format!("app.{key}")),
                &format!(
                    "not an option of app kind {:?} (it applies to: {})",
                    entry.name,
                    users.join(", ")
                ),
            ));
        }
    }
    if let Some(socket) = &a.socket {
        one_of(loc, socket, "app.socket", &["unix", "tcp"])?;
    }
    entry.parse_options(
        a,
        &AppTable {
            loc,
            name: "app",
            head: &a.kind,
            app_kind: a.kind.get_ref(),
            front_tls: s.front.as_ref().is_some_and(FrontConfig::is_tls),
        },
    )
}

/// Checks everything but the strategy, each section's problems added to `problems`;
/// returns the app kind's parsed options, if they parsed.
fn validate(
    s: &Scenario<(), ()>,
    loc: &Locator,
    problems: &mut Vec<Error>,
) -> Option<Arc<dyn AppOptions>> {
    let app_options = validate_app(s, loc).map_err(|e| problems.push(e)).ok();
    let sections = [
        s.front.as_ref().map_or(Ok(()), |f| f.validate(loc)),
        s.websockets
            .as_ref()
            .map_or(Ok(()), |w| validate_websockets(s, w, loc)),
        // The deploys are counted against a valid list only.
        validate_version_list(s, loc).and_then(|()| validate_versions(s, loc)),
    ];
    problems.extend(sections.into_iter().filter_map(Result::err));
    validate_load(&s.load, loc, problems);
    validate_load_tls(s, app_options.as_ref(), loc, problems);
    validate_protocols(s, app_options.as_ref(), loc, problems);
    problems.extend(s.assert.validate(loc).err());
    problems.extend(validate_sweep(s, loc).err());
    app_options
}

/// `app.versions`: at least two, each a word.
fn validate_version_list(s: &Scenario<(), ()>, loc: &Locator) -> Result<()> {
    if let Some(versions) = &s.app.versions {
        if versions.get_ref().len() < 2 {
            return Err(loc.error(
                versions.span(),
                Some("app.versions"),
                "needs at least two versions: the one started and the one reloaded to",
            ));
        }
        if let Some(v) = versions
            .get_ref()
            .iter()
            .find(|v| v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(loc.error(
                versions.span(),
                Some("app.versions"),
                &format!("version {v:?} must be non-empty, without spaces"),
            ));
        }
    }
    Ok(())
}

/// `[load]`: each key's problem added to `problems`.
fn validate_load(load: &LoadConfig, loc: &Locator, problems: &mut Vec<Error>) {
    problems.extend(one_of(loc, &load.mode, "load.mode", &["open", "closed"]).err());
    problems.extend(one_of(loc, &load.reuse, "load.reuse", crate::load::Reuse::NAMES).err());
    problems.extend(one_of(loc, &load.engine, "load.engine", crate::load::Engine::NAMES).err());
    if let Some(why) = limits::rate_problem(*load.rate.get_ref()) {
        problems.push(loc.error(load.rate.span(), Some("load.rate"), &why));
    }
    let nofile = limits::nofile_soft_limit();
    if let Some(why) = limits::connections_problem(*load.connections.get_ref(), nofile) {
        problems.push(loc.error(load.connections.span(), Some("load.connections"), &why));
    }
    if let Some(why) = request_path_problem(load.path.get_ref()) {
        problems.push(loc.error(load.path.span(), Some("load.path"), why));
    }
    mix::validate(load, loc, problems);
    for (v, field) in [
        (&load.timeout, "load.timeout"),
        (&load.connect_timeout, "load.connect_timeout"),
    ] {
        if v.get_ref().0.is_zero() {
            problems.push(loc.error(
                v.span(),
                Some(field),
                "must be more than 0: every request would time out",
            ));
        }
    }
    if load.window.get_ref().0 < std::time::Duration::from_millis(1) {
        problems.push(loc.error(
            load.window.span(),
            Some("load.window"),
            "must be at least 1ms",
        ));
    }
    if let Some(re) = &load.version_regex {
        if let Err(e) = regex::bytes::Regex::new(re.get_ref()) {
            problems.push(loc.error(
                re.span(),
                Some("load.version_regex"),
                &format!("invalid regex: {e}"),
            ));
        }
    }
}

/// Most HTTP/2 streams per connection `load.streams` takes.
pub const MAX_STREAMS: usize = 1000;

/// `load.protocol`, `load.streams` and each mix kind's `protocol`: known names, and
/// each protocol one the target speaks (h2 over https, h2c over plain TCP).
fn validate_protocols(
    s: &Scenario<(), ()>,
    app_options: Option<&Arc<dyn AppOptions>>,
    loc: &Locator,
    problems: &mut Vec<Error>,
) {
    use crate::load::Protocol;
    let load = &s.load;
    let own = app_options.and_then(|o| o.as_any().downcast_ref::<app::external::Options>());
    let external = s.app.is_external();
    if external && own.is_none() {
        // Its options did not parse: that is the problem to report.
        return;
    }
    let https = s.front.as_ref().is_some_and(FrontConfig::is_tls)
        || own.is_some_and(app::external::Options::is_https);
    let front_h2 = s.front.as_ref().is_some_and(FrontConfig::is_http2);
    let mut check = |p: &Spanned<String>, key: &str| {
        if let Err(e) = one_of(loc, p, key, Protocol::NAMES) {
            problems.push(e);
            return;
        }
        let protocol = Protocol::named(p.get_ref());
        let why = protocol.target_problem(https).or(match (&s.front, protocol) {
            (Some(_), Protocol::H1) if front_h2 && !https => Some(
                "the front's plain HTTP/2 port (nginx `listen ... http2`, haproxy `proto h2`) speaks h2c only: give protocol = \"h2c\"",
            ),
            (Some(_), p) if p.is_h2() && !front_h2 => {
                Some("the front speaks HTTP/1.1 only: add `http2 = true` to [front]")
            }
            (None, p) if p.is_h2() && !external => {
                Some("HTTP/2 goes through a front: add [front] with `http2 = true`")
            }
            _ => None,
        });
        if let Some(why) = why {
            problems.push(loc.error(p.span(), Some(key), why));
        }
    };
    if load.mix.iter().any(|k| k.protocol.is_none()) || load.mix.is_empty() {
        check(&load.protocol, "load.protocol");
    }
    for (i, k) in load.mix.iter().enumerate() {
        if let Some(p) = &k.protocol {
            check(p, &format!("load.mix[{i}].protocol"));
        }
    }
    if !(1..=MAX_STREAMS).contains(load.streams.get_ref()) {
        problems.push(loc.error(
            load.streams.span(),
            Some("load.streams"),
            &format!("must be 1 to {MAX_STREAMS} (concurrent HTTP/2 streams per connection)"),
        ));
    }
    for (i, k) in load.mix.iter().enumerate() {
        if !k.protocol(load).is_h2() {
            continue;
        }
        if let Some(u) = &k.upload {
            problems.push(loc.error(
                u.span(),
                Some(&format!("load.mix[{i}].upload")),
                "a slow upload is HTTP/1.1 only (this kind speaks HTTP/2)",
            ));
        }
        if k.keep_alive == Some(false) {
            problems.push(loc.error(
                k.name.span(),
                Some(&format!("load.mix[{i}].keep_alive")),
                "an HTTP/2 kind's streams share their connection: keep_alive = false is HTTP/1.1 only",
            ));
        }
    }
}

/// The `[load]` TLS keys: each well formed, and only where the target is https (a
/// TLS front, or an external app's `https://` target).
fn validate_load_tls(
    s: &Scenario<(), ()>,
    app_options: Option<&Arc<dyn AppOptions>>,
    loc: &Locator,
    problems: &mut Vec<Error>,
) {
    let load = &s.load;
    let external = app_options.and_then(|o| o.as_any().downcast_ref::<app::external::Options>());
    if s.app.is_external() && external.is_none() {
        // Its options did not parse: that is the problem to report.
        return;
    }
    let https = s.front.as_ref().is_some_and(FrontConfig::is_tls)
        || external.is_some_and(app::external::Options::is_https);
    if !https {
        let how = if s.app.is_external() {
            "only for an https target: give `app.target` as https://"
        } else {
            "only for an https target: add `tls = true` to [front]"
        };
        for (key, span) in load.tls_keys() {
            problems.push(loc.error(span, Some(key), how));
        }
        return;
    }
    if let Some(ca) = &load.ca_file {
        let path = dir_of(loc.path).join(ca.get_ref());
        if let Err(why) = crate::load::tls::read_ca_file(&path) {
            problems.push(loc.error(ca.span(), Some("load.ca_file"), &why));
        }
        if *load.insecure_skip_verify.get_ref() {
            problems.push(loc.error(
                load.insecure_skip_verify.span(),
                Some("load.insecure_skip_verify"),
                "give `ca_file` or `insecure_skip_verify`, not both (a CA to trust, or no verification)",
            ));
        }
    }
    if let Some(n) = &load.server_name {
        if let Some(why) = crate::load::tls::server_name_problem(n.get_ref()) {
            problems.push(loc.error(n.span(), Some("load.server_name"), &why));
        }
    }
}

/// `[sweep]`: a grid of at most 100 points, over values the scenario can take.
fn validate_sweep(s: &Scenario<(), ()>, loc: &Locator) -> Result<()> {
    let nofile = limits::nofile_soft_limit();
    if let Some(sw) = &s.sweep {
        let n = sw.startup_delay.len().max(1)
            * sw.workers.len().max(1)
            * sw.rate.len().max(1)
            * sw.connections.len().max(1);
        if n > 100 {
            return Err(loc.error(
                loc.table_at("sweep"),
                Some("sweep"),
                &format!("{n} combinations: at most 100 per scenario"),
            ));
        }
        let problem = sw
            .rate
            .iter()
            .find_map(|r| limits::rate_problem(*r).map(|why| ("rate", why)))
            .or_else(|| {
                sw.connections.iter().find_map(|c| {
                    limits::connections_problem(*c, nofile).map(|why| ("connections", why))
                })
            });
        if let Some((key, why)) = problem {
            return Err(loc.error(
                loc.key_at("sweep", key),
                Some(&format!("sweep.{key}")),
                &why,
            ));
        }
        if sw.workers.iter().any(|w| !(1..=64).contains(w)) {
            return Err(loc.error(
                loc.key_at("sweep", "workers"),
                Some("sweep.workers"),
                "workers must be between 1 and 64",
            ));
        }
        let kind = s.app.kind.get_ref();
        let has = |key: &str| {
            app::find_kind(kind).is_some_and(|e| {
                e.keys().contains(&key) || (e.starts_instances && app::common_keys().contains(&key))
            })
        };
        for (key, swept) in [
            ("workers", !sw.workers.is_empty()),
            ("startup_delay", !sw.startup_delay.is_empty()),
        ] {
            if swept && kind_known(s) && !has(key) {
                return Err(loc.error(
                    loc.key_at("sweep", key),
                    Some(&format!("sweep.{key}")),
                    &format!("app kind {kind:?} has no `{key}` to sweep over"),
                ));
            }
        }
    }
    Ok(())
}

/// What is wrong with `path` as the target of a request line, if anything: it
/// must start with `/` and be visible ASCII (percent-encode the rest), with no
/// fragment, or every request would be malformed.
fn request_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("must start with `/`")
    } else if !path.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be visible ASCII with no space (percent-encode other characters, e.g. %20)")
    } else if path.contains('#') {
        Some("must not contain a fragment (`#`): it is never sent to a server")
    } else {
        None
    }
}

/// Checks `[websockets]`: sane bounds, and an app that can answer them.
fn validate_websockets(s: &Scenario<(), ()>, w: &WebsocketsConfig, loc: &Locator) -> Result<()> {
    let n = *w.connections.get_ref();
    if n > 1000 {
        return Err(loc.error(
            w.connections.span(),
            Some("websockets.connections"),
            "must be between 0 (off) and 1000",
        ));
    }
    for (v, field) in [
        (&w.interval, "websockets.interval"),
        (&w.timeout, "websockets.timeout"),
    ] {
        let d = v.get_ref().0;
        if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(60) {
            return Err(loc.error(v.span(), Some(field), "must be between 1ms and 60s"));
        }
    }
    if let Some(why) = request_path_problem(w.path.get_ref()) {
        return Err(loc.error(w.path.span(), Some("websockets.path"), why));
    }
    if n > 0 && s.front.as_ref().is_some_and(FrontConfig::is_tls) {
        return Err(loc.error(
            w.connections.span(),
            Some("websockets.connections"),
            "websockets over TLS are not supported: drop [websockets] or `front.tls`",
        ));
    }
    let kind = s.app.kind.get_ref();
    let serves = app::find_kind(kind).is_some_and(|e| e.websockets);
    if n > 0 && kind_known(s) && !serves {
        return Err(loc.error(
            w.connections.span(),
            Some("websockets.connections"),
            &format!("app kind {kind:?} serves no websockets: use the built-in fixture (app.kind = \"builtin\", path \"/ws\"), uvicorn, or your own stack (\"external\")"),
        ));
    }
    Ok(())
}

/// Checks the strategy against the rest of the scenario, then has its registry
/// entry parse and check its own options; each problem is added to `problems`.
fn validate_reload(
    s: &Scenario<(), ()>,
    loc: &Locator,
    problems: &mut Vec<Error>,
) -> Option<Arc<dyn StrategyOptions>> {
    let r = &s.reload;
    let Some(entry) = strategy::find(r.strategy.get_ref()) else {
        let names: Vec<&str> = strategy::REGISTRY.iter().map(|e| e.name).collect();
        problems.push(crate::config::not_one_of(
            loc,
            &r.strategy,
            "reload.strategy",
            &names,
        ));
        return None;
    };
    let strategy = entry.name;
    let kind = s.app.kind.get_ref().as_str();
    if kind_known(s) && !entry.app_kinds.contains(&kind) {
        problems.push(loc.error(
            r.strategy.span(),
            Some("reload.strategy"),
            &format!("strategy {strategy:?} does not work with app.kind = {kind:?} (it needs one of: {})", entry.app_kinds.join(", ")),
        ));
    } else if let (Some(why), None) = (entry.needs_front, &s.front) {
        problems.push(loc.error(r.strategy.span(), Some("reload.strategy"), why));
    } else if let Some(f) = s.front.as_ref().filter(|f| f.kind() != entry.front_kind) {
        let span = if f.kind.span().is_empty() {
            loc.table_at("front")
        } else {
            f.kind.span()
        };
        let why = if entry.front_kind == "haproxy" {
            format!("strategy {strategy:?} runs haproxy as its own front server: drop [front], or write `kind = \"haproxy\"` in it (for `tls`)")
        } else {
            format!("a haproxy front is run only by the haproxy strategies; strategy {strategy:?} puts nginx in front: write `kind = \"nginx\"`")
        };
        problems.push(loc.error(span, Some("front.kind"), &why));
    } else if let (Some(why), None) = (app::find_kind(kind).and_then(|k| k.needs_front), &s.front) {
        problems.push(loc.error(s.app.kind.span(), Some("app.kind"), why));
    }
    entry
        .parse_options(&ReloadTable {
            loc,
            name: "reload",
            head: &r.strategy,
            app_kind: kind,
            front_tls: s.front.as_ref().is_some_and(FrontConfig::is_tls),
        })
        .map_err(|e| problems.push(e))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(Path::new("s.toml"), src).unwrap_err().to_string()
    }

    #[test]
    fn front_listens_on_loopback_only() {
        let base = "[app]\nkind = \"builtin\"\n[reload]\nstrategy = \"nginx-reload\"\n[front]\n";
        let e = err(&format!("{base}listen = \"0.0.0.0:8080\"\n"));
        assert!(
            e.starts_with("s.toml:6:10: `front.listen`: 0.0.0.0 is not a loopback address"),
            "{e}"
        );
        let e = err(&format!("{base}listen = \"localhost\"\n"));
        assert!(
            e.contains("`front.listen`: \"localhost\" is not an address:port"),
            "{e}"
        );
        let e = err(&format!("{base}listen = \"127.0.0.1:0\"\n"));
        assert!(e.contains("port 0"), "{e}");
        let e = err(&format!("{base}worker_processes = 0\n"));
        assert!(
            e.starts_with("s.toml:6:20: `front.worker_processes`"),
            "{e}"
        );
        let s = parse(
            Path::new("s.toml"),
            &format!("{base}listen = \"[::1]:8080\"\n"),
        )
        .unwrap();
        let l = s.front.unwrap().listen.unwrap();
        assert_eq!(crate::front::front_listen(&l).unwrap().port(), 8080);
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = parse(
            Path::new("s.toml"),
            "[reload]\nstrategy = \"symlink-swap\"\n",
        )
        .unwrap();
        assert_eq!(s.app.kind.get_ref(), "builtin");
        assert_eq!(*s.load.rate.get_ref(), 500.0);
        assert_eq!(
            s.load.window.get_ref().0,
            std::time::Duration::from_millis(100)
        );
        assert!(s.assert.new_version_took_over);
    }

    #[test]
    fn grace_follows_the_request_timeout_unless_set() {
        let grace = |load: &str| {
            let text = format!("[reload]\nstrategy = \"symlink-swap\"\n[load]\n{load}");
            parse(Path::new("s.toml"), &text).unwrap().load.grace()
        };
        use std::time::Duration;
        assert_eq!(grace(""), Duration::from_secs(6));
        assert_eq!(grace("timeout = \"30s\"\n"), Duration::from_secs(31));
        assert_eq!(grace("grace = \"2s\"\n"), Duration::from_secs(2));
    }

    #[test]
    fn syntax_error_has_location() {
        let e = err("[reload]\nstrategy = \"symlink-swap\n");
        assert!(e.starts_with("s.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("[load]\nrate = 10\nratee = 5\n[reload]\nstrategy = \"naive-restart\"\n");
        assert!(e.starts_with("s.toml:3:1: `load.ratee`"), "{e}");
        assert!(e.contains("unknown field `ratee`"), "{e}");
    }

    #[test]
    fn wrong_type_names_field() {
        let e = err("[load]\nrate = \"fast\"\n[reload]\nstrategy = \"naive-restart\"\n");
        assert!(e.starts_with("s.toml:2:8: `load.rate`"), "{e}");
    }

    #[test]
    fn bad_duration_and_value() {
        let e = err("[load]\ntimeout = \"5 parsecs\"\n[reload]\nstrategy = \"naive-restart\"\n");
        assert!(
            e.contains("`load.timeout`") && e.contains("invalid duration"),
            "{e}"
        );
        let e = err("[reload]\nstrategy = \"teleport\"\n");
        assert!(
            e.starts_with("s.toml:2:12: `reload.strategy`: unknown value \"teleport\""),
            "{e}"
        );
        let e = err("[load]\nrate = 0\n[reload]\nstrategy = \"naive-restart\"\n");
        assert!(e.contains("`load.rate`: 0 is not a rate"), "{e}");
    }

    #[test]
    fn min_exposure_is_a_count_of_at_least_one() {
        let base = "[reload]\nstrategy = \"naive-restart\"\n[assert]\n";
        let e = err(&format!("{base}min_exposure = 0\n"));
        assert!(
            e.starts_with("s.toml:4:16: `assert.min_exposure`: must be at least 1"),
            "{e}"
        );
        let e = err(&format!("{base}min_exposure = -1\n"));
        assert!(e.starts_with("s.toml:4:16: `assert.min_exposure`"), "{e}");
        let e = err(&format!("{base}min_exposure = \"many\"\n"));
        assert!(e.starts_with("s.toml:4:16: `assert.min_exposure`"), "{e}");
        let s = parse(Path::new("s.toml"), &format!("{base}min_exposure = 3\n")).unwrap();
        assert_eq!(s.assert.min_exposure.map(|m| *m.get_ref()), Some(3));
    }

    #[test]
    fn option_of_another_strategy() {
        let e = err("[reload]\nstrategy = \"naive-restart\"\nsettle = \"1s\"\n");
        assert!(
            e.starts_with("s.toml:3:10: `reload.settle`: not an option"),
            "{e}"
        );
    }

    #[test]
    fn missing_reload_table() {
        let e = err("[load]\nrate = 5\n");
        assert!(e.contains("missing field `reload`"), "{e}");
    }

    #[test]
    fn scenario_dir_is_absolute_even_for_a_bare_file_name() {
        let cwd = std::fs::canonicalize(".").unwrap();
        assert_eq!(dir_of(Path::new("command.toml")), cwd);
        assert_eq!(dir_of(Path::new("./command.toml")), cwd);
        assert_eq!(dir_of(Path::new("harness/x.toml")), cwd.join("harness"));
        assert_eq!(
            dir_of(Path::new("/tmp/x.toml")),
            std::fs::canonicalize("/tmp").unwrap()
        );
    }

    #[test]
    fn sweep_expands_to_the_grid() {
        let src = "name = \"s\"\n[reload]\nstrategy = \"symlink-swap\"\n[sweep]\nstartup_delay = [\"100ms\", \"1s\"]\nrate = [100, 200, 300]\n";
        let sc = parse(Path::new("s.toml"), src).unwrap();
        let l = Loaded {
            path: "s.toml".into(),
            dir: "/".into(),
            name: "s".into(),
            scenario: sc,
        };
        let all = expand_sweep(&l);
        assert_eq!(all.len(), 6);
        assert_eq!(all[5].name, "s (startup_delay=1s, rate=300)");
        assert_eq!(*all[5].scenario.load.rate.get_ref(), 300.0);
        assert!(all.iter().all(|l| l.scenario.sweep.is_none()));
        let e = err("[reload]\nstrategy = \"symlink-swap\"\n[sweep]\nrate = [0]\n");
        assert!(e.contains("`sweep.rate`: 0 is not a rate"), "{e}");
    }

    #[test]
    fn websockets_table_defaults_and_checks() {
        let base = "[reload]\nstrategy = \"symlink-swap\"\n";
        let s = parse(Path::new("s.toml"), base).unwrap();
        assert!(s.websockets.is_none());
        let s = parse(
            Path::new("s.toml"),
            &format!("{base}[websockets]\nconnections = 4\n"),
        )
        .unwrap();
        let w = s.websockets.unwrap();
        assert!(w.enabled());
        assert_eq!(
            w.interval.get_ref().0,
            std::time::Duration::from_millis(100)
        );
        assert_eq!(w.path.get_ref(), "/ws");
        assert_eq!(w.max_dropped, 0);
        let e = err(&format!(
            "{base}[websockets]\nconnections = 4\nintervall = \"1s\"\n"
        ));
        assert!(e.starts_with("s.toml:5:1: `websockets.intervall`"), "{e}");
        let e = err(&format!(
            "{base}[websockets]\nconnections = 4\ninterval = \"0ms\"\n"
        ));
        assert!(
            e.starts_with("s.toml:5:12: `websockets.interval`: must be between 1ms and 60s"),
            "{e}"
        );
        let e = err(&format!("{base}[websockets]\npath = \"ws\"\n"));
        assert!(
            e.starts_with("s.toml:4:8: `websockets.path`: must start with `/`"),
            "{e}"
        );
        let e = err(&format!("{base}[websockets]\npath = \"/ws x\"\n"));
        assert!(
            e.starts_with("s.toml:4:8: `websockets.path`: must be visible ASCII with no space"),
            "{e}"
        );
        let e = err(&format!("{base}[websockets]\npath = \"/ws#top\"\n"));
        assert!(
            e.contains("`websockets.path`: must not contain a fragment"),
            "{e}"
        );
        let e = err(&format!("{base}[load]\npath = \"/a b\"\n"));
        assert!(e.contains("`load.path`: must be visible ASCII"), "{e}");
        let e = err(&format!("{base}[websockets]\nconnections = 1001\n"));
        assert!(
            e.contains("`websockets.connections`: must be between 0 (off) and 1000"),
            "{e}"
        );
        let e = err("[app]\nkind = \"gunicorn\"\n[reload]\nstrategy = \"naive-restart\"\n[websockets]\nconnections = 2\n");
        assert!(
            e.starts_with(
                "s.toml:6:15: `websockets.connections`: app kind \"gunicorn\" serves no websockets"
            ),
            "{e}"
        );
        let e = err(
            "[reload]\nstrategy = \"nginx-reload\"\n[front]\nworker_shutdown_timeout = \"0s\"\n",
        );
        assert!(
            e.starts_with(
                "s.toml:4:27: `front.worker_shutdown_timeout`: must be between 1ms and 1h"
            ),
            "{e}"
        );
    }

    #[test]
    fn protocols_are_checked_against_the_target_and_the_front() {
        let nr = "[reload]\nstrategy = \"naive-restart\"\n";
        let e = err(&format!("[load]\nstreams = 0\n{nr}"));
        assert!(
            e.starts_with("s.toml:2:11: `load.streams`: must be 1 to 1000"),
            "{e}"
        );
        let e = err(&format!("[load]\nprotocol = \"h3\"\n{nr}"));
        assert!(e.contains("`load.protocol`: unknown value \"h3\""), "{e}");
        let e = err(&format!(
            "[front]\nhttp2 = true\n[load]\nprotocol = \"h2\"\n{nr}"
        ));
        assert!(
            e.starts_with("s.toml:4:12: `load.protocol`: h2 is negotiated by ALPN over TLS"),
            "{e}"
        );
        let e = err(&format!(
            "[front]\ntls = true\n[load]\nprotocol = \"h2\"\n{nr}"
        ));
        assert!(e.contains("add `http2 = true` to [front]"), "{e}");
        let e = err(&format!("[front]\nhttp2 = true\n{nr}"));
        assert!(
            e.contains(
                "`load.protocol`: the front's plain HTTP/2 port (nginx `listen ... http2`, haproxy `proto h2`) speaks h2c only"
            ),
            "{e}"
        );
        // A haproxy front serves HTTP/2 too: h2 over its TLS bind, h2c on a plain one.
        let hr = "[reload]\nstrategy = \"haproxy-reload\"\n";
        for (front, protocol) in [("tls = true\nhttp2 = true", "h2"), ("http2 = true", "h2c")] {
            let text = format!(
                "[front]\nkind = \"haproxy\"\n{front}\n[load]\nprotocol = \"{protocol}\"\n{hr}"
            );
            let s = parse(Path::new("s.toml"), &text);
            assert!(s.is_ok(), "{front} / {protocol}: {:?}", s.err());
        }
        let e = err(&format!(
            "[front]\ntls = true\nhttp2 = true\n[[load.mix]]\nname = \"a\"\nprotocol = \"h2\"\nupload = \"1s\"\nbody = 10\n{nr}"
        ));
        assert!(
            e.contains("`load.mix[0].upload`: a slow upload is HTTP/1.1 only"),
            "{e}"
        );
    }

    #[test]
    fn allow_names_are_checked() {
        let e = err("[reload]\nstrategy = \"naive-restart\"\n[assert]\nallow = [\"resett\"]\n");
        assert!(
            e.contains("`assert.allow`: unknown outcome class \"resett\""),
            "{e}"
        );
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests: no input makes the parser panic, and every error it returns
    //! carries a `file:line:col:` location.

    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "name = \"x\"\n[app]\nkind = \"builtin\"\nstartup_delay = \"1s\"\nversions = [\"v1\", \"v2\"]\n[load]\nrate = 400\nconnections = 32\npath = \"/slow?ms=20\"\nwindow = \"100ms\"\n[reload]\nstrategy = \"symlink-swap\"\nsettle = \"500ms\"\n[assert]\nallow = [\"reset_reused\"]\nmax_gap = \"500ms\"\n[sweep]\nrate = [100, 200]\n";

    fn check(src: &str) {
        if let Err(e) = parse(Path::new("f.toml"), src) {
            let msg = e.to_string();
            assert!(
                msg.starts_with("f.toml:"),
                "no location in {msg:?} for {src:?}"
            );
            let loc: Vec<&str> = msg.splitn(4, ':').collect();
            assert!(
                loc.len() == 4
                    && loc[1].parse::<usize>().is_ok()
                    && loc[2].parse::<usize>().is_ok(),
                "bad location in {msg:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
            check(&src);
        }

        #[test]
        fn mutated_scenarios_never_panic(cut in 0..VALID.len(), insert in "[\\[\\]=\" a-z0-9_.\\n-]{0,12}", drop in 0usize..8) {
            let mut s = VALID.to_string();
            let at = (0..=cut).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + drop).min(s.len());
            s.replace_range(at..end, &insert);
            check(&s);
        }

        #[test]
        fn any_reload_option_of_any_strategy_is_checked(
            strategy in prop::sample::select(strategy::REGISTRY.iter().map(|e| e.name).collect::<Vec<_>>()),
            key in prop::sample::select(strategy::REGISTRY.iter().flat_map(|e| e.keys()).chain(strategy::common_keys()).copied().chain(["nope"]).collect::<Vec<_>>()),
            value in prop::sample::select(vec!["0", "1", "-1", "\"\"", "\"x\"", "[]", "[\"\"]", "{}", "true", "\"kill\"", "\"0s\"", "99999999999999999999"]),
            kind in prop::sample::select(app::KINDS.iter().map(|e| e.name).collect::<Vec<_>>()),
            front in any::<bool>(),
        ) {
            let front = if front { "[front]\n" } else { "" };
            let s = format!("[app]\nkind = \"{kind}\"\n{front}[reload]\nstrategy = \"{strategy}\"\n{key} = {value}\n");
            check(&s);
        }

        #[test]
        fn any_app_option_of_any_kind_is_checked(
            kind in prop::sample::select(app::KINDS.iter().map(|e| e.name).collect::<Vec<_>>()),
            key in prop::sample::select(app::KINDS.iter().flat_map(|e| e.keys()).chain(app::common_keys()).copied().chain(["nope"]).collect::<Vec<_>>()),
            value in prop::sample::select(vec!["0", "1", "65", "-1", "\"\"", "\"x\"", "\"tcp\"", "\"gthread\"", "[]", "[\"\"]", "{}", "true", "\"0s\"", "\"http://127.0.0.1:9/\"", "99999999999999999999"]),
            strategy in prop::sample::select(strategy::REGISTRY.iter().map(|e| e.name).collect::<Vec<_>>()),
            front in any::<bool>(),
            sweep in prop::sample::select(vec!["", "[sweep]\nworkers = [2]\n", "[sweep]\nstartup_delay = [\"1s\"]\n"]),
        ) {
            let front = if front { "[front]\n" } else { "" };
            let s = format!("[app]\nkind = \"{kind}\"\n{key} = {value}\n{front}[reload]\nstrategy = \"{strategy}\"\n{sweep}");
            check(&s);
        }

        #[test]
        fn any_websockets_value_is_checked(key in prop::sample::select(vec!["connections", "interval", "path", "timeout", "max_dropped", "reconnect", "nope"]), value in prop::sample::select(vec!["0", "-1", "2", "1e309", "\"\"", "\"x\"", "\"/ws\"", "\"1ms\"", "\"61s\"", "[]", "{}", "true", "99999999999999999999"]), kind in prop::sample::select(vec!["builtin", "gunicorn", "external"])) {
            let s = format!("[app]\nkind = \"{kind}\"\n[reload]\nstrategy = \"naive-restart\"\n[websockets]\nconnections = 1\n{key} = {value}\n");
            check(&s);
        }

        #[test]
        fn any_value_in_any_field_is_checked(key in prop::sample::select(vec!["rate", "connections", "path", "window", "mode", "timeout", "keep_alive", "version_regex"]), value in prop::sample::select(vec!["0", "-1", "1e309", "\"\"", "\"x\"", "[]", "{}", "true", "\"(\"", "\"0s\"", "99999999999999999999"])) {
            let s = format!("[load]\n{key} = {value}\n[reload]\nstrategy = \"naive-restart\"\n");
            check(&s);
        }
    }
}
