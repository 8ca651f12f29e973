//! The request kinds of a run, built once: each kind's request bytes, its
//! connection mode, its slow upload and the echo it expects; and the seeded draw
//! that picks each request's kind by weight.

use std::time::Duration;

use super::target::Target;
use crate::stats::RequestKindInfo;

/// Header in which the sample apps echo the request body's length.
pub const ECHO_LENGTH: &str = "x-body-length";
/// Header in which the sample apps echo the request body's CRC-32 (8 hex digits).
pub const ECHO_CRC: &str = "x-body-crc32";

/// What a kind's response must echo of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    /// Body length in bytes.
    pub len: u64,
    /// CRC-32 (IEEE, as zlib computes it) of the body.
    pub crc: u32,
}

/// One request kind, ready to send.
#[derive(Debug, Clone)]
pub struct RequestKind {
    /// Its name in reports.
    pub name: String,
    /// Method, for reports.
    pub method: String,
    /// Path with query, for reports.
    pub path: String,
    /// Relative share of requests.
    pub weight: u32,
    /// Head and body, in one buffer (one write when not uploaded slowly).
    pub bytes: Vec<u8>,
    /// Where the body starts in `bytes`.
    pub body_at: usize,
    /// Spread the body over this long.
    pub upload: Option<Duration>,
    /// Reuse connections.
    pub keep_alive: bool,
    /// The echo a 2xx must carry, if checked.
    pub echo: Option<Echo>,
    /// HTTP/1.1, or HTTP/2 streams on shared connections.
    pub protocol: Protocol,
}

/// The protocol a request kind speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.1 (over TLS for an https target).
    #[default]
    H1,
    /// HTTP/2 negotiated by ALPN over TLS (an https target).
    H2,
    /// HTTP/2 over plain TCP or a unix socket with prior knowledge (no upgrade).
    H2c,
}

impl Protocol {
    /// The names `load.protocol`, a mix kind's `protocol` and `--protocol` take.
    pub const NAMES: &'static [&'static str] = &["h1", "h2", "h2c"];

    /// From its name (validated before).
    pub fn named(name: &str) -> Protocol {
        match name {
            "h2" => Protocol::H2,
            "h2c" => Protocol::H2c,
            _ => Protocol::H1,
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::H1 => "h1",
            Protocol::H2 => "h2",
            Protocol::H2c => "h2c",
        }
    }

    /// HTTP/2 (over TLS or not).
    pub fn is_h2(self) -> bool {
        self != Protocol::H1
    }

    /// Why this protocol cannot be spoken to a target that is (or is not) https.
    pub fn target_problem(self, https: bool) -> Option<&'static str> {
        match (self, https) {
            (Protocol::H2, false) => Some("h2 is negotiated by ALPN over TLS: the target is not https (use h2c for HTTP/2 with prior knowledge over plain TCP)"),
            (Protocol::H2c, true) => Some("h2c is HTTP/2 over plain TCP: the target is https (use h2)"),
            _ => None,
        }
    }
}

impl RequestKind {
    /// What reports say about this kind besides its numbers.
    pub fn info(&self) -> RequestKindInfo {
        RequestKindInfo {
            name: self.name.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            weight: self.weight,
            body_bytes: (self.bytes.len() - self.body_at) as u64,
            upload_ms: self.upload.map(|d| d.as_secs_f64() * 1000.0),
            keep_alive: self.keep_alive,
            echo: self.echo.is_some(),
            protocol: self.protocol.name().into(),
        }
    }

