//! granian: its own SIGHUP respawn on the real server (2.8.7), ASGI and WSGI; and the
//! ways it fails here, each control failing for its own reason: keep-alive clients that
//! reuse blindly (`reset_reused`), an import slower than the respawn timer (nothing
//! listens: `connect_refused`) and a workers kill timeout shorter than the requests
//! (requests cut: `reset_fresh`).

use crate::util::{at, require_stack, run_scenario};

/// A clean respawn of 2 workers: one step per new worker, then the old ones gone.
const RESPAWN: [&str; 4] = [
    "SIGHUP",
    "new worker ready",
    "new worker ready",
    "old workers exited",
];

#[test]
fn hup_on_asgi_respawns_workers_one_after_the_other_without_a_failure() {
    if !require_stack(&["granian"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/granian-hup.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert!(r.check("max_gap"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}

#[test]
fn hup_on_wsgi_reports_workers_ready_once_imported_and_passes() {
    if !require_stack(&["granian"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/granian-hup-wsgi.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}

#[test]
fn hup_under_long_requests_lets_the_old_workers_finish_them() {
    if !require_stack(&["granian"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/granian-hup-long-requests.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    // No kill timeout: granian waited for each old worker, and killed none.
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}

#[test]
fn hup_with_blind_keep_alive_reuse_is_reset() {
    if !require_stack(&["granian"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/granian-hup-keep-alive-naive-client.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    // Each old worker closed its idle keep-alive connections; the client sent on them.
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.class("reset_reused") > 10, "{}", r.dump());
    assert_eq!(r.class("connect_refused"), 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}

#[test]
fn hup_with_an_import_slower_than_the_respawn_leaves_nothing_listening() {
    if !require_stack(&["granian"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/granian-hup-slow-import.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // granian stopped the last old worker before the first new one had imported the
    // app: no socket listened, and new connections were refused ...
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.class("connect_refused") > 50, "{}", r.dump());
    assert!(!r.check("max_gap"), "{}", r.dump());
    // ... while the respawn itself completed and v2 took over.
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.step_names(), RESPAWN, "{}", r.dump());
}

#[test]
fn hup_with_a_kill_timeout_shorter_than_the_requests_cuts_them() {
    if !require_stack(&["granian"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/granian-hup-kill-timeout.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // granian killed the old workers 1 s after SIGTERM, with 3 s requests in flight.
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.class("reset_fresh") > 0, "{}", r.dump());
    assert_eq!(r.class("connect_refused"), 0, "{}", r.dump());
    let names = r.step_names();
    assert!(
        names.iter().filter(|n| *n == "old worker killed").count() == 2,
        "{}",
        r.dump()
    );
    assert!(
        r.stdout.contains("Killing old worker-1"),
        "granian's own words: {}",
        r.dump()
    );
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}
