//! haproxy reloading itself in front of a pool: the master-CLI reload passes, the
//! hard restart fails with refused connects, and the legacy `-sf` reload of a
//! saturated haproxy fails with the resets of the old listener's queue.

use crate::util::{at, require_stack, run_scenario, RunResult};

/// The steps of one master-CLI deploy in front of 2 servers.
pub const MASTER_CLI_DEPLOY_STEPS: [&str; 9] = [
    "new apps ready",
    "config checked",
    "show proc before",
    "reload sent",
    "new worker up",
    "new worker checks passed",
    "old worker gone",
    "old app stopped",
    "old app stopped",
];

/// The detail of every step called `name`.
fn details(r: &RunResult, name: &str) -> Vec<String> {
    r.report["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["name"] == name)
                .filter_map(|s| s["detail"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn haproxy_reload_through_the_master_cli_passes_with_a_new_worker_each_time() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-reload.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let names = r.step_names();
    let first: Vec<&str> = names.iter().take(9).map(String::as_str).collect();
    assert_eq!(first, MASTER_CLI_DEPLOY_STEPS, "{}", r.dump());
    // Two deploys: the master counted two reloads, none failed.
    let up = details(&r, "new worker up");
    assert_eq!(up.len(), 2, "{}", r.dump());
    assert!(up[0].contains("reloads 1 [failed: 0]"), "{}", r.dump());
    assert!(up[1].contains("reloads 2 [failed: 0]"), "{}", r.dump());
}

#[test]
fn haproxy_hard_restart_refuses_connections() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-reload-restart.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    // Nothing listens between the stop and the start: refused connects. The stopping
    // process may also close its listener on a connect still queued (reset, rare at
    // this rate); nothing else.
    assert!(r.class("connect_refused") >= 5, "{}", r.dump());
    for c in r.failed_classes() {
        assert!(
            ["connect_refused", "reset_fresh", "connect_other"].contains(&c.as_str()),
            "{c}\n{}",
            r.dump()
        );
    }
}

#[test]
fn haproxy_legacy_sf_reload_of_a_saturated_haproxy_is_caught_as_resets() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-reload-sf.toml"));
    // Deterministic: at its frontend maxconn haproxy leaves ~20 connections in its
    // listener's queue at every moment, and each -sf soft stop resets the old one's.
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    for check in [
        "reload_completed",
        "new_version_took_over",
        "p99_during",
        "max_gap",
    ] {
        assert!(r.check(check), "{check}\n{}", r.dump());
    }
    let s = &r.report["stats"];
    let scheduled = s["scheduled"].as_u64().unwrap_or(0);
    let ok = s["ok"].as_u64().unwrap_or(0);
    let failed = s["failed"].as_u64().unwrap_or(u64::MAX);
    assert_eq!(scheduled, ok + failed, "{}", r.dump());
    // 5 reloads, measured 20 resets each: at least a few each, and nothing but resets
    // (a reset in the handshake is connect_other; never a refused connect: a listener
    // is bound all along).
    assert!(r.class("reset_fresh") >= 25, "{}", r.dump());
    assert_eq!(
        failed,
        r.class("reset_fresh") + r.class("connect_other"),
        "{}",
        r.dump()
    );
    // 5 -sf reloads, each a new process whose predecessor exited (with 0, or with
    // SIGSEGV: 2.6.12 crashes now and then during that soft stop, see the module doc).
    assert_eq!(details(&r, "new process up").len(), 5, "{}", r.dump());
    let gone = details(&r, "old process gone");
    assert_eq!(gone.len(), 5, "{}", r.dump());
    for g in &gone {
        assert!(
            g.contains("exited (exit status: 0)") || g.contains("SIGSEGV"),
            "{g}\n{}",
            r.dump()
        );
    }
}

#[test]
fn haproxy_reload_in_front_of_gunicorn_masters_passes() {
    if !require_stack(&["haproxy", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-reload-gunicorn.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let up = details(&r, "new worker up");
    assert_eq!(up.len(), 1, "{}", r.dump());
    assert!(up[0].contains("reloads 1 [failed: 0]"), "{}", r.dump());
}