    /// Speaks `protocol`; an HTTP/2 kind's streams share their connection (keep-alive).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        if protocol.is_h2() {
            self.keep_alive = true;
        }
    }

    /// The load's single kind when no mix is given: GET the target's path.
    pub fn plain(target: &Target, keep_alive: bool) -> RequestKind {
        let bytes = target.request_bytes(keep_alive);
        RequestKind {
            name: "get".into(),
            method: "GET".into(),
            path: target.path.clone(),
            weight: 1,
            body_at: bytes.len(),
            bytes,
            upload: None,
            keep_alive,
            echo: None,
            protocol: Protocol::H1,
        }
    }

    /// A kind sending `method path` to `target` with `headers` and a body of
    /// `body_len` bytes (deterministic content, printable).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        weight: u32,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body_len: usize,
        upload: Option<Duration>,
        keep_alive: bool,
        echo: bool,
        target: &Target,
    ) -> RequestKind {
        let conn = if keep_alive { "keep-alive" } else { "close" };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: zdt-check\r\nAccept: */*\r\nConnection: {conn}\r\n",
            target.host
        );
        for (h, v) in headers {
            head.push_str(&format!("{h}: {v}\r\n"));
        }
        if body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {body_len}\r\n"
            ));
        }
        head.push_str("\r\n");
        let body = body_bytes(name, body_len);
        let echo = echo.then(|| Echo {
            len: body_len as u64,
            crc: crc32fast::hash(&body),
        });
        let mut bytes = head.into_bytes();
        let body_at = bytes.len();
        bytes.extend_from_slice(&body);
        RequestKind {
            name: name.into(),
            method: method.into(),
            path: path.into(),
            weight,
            bytes,
            body_at,
            upload,
            keep_alive,
            echo,
            protocol: Protocol::H1,
        }
    }
}

/// A body of `len` printable bytes that differs between kinds (so a body sent to the
/// wrong request shows in its checksum).
fn body_bytes(name: &str, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(name.bytes().fold(0x5eed, |h: u64, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }));
    (0..len)
        .map(|_| b'a' + (rng.next_u64() % 26) as u8)
        .collect()
}

/// The kinds of a run and the draw between them.
#[derive(Debug, Clone)]
pub struct Mix {
    /// The kinds, in the scenario's order.
    pub kinds: Vec<RequestKind>,
    /// Report per kind (a mix was given), or only the whole load (no mix).
    pub per_kind: bool,
    /// Seed of every connection's draw.
    pub seed: u64,
    /// Running sums of the weights, for the draw.
    cumulative: Vec<u64>,
}

impl Mix {
    /// A mix of `kinds` (at least one), reported per kind.
    pub fn new(kinds: Vec<RequestKind>, seed: u64) -> Mix {
        assert!(!kinds.is_empty(), "a mix has at least one kind");
        let mut sum = 0u64;
        let cumulative = kinds
            .iter()
            .map(|k| {
                sum += u64::from(k.weight.max(1));
                sum
            })
            .collect();
        Mix {
            kinds,
            per_kind: true,
            seed,
            cumulative,
        }
    }

    /// No mix: GET the target's path, reported as the whole load only.
    pub fn plain(target: &Target, keep_alive: bool) -> Mix {
        Mix {
            per_kind: false,
            ..Mix::new(vec![RequestKind::plain(target, keep_alive)], 1)
        }
    }

    /// Every kind speaking `protocol` (an HTTP/2 kind always shares its connection).
    pub fn speaking(mut self, protocol: Protocol) -> Mix {
        for k in &mut self.kinds {
            k.set_protocol(protocol);
        }
        self
    }

    /// Whether any kind speaks HTTP/2.
    pub fn has_h2(&self) -> bool {
        self.kinds.iter().any(|k| k.protocol.is_h2())
    }

    /// The protocols spoken, in kind order, each once (`h1`, `h1+h2`).
    pub fn protocols(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for k in &self.kinds {
            if !names.contains(&k.protocol.name()) {
                names.push(k.protocol.name());
            }
        }
        names.join("+")
    }

    /// Connection `conn`'s own draw (the same sequence for the same seed).
    pub fn rng(&self, conn: usize) -> Rng {
        Rng::new(self.seed ^ (conn as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// The next request's kind.
    #[inline]
    pub fn draw(&self, rng: &mut Rng) -> usize {
        if self.kinds.len() == 1 {
            return 0;
        }
        let total = *self.cumulative.last().expect("at least one kind");
        let r = rng.next_u64() % total;
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// splitmix64: small, fast, and the same everywhere for the same seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:1/", None).unwrap()
    }

    #[test]
    fn draws_follow_the_weights_and_the_seed() {
        let t = target();
        let k = |n: &str, w| RequestKind::new(n, w, "GET", "/", &[], 0, None, true, false, &t);
        let mix = Mix::new(vec![k("a", 1), k("b", 3)], 7);
        let mut counts = [0u32; 2];
        let mut rng = mix.rng(0);
        for _ in 0..40_000 {
            counts[mix.draw(&mut rng)] += 1;
        }
        let share = f64::from(counts[1]) / 40_000.0;
        assert!(
            (0.73..0.77).contains(&share),
            "b drawn {share} of the time, weight 3/4"
        );
        let seq = |conn| {
            let mut r = mix.rng(conn);
            (0..64).map(|_| mix.draw(&mut r)).collect::<Vec<_>>()
        };
        assert_eq!(seq(3), seq(3), "same seed and connection, same draws");
        assert_ne!(seq(3), seq(4), "connections draw their own sequences");
    }

    #[test]
    fn a_post_carries_its_body_and_the_echo_it_expects() {
        let t = target();
        let headers = [("X-Trace".to_string(), "1".to_string())];
        let k = RequestKind::new(
            "up", 1, "POST", "/echo", &headers, 10, None, false, true, &t,
        );
        let text = String::from_utf8(k.bytes.clone()).unwrap();
        assert!(text.starts_with("POST /echo HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 10\r\n"), "{text}");
        assert!(text.contains("\r\nX-Trace: 1\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        let body = &k.bytes[k.body_at..];
        assert_eq!(body.len(), 10);
        assert!(body.iter().all(u8::is_ascii_lowercase));
        assert_eq!(
            k.echo,
            Some(Echo {
                len: 10,
                crc: crc32fast::hash(body)
            })
        );
        // zlib.crc32(b"123456789") == 0xcbf43926: the sample apps' checksum.
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        let empty = RequestKind::new("e", 1, "POST", "/", &[], 0, None, true, false, &t);
        assert!(String::from_utf8(empty.bytes)
            .unwrap()
            .contains("Content-Length: 0\r\n"));
    }
}
