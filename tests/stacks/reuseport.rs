//! The SO_REUSEPORT handover on a test host (a network namespace; needs root): with
//! net.ipv4.tcp_migrate_req = 1 in that namespace nothing is lost; with 0 the old
//! listener's queue is reset (reset_fresh, nothing else). Neither touches the
//! harness's own namespace's value, and the host is removed.

use super::netns::{detail, require_root, test_host_names};
use crate::util::{at, engines, require_stack, run_scenario, run_scenario_text, RunResult};

const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

fn ready() -> bool {
    require_stack(&["ip"]) && require_root()
}

/// The step "old instance stopped" names the sysctl as it was in the run's own test
/// host when the old listener closed; the host is gone after the run.
fn assert_ran_on_a_test_host_with(r: &RunResult, migrate: &str) {
    let stopped = detail(r, "old instance stopped");
    let want = format!("net.ipv4.tcp_migrate_req = {migrate} in zdt");
    assert!(stopped.contains(&want), "{want}\n{}", r.dump());
    let removed = detail(r, "test hosts removed");
    let (name, outcome) = removed.split_once(": ").unwrap_or_default();
    assert_eq!(outcome, "no namespace or link left", "{}", r.dump());
    assert!(stopped.ends_with(&format!(" in {name}")), "{}", r.dump());
    let left: Vec<String> = test_host_names()
        .into_iter()
        .filter(|n| n.ends_with(&format!(" {name}")))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{}", r.dump());
}

/// The scenario at `rel` run on the io_uring load engine (`[load] engine`), which
/// must really run (no fallback to epoll).
fn run_on_io_uring(rel: &str) -> RunResult {
    let toml = std::fs::read_to_string(at(rel)).unwrap().replacen(
        "[load]\n",
        "[load]\nengine = \"io_uring\"\n",
        1,
    );
    let r = run_scenario_text("io-uring", &toml);
    assert!(!r.stderr.contains("epoll runs"), "{}", r.dump());
    r
}

#[test]
fn reuseport_with_tcp_migrate_req_passes() {
    passes(|| run_scenario(&at("scenarios/reuseport-migrate.toml")));
}

#[test]
fn reuseport_with_tcp_migrate_req_passes_on_the_io_uring_engine() {
    if !engines().contains(&"io_uring") {
        return;
    }
    passes(|| run_on_io_uring("scenarios/reuseport-migrate.toml"));
}

#[test]
fn reuseport_without_tcp_migrate_req_is_caught_as_resets_of_the_old_queue() {
    caught(|| run_scenario(&at("scenarios/negative/reuseport-no-migrate.toml")));
}

#[test]
fn reuseport_without_tcp_migrate_req_is_caught_on_the_io_uring_engine() {
    if !engines().contains(&"io_uring") {
        return;
    }
    caught(|| run_on_io_uring("scenarios/negative/reuseport-no-migrate.toml"));
}

fn passes(run: impl FnOnce() -> RunResult) {
    if !ready() {
        return;
    }
    let root_before = std::fs::read_to_string(MIGRATE_REQ).unwrap();
    let r = run();
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    assert_ran_on_a_test_host_with(&r, "1");
    assert_eq!(std::fs::read_to_string(MIGRATE_REQ).unwrap(), root_before);
}

fn caught(run: impl FnOnce() -> RunResult) {
    if !ready() {
        return;
    }
    let root_before = std::fs::read_to_string(MIGRATE_REQ).unwrap();
    let r = run();
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    // ~40 connections queued on the old listener over its 200 ms (measured 34-43):
    // a handful at least, and only resets (a reset in the handshake is connect_other).
    let resets = r.class("reset_fresh") + r.class("connect_other");
    assert!(r.class("reset_fresh") >= 10, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], resets, "{}", r.dump());
    assert_ran_on_a_test_host_with(&r, "0");
    assert_eq!(std::fs::read_to_string(MIGRATE_REQ).unwrap(), root_before);
}
