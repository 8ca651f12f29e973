//! Faults: the harness interrupted or killed mid-run, an app that never becomes
//! ready. Whatever happens, no process survives and the run dir is removed
//! (after SIGKILL of the harness, by its reaper), unless `--keep-run-dir`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{assert_no_leftovers, at, bin, dump, run_unstartable, serial};

/// Waits for `child` up to `limit`; panics if it does not exit.
fn wait_with_limit(child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    let pid = child.id();
    let out = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !out.is_finished() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the harness we started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("the harness did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out.join().unwrap()
}

fn run_dirs(tmp: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("zdt-check-"))
        .collect()
}

/// Waits (bounded) until a run dir under `tmp` holds `file`, while `child` runs.
fn wait_for_run_file(tmp: &std::path::Path, file: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run_dirs(tmp)
        .iter()
        .any(|d| tmp.join(d).join(file).exists())
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the harness exited ({status}) before {file} appeared");
        }
        assert!(
            Instant::now() < deadline,
            "no {file} in a run dir after 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `zdt-check SUBCOMMAND ARGS slow-start.toml` (symlink.toml with a 3 s start-up,
/// in `tmp`) and sends `sig` mid-reload: once v2 is spawned (its log, app-b.log, appears
/// in the run dir at once) and the reload waits 3 s for it to answer. Returns the
/// harness's output, after checking that it exited 2 and left nothing behind.
fn interrupt_mid_reload(
    tmp: &std::path::Path,
    subcommand: &str,
    args: &[&std::ffi::OsStr],
    sig: i32,
) -> std::process::Output {
    let text = std::fs::read_to_string(at("scenarios/symlink.toml"))
        .unwrap()
        .replace("startup_delay = \"1s\"", "startup_delay = \"3s\"");
    assert!(text.contains("startup_delay = \"3s\""), "{text}");
    let scenario = tmp.join("slow-start.toml");
    std::fs::write(&scenario, text).unwrap();
    let mut child = bin()
        .arg(subcommand)
        .args(args)
        .arg(&scenario)
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // v1 is slot a; app-b.log is created when the reload starts v2.
    wait_for_run_file(tmp, "app-b.log", &mut child);
    // SAFETY: kill(2) on the harness we started.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
    let out = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert_no_leftovers(&out, &[]);
    assert_eq!(run_dirs(tmp), Vec::<String>::new(), "run dir left behind");
    out
}

#[test]
fn ctrl_c_mid_reload_stops_cleanly_and_reports() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let out = interrupt_mid_reload(
        tmp.path(),
        "run",
        &["--json".as_ref(), json.as_os_str()],
        libc::SIGINT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("INTERRUPTED"), "{}", dump(&out));
    assert!(
        stdout.contains("[identity holds]"),
        "what was measured is still accounted: {}",
        dump(&out)
    );
    // The interruption came during the reload: its first step is recorded, the switch
    // never happened, and the load has a `during` phase (the reload had begun).
    assert!(
        stdout.contains("reload steps (ms since load start; * changes who serves):")
            && stdout.contains("new instance started"),
        "{}",
        dump(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a JSON report")).unwrap();
    crate::util::assert_matches_schema(&doc);
    let run = &doc["runs"][0];
    assert_eq!(run["interrupted"], true, "{}", dump(&out));
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["new instance started"],
        "interrupted while v2 started: {}",
        dump(&out)
    );
    let phases: Vec<&str> = run["stats"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(phases, ["before", "during", "after"], "{}", dump(&out));
    assert_eq!(run["interrupted_by"], "SIGINT", "{}", dump(&out));
}

/// What a CI cancel sends, mid-reload: the requests cut in flight are `interrupted`,
/// not hung nor failed; the verdict is INTERRUPTED by SIGTERM (neither PASS nor
/// FAIL) in every report, and the exit code 2.
#[test]
fn sigterm_mid_reload_is_interrupted_not_failed_in_every_report() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (json, junit, html) = (
        tmp.path().join("report.json"),
        tmp.path().join("report.xml"),
        tmp.path().join("report.html"),
    );
    let out = interrupt_mid_reload(
        tmp.path(),
        "run",
        &[
            "--no-progress".as_ref(),
            "--json".as_ref(),
            json.as_os_str(),
            "--junit".as_ref(),
            junit.as_os_str(),
            "--html".as_ref(),
            html.as_os_str(),
        ],
        libc::SIGTERM,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted by SIGTERM"),
        "the signal is named: {}",
        dump(&out)
    );
    assert!(!stdout.contains("Ctrl-C"), "{}", dump(&out));
    assert!(
        stdout.contains("verdict: INTERRUPTED by SIGTERM"),
        "{}",
        dump(&out)
    );
    assert!(!stdout.contains("verdict: FAIL"), "{}", dump(&out));
    assert!(!stdout.contains("[FAIL]"), "nothing blamed: {}", dump(&out));
    let identity = stdout
        .lines()
        .find(|l| l.contains("[identity holds]"))
        .unwrap_or_else(|| panic!("{}", dump(&out)));
    assert!(
        identity.contains(" + interrupted ") && !identity.contains("hung"),
        "{}",
        dump(&out)
    );

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a JSON report")).unwrap();
    crate::util::assert_matches_schema(&doc);
    let run = &doc["runs"][0];
    assert_eq!(run["result"], "INTERRUPTED", "{}", dump(&out));
    assert_eq!(run["interrupted_by"], "SIGTERM", "{}", dump(&out));
    assert_eq!(run["exit_code"], 2);
    assert_eq!(run["verdict"]["passed"], false);
    let st = &run["stats"];
    let n = |k: &str| st[k].as_u64().unwrap();
    // At 400 req/s of 20 ms requests, about 8 are in flight at any time.
    assert!(n("interrupted") > 0, "{}", dump(&out));
    assert_eq!(n("hung"), 0, "{}", dump(&out));
    assert_eq!(n("failed"), 0, "symlink-swap fails nothing: {}", dump(&out));
    assert_eq!(n("scheduled"), n("ok") + n("failed") + n("interrupted"));
    assert_eq!(st["identity_holds"], true);
    assert!(st["classes"].get("hung").is_none(), "{}", dump(&out));
    let checks = run["verdict"]["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .all(|c| c["passed"] == true || c["not_checked"] == true),
        "no check fails on an interrupted run: {checks:?}"
    );

    let xml = std::fs::read_to_string(&junit).expect("a JUnit report");
    assert!(
        xml.contains("<error message=\"INTERRUPTED by SIGTERM: ")
            && xml.contains("type=\"interrupted\""),
        "{xml}"
    );
    assert!(!xml.contains("<failure"), "{xml}");
    let page = std::fs::read_to_string(&html).expect("an HTML report");
    assert!(page.contains("data-verdict=\"INTERRUPTED\""), "{page}");
    assert!(!page.contains("data-verdict=\"FAIL\""), "{page}");
    assert!(page.contains("INTERRUPTED by SIGTERM"));
}

/// `zdt-check compare`, interrupted mid-run: the run cut short is INTERRUPTED (not an
/// error, not a failure), left out of the table's figures, and compare exits 2.
#[test]
fn sigterm_mid_compare_is_interrupted_not_failed() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (json, junit) = (
        tmp.path().join("compare.json"),
        tmp.path().join("compare.xml"),
    );
    let out = interrupt_mid_reload(
        tmp.path(),
        "compare",
        &[
            "--json".as_ref(),
            json.as_os_str(),
            "--junit".as_ref(),
            junit.as_os_str(),
        ],
        libc::SIGTERM,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run 1/1: INTERRUPTED by SIGTERM"),
        "{}",
        dump(&out)
    );
    assert!(
        stdout.contains("verdict: INTERRUPTED by SIGTERM"),
        "{}",
        dump(&out)
    );
    assert!(
        stdout.contains("| 0/1 (1 interrupted) | 0 |"),
        "{}",
        dump(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a JSON report")).unwrap();
    let row = &doc["rows"][0];
    assert_eq!(row["interrupted"], 1, "{doc}");
    assert_eq!(row["errors"], 0, "{doc}");
    assert_eq!(row["measured"], 0, "{doc}");
    assert!(row["failed"].as_object().unwrap().is_empty(), "{doc}");
    let run = &doc["runs"][0];
    assert_eq!(run["result"], "INTERRUPTED", "{doc}");
    assert_eq!(run["stats"]["hung"], 0, "{doc}");
    let xml = std::fs::read_to_string(&junit).expect("a JUnit report");
    assert!(xml.contains("type=\"interrupted\""), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn sigkill_of_the_harness_leaves_no_child() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    // flup behind nginx when installed (grandchildren: nginx workers), else the fixture.
    let scenario = if crate::util::require_stack(&["nginx", "flup"]) {
        "scenarios/symlink-fastcgi.toml"
    } else {
        "scenarios/symlink.toml"
    };
    let child = bin()
        .args(["run", &at(scenario)])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: kill(2) on the harness we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let out = wait_with_limit(child, Duration::from_secs(10));
    assert_no_leftovers(&out, &[]);
    // The reaper removes the run dir once the groups are killed (bounded wait for it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !run_dirs(tmp.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        run_dirs(tmp.path()),
        Vec::<String>::new(),
        "run dir left behind after SIGKILL: {}",
        dump(&out)
    );
}

#[test]
fn sigkill_of_the_harness_keeps_a_kept_run_dir() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let child = bin()
        .args(["run", "--keep-run-dir", &at("scenarios/symlink.toml")])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the run dir exists and its first instance is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run_dirs(tmp.path())
        .iter()
        .any(|d| tmp.path().join(d).join("app-a.sock").exists())
    {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the harness we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let out = wait_with_limit(child, Duration::from_secs(10));
    assert_no_leftovers(&out, &[]);
    // assert_no_leftovers waited for the reaper too (re-parented to this test process when
    // the harness died), and it exits only after its clean-up: the kept dir stays.
    assert_eq!(run_dirs(tmp.path()).len(), 1, "{}", dump(&out));
}

#[test]
fn a_gunicorn_that_never_gets_ready_is_a_harness_error_with_its_log() {
    if !crate::util::require_stack(&["gunicorn"]) {
        return;
    }
    // The app's import takes 5 s; the scenario allows 1 s.
    let stdout = run_unstartable(
        "slow-gunicorn",
        "[app]\nkind = \"gunicorn\"\nstartup_delay = \"5s\"\nready_timeout = \"1s\"\n[reload]\nstrategy = \"symlink-swap\"\n",
    );
    // gunicorn's own log: it booted a worker that was still importing the app.
    assert!(
        stdout.contains("error: starting v1")
            && stdout.contains("not ready after 1s")
            && stdout.contains("Booting worker"),
        "{stdout}"
    );
}

#[test]
fn an_app_that_crashes_mid_run_is_reported_and_nothing_hangs() {
    // The "deploy" SIGKILLs the running app and starts nothing: every request after it fails.
    let r = crate::util::run_scenario_text(
        "crash",
        r#"
[load]
rate = 200
warmup = "500ms"
cooldown = "1s"
[reload]
strategy = "command"
command = ["sh", "-c", "kill -9 $ZDT_OLD_PID"]
step_timeout = "10s"
"#,
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    // The socket file is left behind by the killed process: connects are refused.
    assert!(
        r.class("connect_refused") + r.class("reset_fresh") > 100,
        "{}",
        r.dump()
    );
    assert!(!r.check("no_failed_requests"));
    assert!(!r.check("new_version_took_over"));
    assert_eq!(r.report["stats"]["hung"], 0, "{}", r.dump());
}

#[test]
fn a_front_server_whose_port_is_taken_is_a_harness_error_with_its_log() {
    if !crate::util::require_stack(&["nginx"]) {
        return;
    }
    // The port nginx is told to use is already taken, by a listener this test holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let stdout = run_unstartable(
        "port-taken",
        &format!(
            "[app]\nkind = \"builtin\"\nstartup_delay = \"200ms\"\n\
             [front]\nkind = \"nginx\"\nlisten = \"127.0.0.1:{port}\"\n\
             [reload]\nstrategy = \"nginx-reload\"\n"
        ),
    );
    // nginx's own words, from its error log.
    assert!(
        stdout.contains("nginx: exited")
            && stdout.contains(&format!("127.0.0.1:{port}"))
            && stdout.contains("Address already in use"),
        "{stdout}"
    );
    drop(taken);
}

/// Runs symlink.toml with the test-only fault injection `ZDT_TEST_PANIC=point` (debug
/// builds only): a panic there must end the run as a harness error, exit 2 (never
/// 101, never `hung` requests), with one line naming it, and leave nothing behind.
fn run_with_a_panic_in(point: &str) -> (std::process::Output, Option<serde_json::Value>) {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let child = bin()
        .args(["run", "--no-progress", "--json"])
        .arg(&json)
        .arg(at("scenarios/symlink.toml"))
        .env("TMPDIR", tmp.path())
        .env("ZDT_TEST_PANIC", point)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert_no_leftovers(&out, &[]);
    assert_eq!(
        run_dirs(tmp.path()),
        Vec::<String>::new(),
        "run dir left behind: {}",
        dump(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("panicked")).collect();
    assert_eq!(said.len(), 1, "one line names the panic: {}", dump(&out));
    assert!(
        said[0].starts_with("zdt-check: internal error: thread '")
            && said[0].ends_with(&format!(
                "injected by ZDT_TEST_PANIC={point} (this is a bug in zdt-check)"
            )),
        "{}",
        dump(&out)
    );
    let doc = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (out, doc)
}

/// A load thread's panic was swallowed: its requests in flight were counted as hung
/// and blamed on the server.
#[test]
fn a_load_thread_panic_is_a_harness_error_not_hung_requests() {
    let (out, doc) = run_with_a_panic_in("load-thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: internal error: load thread zdt-load-0 panicked: injected by ZDT_TEST_PANIC=load-thread (this is a bug in zdt-check)")
            && stdout.contains("verdict: none (harness error)"),
        "{}",
        dump(&out)
    );
    assert!(!stdout.contains("hung"), "{}", dump(&out));
    let doc = doc.expect("a JSON report");
    crate::util::assert_matches_schema(&doc);
    let run = &doc["runs"][0];
    assert_eq!(run["result"], "ERROR", "{}", dump(&out));
    assert!(run["stats"].is_null() && run["verdict"].is_null(), "{run}");
}

/// The collector's panic was an `expect` on the main thread: exit 101.
#[test]
fn a_collector_panic_is_a_harness_error() {
    let (out, doc) = run_with_a_panic_in("collector");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: internal error: collector thread zdt-collector panicked: injected by ZDT_TEST_PANIC=collector"),
        "{}",
        dump(&out)
    );
    assert_eq!(doc.expect("a JSON report")["runs"][0]["result"], "ERROR");
}

/// A panic on the main path (mid-run, the stack up and the load running) exited 101.
#[test]
fn a_main_thread_panic_exits_2_after_stopping_everything() {
    let (out, _) = run_with_a_panic_in("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zdt-check: internal error: thread 'main' panicked at harness/run.rs:"),
        "the panic's place, not the injection's: {}",
        dump(&out)
    );
}
