//! WebSocket connections held across the reload (`[websockets]`).
//!
//! K connections are opened at load start to the load's own target (nginx when
//! the scenario has a front server, else the app; TCP or a unix socket). Each
//! sends a small text message every interval and expects it echoed back. How each
//! connection ends is what a reload is judged on: a server that goes away cleanly
//! sends a close frame (1001, going away) and the client can reconnect; one that
//! just closes the socket, resets it, or stops answering drops the connection.
//! At the end of the run the client closes what is still open itself (a normal
//! close, 1000) and counts it as held to the end. With `reconnect`, a connection
//! the server ended is opened again after an interval, as a browser would, and
//! its greeting shows which version took it (a reopening that fails is counted
//! and not retried); without it nothing is reopened. Every wait (connect,
//! handshake, echo, closing handshake) has a time limit.
//!
//! The protocol is tokio-tungstenite's; this module only counts (see [`tally`]).

pub mod tally;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, timeout_at, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

pub use tally::{End, Life, WsReport};

use crate::load::{Clock, Endpoint};

/// What the websocket connections do.
#[derive(Debug, Clone)]
pub struct WsSpec {
    /// Where to connect (the load's target).
    pub endpoint: Endpoint,
    /// The Host header.
    pub host: String,
    /// The websocket path, e.g. `/ws`.
    pub path: String,
    /// Connections to open.
    pub connections: usize,
    /// Time between two messages on one connection.
    pub interval: Duration,
    /// Limit for connect + opening handshake, for each echo, and for the closing handshake.
    pub timeout: Duration,
    /// Open a connection again (after `interval`) when the server ended it.
    pub reconnect: bool,
}

/// Any byte stream a websocket can run over (TCP or a unix socket).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Ws = WebSocketStream<Box<dyn Io>>;

/// The running connections.
pub struct WsRun {
    spec: Arc<WsSpec>,
    clock: Clock,
    stop: watch::Sender<bool>,
    tasks: JoinSet<Vec<Life>>,
}

