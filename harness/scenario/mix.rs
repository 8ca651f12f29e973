//! `[[load.mix]]`: the request kinds a run sends, as real clients do (GETs, POSTs
//! with bodies, slow uploads, long requests and streams, fresh and reused
//! connections), each drawn by weight from a seeded generator.
//!
//! With no mix the load sends `load.path` as a plain GET, as it always did.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{request_path_problem, LoadConfig};
use crate::config::{Dur, Locator};
use crate::error::Error;

/// Most kinds in one mix (a kind's index travels in every sample as a byte).
pub const MAX_KINDS: usize = 16;
/// Largest request body, bytes.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Longest slow upload.
pub const MAX_UPLOAD: Duration = Duration::from_secs(60);
/// Methods a kind may use.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Headers the load generator writes itself: a kind may not set them.
const OWN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// One request kind of `[[load.mix]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(from = "Written")]
pub struct MixEntry {
    /// Its name in reports (letters, digits, `-`, `_`; unique in the mix).
    pub name: Spanned<String>,
    /// Relative share of requests (default 1).
    pub weight: Spanned<u32>,
    /// HTTP method (default `GET`).
    pub method: Spanned<String>,
    /// Request path with query (default: `load.path`).
    pub path: Option<Spanned<String>>,
    /// Extra request headers.
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Request body size in bytes (default 0: no body).
    pub body: Option<Spanned<u64>>,
    /// Send the body slowly, spread over this long (a slow client's upload).
    pub upload: Option<Spanned<Dur>>,
    /// Reuse connections for this kind (default: `load.keep_alive`); kinds of both
    /// modes in one mix give fresh and reused connections side by side.
    pub keep_alive: Option<bool>,
    /// Expect the app to echo the body's length and CRC-32 (`X-Body-Length`,
    /// `X-Body-Crc32`, as the sample apps do); a 2xx without a match is `bad_body`.
    pub echo: bool,
    /// Where `echo` is written, if it is (its errors point there).
    #[serde(skip)]
    pub echo_at: Option<Range<usize>>,
    /// `h1`, `h2` (ALPN over TLS) or `h2c` (prior knowledge) (default: `load.protocol`);
    /// kinds of both in one mix give h1 and h2 side by side.
    pub protocol: Option<Spanned<String>>,
}

/// A [`MixEntry`] as written in the file: the same keys, `echo` with its location.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    name: Spanned<String>,
    #[serde(default = "one")]
    weight: Spanned<u32>,
    #[serde(default = "get")]
    method: Spanned<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    headers: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    body: Option<Spanned<u64>>,
    #[serde(default)]
    upload: Option<Spanned<Dur>>,
    #[serde(default)]
    keep_alive: Option<bool>,
    #[serde(default)]
    echo: Option<Spanned<bool>>,
    #[serde(default)]
    protocol: Option<Spanned<String>>,
}

impl From<Written> for MixEntry {
    fn from(w: Written) -> MixEntry {
        MixEntry {
            name: w.name,
            weight: w.weight,
            method: w.method,
            path: w.path,
            headers: w.headers,
            body: w.body,
            upload: w.upload,
            keep_alive: w.keep_alive,
            echo: w.echo.as_ref().is_some_and(|e| *e.get_ref()),
            echo_at: w.echo.map(|e| e.span()),
            protocol: w.protocol,
        }
    }
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

fn get() -> Spanned<String> {
    Spanned::new(0..0, "GET".into())
}

impl MixEntry {
    /// The request path: its own, or the load's.
    pub fn path<'a>(&'a self, load: &'a LoadConfig) -> &'a str {
        self.path.as_ref().unwrap_or(&load.path).get_ref()
    }

    /// Whether it reuses connections.
    pub fn keep_alive(&self, load: &LoadConfig) -> bool {
        self.keep_alive.unwrap_or(load.keep_alive)
    }

    /// The protocol it speaks: its own, or the load's.
    pub fn protocol(&self, load: &LoadConfig) -> crate::load::Protocol {
        crate::load::Protocol::named(self.protocol.as_ref().unwrap_or(&load.protocol).get_ref())
    }

