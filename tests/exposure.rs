//! Exposure: a step that changes who serves must be crossed by requests. A correct
//! reload loaded too lightly fails `min_exposure` (and only warns without it); the
//! same reload under normal load passes it.

use crate::util::{at, run_scenario, run_scenario_text};

/// The serving steps of a report: (name, crossed).
fn serving_steps(r: &crate::util::RunResult) -> Vec<(String, u64)> {
    r.report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["changes_serving"] == true)
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["exposure"]["crossed"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_switch_crossed_by_no_request_fails_min_exposure() {
    let r = run_scenario(&at("scenarios/negative/symlink-low-rate-exposure.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    // It fails for exposure, not for a request.
    assert!(!r.check("min_exposure"), "{}", r.dump());
    assert!(r.check("no_failed_requests"), "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert_eq!(
        serving_steps(&r),
        [("switched".into(), 0), ("old instance stopped".into(), 0)],
        "{}",
        r.dump()
    );
    assert!(
        r.stdout
            .contains("[FAIL] min_exposure           2 of 2 steps that change who serves crossed by fewer than 1 requests: step 3 'switched'"),
        "{}",
        r.dump()
    );
}

#[test]
fn without_min_exposure_an_uncrossed_switch_only_warns() {
    let text = std::fs::read_to_string(at("scenarios/negative/symlink-low-rate-exposure.toml"))
        .unwrap()
        .replace("min_exposure = 1\n", "");
    let r = run_scenario_text("low-rate-no-min", &text);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains(
            "warning: step 3 'switched' changes who serves and was crossed by no request"
        ),
        "{}",
        r.dump()
    );
    assert!(
        r.stdout.contains("[n/a ] min_exposure           warning: a step that changes who serves was crossed by no request"),
        "{}",
        r.dump()
    );
}

#[test]
fn under_normal_load_every_switch_is_crossed() {
    let text = std::fs::read_to_string(at("scenarios/symlink.toml")).unwrap();
    assert!(
        text.trim_end().ends_with("max_gap = \"500ms\""),
        "[assert] is last"
    );
    let r = run_scenario_text("symlink-min-exposure", &format!("{text}min_exposure = 5\n"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.check("min_exposure"), "{}", r.dump());
    // 400 req/s of 20 ms requests: about 8 in flight at any moment.
    let steps = serving_steps(&r);
    assert_eq!(steps.len(), 2, "{}", r.dump());
    assert!(steps.iter().all(|(_, n)| *n >= 5), "{steps:?}");
    let switched = r.report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "switched")
        .unwrap();
    assert!(
        switched["exposure"]["in_flight_at_start"].as_u64().unwrap() >= 2,
        "{switched}"
    );
    assert!(
        switched["exposure"]["connections_across"].as_u64().unwrap() >= 2,
        "{switched}"
    );
}
