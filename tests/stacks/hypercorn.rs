//! hypercorn: instances rolled behind haproxy pass; its own SIGHUP reload on the real
//! server (0.18.0) and the ways it fails here, each control failing for its own reason:
//! every old worker stopped before the new ones import (a stall: `max_gap`), keep-alive
//! clients that reuse blindly (`reset_reused`) and a graceful timeout shorter than the
//! requests (cancelled: `http_500`).

use crate::util::{at, require_stack, run_scenario, RunResult};

/// hypercorn's SIGHUP on 2 workers: every old worker gone first, then one step per new
/// worker as it reports ready.
const RESPAWN: [&str; 4] = [
    "SIGHUP",
    "old workers exited",
    "new worker ready",
    "new worker ready",
];

/// When `version` served its first and its last response (ms on the load clock).
fn served(r: &RunResult, version: &str) -> (f64, f64) {
    let v = r.report["stats"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == version))
        .unwrap_or_else(|| panic!("{version} never served: {}", r.dump()));
    (
        v["first_ms"].as_f64().unwrap(),
        v["last_ms"].as_f64().unwrap(),
    )
}

#[test]
fn haproxy_pool_of_hypercorn_instances_passes() {
    if !require_stack(&["haproxy", "hypercorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-pool-hypercorn.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let names = r.step_names();
    for s in ["s1", "s2", "s3"] {
        assert!(
            names.contains(&format!("{s} new app ready")),
            "{s} was restarted: {}",
            r.dump()
        );
    }
}

#[test]
fn hup_stops_every_old_worker_before_the_new_ones_import() {
    if !require_stack(&["hypercorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/hypercorn-hup-slow-import.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // No worker served from the last old one's exit until a new one had imported the
    // app: a stall ...
    assert!(!r.check("max_gap"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
    let (_, v1_last) = served(&r, "v1");
    let (v2_first, _) = served(&r, "v2");
    assert!(
        v1_last < v2_first,
        "no two versions served side by side: {}",
        r.dump()
    );
    // ... with the socket held by the main process throughout: nothing refused. The
    // only failures allowed are hypercorn's shutdown race (a connection a stopping
    // worker accepted but had not read is closed: reset_fresh).
    assert_eq!(r.class("connect_refused"), 0, "{}", r.dump());
    assert_eq!(
        r.report["stats"]["failed"].as_u64().unwrap(),
        r.class("reset_fresh"),
        "{}",
        r.dump()
    );
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn hup_with_blind_keep_alive_reuse_is_reset() {
    if !require_stack(&["hypercorn"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/hypercorn-hup-keep-alive-naive-client.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    // Each stopping worker closed its idle keep-alive connections; the client sent on them.
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.class("reset_reused") > 10, "{}", r.dump());
    assert_eq!(r.class("connect_refused"), 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}

#[test]
fn hup_with_a_graceful_timeout_shorter_than_the_requests_cancels_them() {
    if !require_stack(&["hypercorn"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/hypercorn-hup-graceful-timeout.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    // The old workers cancelled the 3 s requests 1 s after the HUP; hypercorn answered
    // each with a 500.
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.outcome("http_500") > 0, "{}", r.dump());
    assert_eq!(r.class("connect_refused"), 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}
