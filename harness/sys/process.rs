//! Child-process supervision: every child is the leader of its own process
//! group, dies with the harness (PR_SET_PDEATHSIG), and is stopped as a group
//! (a signal, a grace period, then SIGKILL to the whole group, always reaped).
//!
//! A process-wide registry of live groups lets the panic hook and the Ctrl-C
//! path kill whatever is still running: a run leaves nothing behind.
//!
//! What escapes every group (a daemon that setsid()s, the children of a dead
//! supervisord, each in its own group) re-parents to the harness, a child
//! subreaper (`become_subreaper`), and the orphan sweep (`sweep_orphans`) kills
//! and reaps it after the run.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};

/// Process groups started by this harness and not yet known to be gone.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Pids of the `Child`ren spawned here that tokio has not reaped yet: the orphan
/// sweep must neither signal nor reap them.
static UNREAPED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

thread_local! {
    /// The network namespace (a `/run/netns/NAME` file) that [`Child::spawn`] on this
    /// thread puts its children in, while [`in_netns`] runs.
    static SPAWN_NETNS: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Runs `f` with every [`Child::spawn`] it makes (on this thread) placing the child in
/// the network namespace `netns` (a `/run/netns/NAME` file; `None`: the harness's
/// own), through setns(2) between fork and exec. The child stays the leader of its
/// own process group, as every child does: no wrapper process in between.
pub fn in_netns<T>(netns: Option<&Path>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<PathBuf>);
    impl Drop for Reset {
        fn drop(&mut self) {
            SPAWN_NETNS.with(|n| *n.borrow_mut() = self.0.take());
        }
    }
    let before = SPAWN_NETNS.with(|n| n.replace(netns.map(Path::to_path_buf)));
    let _reset = Reset(before);
    f()
}

/// Runs a short command to its end (`input` on its stdin, stdout and stderr
/// captured), in its own process group that dies with the harness; after `timeout`
/// the group is killed and this is an error. Synchronous: for cleanup paths (`Drop`,
/// the reaper) as well as setup. Its stdin is written and its stdout and stderr are
/// read on threads of their own while it runs, so any amount of output is fine.
pub fn run_bounded(
    program: &Path,
    args: &[&str],
    input: &str,
    timeout: Duration,
) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and only calls prctl(2).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    register(pid);
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.as_bytes().to_vec();
        // A command that exits without reading its input is not an error here; the
        // thread ends when the pipe closes (the command exited or was killed).
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    // Each output pipe drained on its own thread: a command whose output exceeds a
    // pipe's buffer would otherwise block until the timeout killed it.
    let (tx, rx) = std::sync::mpsc::channel();
    type Sent = (usize, std::io::Result<Vec<u8>>);
    fn drain(i: usize, mut r: impl Read + Send + 'static, tx: std::sync::mpsc::Sender<Sent>) {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = r.read_to_end(&mut buf).map(|_| buf);
            let _ = tx.send((i, r));
        });
    }
    let mut pending = 0;
    if let Some(o) = child.stdout.take() {
        drain(0, o, tx.clone());
        pending += 1;
    }
    if let Some(e) = child.stderr.take() {
        drain(1, e, tx);
        pending += 1;
    }
    let timed_out = || {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{} did not exit within {timeout:?}", program.display()),
        )
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(None) => {
                kill_group(pid, libc::SIGKILL);
                let _ = child.wait();
                break Err(timed_out());
            }
            Err(e) => break Err(e),
        }
    };
    forget_unreaped(pid);
    let output = status.and_then(|status| {
        let [stdout, stderr] =
            collect_output(&rx, pending, deadline, pid).ok_or_else(timed_out)??;
        Ok(std::process::Output {
            status,
            stdout,
            stderr,
        })
    });
    unregister(pid);
    output
}

/// What the threads of [`run_bounded`] read from stdout (0) and stderr (1): waits
/// until `deadline`, then kills group `pgid` (whatever else holds the pipes) and waits
/// a last 500 ms; `None` if they did not end by then.
fn collect_output(
    rx: &std::sync::mpsc::Receiver<(usize, std::io::Result<Vec<u8>>)>,
    mut pending: usize,
    deadline: std::time::Instant,
    pgid: i32,
) -> Option<std::io::Result<[Vec<u8>; 2]>> {
    let mut outputs = [Vec::new(), Vec::new()];
    let mut killed = false;
    while pending > 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let wait = if killed {
            Duration::from_millis(500)
        } else {
            left.max(Duration::from_millis(1))
        };
        match rx.recv_timeout(wait) {
            Ok((i, Ok(buf))) => {
                outputs[i] = buf;
                pending -= 1;
            }
            Ok((_, Err(e))) => return Some(Err(e)),
            Err(_) if !killed => {
                kill_group(pgid, libc::SIGKILL);
                killed = true;
            }
            Err(_) => return None,
        }
    }
    // Output that only ended once the group was killed came too late.
    (!killed).then_some(Ok(outputs))
}

