//! A lean HTTP/1.1 client that knows exactly how far each exchange got.
//!
//! General-purpose clients hide what a verifier needs: whether a single response
//! byte arrived before a reset, whether the connection was new or reused, and they
//! retry or reconnect silently. This one does none of that: one request, one
//! outcome, and the connection is dropped after any failure.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::target::Endpoint;
use crate::stats::outcome::{Cut, Outcome, Stage};

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Body bytes kept for a version regex; the rest is counted and dropped.
const MAX_KEPT_BODY: usize = 64 * 1024;
/// Pieces a slow upload is written in.
const UPLOAD_PIECES: usize = 10;

/// An open connection to the target.
pub struct Conn {
    stream: Stream,
    /// Completed exchanges on this connection; a failure on a reused one is `reset_reused`.
    served: u64,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    async fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Unix(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes).await,
            Stream::Unix(s) => s.write_all(bytes).await,
        }
    }
}

/// What a complete response told us.
#[derive(Debug, Default)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Where the version header's value sits in the read buffer, if asked for and present
    /// (a range, so the hot path allocates nothing; see [`Reply::version`]).
    pub version_at: Option<(usize, usize)>,
    /// The body, kept only when the caller asked for it (a version regex).
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub reusable: bool,
    /// The body echo the app sent back (`X-Body-Length`, `X-Body-Crc32`), if asked for.
    pub echo: (Option<u64>, Option<u32>),
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

impl Reply {
    /// The version header's value, read from the buffer the exchange filled.
    pub fn version<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.version_at.and_then(|(a, b)| buf.get(a..b))
    }
}

impl Conn {
    /// Connects within `timeout`; a failure is already classified.
    pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Conn, Outcome> {
        let connect = async {
            match endpoint {
                Endpoint::Tcp(addr) => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    Ok::<_, io::Error>(Stream::Tcp(s))
                }
                Endpoint::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            }
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(stream)) => Ok(Conn { stream, served: 0 }),
            Ok(Err(e)) => Err(Outcome::from_connect_error(&e)),
            Err(_) => Err(Outcome::ConnectTimeout),
        }
    }

    /// True if a previous exchange completed on this connection.
    pub fn is_reused(&self) -> bool {
        self.served > 0
    }

    /// Sends `request` and reads one complete response into `buf` (cleared first).
    /// The caller applies the request timeout around this future. A failure says how
    /// it ended and, if the response was cut mid-way, how far it got.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        buf: &mut Vec<u8>,
        spec: &ReadSpec,
    ) -> Result<Reply, Failed> {
        self.exchange_uploading(request, None, buf, spec).await
    }

    /// [`Conn::exchange`], with the bytes from `upload.0` on (the body) written in
    /// pieces spread over `upload.1`, as a slow client uploads. A write that fails
    /// part-way ends the exchange as a reset (no response byte was read).
    pub async fn exchange_uploading(
        &mut self,
        request: &[u8],
        upload: Option<(usize, Duration)>,
        buf: &mut Vec<u8>,
        spec: &ReadSpec,
    ) -> Result<Reply, Failed> {
        let reused = self.is_reused();
        buf.clear();
        let sent = match upload {
            None => self.stream.write_all(request).await,
            Some((body_at, over)) => self.upload(request, body_at, over).await,
        };
        if sent.is_err() {
            return Err(Outcome::cut(0, reused).into());
        }
        let mut received = 0usize;
        // Read until the head parses.
        let (head_len, mut reply, framing) = loop {
            match self.stream.read(buf).await {
                Ok(0) | Err(_) => {
                    return Err(match received {
                        0 => Outcome::cut(0, reused).into(),
                        n => Failed::truncated(n, 0, Stage::Head),
                    })
                }
                Ok(n) => received += n,
            }
            match parse_head(buf, spec) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) if buf.len() < MAX_HEAD => continue,
                _ => return Err(Outcome::ProtocolError.into()),
            }
        };
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let body_start = head_len;
        match framing {
            Framing::Length(len) => {
                let want = body_start + len;
                while buf.len() < want {
                    match self.stream.read(buf).await {
                        Ok(0) | Err(_) => return Err(Failed::truncated(buf.len(), 0, Stage::Body)),
                        Ok(_) => {}
                    }
                    if !spec.keep_body && buf.len() > body_start + MAX_KEPT_BODY {
                        // Count and drop: remember how much is still owed.
                        let have = buf.len() - body_start;
                        buf.truncate(body_start);
                        return self.skip_body(len - have, want, buf, reply).await;
                    }
                }
                if spec.keep_body {
                    reply.body = buf[body_start..want.min(body_start + MAX_KEPT_BODY)].to_vec();
                }
            }
            Framing::Chunked => {
                let mut pos = body_start;
                let mut body = Vec::new();
                let mut chunks = 0u32;
                loop {
                    match decode_chunks(
                        buf,
                        &mut pos,
                        spec.keep_body.then_some(&mut body),
                        &mut chunks,
                    ) {
                        Ok(true) => break,
                        Ok(false) => {}
                        Err(()) => return Err(Outcome::ProtocolError.into()),
                    }
                    match self.stream.read(buf).await {
                        Ok(0) | Err(_) => {
                            return Err(Failed::truncated(buf.len(), chunks, Stage::Chunked))
                        }
                        Ok(_) => {}
                    }
                }
                reply.body = body;
            }
            Framing::UntilClose => {
                let mut total = buf.len();
                loop {
                    let before = buf.len();
                    match self.stream.read(buf).await {
                        Ok(0) => break,
                        Err(_) => return Err(Failed::truncated(total, 0, Stage::Body)),
                        Ok(_) => {}
                    }
                    total += buf.len() - before;
                    if buf.len() > body_start + MAX_KEPT_BODY {
                        buf.truncate(body_start + MAX_KEPT_BODY);
                    }
                }
                reply.reusable = false;
                if spec.keep_body {
                    reply.body = buf[body_start..].to_vec();
                }
            }
            Framing::Empty => {}
        }
        self.served += 1;
        Ok(reply)
    }

    /// Writes the head, then the body in up to [`UPLOAD_PIECES`] pieces, one every
    /// `over / pieces`, the last one when `over` is up.
    async fn upload(&mut self, request: &[u8], body_at: usize, over: Duration) -> io::Result<()> {
        let (head, body) = request.split_at(body_at.min(request.len()));
        self.stream.write_all(head).await?;
        let pieces = body.len().clamp(1, UPLOAD_PIECES);
        let size = body.len().div_ceil(pieces);
        let pause = over / pieces as u32;
        for piece in body.chunks(size.max(1)) {
            tokio::time::sleep(pause).await;
            self.stream.write_all(piece).await?;
        }
        Ok(())
    }

    /// Reads and drops the `owed` bytes that end a response of `total` bytes.
    async fn skip_body(
        &mut self,
        mut owed: usize,
        total: usize,
        buf: &mut Vec<u8>,
        reply: Reply,
    ) -> Result<Reply, Failed> {
        while owed > 0 {
            let start = buf.len();
            match self.stream.read(buf).await {
                Ok(0) | Err(_) => return Err(Failed::truncated(total - owed, 0, Stage::Body)),
                Ok(n) => owed = owed.saturating_sub(n),
            }
            buf.truncate(start);
        }
        self.served += 1;
        Ok(reply)
    }
}

