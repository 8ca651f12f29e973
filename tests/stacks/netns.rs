//! haproxy-pool across test hosts (network namespaces with veth links): the roll
//! passes, a host taken off the network fails for its stated reason, and no
//! namespace or link is left after a run that passed, failed, errored or was killed.
//! They need root; in CI (root) they never skip, elsewhere they skip without it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    assert_no_leftovers, at, bin, dump, require_stack, run_scenario, run_scenario_text, serial,
    RunResult,
};

/// Root (namespaces need it): in CI its absence is a failure, elsewhere a skip.
pub(super) fn require_root() -> bool {
    // SAFETY: geteuid(2) has no failure mode.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("test hosts need root; in CI these tests run, never skip");
    }
    eprintln!("SKIPPED (not in CI): test hosts need root");
    false
}

fn ready() -> bool {
    require_stack(&["haproxy", "ip"]) && require_root()
}

/// Names of namespaces and links that look like test hosts (`zdt<digits>h<digits>`),
/// read with `ip` itself (not through the crate).
pub(super) fn test_host_names() -> Vec<String> {
    let ours = |n: &str| {
        n.strip_prefix("zdt")
            .and_then(|r| r.split_once('h'))
            .is_some_and(|(p, i)| {
                !p.is_empty()
                    && !i.is_empty()
                    && p.bytes().chain(i.bytes()).all(|b| b.is_ascii_digit())
            })
    };
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("running ip");
        assert!(out.status.success(), "ip {args:?}: {}", dump(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut names: Vec<String> = run(&["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| ours(n))
        .map(|n| format!("netns {n}"))
        .collect();
    names.extend(
        run(&["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
            .filter(|n| ours(n))
            .map(|n| format!("link {n}")),
    );
    names
}

/// The test hosts (namespaces and links) still there of the run whose names start
/// with `prefix` (`zdt<pid>h`): other tests' runs may have theirs meanwhile.
fn own_host_names(prefix: &str) -> Vec<String> {
    test_host_names()
        .into_iter()
        .filter(|n| {
            n.split(' ')
                .nth(1)
                .and_then(|n| n.strip_prefix(prefix))
                .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The run's own test hosts (named in its step "test hosts removed") are all gone:
/// only those, since another test's run may have its hosts by now.
fn assert_no_test_hosts(r: &RunResult) {
    let d = detail(r, "test hosts removed");
    let (names, outcome) = d.split_once(": ").unwrap_or_default();
    assert_eq!(outcome, "no namespace or link left", "{}", r.dump());
    let names: Vec<&str> = names.split(' ').collect();
    assert!(
        names.len() >= 2 && names.iter().all(|n| n.starts_with("zdt")),
        "{}",
        r.dump()
    );
    let left: Vec<String> = test_host_names()
        .into_iter()
        .filter(|n| names.contains(&n.split(' ').nth(1).unwrap_or_default()))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{}", r.dump());
}

fn step<'a>(r: &'a RunResult, name: &str) -> &'a Value {
    r.report["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name:?}\n{}", r.dump()))
}

pub(super) fn detail<'a>(r: &'a RunResult, name: &str) -> &'a str {
    step(r, name)["detail"].as_str().unwrap_or_default()
}

/// A counter of step "haproxy counters": the backend's since haproxy started.
fn counter(r: &RunResult, key: &str) -> u64 {
    let d = detail(r, "haproxy counters");
    d.split(" (")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {d:?}"))
}

#[test]
fn haproxy_pool_across_test_hosts_passes_and_removes_them() {
    if !ready() {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-pool-hosts.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    for key in ["wretr", "wredis", "econ", "eresp", "hrsp_5xx"] {
        assert_eq!(counter(&r, key), 0, "{key}\n{}", r.dump());
    }
    assert_no_test_hosts(&r);
}

#[test]
fn a_host_off_the_network_fails_with_503_until_haproxy_marks_it_down() {
    if !ready() {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-pool-link-down.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    // The link really went down on the host's own veth, and the route stayed there.
    let down = detail(&r, "s2 link down");
    assert!(
        down.contains("link set eth0 down") && down.contains(" dev zdt"),
        "{}",
        r.dump()
    );
    // haproxy noticed through its checks (L4TOUT), not instantly and not never.
    let marked = step(&r, "s2 marked DOWN");
    let took = marked["end_ms"].as_f64().unwrap() - marked["start_ms"].as_f64().unwrap();
    assert!((100.0..5000.0).contains(&took), "{took} ms\n{}", r.dump());
    assert!(
        detail(&r, "s2 marked DOWN").contains("L4TOUT"),
        "{}",
        r.dump()
    );
    // What reached s2 meanwhile failed to connect: haproxy's 503 after `timeout connect`.
    let n503 = r.outcome("http_503");
    assert!(n503 >= 5, "{}", r.dump());
    assert_eq!(counter(&r, "econ"), n503, "{}", r.dump());
    // Nothing else than 503s and the requests s2 had in flight (timeouts).
    let others: Vec<String> = r.report["stats"]["classes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| {
            !["ok", "http_5xx", "timeout"].contains(&k.as_str()) && v.as_u64().unwrap_or(0) > 0
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(others, Vec::<String>::new(), "{}", r.dump());
    assert!(detail(&r, "s2 back UP").contains("L7OK"), "{}", r.dump());
    assert_no_test_hosts(&r);
}

#[test]
fn haproxy_pool_of_gunicorn_across_test_hosts_passes() {
    if !ready() || !require_stack(&["gunicorn"]) {
        return;
    }
    let src = std::fs::read_to_string(at("scenarios/haproxy-pool-gunicorn.toml")).unwrap();
    let src = src.replace("socket = \"unix\"\n", "").replace(
        "strategy = \"haproxy-pool\"\n",
        "strategy = \"haproxy-pool\"\nhosts = \"netns\"\n",
    );
    assert!(src.contains("hosts = \"netns\""), "{src}");
    let r = run_scenario_text("haproxy-pool-gunicorn-hosts", &src);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert_no_test_hosts(&r);
}

#[test]
fn a_run_that_errors_leaves_no_test_host_nor_one_of_a_dead_run() {
    if !ready() {
        return;
    }
    // The instances never get ready in time: a harness error after the hosts exist.
    let src = std::fs::read_to_string(at("scenarios/haproxy-pool-hosts.toml"))
        .unwrap()
        .replace(
            "startup_delay = \"300ms\"",
            "startup_delay = \"3s\"\nready_timeout = \"300ms\"",
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts-not-ready.toml");
    std::fs::write(&path, src).unwrap();
    let _guard = serial();
    // A test host of a run that is gone (killed with its reaper): the next run removes it.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = format!("zdt{}h1", gone.id());
    for args in [
        vec!["netns", "add", &stale],
        vec![
            "link", "add", &stale, "type", "veth", "peer", "name", "eth0", "netns", &stale,
        ],
    ] {
        let out = Command::new("ip").args(&args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", dump(&out));
    }
    // Only these: other runs on the machine may have test hosts meanwhile.
    let stale_prefix = format!("zdt{}h", gone.id());
    assert_eq!(
        own_host_names(&stale_prefix).len(),
        2,
        "{:?}",
        test_host_names()
    );
    let out = run_harness_error(&path, "not ready after 300ms");
    assert_eq!(
        own_host_names(&stale_prefix),
        Vec::<String>::new(),
        "{}",
        dump(&out)
    );
}

/// Neither a test host of the run with this `prefix` nor a process of its is left.
fn assert_nothing_left(out: &std::process::Output, prefix: &str) {
    assert_eq!(
        own_host_names(prefix),
        Vec::<String>::new(),
        "{prefix}: {}",
        dump(out)
    );
    assert_no_leftovers(out, &[]);
}

/// Runs the scenario at `path`, which must end in a harness error (exit 2) whose
/// output says `needle`, with nothing left behind.
fn run_harness_error(path: &std::path::Path, needle: &str) -> std::process::Output {
    let out = bin()
        .args(["run", "--no-progress"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(dump(&out).contains(needle), "{}", dump(&out));
    assert_no_leftovers(&out, &[]);
    out
}

/// Starts a run of the hosts scenario, waits until its test hosts exist and then
/// `after` (instances starting; the load running from about 1.5 s), sends the
/// harness `sig`, and returns its output and its hosts' prefix.
fn interrupt_run(sig: i32, after: Duration) -> (std::process::Output, String) {
    let mut child = bin()
        .args([
            "run",
            "--no-progress",
            &at("scenarios/haproxy-pool-hosts.toml"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("zdt{}h", child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !test_host_names()
        .iter()
        .any(|n| n == &format!("netns {prefix}1"))
    {
        assert!(
            Instant::now() < deadline,
            "no test host appeared: {:?}",
            test_host_names()
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(after);
    // SAFETY: kill(2) on the pid of our own child, not yet waited for.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
    (child.wait_with_output().unwrap(), prefix)
}

#[test]
fn a_killed_harness_leaves_no_test_host() {
    if !ready() {
        return;
    }
    let _guard = serial();
    // Killed while it starts its instances inside the namespaces.
    let (out, prefix) = interrupt_run(libc::SIGKILL, Duration::from_millis(500));
    // The reaper (its pipe closed) kills the groups, then removes the hosts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !own_host_names(&prefix).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_nothing_left(&out, &prefix);
}

#[test]
fn an_interrupted_run_removes_its_test_hosts_itself() {
    if !ready() {
        return;
    }
    let _guard = serial();
    // Interrupted under load, mid-roll (steps are recorded once the load runs).
    let (out, prefix) = interrupt_run(libc::SIGINT, Duration::from_millis(2500));
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(dump(&out).contains("interrupted"), "{}", dump(&out));
    // Removed by the harness's own shutdown (its report says so), not left to the reaper.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("test hosts removed")
            && l.contains(&format!("{prefix}1 "))
            && l.ends_with("no namespace or link left")),
        "{}",
        dump(&out)
    );
    assert_nothing_left(&out, &prefix);
}

#[test]
fn without_root_test_hosts_are_a_harness_error() {
    if !ready() || !require_stack(&["setpriv"]) {
        return;
    }
    let _guard = serial();
    // `nobody` may not reach the checkout (a clone in a 0700 temp dir, say): it runs
    // a copy of the binary and the scenario from a directory it can read.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("zdt-nobody")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_copy = dir.path().join("zdt-check");
    std::fs::copy(env!("CARGO_BIN_EXE_zdt-check"), &bin_copy).unwrap();
    std::fs::set_permissions(&bin_copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let scenario = dir.path().join("hosts.toml");
    std::fs::copy(at("scenarios/haproxy-pool-hosts.toml"), &scenario).unwrap();
    std::fs::set_permissions(&scenario, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin_copy)
        .args(["run", "--no-progress"])
        .arg(&scenario)
        .env("TMPDIR", "/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("zdt{}h", out.id());
    let out = out.wait_with_output().unwrap();
    let text = dump(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("cannot create test hosts") && text.contains("needs root"),
        "{text}"
    );
    assert_nothing_left(&out, &prefix);
}

#[test]
fn test_hosts_with_a_unix_socket_are_refused() {
    let src = std::fs::read_to_string(at("scenarios/haproxy-pool-hosts.toml"))
        .unwrap()
        .replace(
            "kind = \"builtin\"",
            "kind = \"builtin\"\nsocket = \"unix\"",
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts-unix.toml");
    std::fs::write(&path, src).unwrap();
    let _guard = serial();
    run_harness_error(&path, "drop app.socket or set it to \"tcp\"");
}

#[test]
fn two_runs_at_once_get_their_own_blocks() {
    if !ready() {
        return;
    }
    let _guard = serial();
    // Both choose a block and create their links under the lock, then check that each
    // address is routed over their own veth: a shared block would be a harness error.
    let start = || {
        bin()
            .args([
                "run",
                "--no-progress",
                &at("scenarios/haproxy-pool-hosts.toml"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let mut prefixes = Vec::new();
    for child in [a, b] {
        let prefix = format!("zdt{}h", child.id());
        prefixes.push(prefix.clone());
        let out = child.wait_with_output().unwrap();
        // On 2 shared cores two loads at once may fail requests (exit 1); never exit 2.
        assert_ne!(out.status.code(), Some(2), "{}", dump(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().any(|l| l.contains("test hosts removed")
                && l.contains(&format!("{prefix}1 "))
                && l.ends_with("no namespace or link left")),
            "{}",
            dump(&out)
        );
        assert_no_leftovers(&out, &[]);
    }
    for prefix in prefixes {
        assert_eq!(own_host_names(&prefix), Vec::<String>::new(), "{prefix}");
    }
}

#[test]
fn test_hosts_that_cannot_be_removed_are_a_harness_error() {
    if !ready() {
        return;
    }
    let _guard = serial();
    // An `ip` first on PATH that refuses removal (`ip -force -batch -`) and runs the
    // real one for everything else.
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ip"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("ip");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -force ]; then cat >/dev/null; echo refused >&2; exit 1; fi\nexec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = bin()
        .args([
            "run",
            "--no-progress",
            &at("scenarios/haproxy-pool-hosts.toml"),
        ])
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("zdt{}h", child.id());
    let out = child.wait_with_output().unwrap();
    // Removed for real here (the run's reaper uses the same `ip` and fails too).
    for i in 1..=3 {
        let n = format!("{prefix}{i}");
        let _ = Command::new("ip").args(["link", "del", &n]).output();
        let _ = Command::new("ip").args(["netns", "del", &n]).output();
    }
    let text = dump(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("left behind: test hosts not removed: ")
            && text.contains(&format!("{prefix}1")),
        "{text}"
    );
    assert_nothing_left(&out, &prefix);
}

#[test]
fn a_link_taken_down_is_put_back_up_when_the_wait_for_down_fails() {
    if !ready() {
        return;
    }
    // haproxy needs about 370 ms to mark s2 DOWN: a 50 ms step timeout ends the wait
    // in an error while the link is down.
    let src = std::fs::read_to_string(at("scenarios/negative/haproxy-pool-link-down.toml"))
        .unwrap()
        .replace("step_timeout = \"10s\"", "step_timeout = \"50ms\"");
    assert!(src.contains("step_timeout = \"50ms\""), "{src}");
    let r = run_scenario_text("haproxy-pool-link-down-timeout", &src);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("reload_completed"), "{}", r.dump());
    // Put back at once, over its own link, and no longer marked linkdown.
    let back = detail(&r, "s2 link back up after an error");
    assert!(
        back.contains("marked DOWN by its checks") && back.contains(" dev zdt"),
        "{}",
        r.dump()
    );
    assert!(!back.contains("linkdown"), "{}", r.dump());
    assert_no_test_hosts(&r);
}
