//! The process table read from /proc: each process's parent, group and state, the
//! running members of a group, a process's running children, and which process
//! listens on a unix socket.

use std::path::Path;

/// One line of the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEntry {
    /// Process id.
    pub pid: i32,
    /// Parent.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// A zombie (dead, not yet reaped).
    pub zombie: bool,
}

/// The process table, read from /proc.
pub fn proc_table() -> Vec<ProcEntry> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().take(3).collect();
        if let [state, ppid, pgid] = f[..] {
            out.push(ProcEntry {
                pid,
                ppid: ppid.parse().unwrap_or(0),
                pgid: pgid.parse().unwrap_or(0),
                zombie: state == "Z" || state == "X",
            });
        }
    }
    out
}

/// Pids of the group's processes that are still running (zombies, already dead
/// and waiting to be reaped by whoever adopted them, are not counted).
pub(crate) fn group_running(pgid: i32) -> Vec<i32> {
    proc_table()
        .into_iter()
        .filter(|p| p.pgid == pgid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// Running children of `pid` (e.g. gunicorn's or nginx's workers).
pub(crate) fn proc_children(pid: i32) -> Vec<i32> {
    proc_table()
        .into_iter()
        .filter(|p| p.ppid == pid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// The pid of a process that has the unix socket bound at `path` open (the
/// listener), found through /proc/net/unix and the processes' fds.
pub(crate) fn pid_listening_on(path: &Path) -> Option<i32> {
    let target = std::fs::canonicalize(path).ok()?;
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening.
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 8 && Path::new(f[7]) == target && f[3] == "00010000").then(|| f[6].to_string())
    })?;
    let needle = format!("socket:[{inode}]");
    for p in proc_table() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", p.pid)) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == needle.as_str()) {
                return Some(p.pid);
            }
        }
    }
    None
}
