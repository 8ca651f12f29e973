//! The built-in fixture scenarios: the strategy done right passes, and each
//! negative control fails for its own reason (the class is asserted, not just the exit code).

use crate::util::{at, run_scenario};

#[test]
fn symlink_swap_passes_under_load() {
    let r = run_scenario(&at("scenarios/symlink.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(
        r.report["stats"]["ok"].as_u64().unwrap() > 1000,
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains("verdict: PASS"), "{}", r.dump());
    assert!(r.stdout.contains("[identity holds]"), "{}", r.dump());
    // No [websockets] table: no websockets, no check, no section (as before it existed).
    assert!(r.report.get("websockets").is_none(), "{}", r.dump());
    assert!(!r.stdout.contains("websockets"), "{}", r.dump());
}

#[test]
fn naive_restart_is_caught_as_refused_connects() {
    let r = run_scenario(&at("scenarios/negative/naive.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"));
    // v2 imports for 1 s at 400 req/s: hundreds of refused connects, not a handful.
    assert!(r.class("connect_refused") > 100, "{}", r.dump());
    assert!(r.stdout.contains("verdict: FAIL"));
}

#[test]
fn swap_before_ready_is_caught_as_missing_socket() {
    let r = run_scenario(&at("scenarios/negative/swap-before-ready.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.class("connect_missing") > 100, "{}", r.dump());
}

#[test]
fn unlink_then_link_is_caught_as_missing_socket() {
    let r = run_scenario(&at("scenarios/negative/unlink-then-link.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // A 50 ms window at 400 req/s: about 20 connects find no socket.
    assert!(r.class("connect_missing") >= 5, "{}", r.dump());
}

#[test]
fn kill_without_drain_is_caught_as_resets() {
    let r = run_scenario(&at("scenarios/negative/stop-without-drain.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // 50 ms requests at 400 req/s: about 20 in flight on the killed instance.
    assert!(r.class("reset_fresh") >= 5, "{}", r.dump());
}
