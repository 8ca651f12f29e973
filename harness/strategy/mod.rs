//! Reload strategies: one file each, behind the [`Strategy`] trait.
//!
//! Each strategy file also owns its `[reload]` options (a serde struct with their
//! defaults, checks and docs, see [`Spec`]); [`REGISTRY`] has one line per strategy
//! and is all the scenario module knows about them.
//!
//! A strategy owns its topology: it starts the first version, carries out each
//! reload while recording its steps on the load clock, and stops everything it
//! started. The run loop never needs to know which strategy it drives.

pub mod command;
pub mod config;
pub mod granian_hup;
pub mod gunicorn_hup;
pub mod gunicorn_usr2;
pub mod haproxy_pool;
pub mod haproxy_reload;
pub mod hypercorn_hup;
pub mod naive_restart;
pub mod nginx_reload;
pub mod reuseport;
pub mod rolling_kill;
pub mod signal_respawn;
pub mod symlink_swap;
pub mod uvicorn_hup;
pub mod uwsgi_chain;
pub mod uwsgi_fastrouter;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::Spanned;

use crate::app::{AppEnv, StopHow};
use crate::error::Result;
use crate::front::nginx::{Nginx, Tuning};
use crate::load::{Endpoint, Target};
pub use config::ReloadConfig;

use crate::config::{keys_of, Common, OptionDoc, Programs, ReloadTable, Without};
use crate::front::FrontConfig;
use crate::steps::StepLog;
use crate::sys::netns::TestHosts;
use crate::sys::tools::Tool;

/// What a strategy works with.
#[derive(Debug)]
pub struct Ctx {
    /// Starting and stopping app instances.
    pub app: AppEnv,
    /// The steps recorded.
    pub steps: StepLog,
    /// The front server, once started by [`expose`].
    pub front: Option<Nginx>,
    /// The scenario's front server settings, if it has one.
    pub front_config: Option<FrontConfig>,
    /// How many reloads the run will carry out.
    pub deploys: usize,
    /// What shutdown could not clean up (test hosts it could not remove), each said
    /// in full: the run then ends in a harness error (exit 2), whatever its verdict.
    pub not_cleaned_up: Vec<String>,
    /// The server certificate a reload rotated to, if one did (the verdict then checks
    /// `new_cert_served`).
    pub cert_rotation: Option<crate::front::tls::CertRotation>,
}

/// Makes `upstream` reachable by the load: through a front server if the scenario has
/// one (started here and kept in `ctx.front`), else directly.
pub async fn expose(ctx: &mut Ctx, upstream: &Endpoint) -> Result<Target> {
    let Some(fc) = ctx.front_config.clone() else {
        let host = match upstream {
            Endpoint::Tcp(a) => a.to_string(),
            Endpoint::Unix(_) => "localhost".into(),
        };
        return Ok(Target {
            endpoint: upstream.clone(),
            host,
            path: "/".into(),
            tls: None,
        });
    };
    let up = ctx.app.upstream(upstream.clone());
    let listen = fc
        .listen
        .as_ref()
        .and_then(|l| crate::front::front_listen(l).ok());
    let mut tuning = Tuning::of(&fc);
    let mut tls = None;
    if fc.is_tls() {
        let files = crate::front::tls::generate(&ctx.app.site().run_dir.join("tls"))?;
        tls = Some(crate::load::tls::TlsSettings {
            server_name: crate::front::tls::SERVER_NAME.into(),
            ca_file: Some(files.ca.clone()),
            insecure_skip_verify: false,
        });
        tuning.tls = Some(files);
    }
    let ngx = Nginx::start(&ctx.app.site(), &up, tuning, listen).await?;
    let endpoint = ngx.endpoint();
    ctx.front = Some(ngx);
    let host = match &endpoint {
        Endpoint::Tcp(a) => a.to_string(),
        Endpoint::Unix(_) => "localhost".into(),
    };
    Ok(Target {
        endpoint,
        host,
        path: "/".into(),
        tls,
    })
}

