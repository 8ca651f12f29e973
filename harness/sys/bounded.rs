//! Short commands run to their end under a time bound (`run_bounded`): input on
//! stdin, stdout and stderr collected, the command's group killed at the deadline.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::groups::{forget_unreaped, kill_group, register, unregister};

/// Runs a short command to its end (`input` on its stdin, stdout and stderr
/// captured), in its own process group that dies with the harness; after `timeout`
/// the group is killed and this is an error. Synchronous: for cleanup paths (`Drop`,
/// the reaper) as well as setup. Its stdin is written and its stdout and stderr are
/// read on threads of their own while it runs, so any amount of output is fine.
pub(crate) fn run_bounded(
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
    let spawning = super::groups::spawn_guard();
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    register(pid);
    drop(spawning);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
