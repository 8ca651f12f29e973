//! WebSockets held across the reload (`[websockets]`): a server that drains with
//! close frames passes, directly and through nginx; a server that exits without
//! them, and nginx's own reload with and without worker_shutdown_timeout, fail for
//! their stated reason.

use crate::util::{at, require_stack, run_scenario, RunResult};

/// A count from the report's `websockets` object.
fn ws(r: &RunResult, key: &str) -> u64 {
    r.report["websockets"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no websockets.{key} in the report\n{}", r.dump()))
}

/// Names of the checks that failed.
fn failed_checks(r: &RunResult) -> Vec<String> {
    r.report["verdict"]["checks"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["passed"] == false)
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// When (ms) the step named `name` ended.
fn step_end(r: &RunResult, name: &str) -> f64 {
    r.report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .and_then(|s| s["end_ms"].as_f64())
        .unwrap_or_else(|| panic!("no step {name}\n{}", r.dump()))
}

/// When each connection that ended in `end` ended (ms).
fn ends(r: &RunResult, end: &str) -> Vec<f64> {
    r.report["websockets"]["lives"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter(|l| l["end"] == end)
                .filter_map(|l| l["at_ms"].as_f64())
                .collect()
        })
        .unwrap_or_default()
}

/// All 16 websockets closed by the server with 1001, none dropped, nothing failed;
/// `reopened`: each opened again on v2 and held to the end.
fn assert_closed_cleanly(r: &RunResult, reopened: bool) {
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.check("websockets_dropped"), "{}", r.dump());
    let again = if reopened { 16 } else { 0 };
    assert_eq!(ws(r, "reopened"), again, "{}", r.dump());
    assert_eq!(ws(r, "held_to_end"), again, "{}", r.dump());
    if reopened {
        assert_eq!(r.report["websockets"]["versions"]["v2"], 16, "{}", r.dump());
    }
    assert_eq!(ws(r, "opened"), 16 + again, "{}", r.dump());
    assert_eq!(ws(r, "closed_by_server"), 16, "{}", r.dump());
    assert_eq!(ws(r, "dropped"), 0, "{}", r.dump());
    assert_eq!(
        r.report["websockets"]["close_codes"]["1001"],
        16,
        "{}",
        r.dump()
    );
    assert_eq!(r.report["websockets"]["versions"]["v1"], 16, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    // Closed when v1 drained, after the switch.
    let switched = step_end(r, "switched");
    assert!(
        ends(r, "closed_by_server").iter().all(|t| *t > switched),
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains("\nwebsockets (16 on /ws"), "{}", r.dump());
}

#[test]
fn websockets_closed_with_1001_across_a_symlink_swap_pass() {
    let r = run_scenario(&at("scenarios/websockets-symlink.toml"));
    assert_closed_cleanly(&r, true);
}

#[test]
fn websockets_through_nginx_across_a_symlink_swap_pass() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/websockets-nginx-symlink.toml"));
    assert_closed_cleanly(&r, false);
}

#[test]
fn websockets_of_an_instance_that_exits_are_dropped() {
    let r = run_scenario(&at("scenarios/negative/websockets-exit-on-term.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(failed_checks(&r), ["websockets_dropped"], "{}", r.dump());
    assert_eq!(ws(&r, "dropped"), 16, "{}", r.dump());
    assert_eq!(ws(&r, "closed_by_server"), 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    let stopped = step_end(&r, "settled");
    assert!(
        ends(&r, "dropped").iter().all(|t| *t >= stopped),
        "dropped before v1 was stopped\n{}",
        r.dump()
    );
}

#[test]
fn nginx_reload_without_shutdown_timeout_never_lets_old_workers_go() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/websockets-nginx-reload.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(failed_checks(&r), ["reload_completed"], "{}", r.dump());
    let why = r.report["verdict"]["checks"][1]["detail"]
        .as_str()
        .unwrap_or("");
    assert!(
        why.contains("old nginx workers") && why.contains("still running after 3s"),
        "{}",
        r.dump()
    );
    // The old workers kept every websocket, to v1, until the client closed it.
    assert_eq!(ws(&r, "held_to_end"), 16, "{}", r.dump());
    assert_eq!(ws(&r, "dropped"), 0, "{}", r.dump());
    let steps: Vec<&str> = r.report["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!steps.contains(&"old app stopped"), "{}", r.dump());
}

#[test]
fn nginx_worker_shutdown_timeout_drops_websockets_without_a_close_frame() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/websockets-nginx-shutdown-timeout.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(failed_checks(&r), ["websockets_dropped"], "{}", r.dump());
    assert_eq!(ws(&r, "dropped"), 16, "{}", r.dump());
    assert_eq!(ws(&r, "closed_by_server"), 0, "{}", r.dump());
    // At worker_shutdown_timeout (1 s) after the reload, not before.
    let reloaded = step_end(&r, "nginx reloaded");
    for t in ends(&r, "dropped") {
        assert!(
            t - reloaded >= 900.0 && t - reloaded < 3000.0,
            "dropped at {t} ms, reload at {reloaded} ms\n{}",
            r.dump()
        );
    }
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
}