/// The front TLS of a strategy that runs haproxy itself (`[front] kind = "haproxy"`,
/// `tls = true`): the run's CA and server certificate made in the run dir's `tls/`,
/// the frontend's `bind ... ssl` settings, and what the load trusts (the run's CA, the
/// name `localhost`). None for plain HTTP.
pub(crate) fn haproxy_front_tls(
    ctx: &Ctx,
) -> Result<
    Option<(
        crate::front::haproxy::TlsBind,
        crate::load::tls::TlsSettings,
    )>,
> {
    let Some(fc) = &ctx.front_config else {
        return Ok(None);
    };
    if fc.kind() != "haproxy" {
        return Err(crate::error::Error::Harness(format!(
            "this strategy runs haproxy as its own front server: drop [front], or write `kind = \"haproxy\"` in it (not {:?})",
            fc.kind()
        )));
    }
    if !fc.is_tls() {
        return Ok(None);
    }
    let files = crate::front::tls::generate(&ctx.app.site().run_dir.join("tls"))?;
    let bind = crate::front::haproxy::TlsBind {
        crt: crate::front::tls::cert_with_key(&files)?,
        ca: files.ca.clone(),
        alpn: if fc.is_http2() {
            crate::front::haproxy::ALPN_H2.to_vec()
        } else {
            crate::front::haproxy::ALPN.to_vec()
        },
    };
    let trust = crate::load::tls::TlsSettings {
        server_name: crate::front::tls::SERVER_NAME.into(),
        ca_file: Some(files.ca),
        insecure_skip_verify: false,
    };
    Ok(Some((bind, trust)))
}

/// Whether a strategy that runs haproxy itself serves HTTP/2 at its front
/// (`[front] kind = "haproxy"`, `http2 = true`).
pub(crate) fn haproxy_front_http2(ctx: &Ctx) -> bool {
    ctx.front_config.as_ref().is_some_and(|fc| fc.is_http2())
}

/// Removes the run's test hosts (network namespaces and their links) once their
/// processes are gone, as the step "test hosts removed"; one that cannot be removed
/// goes to `ctx.not_cleaned_up`, so the run does not pass.
pub async fn remove_test_hosts(ctx: &mut Ctx, mut hosts: TestHosts) {
    let t = ctx.steps.now_ms();
    let names: Vec<&str> = hosts.hosts().iter().map(|h| h.name.as_str()).collect();
    let names = names.join(" ");
    let removed = tokio::task::spawn_blocking(move || hosts.remove()).await;
    let failed = match removed {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("test hosts not removed: {names}: {e}")),
    };
    let detail = match &failed {
        None => format!("{names}: no namespace or link left"),
        Some(e) => format!("{names}: {e}"),
    };
    ctx.steps.record("test hosts removed", t, detail);
    if let Some(e) = failed {
        ctx.not_cleaned_up.push(format!(
            "{e} (remove each with `ip link del NAME; ip netns del NAME`)"
        ));
    }
}

/// A reload strategy.
#[async_trait]
pub trait Strategy: Send {
    /// The strategy's name as written in scenarios.
    fn name(&self) -> &'static str;

    /// Starts `version` and returns where the load should connect, once it serves.
    async fn start(&mut self, ctx: &mut Ctx, version: &str) -> Result<Target>;

    /// Moves the running topology to `version`, recording each step.
    async fn reload(&mut self, ctx: &mut Ctx, version: &str) -> Result<()>;

    /// Stops everything it started (gracefully where it can, killed after a timeout).
    async fn shutdown(&mut self, ctx: &mut Ctx);
}

/// Builds the strategy a (validated) scenario names, from the options its registry
/// entry parsed; `base_dir` is the scenario file's directory (a deploy command runs there).
pub fn build(reload: &ReloadConfig, base_dir: &Path) -> Box<dyn Strategy> {
    reload.options.build(&Build {
        base_dir,
        step_timeout: reload.step_timeout.as_ref().map(|t| t.get_ref().0),
    })
}

