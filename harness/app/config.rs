//! `[app]`: the keys every app kind has, and the kind's own options once its
//! registry entry has read them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::AppOptions;
use crate::config::{Dur, OptionDoc};

/// The docs of the keys every app kind has (exactly the keys of [`AppConfig`]; a
/// unit test checks it). `socket` and `startup_delay` apply only to the kinds whose
/// instances zdt-check starts (`app::INSTANCE_KEYS`).
pub const COMMON_DOCS: &[OptionDoc] = &[
    OptionDoc::new("kind", "`\"builtin\"`", "the app kind: one of the kinds below"),
    OptionDoc::new("socket", "`\"unix\"`", "what instances listen on: `unix` (a socket in the run dir) or `tcp` (a free loopback port; not for flup)"),
    OptionDoc::new("startup_delay", "`\"1s\"`", "how long an instance takes to start (models a slow Django import)"),
    OptionDoc::new("versions", "`[\"v1\", \"v2\"]`", "the first is started; each reload moves to the next (external: absent means discovered)"),
    OptionDoc::new("ready_timeout", "`\"30s\"`", "longest an instance may take to answer its health probe"),
    OptionDoc::new("status_path", "`\"/_status\"`", "what the health probe asks for"),
    OptionDoc::new("stop_timeout", "`\"10s\"`", "how long a stopping instance may drain before it is killed"),
];

/// `[app]`: which app server runs the app, the keys every app kind has, and the
/// kind's own options. Those are each kind's `Options` type (`harness/app/<kind>.rs`),
/// read by its registry entry (`app::KINDS`) in a second pass over the file (this
/// struct ignores their keys).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, bound(deserialize = "A: Default", serialize = ""))]
pub struct AppConfig<A = Arc<dyn AppOptions>> {
    /// The app kind (see `app::KINDS`): `builtin` (the fixture server in this binary),
    /// `gunicorn`, `uwsgi`, `flup` (FastCGI), or `external` (the user's own stack,
    /// brought up by `start` or already running).
    pub kind: Spanned<String>,
    /// `unix` (default) or `tcp`: what the app instances listen on (not for an
    /// external app; see [`AppConfig::socket`]).
    pub socket: Option<Spanned<String>>,
    /// How long an instance takes to start, modelling a slow app import (default 1s;
    /// not for an external app; see [`AppConfig::startup_delay`]).
    pub startup_delay: Option<Spanned<Dur>>,
    /// Versions: the first is started, each reload moves to the next. Absent for an
    /// `external` app: versions are discovered (see [`AppConfig::versions`]).
    pub versions: Option<Spanned<Vec<String>>>,
    /// Longest an instance may take to become ready.
    pub ready_timeout: Dur,
    /// Path the readiness probe asks for.
    pub status_path: String,
    /// How long a stopping instance may drain before it is killed.
    pub stop_timeout: Dur,
    /// The kind's own options, parsed and checked.
    #[serde(skip)]
    pub options: A,
}

/// Versions a built-in app kind runs when the scenario lists none.
static DEFAULT_VERSIONS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| vec!["v1".into(), "v2".into()]);

impl<A> AppConfig<A> {
    /// The same settings with the kind's parsed options (pass 1 holds `()` there).
    pub fn with_options<B>(self, options: B) -> AppConfig<B> {
        AppConfig {
            kind: self.kind,
            socket: self.socket,
            startup_delay: self.startup_delay,
            versions: self.versions,
            ready_timeout: self.ready_timeout,
            status_path: self.status_path,
            stop_timeout: self.stop_timeout,
            options,
        }
    }

    /// The user's own stack (`kind = "external"`).
    pub fn is_external(&self) -> bool {
        self.kind.get_ref() == "external"
    }

    /// The versions in deploy order; empty when they are discovered (an external app
    /// with no `versions`): then whatever serves first must be replaced, deploy after
    /// deploy, by exactly one version not seen before.
    pub fn versions(&self) -> &[String] {
        match &self.versions {
            Some(v) => v.get_ref(),
            None if self.is_external() => &[],
            None => &DEFAULT_VERSIONS,
        }
    }

    /// `app.socket`: `unix` or `tcp`.
    pub fn socket(&self) -> &str {
        self.socket
            .as_ref()
            .map_or("unix", |s| s.get_ref().as_str())
    }

    /// `app.startup_delay`.
    pub fn startup_delay(&self) -> std::time::Duration {
        self.startup_delay
            .as_ref()
            .map_or(std::time::Duration::from_millis(1000), |d| d.get_ref().0)
    }
}

impl<A: Default> Default for AppConfig<A> {
    fn default() -> Self {
        AppConfig {
            kind: Spanned::new(0..0, "builtin".into()),
            socket: None,
            startup_delay: None,
            versions: None,
            ready_timeout: Dur::ms(30_000),
            status_path: "/_status".into(),
            stop_timeout: Dur::ms(10_000),
            options: A::default(),
        }
    }
}
