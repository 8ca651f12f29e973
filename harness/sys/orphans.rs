//! The child subreaper and the orphan sweep. What escapes every group (a daemon
//! that setsid()s, the children of a dead supervisord, each in its own group)
//! re-parents to the harness, a child subreaper (`become_subreaper`), and the orphan
//! sweep (`sweep_orphans`) kills and reaps it after the run; during the run,
//! `ZombieReaper` reaps the adopted orphans as soon as they exit.

use std::time::Duration;

use super::groups::{kill_group, poll_until, LIVE_GROUPS, UNREAPED};
use super::procfs::{group_running, proc_table, ProcEntry};

/// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): descendants
/// orphaned during a run (daemonized servers, children of a dead supervisor)
/// re-parent to it instead of init, so `sweep_orphans` can find them. Best effort.
pub(crate) fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes who adopts orphaned descendants.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong);
    }
}

/// One process the orphan sweep has to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SweepTarget {
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
pub(crate) fn choose_orphans(
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

/// Adopted orphans (children of this subreaper that none of our `Child`ren is) that
/// are zombies now. A zombie in our own process group is one of the short commands run
/// there (`nginx -s reload`, a tool's version), which tokio or std reaps: never an orphan,
/// since everything of the stack runs in groups of its own.
fn adopted_zombies() -> Vec<i32> {
    let me = std::process::id() as i32;
    // SAFETY: getpgrp(2) has no failure mode and touches no memory.
    let my_pgid = unsafe { libc::getpgrp() };
    let mut known = UNREAPED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    known.extend(super::reaper::pid());
    let table = proc_table();
    let (_, zombies) = choose_orphans(&table, me, my_pgid, &known, &[]);
    zombies
        .into_iter()
        .filter(|z| table.iter().any(|p| p.pid == *z && p.pgid != my_pgid))
        .collect()
}

/// Reaps, during a run, the adopted orphans that have exited, at once, as init would:
/// an old master that a deploy script waits on with `kill -0 PID` must disappear when
/// it exits, not when the harness gets round to it (the verifier must not change the
/// timing it verifies). Woken by SIGCHLD, with a 500 ms tick in case one is missed.
pub(crate) struct ZombieReaper(tokio::task::JoinHandle<()>);

impl ZombieReaper {
    /// Starts the reaping on the current runtime; it stops when dropped.
    pub fn start() -> ZombieReaper {
        use tokio::signal::unix::{signal, SignalKind};
        ZombieReaper(tokio::spawn(async {
            let mut sigchld = signal(SignalKind::child()).ok();
            loop {
                let tick = tokio::time::sleep(Duration::from_millis(500));
                match sigchld.as_mut() {
                    Some(s) => {
                        tokio::select! {
                            _ = s.recv() => {}
                            () = tick => {}
                        }
                    }
                    None => tick.await,
                }
                // Not while a spawn is between fork and registration (see groups::spawn_guard).
                let _spawning = super::groups::spawn_guard();
                for z in adopted_zombies() {
                    reap(z);
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
pub(crate) async fn sweep_orphans(grace: Duration) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
