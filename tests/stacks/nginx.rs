//! nginx in front: healthchecks.io's reload onto a new upstream, and the ways of
//! swapping an app behind nginx that turn into 502s.

use crate::util::{at, require_stack, run_scenario, RunResult};

/// Asserts a negative control failed only because requests failed, with at least
/// `min` 502s and nothing but 502s.
fn assert_failed_with_502s(r: &RunResult, min: u64) {
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let n502 = r.outcome("http_502");
    assert!(
        n502 >= min,
        "expected >= {min} x 502, got {n502}\n{}",
        r.dump()
    );
    assert_eq!(r.class("http_5xx"), n502, "{}", r.dump());
    assert_eq!(r.other_failures(&["http_5xx"]), vec![], "{}", r.dump());
}

#[test]
fn nginx_reload_passes() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/nginx-reload.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let steps: Vec<&str> = r.report["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        steps,
        [
            "new app ready",
            "nginx reloaded",
            "old nginx workers exited",
            "old app stopped"
        ],
        "{}",
        r.dump()
    );
}

#[test]
fn nginx_reload_keepalive_only_resets_idle_connections() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/nginx-reload-keepalive.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    // The old workers close each idle client connection once; the load sees each
    // close before reusing the connection and reopens it, as pooled clients do.
    let stale = r.report["stats"]["stale_closes"].as_u64().unwrap_or(0);
    assert!(
        (1..=32).contains(&stale),
        "{stale} stale closes\n{}",
        r.dump()
    );
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn nginx_reload_with_a_naive_keepalive_client_fails_with_reset_reused() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at(
        "scenarios/negative/nginx-reload-keepalive-naive-client.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.other_failures(&["reset_reused"]), vec![], "{}", r.dump());
    assert!(r.class("reset_reused") >= 5, "{}", r.dump());
    assert_eq!(r.report["stats"]["stale_closes"], 0, "{}", r.dump());
}

#[test]
fn nginx_reload_stopping_old_app_at_once_fails_with_502() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/nginx-reload-stop-at-once.toml"));
    assert_failed_with_502s(&r, 5);
}

#[test]
fn naive_restart_behind_nginx_fails_with_502() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/naive-nginx.toml"));
    assert_failed_with_502s(&r, 40);
}

#[test]
fn unlink_then_link_behind_nginx_fails_with_502() {
    if !require_stack(&["nginx", "flup"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/unlink-then-link-fastcgi.toml"));
    assert_failed_with_502s(&r, 5);
}

/// The failures of kind `name` in each phase (before, during, after).
fn kind_failed_by_phase(r: &RunResult, name: &str) -> Vec<(String, u64)> {
    let kind = r.report["stats"]["kinds"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["name"] == name))
        .unwrap_or_else(|| panic!("no kind {name:?}: {}", r.dump()));
    kind["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            let failed = p["failed"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
            (p["name"].as_str().unwrap_or("").to_string(), failed)
        })
        .collect()
}

#[test]
fn idle_timeout_race_fails_posts_with_502_in_every_phase() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/idle-timeout-race.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    // Nothing but 502s, and only on the POSTs: nginx retried every GET that met a
    // closing upstream connection on a new one.
    let n502 = r.outcome("http_502");
    assert!(n502 >= 5, "{n502} x 502\n{}", r.dump());
    assert_eq!(r.other_failures(&["http_5xx"]), vec![], "{}", r.dump());
    assert_eq!(r.class("http_5xx"), n502, "{}", r.dump());
    let get = kind_failed_by_phase(&r, "get");
    assert!(
        get.iter().all(|(_, n)| *n == 0),
        "get {get:?}\n{}",
        r.dump()
    );
    // Steady state, not the reload: the POSTs fail before the no-op deploy, during
    // it and after it alike.
    let post = kind_failed_by_phase(&r, "post");
    assert_eq!(
        post.iter().map(|(_, n)| n).sum::<u64>(),
        n502,
        "{}",
        r.dump()
    );
    assert_eq!(post.len(), 3, "{post:?}");
    assert!(
        post.iter().all(|(_, n)| *n > 0),
        "post {post:?}\n{}",
        r.dump()
    );
}

#[test]
fn idle_timeout_shorter_at_nginx_than_at_the_app_passes() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/idle-timeout-fixed.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    let post = kind_failed_by_phase(&r, "post");
    assert!(
        post.iter().all(|(_, n)| *n == 0),
        "post {post:?}\n{}",
        r.dump()
    );
}
