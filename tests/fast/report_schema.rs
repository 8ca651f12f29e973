//! The JSON report's schema on static documents: a report that drifted from
//! schema/report.schema.json is rejected, a minimal error report accepted.

use serde_json::json;

#[test]
#[should_panic(expected = "does not match schema")]
fn schema_rejects_a_report_that_drifted() {
    // A run with an unknown outcome class and a missing field.
    let doc = json!({
        "schema": "zdt-check/report/v2",
        "version": "0.1.0",
        "runs": [{
            "scenario": "x.toml", "name": "x", "strategy": "symlink-swap", "scenario_hash": "0123456789abcdef", "load": null,
            "steps": [], "stats": null, "verdict": {"passed": true, "checks": [
                {"name": "no_failed_requests", "passed": true, "detail": "", "extra": 1}
            ]},
            "error": null, "interrupted": false, "run_dir": null
        }]
    });
    crate::util::assert_matches_schema(&doc);
}

#[test]
fn schema_accepts_a_minimal_error_report() {
    let doc = json!({
        "schema": "zdt-check/report/v2",
        "version": "0.1.0",
        "runs": [{
            "scenario": "x.toml", "name": "x", "strategy": "symlink-swap", "scenario_hash": "0123456789abcdef", "load": null,
            "steps": [], "stats": null, "verdict": null,
            "error": "starting v1: nginx not found", "interrupted": false, "interrupted_by": null,
            "run_dir": null, "result": "ERROR", "exit_code": 2, "duration_s": 0.1
        }]
    });
    crate::util::assert_matches_schema(&doc);
}

#[test]
fn schema_accepts_an_interrupted_report_and_names_its_result() {
    let run = json!({
        "scenario": "x.toml", "name": "x", "strategy": "symlink-swap", "scenario_hash": "0123456789abcdef", "load": null,
        "steps": [], "stats": null, "verdict": null,
        "error": null, "interrupted": true, "interrupted_by": "SIGTERM",
        "run_dir": null, "result": "INTERRUPTED", "exit_code": 2, "duration_s": 0.1
    });
    let doc = |run: &serde_json::Value| json!({ "schema": "zdt-check/report/v2", "version": "0.1.0", "runs": [run] });
    crate::util::assert_matches_schema(&doc(&run));
    // The result is one of four words, and it is required.
    for bad in [json!("CANCELLED"), serde_json::Value::Null] {
        let mut r = run.clone();
        match &bad {
            serde_json::Value::Null => {
                r.as_object_mut().unwrap().remove("result");
            }
            _ => r["result"] = bad.clone(),
        }
        let caught = std::panic::catch_unwind(|| crate::util::assert_matches_schema(&doc(&r)));
        assert!(caught.is_err(), "accepted result {bad}");
    }
}

/// Every report gives the failure rate and its one-sided 95% upper bound, for the
/// run and each phase: 30 refused of 3000 (700 of them in the reload's windows).
#[test]
fn report_gives_the_failure_rate_and_its_upper_bound() {
    let runs = [
        crate::report_html::fixture("failing", false),
        crate::report_html::fixture("passing", true),
    ];
    let doc: serde_json::Value =
        serde_json::from_str(&zdt_check::report::json::render(&runs)).unwrap();
    crate::util::assert_matches_schema(&doc);
    let close = |v: &serde_json::Value, want: f64| {
        let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
        assert!((got - want).abs() < 1e-9, "{got} != {want}");
    };
    let failing = &doc["runs"][0]["stats"];
    close(&failing["failure_rate"], 0.01);
    // 30 of 3000: 0.013539307620630348 (the reference in harness/stats/failure_bound.rs).
    close(&failing["failure_rate_upper95"], 0.013_539_307_620_630_348);
    let during = &failing["phases"][1];
    assert_eq!(during["name"], "during");
    close(&during["failure_rate"], 30.0 / 700.0);
    let upper = during["failure_rate_upper95"].as_f64().unwrap();
    assert!(upper > 30.0 / 700.0 && upper < 0.06, "{upper}");
    close(&failing["phases"][0]["failure_rate"], 0.0);
    // 0 of 3000: 1 - 0.05^(1/3000), the most a clean run of that size could have missed.
    let passing = &doc["runs"][1]["stats"];
    close(&passing["failure_rate"], 0.0);
    close(
        &passing["failure_rate_upper95"],
        1.0 - 0.05_f64.powf(1.0 / 3000.0),
    );
    // And the terminal says so, per phase.
    let text = zdt_check::report::terminal::render(&runs[1]);
    assert!(
        text.contains("failure rate whole run: 0 of 3000 (≤ 0.10% at 95%)"),
        "{text}"
    );
    let text = zdt_check::report::terminal::render(&runs[0]);
    assert!(
        text.contains("during") && text.contains("30 of 700 = 4.3% (≤ "),
        "{text}"
    );
}