/// A failed exchange: its outcome, and for a `truncated` one how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// How it ended.
    pub outcome: Outcome,
    /// How far a cut response got ([`Cut::NONE`] unless `truncated`).
    pub cut: Cut,
}

impl Failed {
    /// A response cut after `bytes` bytes (head included) in `stage`.
    fn truncated(bytes: usize, chunks: u32, stage: Stage) -> Failed {
        Failed {
            outcome: Outcome::Truncated,
            cut: Cut::at(bytes, chunks, stage),
        }
    }
}

impl From<Outcome> for Failed {
    fn from(outcome: Outcome) -> Failed {
        Failed {
            outcome,
            cut: Cut::NONE,
        }
    }
}

/// How the response body is delimited.
#[derive(Debug, PartialEq, Eq)]
pub enum Framing {
    /// Content-Length bytes.
    Length(usize),
    /// Transfer-Encoding: chunked.
    Chunked,
    /// Until the server closes (no length, HTTP/1.0 style).
    UntilClose,
    /// No body (204, 304, Content-Length: 0).
    Empty,
}

/// The bytes received are not an HTTP/1.x response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHttp;

/// A parsed response head: its length, what it said, how its body is framed.
pub type Head = (usize, Reply, Framing);

/// Parses the response head if it is complete.
pub fn parse_head(buf: &[u8], spec: &ReadSpec) -> Result<Option<Head>, NotHttp> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(NotHttp),
    };
    let status = resp.code.ok_or(NotHttp)?;
    if (100..200).contains(&status) {
        // An interim response (100 Continue): not expected for GET; treat the next head as the reply.
        return Err(NotHttp);
    }
    let mut reply = Reply {
        status,
        reusable: resp.version == Some(1),
        ..Reply::default()
    };
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| NotHttp)?;
            length = Some(v.trim().parse::<usize>().map_err(|_| NotHttp)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                reply.reusable = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                reply.reusable = true;
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
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::UntilClose
    };
    Ok(Some((head_len, reply, framing)))
}

