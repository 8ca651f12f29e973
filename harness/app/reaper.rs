//! The reaper: a tiny watchdog process that kills the harness's child process
//! groups if the harness itself dies without doing so (SIGKILL, OOM kill).
//!
//! PR_SET_PDEATHSIG only reaches direct children; nginx and gunicorn workers are
//! grandchildren and would outlive a killed harness. The reaper is `zdt-check`
//! re-executed with a hidden subcommand, in its own process group, reading lines
//! from a pipe whose write end only the harness holds: `+PGID` when a group is
//! started, `-PGID` when it is gone. When the pipe closes (the harness exited or
//! died), every group still listed gets SIGKILL and the reaper exits.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The write end of the pipe to the reaper, if one was started.
static PIPE: Mutex<Option<std::process::ChildStdin>> = Mutex::new(None);

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
        // The reaper outlives us by design; it exits on its own when the pipe closes.
        std::mem::forget(c);
    }
}

/// Tells the reaper about a group that was started (`+`) or is gone (`-`).
pub fn note(started: bool, pgid: i32) {
    let mut pipe = PIPE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pipe.as_mut() {
        let _ = writeln!(p, "{}{pgid}", if started { '+' } else { '-' });
    }
}

/// The reaper's main loop: reads `+PGID`/`-PGID` from stdin until EOF, then kills what is left.
pub fn run() -> std::process::ExitCode {
    // Ctrl-C in the terminal must not take the reaper down before the harness has cleaned up.
    // SAFETY: setting SIGINT to ignored in this single-threaded process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut groups: Vec<i32> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, num) = line.split_at(line.len().min(1));
        let Ok(pgid) = num.trim().parse::<i32>() else {
            continue;
        };
        match sign {
            "+" => groups.push(pgid),
            "-" => groups.retain(|&g| g != pgid),
            _ => {}
        }
    }
    for g in groups {
        if g > 1 {
            // SAFETY: kill(2) on a process group the harness registered.
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
