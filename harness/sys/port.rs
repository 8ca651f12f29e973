//! Free loopback ports: bind port 0 and read back what the kernel chose (never a
//! fixed port, so two runs on one machine do not collide).

use std::net::SocketAddr;

use crate::error::{Error, Result};

/// A loopback address with a port nobody listens on right now.
pub fn free_loopback() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Harness(format!("cannot find a free port: {e}")))?;
    l.local_addr().map_err(|e| Error::Harness(e.to_string()))
}
