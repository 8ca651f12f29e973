//! The client of haproxy's master CLI (`-S`): a command and its answer, the prompt,
//! and `show proc` parsed (`ProcList`: the master's reloads and its workers).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// Sends one command to haproxy's master CLI (`-S`) and reads its answer. Unlike
/// the stats socket, 2.6.12's master CLI keeps the connection open after answering
/// until the client shuts its side down, so this shuts down its write side first.
pub(crate) async fn master_cli(sock: &Path, cmd: &str) -> Result<String> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(format!("{cmd}\n").as_bytes()).await?;
        s.shutdown().await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step(format!("haproxy master `{cmd}`: no answer within 2s")))?
        .map_err(|e| Error::Step(format!("haproxy master `{cmd}` on {}: {e}", sock.display())))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The master CLI's prompt (after `prompt`, its interactive mode): `master> `, or
/// `master[ReloadFailed]> ` once a reload has failed (measured on 2.6.12).
pub(crate) async fn master_prompt(sock: &Path) -> Result<String> {
    let io = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(b"prompt\n").await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        while !buf.ends_with(b"> ") {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| Error::Step("haproxy master `prompt`: no prompt within 2s".into()))?
        .map_err(|e| {
            Error::Step(format!(
                "haproxy master `prompt` on {}: {e}",
                sock.display()
            ))
        })?;
    Ok(String::from_utf8_lossy(&buf).trim().to_string())
}

/// The master CLI's `show proc`: the master's reload counters and its workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcList {
    /// The master's pid.
    pub master: i32,
    /// Reloads since the master started.
    pub reloads: u64,
    /// Of those, how many failed (`[failed: N]`).
    pub failed: u64,
    /// The current worker(s).
    pub workers: Vec<i32>,
    /// Workers still finishing their connections after a reload.
    pub old_workers: Vec<i32>,
}

impl ProcList {
    /// Whether `pid` is still listed, as a worker or an old worker.
    pub fn lists(&self, pid: i32) -> bool {
        self.workers.contains(&pid) || self.old_workers.contains(&pid)
    }
}

impl std::fmt::Display for ProcList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "master {} reloads {} [failed: {}], workers {:?}, old workers {:?}",
            self.master, self.reloads, self.failed, self.workers, self.old_workers
        )
    }
}

/// Parses `show proc` (2.6: a `#<PID> <type> <reloads> ...` header, the master's
/// line `PID master N [failed: F] ...`, then `# workers`, `# old workers` and
/// `# programs` sections).
pub(crate) fn parse_show_proc(text: &str) -> Result<ProcList> {
    let mut out = ProcList::default();
    let mut section = "";
    let mut seen_master = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('#') {
            section = match name.trim() {
                "workers" => "workers",
                "old workers" => "old",
                "programs" => "programs",
                _ => section,
            };
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(pid), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        match (kind, section) {
            ("master", _) => {
                out.master = pid;
                out.reloads = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                let rest: Vec<&str> = words.collect();
                out.failed = rest
                    .windows(2)
                    .find(|w| w[0] == "[failed:")
                    .and_then(|w| w[1].trim_end_matches(']').parse().ok())
                    .unwrap_or(0);
                seen_master = true;
            }
            ("worker", "workers") => out.workers.push(pid),
            ("worker", "old") => out.old_workers.push(pid),
            _ => {}
        }
    }
    if !seen_master {
        return Err(Error::Step(format!(
            "haproxy show proc: no master line in {text:?}"
        )));
    }
    Ok(out)
}