    /// The body's size, bytes.
    pub fn body_len(&self) -> u64 {
        self.body.as_ref().map_or(0, |b| *b.get_ref())
    }

    /// The extra headers, in name order.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.headers.as_ref().map_or_else(Vec::new, |h| {
            h.get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }

    /// The slow upload's length, if any.
    pub fn upload(&self) -> Option<Duration> {
        self.upload.as_ref().map(|u| u.get_ref().0)
    }
}

/// Checks every kind of the mix, naming `load.mix[i].field` and its line; each
/// problem found goes to `problems` (every one, not just the first).
pub(super) fn validate(load: &LoadConfig, loc: &Locator, problems: &mut Vec<Error>) {
    let mix = &load.mix;
    if mix.len() > MAX_KINDS {
        problems.push(loc.error(
            mix[MAX_KINDS].name.span(),
            Some("load.mix"),
            &format!("{} kinds: at most {MAX_KINDS}", mix.len()),
        ));
        return;
    }
    for (i, k) in mix.iter().enumerate() {
        let field = |f: &str| format!("load.mix[{i}].{f}");
        let name = k.name.get_ref();
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            problems.push(loc.error(
                k.name.span(),
                Some(&field("name")),
                "must be 1 to 32 letters, digits, `-` or `_`",
            ));
        }
        if mix[..i].iter().any(|o| o.name.get_ref() == name) {
            problems.push(loc.error(
                k.name.span(),
                Some(&field("name")),
                &format!("kind {name:?} is named twice in the mix"),
            ));
        }
        if !(1..=1_000_000).contains(k.weight.get_ref()) {
            problems.push(loc.error(
                k.weight.span(),
                Some(&field("weight")),
                "must be between 1 and 1000000",
            ));
        }
        if !METHODS.contains(&k.method.get_ref().as_str()) {
            problems.push(loc.error(
                k.method.span(),
                Some(&field("method")),
                &format!(
                    "unknown method {:?}; expected one of: {}",
                    k.method.get_ref(),
                    METHODS.join(", ")
                ),
            ));
        }
        if let Some(p) = &k.path {
            if let Some(why) = request_path_problem(p.get_ref()) {
                problems.push(loc.error(p.span(), Some(&field("path")), why));
            }
        }
        let empty = Spanned::new(0..0, BTreeMap::new());
        let headers = k.headers.as_ref().unwrap_or(&empty);
        for (h, v) in headers.get_ref() {
            let token = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                problems.push(loc.error(
                    headers.span(),
                    Some(&field("headers")),
                    &format!("{h:?} is not a header name"),
                ));
                continue;
            }
            if OWN_HEADERS.contains(&h.to_ascii_lowercase().as_str()) {
                problems.push(loc.error(
                    headers.span(),
                    Some(&field("headers")),
                    &format!("{h} is written by the load generator itself (set `body` and `keep_alive` instead)"),
                ));
                continue;
            }
            if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                problems.push(loc.error(
                    headers.span(),
                    Some(&field("headers")),
                    &format!("the value of {h} must be one line"),
                ));
            }
        }
        let body = k.body_len();
        if body > MAX_BODY {
            problems.push(loc.error(
                k.body.as_ref().map_or(k.name.span(), |b| b.span()),
                Some(&field("body")),
                &format!("must be at most {MAX_BODY} bytes (16 MiB)"),
            ));
        }
        if let Some(u) = &k.upload {
            if body == 0 {
                problems.push(loc.error(
                    u.span(),
                    Some(&field("upload")),
                    "a slow upload needs a body: set `body` to its size in bytes",
                ));
            }
            let d = u.get_ref().0;
            if d < Duration::from_millis(1) || d > MAX_UPLOAD {
                problems.push(loc.error(
                    u.span(),
                    Some(&field("upload")),
                    "must be between 1ms and 60s",
                ));
            }
        }
        if k.echo && body == 0 {
            problems.push(loc.error(
                k.echo_at.clone().unwrap_or(k.name.span()),
                Some(&field("echo")),
                "checks the echo of a body: set `body` to its size in bytes",
            ));
        }
    }
}
