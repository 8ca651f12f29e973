//! Outcome classes: every scheduled request ends in exactly one of these.
//!
//! The names are stable: they appear in JSON reports and in scenario `allow` lists.

use std::fmt;

/// How one scheduled request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// 2xx/3xx with an acceptable body/version.
    Ok,
    /// A complete response with a 5xx status (code kept).
    Http5xx(u16),
    /// A complete response with a 4xx status (code kept).
    Http4xx(u16),
    /// ECONNREFUSED: nothing listening (TCP port closed, or a unix socket not yet listening).
    ConnectRefused,
    /// ENOENT: the unix socket path does not exist.
    ConnectMissing,
    /// EAGAIN: a unix socket's accept backlog is full.
    ConnectAgain,
    /// The connect did not finish within the connect timeout.
    ConnectTimeout,
    /// Any other connect error (EACCES, a reset during connect, ...).
    ConnectOther,
    /// The TLS handshake of an https connection failed: an alert, a reset or a close
    /// during it, or not done within the connect timeout.
    TlsHandshake,
    /// The server's certificate was not accepted: not signed by a trusted CA, not valid
    /// for the server name, expired.
    TlsCertRejected,
    /// Reset or closed before any response byte, on a new connection.
    ResetFresh,
    /// Reset or closed before any response byte, on a reused keep-alive connection.
    ResetReused,
    /// The response started, then the connection was cut.
    Truncated,
    /// HTTP/2: a stream the server refused unprocessed: above the last stream id of a
    /// GOAWAY it sent, or reset with REFUSED_STREAM (never retried silently). With
    /// `load.reuse = "naive"`, also a stream opened on a connection after its GOAWAY.
    H2Refused,
    /// HTTP/2: a stream the server reset (RST_STREAM) with another error code, or a
    /// stream still open when a GOAWAY with an error code ended its connection.
    H2Reset,
    /// The server sent something that is not HTTP/1.x: a head that does not parse, a
    /// length that cannot be right, broken chunk framing, bytes after a complete response
    /// on a connection kept for the next request, an upgrade nobody asked for.
    ProtocolError,
    /// A response head or trailer section over 64 KiB, or a chunk-size line over 4 KiB:
    /// the verifier stops reading rather than buffer without bound.
    Oversize,
    /// No complete response within the request timeout.
    Timeout,
    /// Still open when the run ended (including requests that never got a connection).
    Hung,
    /// A 2xx/3xx whose body or version string was not one the scenario expects, or
    /// whose echo of the request body did not match it.
    BadBody,
}

/// How far a response cut mid-way got (kept for `truncated` outcomes; [`Cut::NONE`]
/// for every other one, so an ordinary response costs nothing to record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cut {
    /// Response bytes received before the cut, head included (saturates at 4 GiB).
    pub bytes: u32,
    /// Complete chunks of a chunked body received before the cut.
    pub chunks: u32,
    /// Where the response was when it was cut.
    pub stage: Stage,
}

/// Where a cut response was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// Not cut (or not measured).
    #[default]
    None,
    /// Inside the response head.
    Head,
    /// Inside a body framed by Content-Length or by the connection's end.
    Body,
    /// Inside a chunked body.
    Chunked,
}

impl Cut {
    /// Not a cut response.
    pub const NONE: Cut = Cut {
        bytes: 0,
        chunks: 0,
        stage: Stage::None,
    };

    /// A cut after `bytes` response bytes (saturating) in `stage`, with `chunks` complete chunks.
    pub fn at(bytes: usize, chunks: u32, stage: Stage) -> Cut {
        Cut {
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
            chunks,
            stage,
        }
    }
}

/// The class names without a status code, in report order.
pub const CLASS_NAMES: &[&str] = &[
    "ok",
    "http_5xx",
    "http_4xx",
    "connect_refused",
    "connect_missing",
    "connect_again",
    "connect_timeout",
    "connect_other",
    "tls_handshake",
    "tls_cert_rejected",
    "reset_fresh",
    "reset_reused",
    "truncated",
    "h2_refused",
    "h2_reset",
    "protocol_error",
    "oversize",
    "timeout",
    "hung",
    "bad_body",
];

