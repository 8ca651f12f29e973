//! The reaper: a tiny watchdog process that kills the harness's child process
//! groups if the harness itself dies without doing so (SIGKILL, OOM kill).
//!
//! PR_SET_PDEATHSIG only reaches direct children; nginx and gunicorn workers are
//! grandchildren and would outlive a killed harness. The reaper is `zdt-check`
//! re-executed with a hidden subcommand, in its own process group, reading lines
//! from a pipe whose write end only the harness holds: `+PGID` when a group is
//! started, `-PGID` when it is gone, `+dPATH`/`-dPATH` for the run directory and
//! `+nNAME`/`-nNAME` for a test host (a network namespace and its veth, see
//! [`super::netns`]). When the pipe closes (the harness exited or died), every group
//! still listed gets SIGKILL, then every directory and test host still listed is
//! removed, and the reaper exits.

use std::ffi::OsStr;
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The write end of the pipe to the reaper, if one was started.
static PIPE: Mutex<Option<std::process::ChildStdin>> = Mutex::new(None);

/// The reaper's pid (0: none started), so the orphan sweep leaves it alone.
static PID: AtomicI32 = AtomicI32::new(0);

/// The hidden subcommand that runs the reaper.
pub const SUBCOMMAND: &str = "__reaper";

/// Starts the reaper (once per process). Without it, children still die with the
/// harness on every path but SIGKILL; failing to start it is not fatal.
pub fn start() {
    let mut pipe = PIPE.lock().unwrap_or_else(|p| p.into_inner());
    if pipe.is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let child = Command::new(exe)
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn();
    if let Ok(mut c) = child {
        *pipe = c.stdin.take();
        PID.store(c.id() as i32, Ordering::Relaxed);
        // The reaper outlives us by design; it exits on its own when the pipe closes.
        std::mem::forget(c);
    }
}

/// The reaper's pid, if one was started.
pub fn pid() -> Option<i32> {
    Some(PID.load(Ordering::Relaxed)).filter(|&p| p > 0)
}

/// Tells the reaper about a group that was started (`+`) or is gone (`-`).
pub fn note(started: bool, pgid: i32) {
    send(
        &[if started { b'+' } else { b'-' }],
        pgid.to_string().as_bytes(),
    );
}

/// Tells the reaper about a run directory to remove if the harness dies (`added`), or
/// one it must leave alone from now on (removed already, or kept by `--keep-run-dir`).
/// `dir` must be absolute; a path with a newline cannot be sent and is not.
pub fn note_dir(added: bool, dir: &Path) {
    let bytes = dir.as_os_str().as_bytes();
    if dir.is_absolute() && !bytes.contains(&b'\n') {
        send(if added { b"+d" } else { b"-d" }, bytes);
    }
}

/// Tells the reaper about a test host to remove if the harness dies (`added`), or one
/// that is gone. Only names of test hosts ([`super::netns::owner_pid`]) are sent.
pub fn note_netns(added: bool, name: &str) {
    if super::netns::owner_pid(name).is_some() {
        send(if added { b"+n" } else { b"-n" }, name.as_bytes());
    }
}

fn send(prefix: &[u8], arg: &[u8]) {
    let mut pipe = PIPE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pipe.as_mut() {
        // One write per line: the pipe never holds half a line from us.
        let line = [prefix, arg, b"\n"].concat();
        let _ = p.write_all(&line);
    }
}

/// What the harness has registered and not yet taken back.
#[derive(Debug, Default, PartialEq, Eq)]
struct Registered {
    groups: Vec<i32>,
    dirs: Vec<PathBuf>,
    netns: Vec<String>,
}

impl Registered {
    /// Applies one line of the protocol; anything else is ignored.
    fn apply(&mut self, line: &[u8]) {
        let (sign, rest) = match line.split_first() {
            Some((b'+', r)) => (true, r),
            Some((b'-', r)) => (false, r),
            _ => return,
        };
        if let Some(name) = rest.strip_prefix(b"n") {
            let Some(name) = std::str::from_utf8(name)
                .ok()
                .filter(|n| super::netns::owner_pid(n).is_some())
            else {
                return;
            };
            self.netns.retain(|n| n != name);
            if sign {
                self.netns.push(name.to_string());
            }
        } else if let Some(path) = rest.strip_prefix(b"d") {
            let path = PathBuf::from(OsStr::from_bytes(path));
            if !path.is_absolute() {
                return;
            }
            self.dirs.retain(|d| *d != path);
            if sign {
                self.dirs.push(path);
            }
        } else if let Some(pgid) = std::str::from_utf8(rest)
            .ok()
            .and_then(|n| n.trim().parse::<i32>().ok())
        {
            self.groups.retain(|&g| g != pgid);
            if sign {
                self.groups.push(pgid);
            }
        }
    }
}

/// The reaper's main loop: reads lines from stdin until EOF, then kills the groups
/// and removes the directories that are left.
pub fn run() -> std::process::ExitCode {
    // Ctrl-C in the terminal must not take the reaper down before the harness has cleaned up.
    // SAFETY: setting SIGINT to ignored in this single-threaded process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut reg = Registered::default();
    for line in std::io::stdin().lock().split(b'\n') {
        let Ok(line) = line else { break };
        reg.apply(&line);
    }
    for &g in &reg.groups {
        if g > 1 {
            // SAFETY: kill(2) on a process group the harness registered.
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
        }
    }
    // Only after the kills: nothing of the run writes into its dir any more.
    for d in &reg.dirs {
        remove_run_dir(d);
    }
    if let Err(e) = super::netns::remove_named(&reg.netns) {
        eprintln!("zdt-check reaper: {e}");
    }
    std::process::ExitCode::SUCCESS
}

/// Removes a run directory: only a real directory (a symlink in its place is left
/// alone), with `remove_dir_all`, which unlinks symlinks inside it without following
/// them. A few bounded retries: a killed process may still be exiting.
fn remove_run_dir(dir: &Path) {
    for _ in 0..10 {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => return,
        }
        if std::fs::remove_dir_all(dir).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_tracks_groups_and_dirs() {
        let mut r = Registered::default();
        for l in [
            "+12",
            "+13",
            "-12",
            "+d/tmp/zdt-check-a",
            "+d/tmp/zdt-check-b",
            "-d/tmp/zdt-check-a",
            "+drelative",
            "?14",
            "+",
            "+x",
            "+nzdt12h1",
            "+nzdt12h2",
            "-nzdt12h1",
            "+neth0",
            "+n",
        ] {
            r.apply(l.as_bytes());
        }
        assert_eq!(r.groups, vec![13]);
        assert_eq!(r.netns, vec!["zdt12h2".to_string()]);
        assert_eq!(r.dirs, vec![PathBuf::from("/tmp/zdt-check-b")]);
    }

    #[test]
    fn removal_does_not_follow_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        let base = tempfile::tempdir().unwrap();
        let run = base.path().join("zdt-check-run");
        std::fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(outside.path(), run.join("link")).unwrap();
        std::fs::write(run.join("app.log"), "log").unwrap();
        remove_run_dir(&run);
        assert!(!run.exists(), "the run dir is removed");
        assert!(
            outside.path().join("precious").exists(),
            "not what a link inside points to"
        );
        // A symlink in the run dir's place: left alone, and so is its target.
        let fake = base.path().join("zdt-check-fake");
        std::os::unix::fs::symlink(outside.path(), &fake).unwrap();
        remove_run_dir(&fake);
        assert!(fake.symlink_metadata().is_ok() && outside.path().join("precious").exists());
    }
}
