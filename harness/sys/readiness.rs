//! Readiness: an instance is ready when it answers an HTTP probe, never after a fixed sleep.

use std::time::Duration;

use super::child::Child;
use crate::error::{Error, Result};
use crate::load::client::{Conn, ReadSpec};
use crate::load::tls::TlsClient;
use crate::load::Endpoint;

/// Polling interval of the probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(20);

/// One `GET path` to `endpoint` (over TLS with `tls`): its status and the
/// `X-App-Version` it named, or why it failed.
pub async fn probe_once(
    endpoint: &Endpoint,
    tls: Option<&TlsClient>,
    path: &str,
) -> std::result::Result<(u16, Option<String>), String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: zdt-check-probe\r\nConnection: close\r\n\r\n").into_bytes();
    let spec = ReadSpec {
        version_header: Some("x-app-version".into()),
        keep_body: false,
        want_echo: false,
        head_request: false,
    };
    let mut buf = Vec::with_capacity(4096);
    let attempt = async {
        let mut conn = Conn::connect(endpoint, tls, Duration::from_secs(1))
            .await
            .map_err(|o| o.to_string())?;
        conn.exchange(&request, &mut buf, &spec)
            .await
            .map(|reply| {
                let version = reply
                    .version(&buf)
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                (reply.status, version)
            })
            .map_err(|f| f.outcome.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(r) => r,
        Err(_) => Err("probe timed out".into()),
    }
}

/// Sends `GET path` to `endpoint` (over TLS with `tls`) until a 2xx arrives, up to `timeout`.
/// Fails early, with the tail of its log, if `child` exits first.
/// Returns the `X-App-Version` the probe saw, if any.
pub async fn wait_ready(
    endpoint: &Endpoint,
    tls: Option<&TlsClient>,
    path: &str,
    timeout: Duration,
    child: Option<&mut Child>,
) -> Result<Option<String>> {
    wait_ready_speaking(endpoint, tls, false, path, timeout, child).await
}

/// [`wait_ready`], probing in HTTP/2 with prior knowledge if `h2c` (a port that
/// speaks nothing else).
pub async fn wait_ready_speaking(
    endpoint: &Endpoint,
    tls: Option<&TlsClient>,
    h2c: bool,
    path: &str,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> Result<Option<String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        if let Some(c) = child.as_deref_mut() {
            if let Some(status) = c.try_exited() {
                return Err(c.error(format!("exited ({status}) before it was ready")));
            }
        }
        let probe = async {
            if h2c {
                let h2 = crate::load::http2::probe_h2c(endpoint, path);
                tokio::time::timeout(Duration::from_secs(2), h2)
                    .await
                    .unwrap_or_else(|_| Err("probe timed out".into()))
            } else {
                probe_once(endpoint, tls, path).await
            }
        };
        match probe.await {
            Ok((200..=299, version)) => return Ok(version),
            Ok((status, _)) => last = format!("status {status}"),
            Err(why) => last = why,
        }
        if tokio::time::Instant::now() >= deadline {
            let what = format!("waiting for {endpoint:?} to answer GET {path}");
            return Err(match child {
                Some(c) => c.error(format!("not ready after {timeout:?} (last probe: {last})")),
                None => Error::Harness(format!(
                    "{what}: not ready after {timeout:?} (last probe: {last})"
                )),
            });
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Waits until `endpoint` accepts a connection (for sockets that do not speak HTTP:
/// FastCGI, uwsgi), up to `timeout`; fails early if `child` exits.
pub async fn wait_accepting(
    endpoint: &Endpoint,
    timeout: Duration,
    child: &mut Child,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_exited() {
            return Err(child.error(format!("exited ({status}) before it was ready")));
        }
        if Conn::connect(endpoint, None, Duration::from_secs(1))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(child.error(format!(
                "its socket did not accept connections within {timeout:?}"
            )));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