impl Outcome {
    /// The stable class name (`http_5xx`, not the code).
    pub fn class(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http5xx(_) => "http_5xx",
            Outcome::Http4xx(_) => "http_4xx",
            Outcome::ConnectRefused => "connect_refused",
            Outcome::ConnectMissing => "connect_missing",
            Outcome::ConnectAgain => "connect_again",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::ConnectOther => "connect_other",
            Outcome::TlsHandshake => "tls_handshake",
            Outcome::TlsCertRejected => "tls_cert_rejected",
            Outcome::ResetFresh => "reset_fresh",
            Outcome::ResetReused => "reset_reused",
            Outcome::Truncated => "truncated",
            Outcome::H2Refused => "h2_refused",
            Outcome::H2Reset => "h2_reset",
            Outcome::ProtocolError => "protocol_error",
            Outcome::Oversize => "oversize",
            Outcome::Timeout => "timeout",
            Outcome::Hung => "hung",
            Outcome::BadBody => "bad_body",
        }
    }

    /// True for everything but `ok`.
    pub fn is_failure(self) -> bool {
        self != Outcome::Ok
    }

    /// Classifies a complete response by status code (before any body check).
    pub fn from_status(code: u16) -> Outcome {
        match code {
            500..=599 => Outcome::Http5xx(code),
            400..=499 => Outcome::Http4xx(code),
            // 1xx never reaches here as a final status; anything else (2xx, 3xx, odd codes) served.
            _ => Outcome::Ok,
        }
    }

    /// Classifies a failed connect by its OS error.
    pub fn from_connect_error(err: &std::io::Error) -> Outcome {
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => Outcome::ConnectRefused,
            Some(libc::ENOENT) => Outcome::ConnectMissing,
            Some(libc::EAGAIN) => Outcome::ConnectAgain,
            Some(libc::ETIMEDOUT) => Outcome::ConnectTimeout,
            // The handshake completed and the server reset it before connect() returned
            // (SO_ERROR): the same event as a reset before the first response byte.
            Some(libc::ECONNRESET) => Outcome::ResetFresh,
            _ => Outcome::ConnectOther,
        }
    }

    /// Classifies a connection that ended early: before any byte (reset) or mid-response (truncated).
    pub fn cut(bytes_received: usize, reused: bool) -> Outcome {
        match (bytes_received, reused) {
            (0, false) => Outcome::ResetFresh,
            (0, true) => Outcome::ResetReused,
            _ => Outcome::Truncated,
        }
    }

    /// A key that keeps the status code: `http_502`, `http_404`, or the class name.
    pub fn key(self) -> String {
        match self {
            Outcome::Http5xx(c) | Outcome::Http4xx(c) => format!("http_{c}"),
            other => other.class().to_string(),
        }
    }

    /// Parses a class name or a coded key (`http_502`) as used in scenario `allow` lists.
    pub fn is_named_by(self, name: &str) -> bool {
        name == self.class() || name == self.key()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// True if `name` is a class name or a coded key such as `http_502`.
pub fn is_valid_name(name: &str) -> bool {
    if CLASS_NAMES.contains(&name) {
        return true;
    }
    name.strip_prefix("http_")
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| (400..=599).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_seen_by_connect_is_a_fresh_reset() {
        let reset = std::io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(Outcome::from_connect_error(&reset), Outcome::ResetFresh);
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            Outcome::from_connect_error(&refused),
            Outcome::ConnectRefused
        );
    }

    #[test]
    fn status_classes() {
        assert_eq!(Outcome::from_status(200), Outcome::Ok);
        assert_eq!(Outcome::from_status(302), Outcome::Ok);
        assert_eq!(Outcome::from_status(502), Outcome::Http5xx(502));
        assert_eq!(Outcome::from_status(404), Outcome::Http4xx(404));
        assert_eq!(Outcome::Http5xx(502).key(), "http_502");
        assert!(Outcome::Http5xx(502).is_named_by("http_5xx"));
        assert!(Outcome::Http5xx(502).is_named_by("http_502"));
        assert!(!Outcome::Http5xx(502).is_named_by("http_503"));
    }

    #[test]
    fn connect_errors() {
        let e = |c| std::io::Error::from_raw_os_error(c);
        assert_eq!(
            Outcome::from_connect_error(&e(libc::ECONNREFUSED)),
            Outcome::ConnectRefused
        );
        assert_eq!(
            Outcome::from_connect_error(&e(libc::ENOENT)),
            Outcome::ConnectMissing
        );
        assert_eq!(
            Outcome::from_connect_error(&e(libc::EAGAIN)),
            Outcome::ConnectAgain
        );
        assert_eq!(
            Outcome::from_connect_error(&e(libc::EACCES)),
            Outcome::ConnectOther
        );
    }

    #[test]
    fn cut_connections() {
        assert_eq!(Outcome::cut(0, false), Outcome::ResetFresh);
        assert_eq!(Outcome::cut(0, true), Outcome::ResetReused);
        assert_eq!(Outcome::cut(10, true), Outcome::Truncated);
    }

    #[test]
    fn cut_saturates_and_defaults_to_none() {
        assert_eq!(Cut::default(), Cut::NONE);
        let c = Cut::at(usize::MAX, 3, Stage::Chunked);
        assert_eq!((c.bytes, c.chunks, c.stage), (u32::MAX, 3, Stage::Chunked));
        assert_eq!(Cut::at(10, 0, Stage::Head).bytes, 10);
    }

    #[test]
    fn names() {
        assert!(is_valid_name("reset_reused"));
        assert!(is_valid_name("tls_handshake"));
        assert!(is_valid_name("tls_cert_rejected"));
        assert_eq!(Outcome::TlsCertRejected.class(), "tls_cert_rejected");
        assert!(Outcome::TlsHandshake.is_failure());
        assert!(is_valid_name("http_502"));
        assert!(is_valid_name("h2_refused") && is_valid_name("h2_reset"));
        assert_eq!(Outcome::H2Reset.class(), "h2_reset");
        assert!(!is_valid_name("http_200"));
        assert!(!is_valid_name("nope"));
    }
}