/// What a strategy is built from besides its own options.
#[derive(Debug, Clone, Copy)]
pub struct Build<'a> {
    /// The scenario file's directory.
    pub base_dir: &'a Path,
    /// `reload.step_timeout` as given (each strategy has its own default).
    pub step_timeout: Option<Duration>,
}

/// What a strategy brings to the [`REGISTRY`]: its name, the app kinds it works
/// with, its own `[reload]` options (with their defaults, checks and docs, in its
/// file) and how they build it.
pub trait Spec: 'static {
    /// The name in `reload.strategy`.
    const NAME: &'static str;
    /// The `app.kind` values it works with.
    const APP_KINDS: &'static [&'static str];
    /// One line: its mechanism (the reference and `explain` show it).
    const SUMMARY: &'static str;
    /// The docs of its own `[reload]` keys: exactly the keys of [`Spec::Options`]
    /// (a unit test checks it).
    const OPTIONS: &'static [OptionDoc];
    /// The error to show when the scenario has no `[front]` and the strategy needs one.
    const NEEDS_FRONT: Option<&'static str> = None;
    /// The `front.kind` its `[front]` must name: `nginx` (started by [`expose`]), or
    /// `haproxy` for a strategy that runs haproxy as its own front.
    const FRONT_KIND: &'static str = "nginx";
    /// What must be installed besides the app kind's and the front server's tools.
    const TOOLS: &'static [Tool] = &[];
    /// Its own `[reload]` keys: a serde struct with `deny_unknown_fields` (the common
    /// keys `strategy`, `interval` and `step_timeout` are taken out before it sees the
    /// table), `toml::Spanned` where an error must point at a value.
    type Options: DeserializeOwned + std::fmt::Debug + Send + Sync + 'static;
    /// Checks what serde cannot (allowed values, combinations), with errors located by `at`.
    fn validate(_opts: &Self::Options, _at: &ReloadTable) -> Result<()> {
        Ok(())
    }
    /// The strategy, with `opts`' defaults filled in.
    fn build(opts: &Self::Options, b: &Build) -> Box<dyn Strategy>;
    /// The programs its options name (`zdt-check check` resolves them).
    fn programs(_opts: &Self::Options) -> Programs<'_> {
        Vec::new()
    }
}

/// A strategy's parsed and checked options, kept on the scenario until the run builds
/// the strategy (shared by the runs of a sweep or a `compare --repeat`).
pub trait StrategyOptions: std::fmt::Debug + Send + Sync {
    /// The strategy these options configure.
    fn build(&self, b: &Build) -> Box<dyn Strategy>;
    /// See [`Spec::programs`].
    fn programs(&self) -> Programs<'_>;
}

struct Parsed<S: Spec>(S::Options);

impl<S: Spec> std::fmt::Debug for Parsed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Spec> StrategyOptions for Parsed<S> {
    fn build(&self, b: &Build) -> Box<dyn Strategy> {
        S::build(&self.0, b)
    }
    fn programs(&self) -> Programs<'_> {
        S::programs(&self.0)
    }
}

/// One registered strategy.
pub struct Entry {
    /// The name in `reload.strategy`.
    pub name: &'static str,
    /// The `app.kind` values it works with.
    pub app_kinds: &'static [&'static str],
    /// The error to show when it needs a `[front]` and the scenario has none.
    pub needs_front: Option<&'static str>,
    /// The `front.kind` its `[front]` must name ([`Spec::FRONT_KIND`]).
    pub front_kind: &'static str,
    /// What must be installed besides the app kind's and the front server's tools.
    pub tools: &'static [Tool],
    /// One line: its mechanism.
    pub summary: &'static str,
    /// The docs of its own `[reload]` keys (exactly [`Entry::keys`]).
    pub options: &'static [OptionDoc],
    keys: fn() -> &'static [&'static str],
    parse: fn(&ReloadTable) -> Result<Arc<dyn StrategyOptions>>,
}

