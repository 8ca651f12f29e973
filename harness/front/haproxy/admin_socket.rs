//! The client of haproxy's admin (stats) socket: one command, its whole answer.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// Sends one command to a haproxy CLI socket and reads the answer to the end.
pub(crate) async fn cli(sock: &Path, cmd: &str) -> Result<String> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(format!("{cmd}\n").as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step(format!("haproxy `{cmd}`: no answer within 2s")))?
        .map_err(|e| Error::Step(format!("haproxy `{cmd}` on {}: {e}", sock.display())))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
