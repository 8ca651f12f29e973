//! Counting websocket connections: how each one ended, and the run's totals.
//!
//! Every connection ends in exactly one [`End`]; the totals keep the identity
//! `connections + reopened = failed_to_open + opened` and `opened =
//! closed_by_server + dropped + held_to_end`, so a connection the harness lost
//! track of shows.

use std::collections::BTreeMap;

use serde::Serialize;

/// How one websocket connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The opening handshake failed or timed out.
    FailedToOpen,
    /// The server sent a close frame (a clean close, e.g. 1001 going away).
    ClosedByServer,
    /// Gone without a close frame: EOF, a reset, or no echo within the timeout.
    Dropped,
    /// Still open when the run ended; the client closed it.
    HeldToEnd,
}

/// One connection's life, times in ms on the load clock.
#[derive(Debug, Clone, Serialize)]
pub struct Life {
    /// Which of the connections (0-based); a reopened one keeps its predecessor's.
    pub conn: usize,
    /// Opened in place of a connection the server ended (`reconnect`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reopen: bool,
    /// When the opening handshake completed (absent: it never did).
    pub opened_ms: Option<f64>,
    /// The version the server named when the connection opened, if it did.
    pub version: Option<String>,
    /// Messages echoed back on this connection.
    pub echoes: u64,
    /// How it ended.
    pub end: End,
    /// When it ended (for a failed open: when the attempt gave up).
    pub at_ms: f64,
    /// The close code the server sent (closed_by_server only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// What happened, in words (the close reason, the error, the timeout).
    pub detail: String,
}

/// What the websocket connections of one run did.
#[derive(Debug, Clone, Serialize)]
pub struct WsReport {
    /// Connections the run opened at load start (`[websockets] connections`).
    pub connections: usize,
    /// Connections opened again in place of one the server ended (`reconnect`).
    pub reopened: u64,
    /// The websocket path.
    pub path: String,
    /// Time between two messages on one connection, ms.
    pub interval_ms: f64,
    /// Connections whose opening handshake completed.
    pub opened: u64,
    /// Connections whose opening handshake failed.
    pub failed_to_open: u64,
    /// Connections the server closed with a close frame.
    pub closed_by_server: u64,
    /// Connections gone without a close frame.
    pub dropped: u64,
    /// Connections still open at the end (closed by the client).
    pub held_to_end: u64,
    /// Messages echoed back, over all connections.
    pub echoes: u64,
    /// Close codes the server sent, with their counts.
    pub close_codes: BTreeMap<String, u64>,
    /// Versions the server named on open, with their counts.
    pub versions: BTreeMap<String, u64>,
    /// Every connection, in order (a reopened one after its predecessor).
    pub lives: Vec<Life>,
}

impl WsReport {
    /// The totals over `lives` (one per connection, and one per reopening).
    pub fn tally(path: &str, interval_ms: f64, mut lives: Vec<Life>) -> WsReport {
        // Stable: a connection's reopenings stay in order.
        lives.sort_by_key(|l| l.conn);
        let mut slots: Vec<usize> = lives.iter().map(|l| l.conn).collect();
        slots.dedup();
        let mut r = WsReport {
            connections: slots.len(),
            reopened: 0,
            path: path.to_string(),
            interval_ms,
            opened: 0,
            failed_to_open: 0,
            closed_by_server: 0,
            dropped: 0,
            held_to_end: 0,
            echoes: 0,
            close_codes: BTreeMap::new(),
            versions: BTreeMap::new(),
            lives: Vec::new(),
        };
        for l in &lives {
            r.echoes += l.echoes;
            r.reopened += u64::from(l.reopen);
            if l.opened_ms.is_some() {
                r.opened += 1;
            }
            if let Some(v) = &l.version {
                *r.versions.entry(v.clone()).or_default() += 1;
            }
            match l.end {
                End::FailedToOpen => r.failed_to_open += 1,
                End::ClosedByServer => {
                    r.closed_by_server += 1;
                    let code = l.code.map_or("none".into(), |c| c.to_string());
                    *r.close_codes.entry(code).or_default() += 1;
                }
                End::Dropped => r.dropped += 1,
                End::HeldToEnd => r.held_to_end += 1,
            }
        }
        r.lives = lives;
        r
    }

    /// Every connection is accounted for: opened or failed to open, and each opened
    /// one closed, dropped or held to the end.
    pub fn identity_holds(&self) -> bool {
        self.opened + self.failed_to_open == self.connections as u64 + self.reopened
            && self.closed_by_server + self.dropped + self.held_to_end == self.opened
            && self.lives.len() as u64 == self.connections as u64 + self.reopened
    }

    /// The first and last time (ms) a connection ended in `end`, if any did.
    pub fn span(&self, end: End) -> Option<(f64, f64)> {
        self.lives
            .iter()
            .filter(|l| l.end == end)
            .map(|l| l.at_ms)
            .fold(None, |acc, t| match acc {
                None => Some((t, t)),
                Some((a, b)) => Some((f64::min(a, t), f64::max(b, t))),
            })
    }

