//! A supervised child (`Child`): the leader of its own process group, dying with
//! the harness (PR_SET_PDEATHSIG), its output in a log file, stopped as a group (a
//! signal, a grace period, then SIGKILL to the whole group, always reaped); and the
//! tail of a log file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::groups::{forget_unreaped, kill_group, register, unregister, wait_group_gone};
use super::procfs::group_running;
use super::spawn_netns::SPAWN_NETNS;
use crate::error::{Error, Result};

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
        // A test host's namespace, opened here (close-on-exec) and entered in the child.
        let netns = SPAWN_NETNS.with(|n| n.borrow().clone());
        let netns = match netns {
            Some(p) => Some(File::open(&p).map_err(|e| Error::Child {
                what: format!("starting {name} in network namespace {}", p.display()),
                why: e.to_string(),
                log_tail: None,
            })?),
            None => None,
        };
        let netns_fd = netns.as_ref().map(|f| f.as_raw_fd());
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
                if let Some(fd) = netns_fd {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let spawning = super::groups::spawn_guard();
        let child = cmd.spawn().map_err(|e| Error::Child {
            what: format!("starting {name} ({})", program.display()),
            why: e.to_string(),
            log_tail: None,
        })?;
        drop(netns);
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        register(pid);
        drop(spawning);
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
                self.reaped(s);
            }
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Ok(s)) = tokio::time::timeout(timeout, self.child.wait()).await {
                self.reaped(s);
            }
        }
        self.status
    }

    fn reaped(&mut self, s: ExitStatus) {
        self.status = Some(s);
        forget_unreaped(self.pid);
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
        // Whatever it left in its group (workers) goes too, and is gone on return.
        self.signal_group(libc::SIGKILL);
        wait_group_gone(self.pid, Duration::from_secs(2)).await;
        unregister(self.pid);
        (self.status, killed)
    }

    /// Stops everything in the child's group, the child gone or not (a command that
    /// left servers running in the background): SIGTERM to the group, up to `grace`
    /// for it to empty, then SIGKILL. Returns how many processes had to be killed.
    pub async fn stop_group(&mut self, grace: Duration) -> usize {
        let mut left = group_running(self.pid).len();
        if left > 0 {
            self.signal_group(libc::SIGTERM);
            let deadline = tokio::time::Instant::now() + grace;
            while left > 0 && tokio::time::Instant::now() < deadline {
                self.try_exited();
                tokio::time::sleep(Duration::from_millis(20)).await;
                left = group_running(self.pid).len();
            }
        }
        self.kill().await;
        left
    }

    /// SIGKILLs the whole group at once and reaps the child.
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        self.signal_group(libc::SIGKILL);
        let s = self.wait_exit(Duration::from_secs(5)).await;
        wait_group_gone(self.pid, Duration::from_secs(2)).await;
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
            if let Ok(Some(s)) = self.child.try_wait() {
                self.reaped(s);
            }
            // Otherwise tokio reaps it later, and it stays out of the orphan sweep.
        }
        unregister(self.pid);
    }
}

/// The last `lines` lines of a file (at most its last 64 KiB are read).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
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
