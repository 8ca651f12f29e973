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

use super::response::{head_end, parse_head, BodyDecoder, HeadError, MAX_HEAD};
pub use super::response::{ReadSpec, Reply};
use super::target::Endpoint;
use super::tls::{is_cert_rejection, TlsClient};
use crate::stats::outcome::{Cut, Outcome, Stage};

/// Pieces a slow upload is written in.
const UPLOAD_PIECES: usize = 10;
/// Room kept free in the read buffer for each read: with the head, all a connection holds.
const READ_ROOM: usize = 16 * 1024;

/// An open connection to the target.
pub struct Conn {
    stream: Stream,
    /// Completed exchanges on this connection; a failure on a reused one is `reset_reused`.
    served: u64,
    /// Over TLS: whether the handshake resumed an earlier session (None: plain).
    resumed: Option<bool>,
    /// Over TLS after a full handshake: the server certificate's fingerprint.
    cert: Option<super::tls::CertId>,
    /// Over TLS: the server chose `h2` by ALPN.
    alpn_h2: bool,
}

/// A connection's byte stream as the HTTP/2 client drives it.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Unix(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes).await,
            Stream::Unix(s) => s.write_all(bytes).await,
            // Records rustls still buffers go out on the flush.
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// A read that does not wait: `WouldBlock` if nothing (no plaintext, over TLS) is there.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use futures_util::FutureExt;
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
            // One poll: rustls reads what the socket holds and decrypts it; a record
            // without plaintext (a session ticket) leaves the connection open.
            Stream::Tls(s) => s
                .read(buf)
                .now_or_never()
                .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into())),
        }
    }
}