impl Entry {
    /// Its own `[reload]` keys (besides the common ones).
    pub fn keys(&self) -> &'static [&'static str] {
        (self.keys)()
    }

    /// Parses and checks its options from the scenario's `[reload]` table.
    pub fn parse_options(&self, table: &ReloadTable) -> Result<Arc<dyn StrategyOptions>> {
        (self.parse)(table)
    }
}

/// The registry line for strategy `S`.
const fn entry<S: Spec>() -> Entry {
    Entry {
        name: S::NAME,
        app_kinds: S::APP_KINDS,
        needs_front: S::NEEDS_FRONT,
        front_kind: S::FRONT_KIND,
        tools: S::TOOLS,
        summary: S::SUMMARY,
        options: S::OPTIONS,
        keys: keys_of::<S::Options>,
        parse: parse_options::<S>,
    }
}

/// Every strategy, one line each, in the order messages and docs list them.
pub const REGISTRY: &[Entry] = &[
    entry::<symlink_swap::SymlinkSwap>(),
    entry::<naive_restart::NaiveRestart>(),
    entry::<nginx_reload::NginxReload>(),
    entry::<rolling_kill::RollingKill>(),
    entry::<gunicorn_hup::GunicornHup>(),
    entry::<gunicorn_usr2::GunicornUsr2>(),
    entry::<uwsgi_chain::UwsgiChain>(),
    entry::<uwsgi_fastrouter::UwsgiFastrouter>(),
    entry::<uvicorn_hup::UvicornHup>(),
    entry::<granian_hup::GranianHup>(),
    entry::<hypercorn_hup::HypercornHup>(),
    entry::<haproxy_pool::HaproxyPool>(),
    entry::<haproxy_reload::HaproxyReload>(),
    entry::<reuseport::Reuseport>(),
    entry::<command::Command>(),
];

/// The registered strategy called `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// The keys every strategy accepts (read by the scenario itself).
pub fn common_keys() -> &'static [&'static str] {
    keys_of::<ReloadConfig<()>>()
}

/// The common `[reload]` keys, skipped by a strategy's options pass.
struct ReloadCommon;

impl Common for ReloadCommon {
    fn keys() -> &'static [&'static str] {
        common_keys()
    }
}

/// Second pass over the scenario text: only `reload`, as `S`'s options.
fn parse_options<S: Spec>(table: &ReloadTable) -> Result<Arc<dyn StrategyOptions>> {
    #[derive(Deserialize)]
    struct Doc<O> {
        reload: Without<ReloadCommon, O>,
    }
    let doc: Doc<S::Options> = toml::from_str(table.src()).map_err(|e| {
        table.unknown_key(
            &e,
            "strategy",
            common_keys(),
            keys_of::<S::Options>(),
            |key| {
                REGISTRY
                    .iter()
                    .filter(|x| x.keys().contains(&key))
                    .map(|x| x.name)
                    .collect()
            },
        )
    })?;
    S::validate(&doc.reload.0, table)?;
    Ok(Arc::new(Parsed::<S>(doc.reload.0)))
}

/// `stop_old` values (symlink-swap, naive-restart, nginx-reload).
pub const STOP_OLD: &[&str] = &["drain", "kill"];

