//! The Python servers uvicorn and granian (and hypercorn under haproxy-reload) under
//! the strategies that are not their own signal (symlink-swap, nginx-reload,
//! haproxy-pool, haproxy-reload): each passes with nothing failed and v2 serving
//! after, through the strategy's own steps; and the nginx reload that stops the old
//! granian at once fails with 502s and nothing else.

use crate::util::{at, require_stack, run_scenario};

/// Runs `scenario` (needs `tools`) and asserts it passed with nothing failed, v2
/// serving after the reload, and exactly the strategy's `steps`.
fn assert_passes(scenario: &str, tools: &[&str], steps: &[&str]) {
    if !require_stack(tools) {
        return;
    }
    let r = run_scenario(&at(scenario));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.step_names(), steps, "{}", r.dump());
}

const SYMLINK_STEPS: [&str; 5] = [
    "new instance started",
    "new instance ready",
    "switched",
    "settled",
    "old instance stopped",
];

const NGINX_RELOAD_STEPS: [&str; 4] = [
    "new app ready",
    "nginx reloaded",
    "old nginx workers exited",
    "old app stopped",
];

/// The drained roll of 3 servers, then the counters.
fn haproxy_pool_steps() -> Vec<String> {
    let mut steps = Vec::new();
    for s in ["s1", "s2", "s3"] {
        for step in [
            "out of rotation",
            "idle",
            "old app stopped",
            "new app ready",
            "check passed",
            "back in rotation",
        ] {
            steps.push(format!("{s} {step}"));
        }
    }
    steps.push("haproxy counters".into());
    steps.push("haproxy counters (whole run)".into());
    steps
}

#[test]
fn symlink_swap_on_uvicorn_passes() {
    assert_passes(
        "scenarios/symlink-uvicorn.toml",
        &["uvicorn"],
        &SYMLINK_STEPS,
    );
}

#[test]
fn symlink_swap_on_granian_passes() {
    assert_passes(
        "scenarios/symlink-granian.toml",
        &["granian"],
        &SYMLINK_STEPS,
    );
}

#[test]
fn nginx_reload_on_uvicorn_passes() {
    assert_passes(
        "scenarios/nginx-reload-uvicorn.toml",
        &["nginx", "uvicorn"],
        &NGINX_RELOAD_STEPS,
    );
}

#[test]
fn nginx_reload_on_granian_passes() {
    assert_passes(
        "scenarios/nginx-reload-granian.toml",
        &["nginx", "granian"],
        &NGINX_RELOAD_STEPS,
    );
}

#[test]
fn haproxy_pool_of_uvicorn_passes() {
    let steps = haproxy_pool_steps();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    assert_passes(
        "scenarios/haproxy-pool-uvicorn.toml",
        &["haproxy", "uvicorn"],
        &steps,
    );
}

#[test]
fn haproxy_pool_of_granian_passes() {
    let steps = haproxy_pool_steps();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    assert_passes(
        "scenarios/haproxy-pool-granian.toml",
        &["haproxy", "granian"],
        &steps,
    );
}

#[test]
fn nginx_reload_stopping_the_old_granian_at_once_fails_with_502() {
    if !require_stack(&["nginx", "granian"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/nginx-reload-stop-at-once-granian.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    // The reload itself went through and v2 took over: the old nginx workers still
    // proxied to the stopped granian's socket, and nginx answered 502 ...
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let n502 = r.outcome("http_502");
    assert!(n502 >= 5, "expected >= 5 x 502, got {n502}\n{}", r.dump());
    // ... and nothing else failed.
    assert_eq!(r.class("http_5xx"), n502, "{}", r.dump());
    assert_eq!(r.other_failures(&["http_5xx"]), vec![], "{}", r.dump());
    // Without the wait for the old nginx workers there is no such step.
    assert_eq!(
        r.step_names(),
        ["new app ready", "nginx reloaded", "old app stopped"],
        "{}",
        r.dump()
    );
}

/// haproxy reloading itself through its master CLI in front of each Python server:
/// the fresh instances answer before haproxy is moved to them, so nothing fails.
fn assert_haproxy_reload_passes(kind: &str) {
    assert_passes(
        &format!("scenarios/haproxy-reload-{kind}.toml"),
        &["haproxy", kind],
        &super::haproxy_reload::MASTER_CLI_DEPLOY_STEPS,
    );
}

#[test]
fn haproxy_reload_in_front_of_uvicorn_passes() {
    assert_haproxy_reload_passes("uvicorn");
}

#[test]
fn haproxy_reload_in_front_of_granian_passes() {
    assert_haproxy_reload_passes("granian");
}

#[test]
fn haproxy_reload_in_front_of_hypercorn_passes() {
    assert_haproxy_reload_passes("hypercorn");
}