/// Advances through chunks in `buf` from `*pos`, counting complete data chunks in
/// `chunks`; Ok(true) once the last chunk and trailers are in.
fn decode_chunks(
    buf: &[u8],
    pos: &mut usize,
    mut body: Option<&mut Vec<u8>>,
    chunks: &mut u32,
) -> Result<bool, ()> {
    loop {
        let rest = &buf[*pos..];
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return if rest.len() > 1024 {
                Err(())
            } else {
                Ok(false)
            };
        };
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| ())?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| ())?;
        if size == 0 {
            // Trailers end with an empty line.
            let after = &rest[eol + 2..];
            let mut p = 0;
            loop {
                let Some(e) = after[p..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(false);
                };
                if e == 0 {
                    *pos += eol + 2 + p + 2;
                    return Ok(true);
                }
                p += e + 2;
            }
        }
        let need = eol + 2 + size + 2;
        if rest.len() < need {
            return Ok(false);
        }
        if &rest[need - 2..need] != b"\r\n" {
            return Err(());
        }
        if let Some(b) = body.as_deref_mut() {
            if b.len() < MAX_KEPT_BODY {
                b.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            }
        }
        *pos += need;
        *chunks = chunks.saturating_add(1);
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
        assert_eq!(reply.status, 200);
        assert_eq!(reply.version(raw), Some(&b"v2"[..]));
        assert!(reply.reusable);
        assert_eq!(framing, Framing::Length(5));
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
    fn head_partial_and_close() {
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
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            &spec(),
        )
        .unwrap()
        .unwrap();
        assert!(!reply.reusable);
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", &spec()).is_err());
    }

    /// Connects to a one-shot server that writes `reply` and closes; returns the exchange's result.
    async fn cut_after(reply: &'static [u8]) -> Result<Reply, Failed> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ep = Endpoint::Tcp(l.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 256];
            let _ = s.read(&mut req).await.unwrap();
            s.write_all(reply).await.unwrap();
        });
        let mut conn = Conn::connect(&ep, Duration::from_secs(2)).await.unwrap();
        let mut buf = Vec::new();
        let spec = ReadSpec::default();
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            conn.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", &mut buf, &spec),
        )
        .await
        .expect("the exchange ends");
        server.await.unwrap();
        r
    }

    #[tokio::test]
    async fn a_cut_response_says_how_far_it_got() {
        const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        let f = cut_after(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd")
            .await
            .unwrap_err();
        assert_eq!(f.outcome, Outcome::Truncated);
        assert_eq!(f.cut, Cut::at(HEAD.len() + 4, 0, Stage::Body));

        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n3\r\ngh";
        let f = cut_after(chunked).await.unwrap_err();
        assert_eq!(f.outcome, Outcome::Truncated);
        assert_eq!(f.cut, Cut::at(chunked.len(), 2, Stage::Chunked));

        let f = cut_after(b"HTTP/1.1 200 OK\r\nContent-Le")
            .await
            .unwrap_err();
        assert_eq!(f.outcome, Outcome::Truncated);
        assert_eq!(f.cut, Cut::at(27, 0, Stage::Head));

        let f = cut_after(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
            .await
            .unwrap();
        assert_eq!(f.status, 200, "a body framed by the close is complete");

        // A body past what is kept is counted and dropped: the count still holds.
        let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        let head = big.len();
        big.resize(head + 70_000, b'x');
        let f = cut_after(big.leak()).await.unwrap_err();
        assert_eq!(f.cut, Cut::at(head + 70_000, 0, Stage::Body));

        let f = cut_after(b"").await.unwrap_err();
        assert_eq!(
            f,
            Failed::from(Outcome::ResetFresh),
            "no byte: a reset, no cut"
        );

        let whole =
            cut_after(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
                .await
                .unwrap();
        assert_eq!(whole.status, 200);
    }

    #[test]
    fn chunked_body() {
        let body = b"4\r\nwiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n";
        let mut pos = 0;
        let mut out = Vec::new();
        let mut n = 0;
        assert_eq!(
            decode_chunks(body, &mut pos, Some(&mut out), &mut n),
            Ok(true)
        );
        assert_eq!(out, b"wikipedia");
        assert_eq!(pos, body.len());
        assert_eq!(n, 2);
        let (mut pos, mut n) = (0, 0);
        assert_eq!(
            decode_chunks(&body[..10], &mut pos, None, &mut n),
            Ok(false)
        );
        assert_eq!(n, 1, "one chunk complete in the first 10 bytes");
        assert_eq!(decode_chunks(b"zz\r\n", &mut 0, None, &mut 0), Err(()));
    }
}