/// How a validated `stop_old` value stops the old instance.
pub fn stop_how(v: &Spanned<String>) -> StopHow {
    match v.get_ref().as_str() {
        "kill" => StopHow::Kill,
        _ => StopHow::Drain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<crate::scenario::Scenario> {
        crate::scenario::parse(Path::new("s.toml"), src)
    }

    /// A scenario for `e` with every common key (and a front server if it needs one).
    fn minimal(e: &Entry) -> String {
        let kind = e.app_kinds[0];
        let front = if e.needs_front.is_some() || kind == "flup" {
            "[front]\n"
        } else {
            ""
        };
        format!(
            "[app]\nkind = \"{kind}\"\n{front}[reload]\nstrategy = \"{}\"\ninterval = \"2s\"\nstep_timeout = \"3s\"\n",
            e.name
        )
    }

    #[test]
    fn every_strategy_takes_the_common_keys_and_builds_itself() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len(), "names are unique");
        for e in REGISTRY {
            assert!(!e.app_kinds.is_empty(), "{}", e.name);
            for k in e.keys() {
                assert!(!common_keys().contains(k), "{}: {k} is common", e.name);
            }
            match parse(&minimal(e)) {
                Ok(s) => {
                    assert_eq!(
                        s.reload
                            .step_timeout
                            .as_ref()
                            .unwrap()
                            .get_ref()
                            .0
                            .as_secs(),
                        3
                    );
                    assert_eq!(s.reload.interval.unwrap().0.as_secs(), 2);
                    let strat = build(&s.reload, Path::new("."));
                    assert_eq!(strat.name(), e.name);
                }
                // A strategy with a required option (command) says so, at the strategy line.
                Err(err) => {
                    let err = err.to_string();
                    assert!(err.starts_with("s.toml:"), "{err}");
                    assert!(
                        !err.contains("unknown field") && !err.contains("not an option"),
                        "{}: {err}",
                        e.name
                    );
                }
            }
        }
    }

    #[test]
    fn keys_come_from_the_options_types() {
        assert_eq!(
            common_keys(),
            ["strategy", "interval", "deploys", "step_timeout"]
        );
        let swap = find("symlink-swap").unwrap();
        assert_eq!(
            swap.keys(),
            ["switch", "unlink_gap", "wait_ready", "settle", "stop_old"]
        );
        assert!(find("gunicorn-hup").unwrap().keys().is_empty());
        assert!(find("teleport").is_none());
    }

    #[test]
    fn options_keep_their_values_and_spans() {
        let s = parse("[reload]\nstrategy = \"symlink-swap\"\nswitch = \"unlink-then-link\"\nunlink_gap = \"50ms\"\nsettle = \"1s\"\n").unwrap();
        let opts = format!("{:?}", s.reload.options);
        assert!(
            opts.contains("unlink-then-link") && opts.contains("50ms"),
            "{opts}"
        );
        // Inline and dotted tables work the same.
        let e = parse("reload = { strategy = \"naive-restart\", stop_old = \"nope\" }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:1:51: `reload.stop_old`: unknown value \"nope\""),
            "{e}"
        );
        let e = parse(
            "reload.strategy = \"uwsgi-chain\"\nreload.trigger = \"x\"\n[app]\nkind = \"uwsgi\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml:2:18: `reload.trigger`: unknown value"),
            "{e}"
        );
    }

    #[test]
    fn defaults_are_checked_against_each_other() {
        let base = "[app]\nkind = \"uwsgi\"\n[front]\n[reload]\nstrategy = \"uwsgi-fastrouter\"\n";
        // minimum_active alone is checked against the default of 3 vassals.
        let e = parse(&format!("{base}minimum_active = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:6:18: `reload.minimum_active`: must be less than vassals (3)"),
            "{e}"
        );
        let e = parse(&format!("{base}vassals = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:6:11: `reload.vassals`: must be at least 2"),
            "{e}"
        );
        parse(&format!("{base}vassals = 5\nminimum_active = 4\n")).unwrap();
    }

    /// Each strategy documents exactly its own keys, and the common docs exactly the
    /// common keys: the generated reference cannot drift from the `Options` types.
    #[test]
    fn every_entry_documents_exactly_its_keys() {
        use crate::config::option_doc::{doc_keys, sorted};
        assert_eq!(doc_keys(config::COMMON_DOCS), sorted(common_keys()));
        for e in REGISTRY {
            assert_eq!(doc_keys(e.options), sorted(e.keys()), "{}", e.name);
            assert!(
                !e.summary.is_empty() && !e.summary.contains('\n'),
                "{}",
                e.name
            );
        }
    }
}
