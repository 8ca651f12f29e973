//! haproxy as an HTTP/2 front (`[front] kind = "haproxy"`, `http2 = true`): its
//! master-CLI reload under HTTP/2 clients passes, over TLS (ALPN h2), on a plain
//! h2c-only bind (`proto h2`), and with h1 and h2 side by side on one bind (the old
//! worker's soft stop sends GOAWAY on each HTTP/2 connection, streams in flight
//! finish); a naive client that keeps opening streams after the GOAWAY fails on
//! `h2_refused` only, and so do long streams cut by a short `hard-stop-after`.

use crate::util::{at, require_stack, run_scenario, RunResult};

/// A kind's per-kind stats in the run's report.
fn kind<'a>(r: &'a RunResult, name: &str) -> &'a serde_json::Value {
    r.report["stats"]["kinds"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["name"] == name))
        .unwrap_or_else(|| panic!("no kind {name}: {}", r.dump()))
}

/// A passing run: nothing failed, the new version took over, and the old workers'
/// HTTP/2 connections got GOAWAYs, new connections being opened after them.
fn passes_with_goaways(r: &RunResult) {
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let h2 = &r.report["stats"]["h2"];
    let goaways = h2["goaways"].as_u64().unwrap_or(0);
    assert!(goaways > 0, "{}", r.dump());
    assert!(
        h2["connections"].as_u64().unwrap_or(0) > goaways,
        "{}",
        r.dump()
    );
}

#[test]
fn haproxy_reload_under_h2_clients_passes() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-reload-h2.toml"));
    passes_with_goaways(&r);
    assert_eq!(r.report["load"]["protocol"], "h2", "{}", r.dump());
    let target = r.report["load"]["target"].as_str().unwrap_or_default();
    assert!(target.starts_with("https://127.0.0.1:"), "{}", r.dump());
}

#[test]
fn haproxy_reload_under_h2c_clients_passes() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-reload-h2c.toml"));
    passes_with_goaways(&r);
    assert_eq!(r.report["load"]["protocol"], "h2c", "{}", r.dump());
    assert!(r.report["stats"]["tls"].is_null(), "{}", r.dump());
}

#[test]
fn haproxy_reload_with_h1_and_h2_side_by_side_passes() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-reload-h1-h2.toml"));
    passes_with_goaways(&r);
    assert_eq!(r.report["load"]["protocol"], "h1+h2", "{}", r.dump());
    for (name, protocol) in [("h1", "h1"), ("h2", "h2")] {
        let k = kind(&r, name);
        assert_eq!(k["protocol"], protocol, "{}", r.dump());
        assert!(k["ok"].as_u64().unwrap_or(0) > 100, "{}", r.dump());
    }
}

#[test]
fn a_naive_h2_client_fails_with_h2_refused_under_haproxy_reload() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/haproxy-reload-h2-naive-client.toml",
    ));
    r.assert_naive_h2_client_refused();
}

#[test]
fn a_hard_stop_after_shorter_than_the_streams_refuses_them() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/haproxy-reload-h2-hard-stop.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    // haproxy 2.6 resets a stream it has not answered yet with REFUSED_STREAM when the
    // hard stop closes its connection ("retry it"), though the app had the request:
    // the long streams cut end as `h2_refused`, nothing else.
    assert!(
        kind(&r, "long")["failed"].as_u64().unwrap_or(0) > 0,
        "{}",
        r.dump()
    );
    assert!(r.class("h2_refused") > 0, "{}", r.dump());
    assert_eq!(r.other_failures(&["h2_refused"]), vec![], "{}", r.dump());
}