impl WsRun {
    /// Opens the connections now, each on its own task. Must be called inside a tokio runtime.
    pub fn start(spec: WsSpec, clock: Clock) -> WsRun {
        let spec = Arc::new(spec);
        let (stop, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for conn in 0..spec.connections {
            tasks.spawn(slot(conn, spec.clone(), clock, rx.clone()));
        }
        WsRun {
            spec,
            clock,
            stop,
            tasks,
        }
    }

    /// Closes what is still open (the client's normal close), waits for every
    /// connection's end (bounded: an opening handshake under way, the closing
    /// handshake, and a second), and returns the counts.
    pub async fn finish(mut self) -> WsReport {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + self.spec.timeout * 2 + Duration::from_secs(1);
        let mut lives = Vec::with_capacity(self.spec.connections);
        while let Ok(Some(joined)) = timeout_at(deadline, self.tasks.join_next()).await {
            if let Ok(slot) = joined {
                lives.extend(slot);
            }
        }
        // Bounded above, so this only happens if a task misbehaves: it was still open.
        self.tasks.abort_all();
        let at_ms = ms(self.clock);
        for conn in 0..self.spec.connections {
            if !lives.iter().any(|l| l.conn == conn) {
                lives.push(Life {
                    conn,
                    reopen: false,
                    opened_ms: None,
                    version: None,
                    echoes: 0,
                    end: End::FailedToOpen,
                    at_ms,
                    code: None,
                    detail: "its task did not finish in time (a harness bug)".into(),
                });
            }
        }
        WsReport::tally(
            &self.spec.path,
            self.spec.interval.as_secs_f64() * 1000.0,
            lives,
        )
    }
}

/// ms since load start.
fn ms(clock: Clock) -> f64 {
    clock.now_ns() as f64 / 1e6
}

/// Connects and completes the opening handshake.
async fn open(spec: &WsSpec) -> Result<Ws, String> {
    let stream: Box<dyn Io> = match &spec.endpoint {
        Endpoint::Tcp(a) => {
            let s = TcpStream::connect(a)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Endpoint::Unix(p) => Box::new(
            UnixStream::connect(p)
                .await
                .map_err(|e| format!("connect: {e}"))?,
        ),
    };
    let url = format!("ws://{}{}", spec.host, spec.path);
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Why a read error ended the connection, in words.
fn why(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => "closed without a close frame".into(),
        other => other.to_string(),
    }
}

/// Connection `conn` and, with `reconnect`, the ones opened in its place, until
/// `stop` turns true.
async fn slot(
    conn: usize,
    spec: Arc<WsSpec>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> Vec<Life> {
    let mut lives = Vec::new();
    loop {
        let Some(life) = hold(conn, !lives.is_empty(), &spec, clock, &mut stop).await else {
            return lives;
        };
        let ended_by_server = matches!(life.end, End::ClosedByServer | End::Dropped);
        lives.push(life);
        if !(spec.reconnect && ended_by_server) || *stop.borrow() {
            return lives;
        }
        tokio::select! {
            () = tokio::time::sleep(spec.interval) => {}
            () = async { let _ = stop.wait_for(|s| *s).await; } => return lives,
        }
    }
}

/// One connection's life: open, exchange a message every interval, until the server
/// ends it or `stop` turns true. A reopening that `stop` overtakes before its
/// handshake completed is no connection at all (`None`): the run is over.
async fn hold(
    conn: usize,
    reopen: bool,
    spec: &WsSpec,
    clock: Clock,
    stop: &mut watch::Receiver<bool>,
) -> Option<Life> {
    let mut life = Life {
        conn,
        reopen,
        opened_ms: None,
        version: None,
        echoes: 0,
        end: End::FailedToOpen,
        at_ms: 0.0,
        code: None,
        detail: String::new(),
    };
    let opened = tokio::select! {
        r = timeout(spec.timeout, open(spec)) => r,
        () = async { let _ = stop.wait_for(|s| *s).await; }, if reopen => return None,
    };
    let mut ws = match opened {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            life.at_ms = ms(clock);
            life.detail = e;
            return Some(life);
        }
        Err(_) => {
            life.at_ms = ms(clock);
            life.detail = format!("no handshake within {:?}", spec.timeout);
            return Some(life);
        }
    };
    life.opened_ms = Some(ms(clock));
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq = 0u64;
    // The message awaiting its echo, and its deadline.
    let mut pending: Option<(String, Instant)> = None;
    let far = Instant::now() + Duration::from_secs(86_400);
    let (end, detail, code) = loop {
        let echo_by = pending.as_ref().map_or(far, |p| p.1);
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => {
                // The client's normal close; the server's reply is awaited, bounded.
                let close = async {
                    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "end of run".into() })).await?;
                    while let Some(m) = ws.next().await {
                        m?;
                    }
                    Ok::<(), tungstenite::Error>(())
                };
                let detail = match timeout(spec.timeout, close).await {
                    Ok(Ok(())) | Ok(Err(tungstenite::Error::ConnectionClosed)) => "closed by the client at the end of the run".to_string(),
                    Ok(Err(e)) => format!("closed by the client at the end of the run ({})", why(&e)),
                    Err(_) => "closed by the client at the end of the run (no close reply in time)".into(),
                };
                break (End::HeldToEnd, detail, None);
            }
            _ = tick.tick(), if pending.is_none() => {
                seq += 1;
                let text = format!("zdt {conn} {seq}");
                if let Err(e) = ws.send(Message::text(text.clone())).await {
                    break (End::Dropped, format!("send: {}", why(&e)), None);
                }
                pending = Some((text, Instant::now() + spec.timeout));
            }
            _ = sleep_until(echo_by), if pending.is_some() => {
                break (End::Dropped, format!("no echo within {:?}", spec.timeout), None);
            }
            msg = ws.next() => match msg {
                None => break (End::Dropped, "EOF without a close frame".into(), None),
                Some(Err(e)) => break (End::Dropped, why(&e), None),
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queued the close reply; send it, bounded.
                    let _ = timeout(spec.timeout, ws.flush()).await;
                    let (code, reason) = frame.map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.to_string()));
                    break (End::ClosedByServer, format!("close frame {}{}", code.map_or("without a code".into(), |c| c.to_string()), if reason.is_empty() { String::new() } else { format!(" {reason:?}") }), code);
                }
                Some(Ok(Message::Text(t))) => {
                    if pending.as_ref().is_some_and(|p| p.0.as_str() == t.as_str()) {
                        pending = None;
                        life.echoes += 1;
                    } else if let (None, Some(v)) = (&life.version, t.as_str().strip_prefix("version=")) {
                        life.version = Some(v.trim().to_string());
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    };
    life.at_ms = ms(clock);
    life.end = end;
    life.detail = detail;
    life.code = code;
    Some(life)
}
