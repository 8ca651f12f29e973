//! HTTP/1.1 response framing (RFC 9112), exact and bounded: the head is parsed once it
//! is whole, interim (1xx) heads are skipped, every length is checked arithmetic, and a
//! body is decoded as it streams, keeping only the bytes a version regex needs.
//!
//! The decoder is fed bytes however they were split into reads and reaches the same
//! end for the same bytes: that is what makes a response's class independent of the
//! timing (see `tests` and the property test in client.rs).

use crate::stats::outcome::Outcome;

/// The largest response head (or trailer section) accepted: more is `oversize`.
pub const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line (size and extensions) accepted: more is `oversize`.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Body bytes kept for a version regex; the rest is counted and dropped.
pub const MAX_KEPT_BODY: usize = 64 * 1024;
/// The largest length a response may declare (an `off_t`'s range: no server sends more).
pub const MAX_DECLARED: u64 = i64::MAX as u64;
/// Header fields parsed without allocating; a head with more gets a vector.
const INLINE_HEADERS: usize = 64;

/// What a complete response told us.
#[derive(Debug, Default)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Where the version header's value sits in the read buffer, if asked for and present
    /// (a range, so the hot path allocates nothing; see [`Reply::version`]).
    pub version_at: Option<(usize, usize)>,
    /// The first [`MAX_KEPT_BODY`] body bytes, kept only when the caller asked (a version regex).
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub reusable: bool,
    /// The body echo the app sent back (`X-Body-Length`, `X-Body-Crc32`), if asked for.
    pub echo: (Option<u64>, Option<u32>),
    /// Bytes followed the response in the same read (on a connection kept for another
    /// request, that is an error of this response).
    pub trailing: bool,
}

impl Reply {
    /// The version header's value, read from the buffer the exchange filled.
    pub fn version<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.version_at.and_then(|(a, b)| buf.get(a..b))
    }
}

/// What the exchange should look at in the response.
#[derive(Debug, Clone, Default)]
pub struct ReadSpec {
    /// Header naming the serving version (lowercase comparison), e.g. `x-app-version`.
    pub version_header: Option<String>,
    /// Keep the body (needed for a version regex).
    pub keep_body: bool,
    /// Read the body echo headers (a kind with `echo`).
    pub want_echo: bool,
    /// The request was a HEAD: the response has no body, whatever its headers say.
    pub head_request: bool,
}

/// How the response body is delimited.
#[derive(Debug, PartialEq, Eq)]
pub enum Framing {
    /// Content-Length bytes.
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
    /// Until the server closes (no length, HTTP/1.0 style).
    UntilClose,
    /// No body (HEAD, 204, 304, Content-Length: 0).
    Empty,
}

/// Why a head is not an acceptable final response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x, or a framing that cannot be right (`protocol_error`).
    NotHttp,
    /// An interim (1xx) head, to be skipped; the final response follows.
    Interim,
}

/// A parsed response head: its length, what it said, how its body is framed.
pub type Head = (usize, Reply, Framing);

/// Where the head that starts `buf` ends (just past its blank line), looking for the
/// end from `from` on (so bytes already searched are not searched again).
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(2);
    let mut i = start;
    while let Some(p) = memchr(b'\n', &buf[i..]) {
        let nl = i + p;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// Parses the response head if it is complete.
pub fn parse_head(buf: &[u8], spec: &ReadSpec) -> Result<Option<Head>, HeadError> {
    let mut inline = [httparse::EMPTY_HEADER; INLINE_HEADERS];
    let mut resp = httparse::Response::new(&mut inline);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => finish_head(buf, n, &resp, spec),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            // Any number of fields fits, within the head's byte limit: one per line at most.
            let lines = buf.iter().filter(|&&c| c == b'\n').count();
            let mut many = vec![httparse::EMPTY_HEADER; lines];
            let mut resp = httparse::Response::new(&mut many);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => finish_head(buf, n, &resp, spec),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(HeadError::NotHttp),
            }
        }
        Err(_) => Err(HeadError::NotHttp),
    }
}

