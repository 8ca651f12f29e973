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
            "scenario": "x.toml", "name": "x", "strategy": "symlink-swap", "load": null,
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
            "scenario": "x.toml", "name": "x", "strategy": "symlink-swap", "load": null,
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
        "scenario": "x.toml", "name": "x", "strategy": "symlink-swap", "load": null,
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
