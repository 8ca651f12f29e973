//! `[front]`: the front server between the load and the app (nginx, or the haproxy a
//! haproxy strategy runs), its tuning and its checks.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::{one_of, Dur, Locator};
use crate::error::Result;

/// What `front.next_upstream` may hold: nginx's `proxy_next_upstream` tokens.
const NEXT_UPSTREAM: &[&str] = &[
    "off",
    "error",
    "timeout",
    "invalid_header",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_403",
    "http_404",
    "http_429",
    "non_idempotent",
];

/// The front server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontConfig {
    /// `nginx`, or `haproxy` (only with a strategy that runs haproxy: then only `tls`
    /// and `http2` apply).
    pub kind: Spanned<String>,
    /// nginx worker processes.
    pub worker_processes: Spanned<u32>,
    /// Where nginx listens: a loopback `address:port` (absent: a free port).
    pub listen: Option<Spanned<String>>,
    /// nginx's `worker_shutdown_timeout`: how long old workers may keep connections
    /// (websockets, long requests) after a reload before nginx closes them (absent:
    /// unset, old workers wait for every connection to end).
    pub worker_shutdown_timeout: Option<Spanned<Dur>>,
    /// Idle connections to the app each nginx worker keeps for reuse (`keepalive N`
    /// in the upstream; 0, the default: a new upstream connection per request).
    pub upstream_keepalive: Spanned<u32>,
    /// nginx's upstream `keepalive_timeout`: how long an idle upstream connection is
    /// kept before nginx closes it (absent: nginx's default, 60s). Needs
    /// `upstream_keepalive`. Shorter than the app's own keep-alive timeout, nginx
    /// never reuses a connection the app is closing.
    pub upstream_keepalive_timeout: Option<Spanned<Dur>>,
    /// `proxy_next_upstream`: `off` (the default here: nginx retries nothing, so the
    /// client sees every failure) or nginx's own tokens, e.g. `error timeout` (nginx's
    /// default), `error timeout non_idempotent`.
    pub next_upstream: Spanned<String>,
    /// Serve https: a CA and a server certificate made for the run, and the load
    /// trusting that CA (unless `load.ca_file` says otherwise).
    pub tls: Spanned<bool>,
    /// Serve HTTP/2 (nginx: `listen ... http2`; haproxy: `alpn h2,http/1.1`, or
    /// `proto h2` on a plain bind): negotiated by ALPN with `tls`, else h2c with prior
    /// knowledge only (the front then speaks no HTTP/1.1 on that port).
    pub http2: Spanned<bool>,
}

/// The front server kinds that can serve https.
pub const TLS_KINDS: &[&str] = &["nginx", "haproxy"];

/// The front server kinds.
pub const KINDS: &[&str] = &["nginx", "haproxy"];

impl Default for FrontConfig {
    fn default() -> Self {
        FrontConfig {
            kind: Spanned::new(0..0, "nginx".into()),
            worker_processes: Spanned::new(0..0, 1),
            listen: None,
            worker_shutdown_timeout: None,
            upstream_keepalive: Spanned::new(0..0, 0),
            upstream_keepalive_timeout: None,
            next_upstream: Spanned::new(0..0, "off".into()),
            tls: Spanned::new(0..0, false),
            http2: Spanned::new(0..0, false),
        }
    }
}

impl FrontConfig {
    /// Whether the front serves https.
    pub fn is_tls(&self) -> bool {
        *self.tls.get_ref()
    }

    /// Whether the front serves HTTP/2.
    pub fn is_http2(&self) -> bool {
        *self.http2.get_ref()
    }

    /// The front server kind (`nginx` or `haproxy`).
    pub fn kind(&self) -> &str {
        self.kind.get_ref()
    }

    /// The keys given that only nginx takes, with where each is (a default value has
    /// an empty span).
    fn nginx_keys(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut keys = vec![
            ("front.worker_processes", self.worker_processes.span()),
            ("front.upstream_keepalive", self.upstream_keepalive.span()),
            ("front.next_upstream", self.next_upstream.span()),
        ];
        keys.extend(self.listen.as_ref().map(|l| ("front.listen", l.span())));
        keys.extend(
            self.worker_shutdown_timeout
                .as_ref()
                .map(|t| ("front.worker_shutdown_timeout", t.span())),
        );
        keys.extend(
            self.upstream_keepalive_timeout
                .as_ref()
                .map(|t| ("front.upstream_keepalive_timeout", t.span())),
        );
        keys.retain(|(_, span)| !span.is_empty());
        keys
    }