/// Reads what the caller needs from a complete head of `head_len` bytes.
fn finish_head(
    buf: &[u8],
    head_len: usize,
    resp: &httparse::Response<'_, '_>,
    spec: &ReadSpec,
) -> Result<Option<Head>, HeadError> {
    let status = resp.code.ok_or(HeadError::NotHttp)?;
    if status == 101 || !(100..=999).contains(&status) {
        // No request of ours asks for an upgrade.
        return Err(HeadError::NotHttp);
    }
    if status < 200 {
        return Err(HeadError::Interim);
    }
    let mut reply = Reply {
        status,
        reusable: resp.version == Some(1),
        ..Reply::default()
    };
    let mut length: Option<u64> = None;
    let mut transfer_encoding = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value).ok_or(HeadError::NotHttp)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::NotHttp);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The final coding decides; several fields form one list.
            let last = h.value.rsplit(|&c| c == b',').next().unwrap_or(b"");
            transfer_encoding = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&c| c == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    reply.reusable = false;
                    break;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    reply.reusable = true;
                }
            }
        } else if spec.want_echo && name.eq_ignore_ascii_case(super::mix::ECHO_LENGTH) {
            reply.echo.0 = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
        } else if spec.want_echo && name.eq_ignore_ascii_case(super::mix::ECHO_CRC) {
            reply.echo.1 = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| u32::from_str_radix(v.trim(), 16).ok());
        } else if let Some(vh) = &spec.version_header {
            if name.eq_ignore_ascii_case(vh) {
                let v = h.value.trim_ascii();
                let start = v.as_ptr() as usize - buf.as_ptr() as usize;
                reply.version_at = Some((start, start + v.len()));
            }
        }
    }
    let framing = if spec.head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if let Some(chunked) = transfer_encoding {
        if length.is_some() {
            // RFC 9112 §6.3: the encoding wins, and the connection must not be reused.
            reply.reusable = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            reply.reusable = false;
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => {
                reply.reusable = false;
                Framing::UntilClose
            }
        }
    };
    Ok(Some((head_len, reply, framing)))
}

/// A Content-Length value: digits (or a list of the same digits, RFC 9110 §8.6) no larger
/// than [`MAX_DECLARED`]; None if it cannot be right.
fn content_length(value: &[u8]) -> Option<u64> {
    let mut found: Option<u64> = None;
    for item in value.split(|&c| c == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = item.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        if n > MAX_DECLARED || found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Where a body decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `left` bytes of a Content-Length body still to come.
    Length { left: u64 },
    /// Inside a chunk-size line: the size so far, whether an extension began, the line's length.
    Size {
        size: u64,
        digits: u8,
        ext: bool,
        len: usize,
    },
    /// `left` bytes of chunk data still to come.
    Data { left: u64 },
    /// The line end after chunk data (`cr`: its CR was seen).
    DataEnd { cr: bool },
    /// In the trailer section: its length so far, whether the current line has content.
    Trailers { len: usize, content: bool },
    /// Everything until the server closes.
    UntilClose,
    /// The body is complete.
    Done,
}

/// What a body decoder can say besides "give me more".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The bytes break the framing (a bad chunk line, a size over [`MAX_DECLARED`]).
    Framing,
    /// A chunk line or the trailers passed their limit.
    Oversize,
}

impl BodyError {
    /// The class of a response that ended this way.
    pub fn outcome(self) -> Outcome {
        match self {
            BodyError::Framing => Outcome::ProtocolError,
            BodyError::Oversize => Outcome::Oversize,
        }
    }
}

/// Decodes a body as it streams: fed any split of the same bytes, it consumes the same
/// body and ends in the same state.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    /// Complete data chunks so far.
    chunks: u32,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: &Framing) -> BodyDecoder {
        let state = match *framing {
            Framing::Length(n) => State::Length { left: n },
            Framing::Chunked => State::Size {
                size: 0,
                digits: 0,
                ext: false,
                len: 0,
            },
            Framing::UntilClose => State::UntilClose,
            Framing::Empty => State::Done,
        };
        BodyDecoder { state, chunks: 0 }
    }

    /// True once the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True for a body that ends when the connection does.
    pub fn until_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// True inside a chunked body (for saying where a cut response was).
    pub fn is_chunked(&self) -> bool {
        matches!(
            self.state,
            State::Size { .. }
                | State::Data { .. }
                | State::DataEnd { .. }
                | State::Trailers { .. }
        )
    }

    /// Complete data chunks decoded.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// Consumes body bytes from `data`, copying body content into `keep` (up to
    /// [`MAX_KEPT_BODY`] in all) if given; returns how many bytes were consumed. Bytes
    /// left over once the body is done are not part of it.
    pub fn feed(
        &mut self,
        data: &[u8],
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<usize, BodyError> {
        let mut i = 0;
        while i < data.len() {
            let rest = &data[i..];
            match &mut self.state {
                State::Done => break,
                State::UntilClose => {
                    keep_some(&mut keep, rest);
                    i = data.len();
                }
                State::Length { left } | State::Data { left } => {
                    let take = rest.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    keep_some(&mut keep, &rest[..take]);
                    *left -= take as u64;
                    i += take;
                    if *left == 0 {
                        self.state = match self.state {
                            State::Length { .. } => State::Done,
                            _ => State::DataEnd { cr: false },
                        };
                    }
                }
                State::Size {
                    size,
                    digits,
                    ext,
                    len,
                } => {
                    let c = rest[0];
                    i += 1;
                    *len += 1;
                    if *len > MAX_CHUNK_LINE {
                        return Err(BodyError::Oversize);
                    }
                    if c == b'\n' {
                        if *digits == 0 {
                            return Err(BodyError::Framing);
                        }
                        self.state = if *size == 0 {
                            State::Trailers {
                                len: 0,
                                content: false,
                            }
                        } else {
                            State::Data { left: *size }
                        };
                    } else if *ext || c == b'\r' {
                        // The extension (or the CR) runs to the line's end.
                        *ext = true;
                    } else if let Some(d) = (c as char).to_digit(16) {
                        *size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(d)))
                            .filter(|&s| s <= MAX_DECLARED)
                            .ok_or(BodyError::Framing)?;
                        *digits = digits.saturating_add(1);
                    } else if c == b';' || c == b' ' || c == b'\t' {
                        if *digits == 0 {
                            return Err(BodyError::Framing);
                        }
                        *ext = true;
                    } else {
                        return Err(BodyError::Framing);
                    }
                }
                State::DataEnd { cr } => {
                    let c = rest[0];
                    i += 1;
                    match (c, *cr) {
                        (b'\r', false) => *cr = true,
                        (b'\n', _) => {
                            self.chunks = self.chunks.saturating_add(1);
                            self.state = State::Size {
                                size: 0,
                                digits: 0,
                                ext: false,
                                len: 0,
                            };
                        }
                        _ => return Err(BodyError::Framing),
                    }
                }
                State::Trailers { len, content } => {
                    let c = rest[0];
                    i += 1;
                    *len += 1;
                    if *len > MAX_HEAD {
                        return Err(BodyError::Oversize);
                    }
                    if c == b'\n' {
                        if !*content {
                            self.state = State::Done;
                            continue;
                        }
                        *content = false;
                    } else if c != b'\r' {
                        *content = true;
                    }
                }
            }
        }
        Ok(i)
    }
}

