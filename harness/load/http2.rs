//! HTTP/2 load with the `h2` crate: streams on connections shared by a group of
//! workers, negotiated by ALPN over TLS (`h2`) or spoken with prior knowledge over
//! plain TCP or a unix socket (`h2c`).
//!
//! One stream, one outcome, as for HTTP/1.1. What HTTP/2 adds is classified, never
//! hidden: a stream the server refused unprocessed (above a GOAWAY's last stream id,
//! or reset with REFUSED_STREAM) is `h2_refused`, a stream reset with another code is
//! `h2_reset`; neither is retried. Only a request that never left the client (its
//! connection was already gone: a GOAWAY or a close seen before it was sent) goes on a
//! new connection, counted in `h2.unsent_reconnects`, as pooled clients do; a naive
//! client (`load.reuse = "naive"`) opens the stream anyway and it is refused.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::client::Conn;
use super::mix::{RequestKind, ECHO_CRC, ECHO_LENGTH};
use super::tls::TlsClient;
use super::{next_conn_id, note_cert, Clock, LoadSpec, Reuse, WorkerCounters};
use crate::stats::outcome::{Cut, Outcome, Stage};
use crate::stats::H2Counts;

/// Headers HTTP/2 forbids (connection-specific) or carries as pseudo-headers.
const NOT_IN_H2: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Receive window per stream and per connection: large enough that flow control never
/// paces a verifier's reads.
const STREAM_WINDOW: u32 = 1 << 20;
const CONN_WINDOW: u32 = 1 << 24;