    /// Checks what serde cannot: allowed values and ranges, located by `loc`.
    pub fn validate(&self, loc: &Locator) -> Result<()> {
        one_of(loc, &self.kind, "front.kind", KINDS)?;
        if self.kind() == "haproxy" {
            if let Some((key, span)) = self.nginx_keys().into_iter().next() {
                return Err(loc.error(
                    span,
                    Some(key),
                    "an nginx key: a haproxy front takes only `kind`, `tls` and `http2` (the haproxy strategy sets the rest in [reload])",
                ));
            }
        }
        if *self.tls.get_ref() && !TLS_KINDS.contains(&self.kind.get_ref().as_str()) {
            return Err(loc.error(
                self.tls.span(),
                Some("front.tls"),
                &format!(
                    "front kind {:?} cannot serve TLS here (only {})",
                    self.kind.get_ref(),
                    TLS_KINDS.join(", ")
                ),
            ));
        }
        if *self.http2.get_ref() && !TLS_KINDS.contains(&self.kind.get_ref().as_str()) {
            return Err(loc.error(
                self.http2.span(),
                Some("front.http2"),
                &format!(
                    "front kind {:?} cannot serve HTTP/2 here (only {})",
                    self.kind.get_ref(),
                    TLS_KINDS.join(", ")
                ),
            ));
        }
        if !(1..=64).contains(self.worker_processes.get_ref()) {
            return Err(loc.error(
                self.worker_processes.span(),
                Some("front.worker_processes"),
                "must be between 1 and 64",
            ));
        }
        if let Some(l) = &self.listen {
            front_listen(l).map_err(|why| loc.error(l.span(), Some("front.listen"), &why))?;
        }
        if *self.upstream_keepalive.get_ref() > 10_000 {
            return Err(loc.error(
                self.upstream_keepalive.span(),
                Some("front.upstream_keepalive"),
                "must be between 0 (off) and 10000",
            ));
        }
        let tokens: Vec<&str> = self.next_upstream.get_ref().split_whitespace().collect();
        let bad = tokens.iter().find(|t| !NEXT_UPSTREAM.contains(t));
        if tokens.is_empty() || bad.is_some() || (tokens.contains(&"off") && tokens.len() > 1) {
            return Err(loc.error(
            self.next_upstream.span(),
            Some("front.next_upstream"),
            &format!(
                "{}expected `off` or nginx's proxy_next_upstream tokens separated by spaces ({}), e.g. \"error timeout\"",
                bad.map(|b| format!("unknown token {b:?}; ")).unwrap_or_default(),
                NEXT_UPSTREAM[1..].join(", ")
            ),
        ));
        }
        if let Some(t) = &self.upstream_keepalive_timeout {
            let d = t.get_ref().0;
            let field = Some("front.upstream_keepalive_timeout");
            if *self.upstream_keepalive.get_ref() == 0 {
                return Err(loc.error(
                    t.span(),
                    field,
                    "needs front.upstream_keepalive (without it nginx keeps no idle upstream connection)",
                ));
            }
            if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(3600) {
                return Err(loc.error(t.span(), field, "must be between 1ms and 1h"));
            }
        }
        if let Some(t) = &self.worker_shutdown_timeout {
            let d = t.get_ref().0;
            if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(3600) {
                return Err(loc.error(
                    t.span(),
                    Some("front.worker_shutdown_timeout"),
                    "must be between 1ms and 1h",
                ));
            }
        }
        Ok(())
    }
}

/// `[front] listen`: a loopback address with a port (every listener zdt-check starts
/// stays on loopback).
pub fn front_listen(v: &Spanned<String>) -> std::result::Result<std::net::SocketAddr, String> {
    if let Some(port) = crate::load::target::port_of(v.get_ref()) {
        if port != "0" {
            crate::load::target::check_port(port)?;
        }
    }
    let addr: std::net::SocketAddr = v.get_ref().parse().map_err(|_| {
        format!(
            "{:?} is not an address:port (e.g. \"127.0.0.1:8080\")",
            v.get_ref()
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: zdt-check listens on loopback only",
            addr.ip()
        ));
    }
    if addr.port() == 0 {
        return Err("port 0: leave `listen` out for a free port".into());
    }
    Ok(addr)
}