impl Conn {
    /// Connects within `timeout`, over TLS with `tls` (a TCP endpoint only); a failure
    /// is already classified. The TLS handshake shares the connect's time limit: a
    /// handshake that fails, is cut or takes too long is `tls_handshake`, a certificate
    /// the client does not accept `tls_cert_rejected`.
    pub async fn connect(
        endpoint: &Endpoint,
        tls: Option<&TlsClient>,
        timeout: Duration,
    ) -> Result<Conn, Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
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
        let stream = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(Outcome::from_connect_error(&e)),
            Err(_) => return Err(Outcome::ConnectTimeout),
        };
        let (tls, tcp) = match (tls, stream) {
            (Some(tls), Stream::Tcp(tcp)) => (tls, tcp),
            (_, stream) => {
                return Ok(Conn {
                    stream,
                    served: 0,
                    resumed: None,
                    cert: None,
                    alpn_h2: false,
                })
            }
        };
        let (connector, name) = tls.parts();
        match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await {
            Ok(Ok(s)) => {
                let tls = s.get_ref().1;
                let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                // A full handshake carries the server's certificate: its fingerprint,
                // once a connection (a resumed one shows none).
                let cert = tls
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .filter(|_| !resumed)
                    .map(|leaf| super::tls::fingerprint(leaf));
                let alpn_h2 = tls.alpn_protocol() == Some(super::tls::ALPN_H2);
                Ok(Conn {
                    stream: Stream::Tls(Box::new(s)),
                    served: 0,
                    resumed: Some(resumed),
                    cert,
                    alpn_h2,
                })
            }
            Ok(Err(e)) if is_cert_rejection(&e) => Err(Outcome::TlsCertRejected),
            Ok(Err(_)) | Err(_) => Err(Outcome::TlsHandshake),
        }
    }

    /// Over TLS, whether the handshake resumed an earlier session (None: plain).
    pub fn resumed(&self) -> Option<bool> {
        self.resumed
    }

    /// After a full TLS handshake, the server certificate's fingerprint
    /// ([`fingerprint`](super::tls::fingerprint)); None when resumed or plain.
    pub fn cert(&self) -> Option<super::tls::CertId> {
        self.cert
    }

    /// Over TLS: whether the server chose `h2` by ALPN.
    pub fn alpn_h2(&self) -> bool {
        self.alpn_h2
    }

    /// The byte stream, for a protocol other than this client's HTTP/1.1.
    pub fn into_io(self) -> Box<dyn Io> {
        match self.stream {
            Stream::Tcp(s) => Box::new(s),
            Stream::Unix(s) => Box::new(s),
            Stream::Tls(s) => s,
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
        // Read until the final head is in; interim (1xx) heads are dropped as they come.
        let mut searched = 0;
        let (head_len, mut reply, framing) = loop {
            if let Some(end) = head_end(buf, searched) {
                match parse_head(&buf[..end], spec) {
                    Ok(Some(head)) => break head,
                    Err(HeadError::Interim) => {
                        buf.drain(..end);
                        searched = 0;
                        continue;
                    }
                    Ok(None) | Err(HeadError::NotHttp) => return Err(Outcome::ProtocolError.into()),
                }
            }
            if !looks_like_http(buf) {
                return Err(Outcome::ProtocolError.into());
            }
            if buf.len() > MAX_HEAD {
                return Err(Outcome::Oversize.into());
            }
            searched = buf.len();
            buf.reserve(READ_ROOM);
            match self.stream.read(buf).await {
                Ok(0) | Err(_) => {
                    return Err(match received {
                        0 => Outcome::cut(0, reused).into(),
                        n => Failed::truncated(n, 0, Stage::Head),
                    })
                }
                Ok(n) => received += n,
            }
        };
        // The head stays at the front (the version is read from it); body bytes pass
        // through the room after it and are dropped once decoded.
        let mut body = BodyDecoder::new(&framing);
        let mut at = head_len;
        loop {
            let keep = spec.keep_body.then_some(&mut reply.body);
            match body.feed(&buf[at..], keep) {
                Ok(used) => at += used,
                Err(e) => return Err(e.outcome().into()),
            }
            if body.is_done() {
                reply.trailing = at < buf.len();
                break;
            }
            buf.truncate(head_len);
            at = head_len;
            buf.reserve(READ_ROOM);
            match self.stream.read(buf).await {
                Ok(0) if body.until_close() => {
                    reply.reusable = false;
                    break;
                }
                Ok(0) | Err(_) => {
                    let stage = if body.is_chunked() {
                        Stage::Chunked
                    } else {
                        Stage::Body
                    };
                    return Err(Failed::truncated(received, body.chunks(), stage));
                }
                Ok(n) => received = received.saturating_add(n),
            }
        }
        self.served += 1;
        Ok(reply)
    }

    /// What became of this idle connection since its last response, looked at without
    /// waiting (a non-blocking read, as pooled clients check before reuse).
    pub fn idle_state(&mut self) -> Idle {
        let mut probe = [0u8; 64];
        match self.stream.try_read(&mut probe) {
            Ok(0) => Idle::Closed,
            Ok(_) => Idle::Stray,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Idle::Open,
            Err(_) => Idle::Closed,
        }
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
}

/// What an idle keep-alive connection looks like just before its next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing arrived: it may carry the next request.
    Open,
    /// The server closed it (or reset it) while it sat idle.
    Closed,
    /// Bytes arrived that belong to no request: its last response was broken (see
    /// docs/reference.md, "How responses are read").
    Stray,
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

/// False once the first bytes cannot begin an HTTP/1.x status line (so junk is an error
/// at once, not after the head limit or the timeout).
pub(super) fn looks_like_http(buf: &[u8]) -> bool {
    let n = buf.len().min(5);
    buf[..n] == b"HTTP/"[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One exchange against a one-shot server that writes `reply` in pieces cut at
    /// `splits`, pausing `pause_us` µs before each, then closes. Returns the exchange's
    /// result, the connection (closed by the server by then) and the read buffer.
    async fn serve(
        reply: &'static [u8],
        splits: &[usize],
        pause_us: &[u64],
        spec: &ReadSpec,
    ) -> (Result<Reply, Failed>, Conn, Vec<u8>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ep = Endpoint::Tcp(l.local_addr().unwrap());
        let mut cuts: Vec<usize> = splits.iter().map(|&c| c % (reply.len() + 1)).collect();
        cuts.extend([0, reply.len()]);
        cuts.sort_unstable();
        cuts.dedup();
        let pauses = pause_us.to_vec();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 256];
            let _ = s.read(&mut req).await.unwrap();
            for (i, w) in cuts.windows(2).enumerate() {
                let pause = pauses.get(i).copied().unwrap_or(0);
                tokio::time::sleep(Duration::from_micros(pause)).await;
                s.write_all(&reply[w[0]..w[1]]).await.unwrap();
                s.flush().await.unwrap();
            }
        });
        let mut conn = Conn::connect(&ep, None, Duration::from_secs(2))
            .await
            .unwrap();
        let mut buf = Vec::new();
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            conn.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", &mut buf, spec),
        )
        .await
        .expect("the exchange ends");
        server.await.unwrap();
        (r, conn, buf)
    }

    /// The exchange's result against a server that writes `reply` at once and closes.
    async fn cut_after(reply: &'static [u8]) -> Result<Reply, Failed> {
        serve(reply, &[], &[], &ReadSpec::default()).await.0
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

    /// Responses whose class must not depend on how they are split into reads.
    const SPLIT_CASES: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App-Version: v1\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;x=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
        b"HTTP/1.1 204 No Content\r\n\r\nhello",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551600\r\n\r\n",
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad",
        b"SSH-2.0-OpenSSH_9.2\r\n",
    ];

    /// One exchange against a server that writes `reply` in pieces cut at `splits`,
    /// pausing `pause_us` µs before each, then closes; then, as the next request on a
    /// kept connection would, a look for stray bytes. The outcome as one string.
    async fn outcome_of(reply: &'static [u8], splits: &[usize], pause_us: &[u64]) -> String {
        let spec = ReadSpec {
            version_header: Some("x-app-version".into()),
            keep_body: true,
            ..ReadSpec::default()
        };
        // Everything is written and the server has closed: the next request would go out now.
        let (r, mut conn, buf) = serve(reply, splits, pause_us, &spec).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        match r {
            Ok(reply) if reply.reusable && (reply.trailing || conn.idle_state() == Idle::Stray) => {
                "protocol_error (bytes after the response)".into()
            }
            Ok(reply) => format!(
                "{} {:?} {:?}",
                reply.status,
                reply.version(&buf).map(String::from_utf8_lossy),
                String::from_utf8_lossy(&reply.body)
            ),
            Err(f) => format!("{} {:?}", f.outcome, f.cut),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// The same response bytes, split into reads anywhere and with pauses between
        /// them, end in the same outcome as when sent in one write.
        #[test]
        fn every_split_of_the_same_bytes_gets_the_same_outcome(
            splits in proptest::collection::vec(0usize..400, 0..6),
            pauses in proptest::collection::vec(0u64..1500, 0..7),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            for reply in SPLIT_CASES {
                let whole = rt.block_on(outcome_of(reply, &[], &[]));
                let split = rt.block_on(outcome_of(reply, &splits, &pauses));
                proptest::prop_assert_eq!(&whole, &split, "{}", String::from_utf8_lossy(reply));
            }
        }
    }

    #[tokio::test]
    async fn the_split_cases_end_as_the_framing_rules_say() {
        let mut got = Vec::new();
        for reply in SPLIT_CASES {
            got.push(outcome_of(reply, &[], &[]).await);
        }
        let got: Vec<&str> = got.iter().map(String::as_str).collect();
        assert_eq!(
            got,
            [
                "200 Some(\"v1\") \"hello\"",
                "200 None \"wikipedia\"",
                "201 None \"ok\"",
                "truncated Cut { bytes: 43, chunks: 0, stage: Body }",
                "protocol_error (bytes after the response)",
                "protocol_error (bytes after the response)",
                "200 None \"until the end\"",
                "protocol_error Cut { bytes: 0, chunks: 0, stage: None }",
                "protocol_error Cut { bytes: 0, chunks: 0, stage: None }",
                "502 None \"bad\"",
                "protocol_error Cut { bytes: 0, chunks: 0, stage: None }",
            ]
        );
    }
}