fn forget_unreaped(pid: i32) {
    UNREAPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pid);
}

fn register(pgid: i32) {
    UNREAPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(pgid);
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

/// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): descendants
/// orphaned during a run (daemonized servers, children of a dead supervisor)
/// re-parent to it instead of init, so `sweep_orphans` can find them. Best effort.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes who adopts orphaned descendants.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong);
    }
}

/// One process the orphan sweep has to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepTarget {
    /// The orphan (a child of this process).
    pub pid: i32,
    /// Its process group, when the whole group may be signalled: not ours, and every
    /// running member a descendant of ours.
    pub group: Option<i32>,
}

/// The pure part of the sweep: from the process table, the running orphans to stop
/// and the dead ones (zombies) to reap. Orphans are the children of `me` other than
/// the `known` pids (our own `Child`ren, the reaper) and members of `live_groups`
/// (groups still ours to stop).
pub fn choose_orphans(
    table: &[ProcEntry],
    me: i32,
    my_pgid: i32,
    known: &[i32],
    live_groups: &[i32],
) -> (Vec<SweepTarget>, Vec<i32>) {
    let ppid_of: std::collections::HashMap<i32, i32> =
        table.iter().map(|p| (p.pid, p.ppid)).collect();
    let descends_from_me = |mut pid: i32| {
        // Bounded walk up the parent chain (a table read while it changes may loop).
        for _ in 0..table.len().min(4096) {
            match ppid_of.get(&pid) {
                Some(&pp) if pp == me => return true,
                Some(&pp) if pp > 1 && pp != pid => pid = pp,
                _ => return false,
            }
        }
        false
    };
    let mut targets = Vec::new();
    let mut zombies = Vec::new();
    for p in table {
        if p.ppid != me || p.pid == me || p.pid <= 1 || known.contains(&p.pid) {
            continue;
        }
        if p.zombie {
            zombies.push(p.pid);
            continue;
        }
        if live_groups.contains(&p.pgid) {
            continue;
        }
        let whole_group = p.pgid > 1
            && p.pgid != my_pgid
            && table
                .iter()
                .filter(|q| q.pgid == p.pgid && !q.zombie)
                .all(|q| descends_from_me(q.pid));
        targets.push(SweepTarget {
            pid: p.pid,
            group: whole_group.then_some(p.pgid),
        });
    }
    (targets, zombies)
}

/// "pid N command line" (the command's name when it has no command line), for reports.
fn describe(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut cmd = String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .trim()
        .to_string();
    if cmd.is_empty() {
        cmd = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
    }
    if cmd.chars().count() > 160 {
        cmd = cmd.chars().take(157).collect::<String>() + "...";
    }
    format!("pid {pid} {cmd}")
}

/// Reaps `pid` if it has exited (waitpid on that pid only: tokio reaps its own children).
/// True when it is gone: reaped now, or not (any more) a child of ours.
fn reap(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid(2) on one pid, WNOHANG; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    r == pid || r < 0
}

fn signal_target(t: &SweepTarget, sig: i32) {
    match t.group {
        Some(g) => kill_group(g, sig),
        // SAFETY: kill(2) on an orphan that is our child and not yet reaped.
        None => unsafe {
            libc::kill(t.pid, sig);
        },
    }
}

/// Whether the target and (when signalled as a group) its group are all gone.
fn target_gone(t: &SweepTarget) -> bool {
    reap(t.pid) && t.group.is_none_or(|g| group_running(g).is_empty())
}

/// Polls `done` every 20 ms for at most `timeout`.
async fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Adopted orphans (children of this subreaper that none of our `Child`ren is)
/// that are zombies now.
fn adopted_zombies() -> Vec<i32> {
    let me = std::process::id() as i32;
    // SAFETY: getpgrp(2) has no failure mode and touches no memory.
    let my_pgid = unsafe { libc::getpgrp() };
    let mut known = UNREAPED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    known.extend(super::reaper::pid());
    choose_orphans(&proc_table(), me, my_pgid, &known, &[]).1
}

/// Reaps, during a run, the adopted orphans that have exited: one killed by a deploy
/// script must not linger as a zombie, or a script waiting on `kill -0 PID` waits
/// forever. A zombie is reaped only once it has stayed one for a second: a short
/// command the harness itself ran (and tokio is about to reap) never lasts that long.
pub struct ZombieReaper(tokio::task::JoinHandle<()>);

impl ZombieReaper {
    /// Starts the periodic reaping on the current runtime; it stops when dropped.
    pub fn start() -> ZombieReaper {
        ZombieReaper(tokio::spawn(async {
            let mut seen: std::collections::HashMap<i32, std::time::Instant> =
                std::collections::HashMap::new();
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now = std::time::Instant::now();
                let zombies = adopted_zombies();
                seen.retain(|pid, _| zombies.contains(pid));
                for z in zombies {
                    let since = *seen.entry(z).or_insert(now);
                    if now.duration_since(since) >= Duration::from_secs(1) {
                        reap(z);
                    }
                }
            }
        }))
    }
}