    /// One line of the counts, e.g. `8 opened: 0 dropped without a close frame, 8
    /// closed by the server (1001 x8) at 2104.2-2109.9 ms, 0 held to the end`.
    pub fn summary(&self) -> String {
        let at = |end| {
            self.span(end).map_or(String::new(), |(a, b)| {
                if b - a < 0.05 {
                    format!(" at {a:.1} ms")
                } else {
                    format!(" at {a:.1}-{b:.1} ms")
                }
            })
        };
        let codes: Vec<String> = self
            .close_codes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        let mut s = format!("{} of {} opened", self.opened, self.connections);
        if self.reopened > 0 {
            s = format!(
                "{} opened ({} at the start, {} reopened)",
                self.opened, self.connections, self.reopened
            );
        }
        if self.failed_to_open > 0 {
            s.push_str(&format!(
                " ({} failed to open{})",
                self.failed_to_open,
                at(End::FailedToOpen)
            ));
        }
        s.push_str(&format!(
            ": {} dropped without a close frame{}, {} closed by the server{}{}, {} held to the end; {} echoes",
            self.dropped,
            at(End::Dropped),
            self.closed_by_server,
            if codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", codes.join(", "))
            },
            at(End::ClosedByServer),
            self.held_to_end,
            self.echoes
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(conn: usize, end: End, at_ms: f64, code: Option<u16>) -> Life {
        Life {
            conn,
            reopen: false,
            opened_ms: (end != End::FailedToOpen).then_some(10.0),
            version: (end != End::FailedToOpen).then(|| "v1".to_string()),
            echoes: 3,
            end,
            at_ms,
            code,
            detail: String::new(),
        }
    }

    #[test]
    fn every_connection_is_counted_once() {
        let r = WsReport::tally(
            "/ws",
            100.0,
            vec![
                life(3, End::Dropped, 2100.0, None),
                life(0, End::ClosedByServer, 2000.0, Some(1001)),
                life(1, End::ClosedByServer, 2010.0, Some(1001)),
                life(2, End::HeldToEnd, 4000.0, None),
                life(4, End::FailedToOpen, 5.0, None),
                life(5, End::Dropped, 2200.0, None),
            ],
        );
        assert_eq!(r.connections, 6);
        assert_eq!(r.opened, 5);
        assert_eq!(r.failed_to_open, 1);
        assert_eq!(r.closed_by_server, 2);
        assert_eq!(r.dropped, 2);
        assert_eq!(r.held_to_end, 1);
        assert_eq!(r.echoes, 18);
        assert_eq!(r.close_codes.get("1001"), Some(&2));
        assert_eq!(r.versions.get("v1"), Some(&5));
        assert!(r.identity_holds());
        assert_eq!(r.span(End::Dropped), Some((2100.0, 2200.0)));
        assert_eq!(r.span(End::HeldToEnd), Some((4000.0, 4000.0)));
        assert_eq!(
            r.lives.iter().map(|l| l.conn).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        let s = r.summary();
        assert!(
            s.starts_with("5 of 6 opened (1 failed to open at 5.0 ms): 2 dropped without a close frame at 2100.0-2200.0 ms, 2 closed by the server (1001 x2) at 2000.0-2010.0 ms, 1 held to the end"),
            "{s}"
        );
    }

    #[test]
    fn reopened_connections_count_apart_and_keep_their_order() {
        let mut again = life(0, End::HeldToEnd, 3000.0, None);
        again.reopen = true;
        again.version = Some("v2".into());
        let mut failed = life(1, End::FailedToOpen, 2100.0, None);
        failed.reopen = true;
        let r = WsReport::tally(
            "/ws",
            100.0,
            vec![
                life(1, End::ClosedByServer, 2000.0, Some(1001)),
                failed,
                life(0, End::ClosedByServer, 2000.0, Some(1001)),
                again,
            ],
        );
        assert_eq!((r.connections, r.reopened), (2, 2));
        assert_eq!(
            (
                r.opened,
                r.failed_to_open,
                r.closed_by_server,
                r.held_to_end
            ),
            (3, 1, 2, 1)
        );
        assert!(r.identity_holds());
        assert_eq!(r.versions.get("v2"), Some(&1));
        let order: Vec<(usize, bool)> = r.lives.iter().map(|l| (l.conn, l.reopen)).collect();
        assert_eq!(order, [(0, false), (0, true), (1, false), (1, true)]);
        assert!(
            r.summary().starts_with(
                "3 opened (2 at the start, 2 reopened) (1 failed to open at 2100.0 ms)"
            ),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn a_lost_connection_breaks_the_identity() {
        let mut r = WsReport::tally("/ws", 100.0, vec![life(0, End::HeldToEnd, 1.0, None)]);
        assert!(r.identity_holds());
        r.held_to_end = 0;
        assert!(!r.identity_holds());
        let none = WsReport::tally("/ws", 100.0, Vec::new());
        assert!(none.identity_holds());
        assert_eq!(none.span(End::Dropped), None);
    }
}
