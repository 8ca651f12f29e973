//! uvicorn: its own SIGHUP reload on the real server, on the version that restarts
//! workers one at a time (0.54.0) and on one before it (0.50.0, every worker at once),
//! and with one worker (no supervisor), each control failing for its own reason.

use serde_json::Value;

use crate::util::{at, require_stack, run_scenario, RunResult};

fn steps(r: &RunResult) -> Vec<Value> {
    r.report["steps"].as_array().cloned().unwrap_or_default()
}

fn max_gap_ms(r: &RunResult) -> f64 {
    r.report["stats"]["max_gap_ms"].as_f64().unwrap()
}

#[test]
fn hup_on_054_replaces_workers_one_at_a_time_without_a_stall() {
    if !require_stack(&["uvicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/uvicorn-hup.toml"));
    r.assert_pass_but_for_residual_race();
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert!(r.check("max_gap"), "{}", r.dump());
    // One step per new worker, each one import (2 s) after the previous: one at a time.
    assert_eq!(
        r.step_names(),
        [
            "SIGHUP",
            "new worker ready",
            "new worker ready",
            "old workers exited"
        ],
        "{}",
        r.dump()
    );
    let s = steps(&r);
    let second = s[2]["end_ms"].as_f64().unwrap() - s[2]["start_ms"].as_f64().unwrap();
    assert!(
        second > 1500.0,
        "second worker after {second} ms: {}",
        r.dump()
    );
}

#[test]
fn hup_on_050_restarts_every_worker_at_once_and_stalls() {
    if !require_stack(&["uvicorn-0.50.0"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/uvicorn-0.50-hup.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // The real reason: no worker served for about the 2 s import (budget 500 ms) ...
    assert!(!r.check("max_gap"), "{}", r.dump());
    let gap = max_gap_ms(&r);
    assert!(gap > 1500.0, "gap {gap} ms: {}", r.dump());
    // ... while the supervisor kept the socket: requests waited, none failed (but for
    // the residual race), and the new version did take over.
    assert_eq!(r.failed_beyond_residual_race(), 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    // The old workers were all gone before a new one was ready, and both new workers
    // came up together, not one import apart.
    assert_eq!(
        r.step_names(),
        [
            "SIGHUP",
            "old workers exited",
            "new worker ready",
            "new worker ready"
        ],
        "{}",
        r.dump()
    );
    let s = steps(&r);
    let second = s[3]["end_ms"].as_f64().unwrap() - s[3]["start_ms"].as_f64().unwrap();
    assert!(
        second < 1000.0,
        "second worker after {second} ms: {}",
        r.dump()
    );
}

#[test]
fn hup_with_one_worker_ends_the_server() {
    if !require_stack(&["uvicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/uvicorn-single-worker.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // No supervisor: SIGHUP's default action ends the server, and nothing listens.
    assert_eq!(r.step_names(), ["SIGHUP", "uvicorn exited"], "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.class("connect_refused") > 50, "{}", r.dump());
    assert!(!r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn hup_with_an_import_slower_than_the_healthcheck_is_abandoned() {
    if !require_stack(&["uvicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/uvicorn-hup-slow-import.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // uvicorn gave up on the first new worker after 5 s and kept the old ones: the
    // strategy read its log line and failed the step ...
    assert!(!r.check("reload_completed"), "{}", r.dump());
    assert_eq!(
        r.step_names(),
        ["SIGHUP", "restart abandoned"],
        "{}",
        r.dump()
    );
    assert!(
        r.stdout.contains("aborting the restart"),
        "uvicorn's own words in the report: {}",
        r.dump()
    );
    // ... while v1 kept serving, nothing failed and nothing stalled.
    assert!(!r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("max_gap"), "{}", r.dump());
}

#[test]
fn websockets_across_hup_are_closed_cleanly_and_reopened_on_v2() {
    if !require_stack(&["uvicorn", "wsproto"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/uvicorn-hup-websockets.toml"));
    // The residual race was seen once in a CI run: 1 reset_fresh of 1413.
    r.assert_pass_but_for_residual_race();
    assert!(r.check("websockets_dropped"), "{}", r.dump());
    // The old workers closed theirs with a close frame (1012), and all 16 ended on v2.
    // (One at a time: a websocket the first old worker closed may reopen on the second
    // old one, still v1, and be closed again: `v1` counts 16 and more.)
    assert!(
        r.stdout.contains("closed by the server (1012"),
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains(", 16 held to the end"), "{}", r.dump());
    assert!(r.stdout.contains(", v2 16\n"), "{}", r.dump());
}