impl Drop for ZombieReaper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// After a run has stopped every child it knows: finds the processes orphaned to
/// this (subreaper) process that are none of its own `Child`ren nor the reaper,
/// SIGTERMs each one's group (or only the pid, when the group is not wholly ours),
/// waits up to `grace`, SIGKILLs what is left and reaps them; a few rounds, since a
/// killed orphan's children are orphaned in turn. Returns "pid N command line" for
/// each process it had to stop, so a report can say what the stack left behind.
pub async fn sweep_orphans(grace: Duration) -> Vec<String> {
    let me = std::process::id() as i32;
    // SAFETY: getpgrp(2) has no failure mode and touches no memory.
    let my_pgid = unsafe { libc::getpgrp() };
    let mut stopped: Vec<(i32, String)> = Vec::new();
    for _ in 0..5 {
        let mut known = UNREAPED.lock().unwrap_or_else(|p| p.into_inner()).clone();
        known.extend(super::reaper::pid());
        let live = LIVE_GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (targets, zombies) = choose_orphans(&proc_table(), me, my_pgid, &known, &live);
        for z in zombies {
            reap(z);
        }
        if targets.is_empty() {
            break;
        }
        for t in &targets {
            if !stopped.iter().any(|(p, _)| *p == t.pid) {
                stopped.push((t.pid, describe(t.pid)));
            }
            signal_target(t, libc::SIGTERM);
        }
        let all_gone = || targets.iter().all(target_gone);
        if !poll_until(grace, all_gone).await {
            for t in &targets {
                signal_target(t, libc::SIGKILL);
            }
            poll_until(Duration::from_secs(2), all_gone).await;
        }
    }
    stopped.into_iter().map(|(_, d)| d).collect()
}

/// Waits (bounded) until no process of group `pgid` is running: a SIGKILL sent to a
/// group takes effect asynchronously.
async fn wait_group_gone(pgid: i32, timeout: Duration) {
    poll_until(timeout, || group_running(pgid).is_empty()).await;
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
        let child = cmd.spawn().map_err(|e| Error::Child {
            what: format!("starting {name} ({})", program.display()),
            why: e.to_string(),
            log_tail: None,
        })?;
        drop(netns);
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
    fn sweep_chooses_only_unknown_orphans_and_never_our_group() {
        let e = |pid, ppid, pgid, zombie| ProcEntry {
            pid,
            ppid,
            pgid,
            zombie,
        };
        let me = 100;
        let table = [
            e(1, 0, 1, false),
            e(50, 1, 50, false),     // our parent (the shell), our group
            e(me, 50, 50, false),    // us
            e(101, me, 101, false),  // a Child we know
            e(102, me, 102, false),  // the reaper
            e(103, me, 103, false),  // a daemon that setsid()s: its own group
            e(104, 103, 103, false), // ... and its worker
            e(105, me, 105, true),   // an orphan that already died
            e(106, me, 50, false),   // an orphan that joined our own group
            e(107, me, 60, false),   // an orphan in a group with a stranger
            e(108, 1, 60, false),    // the stranger
            e(109, me, 109, false),  // an orphan in a group still ours to stop
            e(110, 101, 101, false), // a worker of the known Child: not our child
        ];
        let (targets, zombies) = choose_orphans(&table, me, 50, &[101, 102], &[109]);
        assert_eq!(
            targets,
            vec![
                SweepTarget {
                    pid: 103,
                    group: Some(103)
                },
                SweepTarget {
                    pid: 106,
                    group: None
                },
                SweepTarget {
                    pid: 107,
                    group: None
                },
            ]
        );
        assert_eq!(zombies, vec![105]);
    }

    #[test]
    fn run_bounded_reads_more_than_a_pipe_holds() {
        // 200 KB on stdout and 100 KB on stderr: far over a pipe's 64 KiB.
        let t = std::time::Instant::now();
        let out = run_bounded(
            Path::new("/bin/sh"),
            &[
                "-c",
                "head -c 200000 /dev/zero; head -c 100000 /dev/zero >&2",
            ],
            "",
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(out.status.success(), "{:?}", out.status);
        assert_eq!(out.stdout.len(), 200_000);
        assert_eq!(out.stderr.len(), 100_000);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn run_bounded_kills_at_the_timeout() {
        let t = std::time::Instant::now();
        let e = run_bounded(
            Path::new("/bin/sh"),
            &["-c", "sleep 30"],
            "",
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn tail_of_missing_log_is_empty() {
        assert_eq!(log_tail(Path::new("/nonexistent/zdt"), 5), "");
    }
}
