//! haproxy in front of a pool: the drained rolling deploy passes, and each broken
//! roll fails for its own reason, with haproxy's counters telling what it hid.

use crate::util::{at, require_stack, run_scenario, RunResult};

/// A counter (`wretr`, `econ`, ...) of the step `step` ("haproxy counters" or
/// "haproxy counters (whole run)"): the backend's total since haproxy started.
fn counter(r: &RunResult, step: &str, key: &str) -> u64 {
    let detail = r.report["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == step))
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_else(|| panic!("no step {step:?}\n{}", r.dump()))
        .to_string();
    let total = detail.split(" (").next().unwrap_or_default();
    total
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {detail:?}"))
}

/// Failure classes other than `http_5xx` with a count.
fn non_5xx_failures(r: &RunResult) -> Vec<String> {
    r.report["stats"]["classes"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, v)| {
                    k.as_str() != "ok" && k.as_str() != "http_5xx" && v.as_u64().unwrap_or(0) > 0
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .unwrap_or_default()
}

/// A broken roll: only `code` responses failed (at least `min`), the reload itself went through.
fn assert_failed_with(r: &RunResult, code: &str, min: u64) {
    assert_failed_with_also(r, code, min, &[]);
}

/// As [`assert_failed_with`], where the 5xx codes in `also` may come on top of `code`.
fn assert_failed_with_also(r: &RunResult, code: &str, min: u64, also: &[&str]) {
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let n = r.outcome(code);
    assert!(
        n >= min,
        "expected >= {min} x {code}, got {n}\n{}",
        r.dump()
    );
    let others: u64 = also.iter().map(|c| r.outcome(c)).sum();
    assert_eq!(r.class("http_5xx"), n + others, "{}", r.dump());
    assert_eq!(non_5xx_failures(r), Vec::<String>::new(), "{}", r.dump());
}

#[test]
fn haproxy_pool_drained_roll_passes_and_hides_nothing() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-pool.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    let steps: Vec<&str> = r.report["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    let s1: Vec<&str> = steps
        .iter()
        .copied()
        .filter(|s| s.starts_with("s1 "))
        .collect();
    assert_eq!(
        s1,
        [
            "s1 out of rotation",
            "s1 idle",
            "s1 old app stopped",
            "s1 new app ready",
            "s1 check passed",
            "s1 back in rotation"
        ],
        "{}",
        r.dump()
    );
    for step in ["haproxy counters", "haproxy counters (whole run)"] {
        for key in ["wretr", "wredis", "econ", "eresp", "hrsp_5xx"] {
            assert_eq!(counter(&r, step, key), 0, "{step} {key}\n{}", r.dump());
        }
    }
}

#[test]
fn haproxy_pool_restart_in_rotation_fails_with_503() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-pool-no-drain.toml"));
    // Under a loaded machine the old instance can also close on a connect haproxy
    // had just made (its own drain), which haproxy answers 502: a failure of the
    // same broken roll, allowed on top of the 503s.
    assert_failed_with_also(&r, "http_503", 5, &["http_502"]);
    assert!(counter(&r, "haproxy counters", "econ") > 0, "{}", r.dump());
}

#[test]
fn haproxy_pool_stop_before_idle_cuts_requests_in_flight() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-pool-no-wait-idle.toml"));
    assert_failed_with(&r, "http_502", 5);
    assert!(counter(&r, "haproxy counters", "eresp") > 0, "{}", r.dump());
}

#[test]
fn haproxy_pool_ready_at_once_after_maint_fails_with_503() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/haproxy-pool-maint-ready-at-once.toml",
    ));
    assert_failed_with(&r, "http_503", 5);
}

#[test]
fn haproxy_pool_retries_hide_failures_from_the_client_but_not_from_its_counters() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-pool-retries-hide.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // haproxy retried behind the client's back, and max_hidden_retries = 0 says so...
    let hidden =
        counter(&r, "haproxy counters", "wretr") + counter(&r, "haproxy counters", "wredis");
    assert!(hidden >= 5, "{}", r.dump());
    // ...while the client saw next to nothing (a request already sent to a connection
    // the old instance had accepted is cut, not retried: at most a few 502s).
    let failed = r.report["stats"]["failed"].as_u64().unwrap_or(u64::MAX);
    assert!(
        failed * 10 <= hidden,
        "{failed} failed vs {hidden} hidden\n{}",
        r.dump()
    );
    assert_eq!(r.class("http_5xx"), failed, "{}", r.dump());
    assert!(!r.check("reload_completed"), "{}", r.dump());
    assert!(
        r.dump().contains("connects the client never saw"),
        "{}",
        r.dump()
    );
}

#[test]
fn haproxy_pool_of_gunicorn_masters_passes() {
    if !require_stack(&["haproxy", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-pool-gunicorn.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    for key in ["wretr", "wredis", "econ", "eresp"] {
        assert_eq!(
            counter(&r, "haproxy counters (whole run)", key),
            0,
            "{key}\n{}",
            r.dump()
        );
    }
}

#[test]
fn haproxy_pool_404_status_page_takes_servers_out_without_the_admin_socket() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-pool-404.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    let out = r.report["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "s1 out of rotation"))
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(out.contains("status NOLB"), "{out}\n{}", r.dump());
    assert_eq!(
        counter(&r, "haproxy counters (whole run)", "econ"),
        0,
        "{}",
        r.dump()
    );
}