/// A kind's request as HTTP/2 sends it, made once from its HTTP/1.1 bytes.
#[derive(Debug, Clone)]
pub struct H2Request {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl H2Request {
    /// `kind`'s request for `authority` over `scheme` (`https` or `http`).
    pub fn of(kind: &RequestKind, scheme: &str, authority: &str) -> Result<H2Request, String> {
        let mut parsed = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut parsed);
        req.parse(&kind.bytes[..kind.body_at])
            .map_err(|e| format!("request kind {}: {e}", kind.name))?;
        let method = http::Method::from_bytes(req.method.unwrap_or("GET").as_bytes())
            .map_err(|e| format!("request kind {}: {e}", kind.name))?;
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(req.path.unwrap_or("/"))
            .build()
            .map_err(|e| format!("request kind {}: {e}", kind.name))?;
        let mut headers = http::HeaderMap::new();
        for h in req.headers.iter() {
            if NOT_IN_H2.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
                continue;
            }
            let name = http::HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|e| format!("request kind {}: {e}", kind.name))?;
            let value = http::HeaderValue::from_bytes(h.value)
                .map_err(|e| format!("request kind {}: {e}", kind.name))?;
            headers.append(name, value);
        }
        Ok(H2Request {
            method,
            uri,
            headers,
            body: Bytes::copy_from_slice(&kind.bytes[kind.body_at..]),
        })
    }

    fn request(&self) -> http::Request<()> {
        let mut r = http::Request::new(());
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// The run's HTTP/2 counters, summed into [`H2Counts`].
#[derive(Debug, Default)]
pub struct H2Stats {
    connections: AtomicU64,
    goaways: AtomicU64,
    unsent_reconnects: AtomicU64,
}

impl H2Stats {
    /// What the report shows.
    pub fn counts(&self) -> H2Counts {
        H2Counts {
            connections: self.connections.load(Ordering::SeqCst),
            goaways: self.goaways.load(Ordering::SeqCst),
            unsent_reconnects: self.unsent_reconnects.load(Ordering::SeqCst),
        }
    }
}

/// One HTTP/2 connection of a group.
struct Link {
    send: ::h2::client::SendRequest<Bytes>,
    /// Id and when it was opened (load clock), for exposure.
    meta: (u32, u64),
    /// The server sent GOAWAY on it (counted once).
    goaway: Arc<AtomicBool>,
    /// Its connection task ended (closed, or failed).
    closed: Arc<AtomicBool>,
    /// The group let go of it (so its end is not the server's doing).
    retired: Arc<AtomicBool>,
    /// Streams completed on it: a failure on a connection that served one is "reused".
    served: AtomicU64,
}

impl Link {
    /// Whether a new stream goes on it: not once it is closed, nor, for a pooled
    /// client, once the server sent GOAWAY (a naive client ignores the GOAWAY and
    /// keeps opening streams on it until the server closes it).
    fn usable(&self, reuse: Reuse) -> bool {
        !self.closed.load(Ordering::Relaxed)
            && (reuse == Reuse::Naive || !self.goaway.load(Ordering::Relaxed))
    }

    /// After `e` on one of its streams: notes a GOAWAY; an I/O error or a GOAWAY the
    /// client itself sent (a protocol error it found) ends the link.
    fn failed(&self, e: &::h2::Error, stats: &H2Stats) {
        if e.is_go_away() && e.is_remote() {
            note_goaway(&self.goaway, stats);
        }
        if e.is_io() || (e.is_go_away() && !e.is_remote()) {
            self.closed.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.retired.store(true, Ordering::Relaxed);
    }
}

/// Counts a GOAWAY on a connection once, however many of its streams saw it.
fn note_goaway(flag: &AtomicBool, stats: &H2Stats) {
    if !flag.swap(true, Ordering::Relaxed) {
        stats.goaways.fetch_add(1, Ordering::Relaxed);
    }
}

/// Classifies a stream's HTTP/2 error: `started` once its response head arrived,
/// `reused` if its connection had completed a stream before.
pub fn classify(e: &::h2::Error, started: bool, reused: bool) -> Outcome {
    let reason = e.reason();
    if e.is_remote() && e.is_reset() {
        return if reason == Some(::h2::Reason::REFUSED_STREAM) {
            Outcome::H2Refused
        } else {
            Outcome::H2Reset
        };
    }
    if e.is_remote() && e.is_go_away() {
        return match reason {
            // A graceful GOAWAY fails only the streams above its last stream id.
            Some(::h2::Reason::NO_ERROR) | None if !started => Outcome::H2Refused,
            Some(::h2::Reason::NO_ERROR) | None => Outcome::Truncated,
            Some(_) => Outcome::H2Reset,
        };
    }
    if e.is_io() {
        return Outcome::cut(usize::from(started), reused);
    }
    // The client's own h2 found the server's frames wrong.
    Outcome::ProtocolError
}

/// A complete HTTP/2 response, as the worker judges it.
pub struct H2Reply {
    /// The status code.
    pub status: u16,
    /// The version header's value, if asked for and present.
    pub version: Option<Bytes>,
    /// The body, if kept.
    pub body: Vec<u8>,
    /// The body echo headers (`X-Body-Length`, `X-Body-Crc32`).
    pub echo: (Option<u64>, Option<u32>),
}

/// The streams of one HTTP/2 connection at a time, shared by a group of workers (one
/// stream each): the connection is opened by the first that needs it, replaced once it
/// is gone (a GOAWAY, a close).
pub struct Group {
    slot: tokio::sync::Mutex<Option<Arc<Link>>>,
    stats: Arc<H2Stats>,
}

impl Group {
    /// A group whose connections are counted in `stats`.
    pub fn new(stats: Arc<H2Stats>) -> Group {
        Group {
            slot: tokio::sync::Mutex::new(None),
            stats,
        }
    }

    /// The group's connection, opened if there is none usable. Its TLS handshake is
    /// counted in `counters` as an HTTP/1.1 connection's is.
    async fn link(
        &self,
        spec: &LoadSpec,
        tls: Option<&TlsClient>,
        clock: Clock,
        counters: &WorkerCounters,
    ) -> Result<Arc<Link>, Outcome> {
        let mut slot = self.slot.lock().await;
        if let Some(l) = slot.as_ref().filter(|l| l.usable(spec.reuse)) {
            return Ok(l.clone());
        }
        *slot = None;
        let opened_ns = clock.now_ns();
        let conn = Conn::connect(&spec.target.endpoint, tls, spec.connect_timeout).await?;
        if let Some(resumed) = conn.resumed() {
            counters.tls_handshakes.fetch_add(1, Ordering::Relaxed);
            if resumed {
                counters.tls_resumed.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(id) = conn.cert() {
                note_cert(&counters.certs, id, opened_ns);
            }
            if !conn.alpn_h2() {
                // The server did not choose h2: it would answer in HTTP/1.1.
                return Err(Outcome::ProtocolError);
            }
        }
        let handshake = ::h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONN_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(conn.into_io());
        let (send, connection) = match tokio::time::timeout(spec.connect_timeout, handshake).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(classify(&e, false, false)),
            Err(_) => return Err(Outcome::ConnectTimeout),
        };
        let link = Arc::new(Link {
            send,
            meta: (next_conn_id(), opened_ns),
            goaway: Arc::new(AtomicBool::new(false)),
            closed: Arc::new(AtomicBool::new(false)),
            retired: Arc::new(AtomicBool::new(false)),
            served: AtomicU64::new(0),
        });
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        let (goaway, closed, retired) = (
            link.goaway.clone(),
            link.closed.clone(),
            link.retired.clone(),
        );
        let stats = self.stats.clone();
        // The connection task: reads frames for every stream of the link. It ends once
        // the server closes the connection, or after the group let go of it.
        tokio::spawn(async move {
            let end = connection.await;
            closed.store(true, Ordering::Relaxed);
            let server_goaway = match &end {
                // A graceful close is a GOAWAY, unless the group let go of the link.
                Ok(()) => !retired.load(Ordering::Relaxed),
                Err(e) => e.is_go_away() && e.is_remote(),
            };
            if server_goaway {
                note_goaway(&goaway, &stats);
            }
        });
        *slot = Some(link.clone());
        Ok(link)
    }

    /// Sends `req` on a stream of the group's connection and reads its response. On
    /// failure, how far the response got. `used` is set to the connection's id and
    /// opening time.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn exchange(
        &self,
        req: &H2Request,
        spec: &LoadSpec,
        tls: Option<&TlsClient>,
        clock: Clock,
        counters: &WorkerCounters,
        keep_body: bool,
        want_echo: bool,
        used: &mut (u32, u64),
    ) -> Result<H2Reply, (Outcome, Cut)> {
        let mut reconnected = false;
        let end_stream = req.body.is_empty();
        let (link, response, mut body_tx) = loop {
            let link = self
                .link(spec, tls, clock, counters)
                .await
                .map_err(|o| (o, Cut::NONE))?;
            *used = link.meta;
            let sent = async {
                let mut send = link.send.clone().ready().await?;
                send.send_request(req.request(), end_stream)
            }
            .await;
            match sent {
                Ok((response, body_tx)) => break (link, response, body_tx),
                Err(e) => {
                    link.failed(&e, &self.stats);
                    // Not sent: a pooled client takes a new connection (once).
                    if spec.reuse == Reuse::Pooled && !reconnected {
                        reconnected = true;
                        self.stats.unsent_reconnects.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let reused = link.served.load(Ordering::Relaxed) > 0;
                    return Err((classify(&e, false, reused), Cut::NONE));
                }
            }
        };
        let reused = link.served.load(Ordering::Relaxed) > 0;
        let fail = |e: ::h2::Error, started: bool, got: usize| {
            link.failed(&e, &self.stats);
            let stage = if started { Stage::Body } else { Stage::Head };
            let outcome = classify(&e, started, reused);
            let cut = if outcome == Outcome::Truncated {
                Cut::at(got, 0, stage)
            } else {
                Cut::NONE
            };
            (outcome, cut)
        };
        if !end_stream {
            body_tx.reserve_capacity(req.body.len());
            if let Err(e) = body_tx.send_data(req.body.clone(), true) {
                return Err(fail(e, false, 0));
            }
        }
        let response = match response.await {
            Ok(r) => r,
            Err(e) => return Err(fail(e, false, 0)),
        };
        let (head, mut body) = response.into_parts();
        let mut reply = H2Reply {
            status: head.status.as_u16(),
            version: spec
                .version
                .header
                .as_deref()
                .and_then(|h| head.headers.get(h))
                .map(|v| Bytes::copy_from_slice(v.as_bytes())),
            body: Vec::new(),
            echo: (None, None),
        };
        if want_echo {
            let text = |name| head.headers.get(name).and_then(|v| v.to_str().ok());
            reply.echo.0 = text(ECHO_LENGTH).and_then(|v| v.trim().parse().ok());
            reply.echo.1 = text(ECHO_CRC).and_then(|v| u32::from_str_radix(v.trim(), 16).ok());
        }
        let mut got = 0usize;
        while let Some(chunk) = body.data().await {
            match chunk {
                Ok(data) => {
                    got += data.len();
                    let _ = body.flow_control().release_capacity(data.len());
                    if keep_body {
                        reply.body.extend_from_slice(&data);
                    }
                }
                Err(e) => return Err(fail(e, true, got.max(1))),
            }
        }
        link.served.fetch_add(1, Ordering::Relaxed);
        Ok(reply)
    }
}

/// One `GET path` in HTTP/2 with prior knowledge (h2c) to `endpoint`: its status and
/// the `X-App-Version` it named, or why it failed. The readiness probe of a front that
/// speaks only h2c on its port.
pub async fn probe_h2c(
    endpoint: &super::Endpoint,
    path: &str,
) -> Result<(u16, Option<String>), String> {
    let conn = Conn::connect(endpoint, None, std::time::Duration::from_secs(1))
        .await
        .map_err(|o| o.to_string())?;
    let (send, connection) = ::h2::client::handshake(conn.into_io())
        .await
        .map_err(|e| e.to_string())?;
    let req = http::Request::get(format!("http://localhost{path}"))
        .header("user-agent", "zdt-check-probe")
        .body(())
        .map_err(|e| format!("path {path:?}: {e}"))?;
    let driver = tokio::spawn(connection);
    let exchange = async {
        let mut send = send.ready().await?;
        let (response, _) = send.send_request(req, true)?;
        let response = response.await?;
        let version = response
            .headers()
            .get("x-app-version")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok::<_, ::h2::Error>((response.status().as_u16(), version))
    };
    let r = exchange.await.map_err(|e| e.to_string());
    driver.abort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_becomes_an_h2_request_without_connection_headers() {
        let t = crate::load::Target::parse("http://127.0.0.1:1/", None).unwrap();
        let headers = [("X-Trace".to_string(), "1".to_string())];
        let k = RequestKind::new(
            "up",
            1,
            "POST",
            "/echo?x=1",
            &headers,
            5,
            None,
            true,
            false,
            &t,
        );
        let r = H2Request::of(&k, "http", "localhost").unwrap();
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.uri.to_string(), "http://localhost/echo?x=1");
        assert!(r.headers.get("connection").is_none() && r.headers.get("host").is_none());
        assert_eq!(r.headers.get("x-trace").unwrap(), "1");
        assert_eq!(r.headers.get("content-length").unwrap(), "5");
        assert_eq!(r.body.len(), 5);
    }
}
