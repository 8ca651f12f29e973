//! uWSGI: chain reload of one master's workers, and the emperor + fastrouter setup
//! of uwsgi_reload.py (vassals taken out of rotation one at a time).

use crate::util::{at, require_stack, run_scenario, run_scenario_text};

fn assert_passes(r: &crate::util::RunResult) {
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn chain_reload_passes() {
    if !require_stack(&["uwsgi"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/uwsgi-chain.toml"));
    assert_passes(&r);
    let steps = r.report["steps"].as_array().expect("steps");
    let workers = steps
        .iter()
        .filter(|s| s["name"] == "worker replaced")
        .count();
    assert_eq!(workers, 2, "one step per worker: {}", r.dump());
}

#[test]
fn chain_reload_by_touch_behind_nginx_passes() {
    if !require_stack(&["nginx", "uwsgi"]) {
        return;
    }
    let text = std::fs::read_to_string(at("scenarios/uwsgi-chain.toml"))
        .unwrap()
        .replace("trigger = \"fifo\"", "trigger = \"touch\"")
        .replace("[load]", "[front]\nkind = \"nginx\"\n\n[load]");
    assert!(text.contains("trigger = \"touch\""));
    let r = run_scenario_text("uwsgi-chain-touch-nginx", &text);
    assert_passes(&r);
}

#[test]
fn chain_reload_with_one_worker_leaves_a_gap() {
    if !require_stack(&["uwsgi"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/uwsgi-chain-one-worker.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("max_gap"), "{}", r.dump());
    // The only worker is reaped (~1 s) and re-imports the app (1 s): seen 2.0-2.3 s, budget 1 s.
    let gap = r.report["stats"]["max_gap_ms"].as_f64().unwrap_or(0.0);
    assert!(gap >= 1500.0, "gap {gap} ms: {}", r.dump());
    assert_eq!(
        r.report["stats"]["failed"],
        0,
        "late, not failed: {}",
        r.dump()
    );
    assert!(r.check("reload_completed"), "{}", r.dump());
}

#[test]
fn chain_reload_without_lazy_apps_keeps_the_old_code() {
    if !require_stack(&["uwsgi"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/uwsgi-chain-no-lazy-apps.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("new_version_took_over"), "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
}

#[test]
fn fastrouter_reload_passes() {
    if !require_stack(&["nginx", "uwsgi"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/uwsgi-fastrouter.toml"));
    assert_passes(&r);
    let steps = r.report["steps"].as_array().expect("steps");
    let reloaded = steps
        .iter()
        .filter(|s| s["name"] == "vassal reloaded")
        .count();
    assert_eq!(reloaded, 3, "one step per vassal: {}", r.dump());
}

#[test]
fn fastrouter_reloading_every_vassal_at_once_fails_with_502s() {
    if !require_stack(&["nginx", "uwsgi"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/uwsgi-fastrouter-all-at-once.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(!r.check("max_gap"), "{}", r.dump());
    // The reload itself went through and v2 took over: the failures are the 502s
    // nginx answered while the fastrouter had no subscribed node, nothing else.
    assert!(r.check("reload_completed"), "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let failed = r.report["stats"]["failed"].as_u64().unwrap_or(0);
    assert!(
        failed >= 50,
        "about 1 s of 100 req/s at least: {}",
        r.dump()
    );
    assert_eq!(r.outcome("http_502"), failed, "{}", r.dump());
}
