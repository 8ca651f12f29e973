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

#[test]
fn streams_drained_across_a_symlink_swap_pass() {
    let r = run_scenario(&at("scenarios/stream-symlink.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    // 2 s streams at 20/s for about 7 s: every one complete, none cut.
    assert!(
        r.report["stats"]["ok"].as_u64().unwrap() > 80,
        "{}",
        r.dump()
    );
    assert!(r.report["stats"].get("truncated").is_none(), "{}", r.dump());
    assert!(!r.stdout.contains("truncated"), "{}", r.dump());
}

#[test]
fn streams_cut_by_an_exit_on_term_are_truncated_with_how_far_they_got() {
    let r = run_scenario(&at("scenarios/negative/stream-exit-on-term.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    // About 1.5 s of streams (30 at 20/s) were still on v1 when it exited.
    let n = r.class("truncated");
    assert!(n >= 10, "{}", r.dump());
    assert_eq!(
        r.report["stats"]["failed"],
        n,
        "only truncated: {}",
        r.dump()
    );
    let t = &r.report["stats"]["truncated"];
    assert_eq!(t["count"], n, "{}", r.dump());
    assert_eq!(
        t["chunked"],
        n,
        "every cut one was a chunked stream: {}",
        r.dump()
    );
    assert_eq!(t["in_head"], 0, "the head goes out at once: {}", r.dump());
    // Cut mid-way: each got some of its 20 chunks, none all of them.
    let chunks = |k: &str| t["chunks"][k].as_u64().unwrap();
    assert!(chunks("min") >= 1, "{}", r.dump());
    assert!(chunks("max") < 20, "{}", r.dump());
    assert!(chunks("min") < chunks("max"), "{}", r.dump());
    assert!(
        t["bytes"]["min"].as_u64().unwrap() > 100,
        "the head and a chunk at least: {}",
        r.dump()
    );
    assert!(
        r.stdout
            .contains(&format!("truncated {n}: bytes received before the cut")),
        "{}",
        r.dump()
    );
}
