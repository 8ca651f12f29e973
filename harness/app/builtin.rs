//! The built-in fixture as an app instance: `zdt-check fixture ...` as a child process.

use crate::config::OptionDoc;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::AppConfig;
use super::{AppEnv, AppKind, Launch, Spawned};
use crate::config::{AppTable, Dur};
use crate::error::Result;
use crate::load::Endpoint;
use crate::sys::child::Child;

/// The `builtin` app kind: the fixture server inside this binary.
pub struct Builtin;

/// `[app]` options of the builtin fixture (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// On SIGTERM: `drain` (graceful, default) or `exit` (drop everything: a
    /// misbehaving app).
    pub on_term: Spanned<String>,
    /// Bind the socket at once, listen only after the startup delay (default false).
    pub bind_early: bool,
    /// TCP only: bind with SO_REUSEPORT, so a new instance can bind the same port
    /// beside the old one (default false; the `reuseport` strategy needs it).
    pub reuse_port: bool,
    /// On a drain, stop accepting at once but close the listener only this long
    /// after (default 0s): connections queued on it meanwhile are reset when it
    /// closes, unless `net.ipv4.tcp_migrate_req` moves them to another listener.
    pub close_listener_after: Dur,
    /// Close a keep-alive connection idle this long between two requests, without
    /// reading what arrived (absent: never).
    pub keep_alive_timeout: Option<Spanned<Dur>>,
    /// When the keep-alive timeout closes: `timer` (default) or `with-next-request`.
    pub idle_close: Spanned<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            on_term: Spanned::new(0..0, "drain".into()),
            bind_early: false,
            reuse_port: false,
            close_listener_after: Dur::ms(0),
            keep_alive_timeout: None,
            idle_close: Spanned::new(0..0, "timer".into()),
        }
    }
}

impl AppKind for Builtin {
    const WEBSOCKETS: bool = true;
    const NAME: &'static str = "builtin";
    const SUMMARY: &'static str =
        "the fixture server built into zdt-check (`zdt-check fixture`), needing nothing installed";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new(
            "on_term",
            "`\"drain\"`",
            "on SIGTERM `drain` (graceful) or `exit` (drop everything: a misbehaving app)",
        ),
        OptionDoc::new(
            "bind_early",
            "`false`",
            "bind the socket at once, listen only after the startup delay",
        ),
        OptionDoc::new(
            "reuse_port",
            "`false`",
            "TCP only: bind with SO_REUSEPORT, so a new instance can bind the same port beside the old one (the `reuseport` strategy needs it)",
        ),
        OptionDoc::new(
            "close_listener_after",
            "`\"0s\"`",
            "on a drain, stop accepting at once but close the listener only this long after: connections queued on it meanwhile are reset when it closes, unless `net.ipv4.tcp_migrate_req` moves them to another SO_REUSEPORT listener",
        ),
        OptionDoc::new(
            "keep_alive_timeout",
            "none (never)",
            "close a keep-alive connection once it has been idle this long between two requests, as app servers do (gunicorn `--keep-alive`); the close does not read what arrived, so a request that meets it is reset, as on a real server (not for websockets: an open websocket idle this long is closed too)",
        ),
        OptionDoc::new(
            "idle_close",
            "`\"timer\"`",
            "when `keep_alive_timeout` closes: `timer` (once idle for the timeout, as a server's timer does: a request crosses the close only by chance) or `with-next-request` (when the next request arrives on a connection idle for at least the timeout, left unread and reset: the timer and the request cross every time, the race's worst case made deterministic; a connection nobody reuses stays open)",
        ),
    ];
    type Options = Options;

    const VERSION_FILE: bool = false;

    fn validate(o: &Options, app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        at.one_of(&o.on_term, "app.on_term", &["drain", "exit"])?;
        at.one_of(
            &o.idle_close,
            "app.idle_close",
            &["timer", "with-next-request"],
        )?;
        if let Some(t) = &o.keep_alive_timeout {
            let d = t.get_ref().0;
            if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(3600) {
                return Err(at.error(
                    t.span(),
                    "app.keep_alive_timeout",
                    "must be between 1ms and 1h",
                ));
            }
        } else if o.idle_close.get_ref() != "timer" {
            return Err(at.error(
                o.idle_close.span(),
                "app.idle_close",
                "needs app.keep_alive_timeout",
            ));
        }
        if o.reuse_port && app.socket() != "tcp" {
            let msg = "needs app.socket = \"tcp\" (SO_REUSEPORT groups are TCP listeners)";
            return Err(match at.value_span("reuse_port") {
                Some(span) => at.error(span, "app.reuse_port", msg),
                None => at.missing("app.reuse_port", msg),
            });
        }
        Ok(())
    }

    fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        spawn(o, env, l.name, l.endpoint, l.version, l.log).map(Spawned::from)
    }
}

/// The `--listen` argument for an endpoint.
pub fn listen_arg(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp(a) => format!("tcp:{a}"),
        Endpoint::Unix(p) => format!("unix:{}", p.display()),
    }
}

/// The file whose existence makes an instance's `/_status` answer 404: next to its
/// log (`<slot>.log` → `<slot>.nolb`).
pub fn status_404_file(log: &Path) -> std::path::PathBuf {
    log.with_extension("nolb")
}

/// Spawns the fixture serving `version` on `endpoint`.
pub fn spawn(
    o: &Options,
    env: &AppEnv,
    name: &str,
    endpoint: &Endpoint,
    version: &str,
    log: &Path,
) -> Result<Child> {
    let c = &env.config;
    let mut args = vec![
        "fixture".to_string(),
        "--listen".into(),
        listen_arg(endpoint),
        "--version".into(),
        version.to_string(),
        "--startup-delay".into(),
        format!("{}ms", c.startup_delay().as_millis()),
        "--on-term".into(),
        o.on_term.get_ref().clone(),
        "--drain-timeout".into(),
        format!("{}ms", c.stop_timeout.0.as_millis()),
    ];
    if o.bind_early {
        args.push("--bind-early".into());
    }
    if o.reuse_port {
        args.push("--reuse-port".into());
    }
    if !o.close_listener_after.0.is_zero() {
        args.extend([
            "--close-listener-after".into(),
            format!("{}ms", o.close_listener_after.0.as_millis()),
        ]);
    }
    if let Some(t) = &o.keep_alive_timeout {
        args.extend([
            "--keep-alive-timeout".into(),
            format!("{}ms", t.get_ref().0.as_millis()),
            "--idle-close".into(),
            o.idle_close.get_ref().clone(),
        ]);
    }
    // The slot's out-of-rotation switch (haproxy-pool's take_out = "404").
    args.extend([
        "--status-404-if".into(),
        status_404_file(log).display().to_string(),
    ]);
    Child::spawn(name, &env.exe, &args, &[], &env.run_dir, log)
}
