//! Child-process supervision: every child is the leader of its own process
//! group, dies with the harness (PR_SET_PDEATHSIG), and is stopped as a group
//! (a signal, a grace period, then SIGKILL to the whole group, always reaped).
//!
//! A process-wide registry of live groups lets the panic hook and the Ctrl-C
//! path kill whatever is still running: a run leaves nothing behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};

/// Process groups started by this harness and not yet known to be gone.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn register(pgid: i32) {
    super::reaper::note(true, pgid);
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(pgid);
}

fn unregister(pgid: i32) {
    super::reaper::note(false, pgid);
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&g| g != pgid);
}

/// SIGKILLs every process group this harness started that is still registered.
/// Safe to call from a panic hook; does not wait.
pub fn kill_all_groups() {
    let groups = LIVE_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for g in groups {
        kill_group(g, libc::SIGKILL);
    }
}

/// Installs a panic hook that kills every child group before the default hook runs.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all_groups();
        default(info);
    }));
}

fn kill_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

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
pub fn group_running(pgid: i32) -> Vec<i32> {
    proc_table()
        .into_iter()
        .filter(|p| p.pgid == pgid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// Running children of `pid` (e.g. gunicorn's or nginx's workers).
pub fn proc_children(pid: i32) -> Vec<i32> {
    proc_table()
        .into_iter()
        .filter(|p| p.ppid == pid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// A supervised child: leader of its own process group, output in a log file.
#[derive(Debug)]
pub struct Child {
    name: String,
    pid: i32,
    child: tokio::process::Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Child {
    /// Spawns `program args` in its own process group with stdout+stderr appended to `log`.
    /// `name` is how errors and reports call it (e.g. "fixture v2").
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        cwd: &Path,
        log: &Path,
    ) -> Result<Child> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(log, e))?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .kill_on_drop(false);
        let parent = std::process::id() as i32;
        // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| Error::Child {
            what: format!("starting {name} ({})", program.display()),
            why: e.to_string(),
            log_tail: None,
        })?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        register(pid);
        Ok(Child {
            name: name.to_string(),
            pid,
            child,
            log: log.to_path_buf(),
            status: None,
        })
    }

    /// The child's pid (= its process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How reports call it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Sends `sig` to the child itself (not its group); 0 sends nothing.
    pub fn signal(&self, sig: i32) {
        if sig != 0 && self.status.is_none() && self.pid > 1 {
            // SAFETY: plain kill(2) on a pid we own and have not reaped.
            unsafe {
                libc::kill(self.pid, sig);
            }
        }
    }

    /// Sends `sig` to the whole process group.
    pub fn signal_group(&self, sig: i32) {
        kill_group(self.pid, sig);
    }

    /// The exit status if it has exited (reaps it).
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Ok(s)) = tokio::time::timeout(timeout, self.child.wait()).await {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Stops the child: `sig` to the child, up to `grace` for it to exit, then
    /// SIGKILL to its whole group; always reaped. Returns how it ended and whether
    /// it had to be killed.
    pub async fn stop(&mut self, sig: i32, grace: Duration) -> (Option<ExitStatus>, bool) {
        self.signal(sig);
        let mut killed = false;
        if self.wait_exit(grace).await.is_none() {
            killed = true;
            self.signal_group(libc::SIGKILL);
            self.wait_exit(Duration::from_secs(5)).await;
        }
        // Whatever it left in its group (workers) goes too.
        self.signal_group(libc::SIGKILL);
        unregister(self.pid);
        (self.status, killed)
    }

    /// SIGKILLs the whole group at once and reaps the child.
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        self.signal_group(libc::SIGKILL);
        let s = self.wait_exit(Duration::from_secs(5)).await;
        unregister(self.pid);
        s
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// An error naming this child, with the tail of its log.
    pub fn error(&self, why: impl Into<String>) -> Error {
        Error::Child {
            what: self.name.clone(),
            why: why.into(),
            log_tail: Some(self.log_tail(20)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A child dropped without stop(): kill its group so nothing outlives the harness.
        kill_group(self.pid, libc::SIGKILL);
        if self.status.is_none() {
            let _ = self.child.try_wait();
        }
        unregister(self.pid);
    }
}

/// The last `lines` lines of a file (at most its last 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The pid of a process that has the unix socket bound at `path` open (the
/// listener), found through /proc/net/unix and the processes' fds.
pub fn pid_listening_on(path: &Path) -> Option<i32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        // A shell that ignores TERM and leaves a grandchild in its group.
        let args = vec![
            "-c".to_string(),
            "trap '' TERM; sleep 30 & echo started; wait".to_string(),
        ];
        let mut c = Child::spawn("sh", Path::new("/bin/sh"), &args, &[], dir.path(), &log).unwrap();
        let pgid = c.pid();
        for _ in 0..100 {
            if log_tail(&log, 1).contains("started") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(group_running(pgid).len(), 2, "the shell and its sleep");
        let (_, killed) = c.stop(libc::SIGTERM, Duration::from_millis(200)).await;
        assert!(killed, "TERM was ignored, so it had to be killed");
        // SIGKILL is delivered asynchronously: give the kernel a bounded moment.
        for _ in 0..200 {
            if group_running(pgid).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            group_running(pgid),
            Vec::<i32>::new(),
            "a process of the group survived"
        );
    }

    #[test]
    fn tail_of_missing_log_is_empty() {
        assert_eq!(log_tail(Path::new("/nonexistent/zdt"), 5), "");
    }
}