/// Copies what still fits of `bytes` into the kept body.
fn keep_some(keep: &mut Option<&mut Vec<u8>>, bytes: &[u8]) {
    if let Some(k) = keep.as_deref_mut() {
        let room = MAX_KEPT_BODY.saturating_sub(k.len());
        k.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ReadSpec {
        ReadSpec {
            version_header: Some("x-app-version".into()),
            keep_body: true,
            want_echo: true,
            head_request: false,
        }
    }

    #[test]
    fn head_with_length_and_version() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App-Version: v2\r\n\r\nhello";
        let (n, reply, framing) = parse_head(raw, &spec()).unwrap().unwrap();
        assert_eq!(n, raw.len() - 5);
        assert_eq!(head_end(raw, 0), Some(n));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.version(raw), Some(&b"v2"[..]));
        assert!(reply.reusable);
        assert_eq!(framing, Framing::Length(5));
    }

    #[test]
    fn the_end_of_a_head_is_found_however_it_was_split() {
        let raw = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let end = raw.len() - 4;
        // A first read of `split` bytes, searched; then the rest, searched from there on.
        for split in 0..end {
            assert_eq!(head_end(&raw[..split], 0), None, "{split}");
            assert_eq!(head_end(raw, split), Some(end), "split at {split}");
        }
        assert_eq!(head_end(b"HTTP/1.0 200 OK\n\nx", 0), Some(17));
    }

    #[test]
    fn a_response_to_head_has_no_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
        let head = ReadSpec {
            head_request: true,
            ..ReadSpec::default()
        };
        let (_, _, framing) = parse_head(raw, &head).unwrap().unwrap();
        assert_eq!(framing, Framing::Empty);
        let (_, _, framing) = parse_head(raw, &ReadSpec::default()).unwrap().unwrap();
        assert_eq!(framing, Framing::Length(11));
    }

    #[test]
    fn head_partial_close_and_not_http() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", &spec())
            .unwrap()
            .is_none());
        let (_, reply, framing) = parse_head(b"HTTP/1.0 502 Bad Gateway\r\n\r\n", &spec())
            .unwrap()
            .unwrap();
        assert_eq!(reply.status, 502);
        assert!(!reply.reusable);
        assert_eq!(framing, Framing::UntilClose);
        let (_, reply, _) = parse_head(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
            &spec(),
        )
        .unwrap()
        .unwrap();
        assert!(!reply.reusable);
        assert_eq!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", &spec()).err(),
            Some(HeadError::NotHttp)
        );
    }

    #[test]
    fn interim_heads_are_skipped_and_an_unasked_upgrade_is_an_error() {
        let r = parse_head(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", &spec());
        assert_eq!(r.err(), Some(HeadError::Interim));
        let r = parse_head(b"HTTP/1.1 100 Continue\r\n\r\n", &spec());
        assert_eq!(r.err(), Some(HeadError::Interim));
        let r = parse_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", &spec());
        assert_eq!(r.err(), Some(HeadError::NotHttp));
    }

    #[test]
    fn any_number_of_header_fields() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..500 {
            raw.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"X-App-Version: v9\r\nContent-Length: 2\r\n\r\nok");
        let (_, reply, framing) = parse_head(&raw, &spec()).unwrap().unwrap();
        assert_eq!(reply.version(&raw), Some(&b"v9"[..]));
        assert_eq!(framing, Framing::Length(2));
    }

    #[test]
    fn lengths_that_cannot_be_right_are_errors() {
        let head = |cl: &str| {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
            parse_head(raw.as_bytes(), &spec()).map(|h| h.map(|(_, _, f)| f))
        };
        assert_eq!(head("7"), Ok(Some(Framing::Length(7))));
        assert_eq!(head("7, 7"), Ok(Some(Framing::Length(7))));
        assert_eq!(
            head("9223372036854775807"),
            Ok(Some(Framing::Length(MAX_DECLARED)))
        );
        for bad in [
            "18446744073709551600",
            "9223372036854775808",
            "99999999999999999999999",
            "-1",
            "+5",
            "5 5",
            "7, 8",
            "",
            "0x10",
        ] {
            assert_eq!(head(bad), Err(HeadError::NotHttp), "{bad:?}");
        }
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(parse_head(two, &spec()).err(), Some(HeadError::NotHttp));
        // The transfer coding wins over a length, and the connection is not reused.
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, reply, framing) = parse_head(both, &spec()).unwrap().unwrap();
        assert_eq!(framing, Framing::Chunked);
        assert!(!reply.reusable);
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        let (_, _, framing) = parse_head(gzip, &spec()).unwrap().unwrap();
        assert_eq!(framing, Framing::UntilClose);
    }

    /// Feeds `body` in pieces of `step` bytes; the consumed count and the end state.
    fn feed_in(
        framing: Framing,
        body: &[u8],
        step: usize,
    ) -> (Result<usize, BodyError>, Vec<u8>, bool) {
        let mut d = BodyDecoder::new(&framing);
        let mut kept = Vec::new();
        let mut used = 0;
        for piece in body.chunks(step) {
            match d.feed(piece, Some(&mut kept)) {
                Ok(n) => {
                    used += n;
                    if d.is_done() {
                        break;
                    }
                }
                Err(e) => return (Err(e), kept, false),
            }
        }
        (Ok(used), kept, d.is_done())
    }

    #[test]
    fn chunked_bodies_decode_the_same_in_any_pieces() {
        let body = b"4\r\nwiki\r\n5;x=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..=body.len() {
            let (used, kept, done) = feed_in(Framing::Chunked, body, step);
            assert_eq!(kept, b"wikipedia", "step {step}");
            assert!(done, "step {step}");
            assert_eq!(used, Ok(body.len() - 4), "step {step}: NEXT is not body");
        }
    }

    #[test]
    fn broken_and_oversized_chunk_framing() {
        let bad = |b: &[u8]| feed_in(Framing::Chunked, b, 3).0.err();
        assert_eq!(bad(b"zz\r\n"), Some(BodyError::Framing));
        assert_eq!(bad(b"\r\n"), Some(BodyError::Framing));
        assert_eq!(bad(b"2\r\nokX\r\n"), Some(BodyError::Framing));
        assert_eq!(
            bad(b"1FFFFFFFFFFFFFFFFF\r\n"),
            Some(BodyError::Framing),
            "a size past 64 bits"
        );
        assert_eq!(bad(b"8000000000000000\r\n"), Some(BodyError::Framing));
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE + 10, b'e');
        assert_eq!(bad(&long_ext), Some(BodyError::Oversize));
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_HEAD + 100 {
            trailers.extend_from_slice(b"X-T: aaaa\r\n");
        }
        assert_eq!(bad(&trailers), Some(BodyError::Oversize));
        // A huge but possible chunk is just a long body: consumed as it comes, nothing kept past the limit.
        let mut d = BodyDecoder::new(&Framing::Chunked);
        let mut kept = Vec::new();
        assert_eq!(d.feed(b"FFFFFFFFFFFF\r\n", Some(&mut kept)), Ok(14));
        for _ in 0..100 {
            assert_eq!(d.feed(&[0u8; 4096], Some(&mut kept)), Ok(4096));
        }
        assert_eq!(kept.len(), MAX_KEPT_BODY);
        assert!(!d.is_done());
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let (used, kept, done) = feed_in(Framing::Length(5), b"helloEXTRA", 3);
        assert_eq!((used, kept.as_slice(), done), (Ok(5), &b"hello"[..], true));
        let (used, _, done) = feed_in(Framing::UntilClose, b"all of it", 2);
        assert_eq!((used, done), (Ok(9), false));
    }
}
