//! `run --baseline` on real runs of scenarios/symlink.toml: a rerun of the same
//! scenario passes against it; a baseline with smaller figures, and the same scenario
//! with a slower app start (reload time), fail with the regressed figure named.

use serde_json::Value;

use crate::util::{assert_matches_schema, assert_no_leftovers, bin, dump, serial};

/// Runs `scenario` (with `--baseline base` if given) writing `json`; exit code, stdout, report.
fn run(
    scenario: &std::path::Path,
    base: Option<&std::path::Path>,
    json: &std::path::Path,
) -> (i32, String, Value) {
    let mut c = bin();
    c.args(["run", "--no-progress"])
        .arg(scenario)
        .arg("--json")
        .arg(json);
    if let Some(b) = base {
        c.arg("--baseline").arg(b);
    }
    let out = c.output().unwrap();
    assert_no_leftovers(&out, &[]);
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(json).unwrap_or_else(|_| panic!("no report: {}", dump(&out))),
    )
    .unwrap();
    assert_matches_schema(&doc);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        doc["runs"][0].clone(),
    )
}

fn check<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["verdict"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {r}"))
}

#[test]
fn baseline_passes_a_rerun_and_catches_a_regression() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let symlink = crate::util::repo().join("scenarios/symlink.toml");
    let base = dir.path().join("base.json");
    let (code, out, _) = run(&symlink, None, &base);
    assert_eq!(code, 0, "the baseline run passes: {out}");

    // The same scenario again: within every tolerance.
    let (code, out, r) = run(&symlink, Some(&base), &dir.path().join("rerun.json"));
    assert_eq!(code, 0, "a rerun passes against its baseline: {out}");
    assert_eq!(r["baseline"]["rows"].as_array().unwrap().len(), 6, "{out}");
    assert!(out.contains("against baseline "), "{out}");

    // A baseline whose reload took 200 ms and whose p99 during it was 1 ms.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let during = doc["runs"][0]["stats"]["phases"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == "during")
        .unwrap();
    during["latency"]["p99"] = 1.0.into();
    let start = during["start_ms"].as_f64().unwrap();
    during["end_ms"] = (start + 200.0).into();
    let faster = dir.path().join("faster.json");
    std::fs::write(&faster, doc.to_string()).unwrap();
    let (code, out, r) = run(&symlink, Some(&faster), &dir.path().join("vs-faster.json"));
    assert_eq!(code, 1, "{out}");
    let p99 = check(&r, "baseline_p99_during");
    assert_eq!(p99["passed"], false, "{out}");
    assert!(
        p99["detail"]
            .as_str()
            .unwrap()
            .contains("vs baseline 1.0 ms (+")
            && p99["detail"]
                .as_str()
                .unwrap()
                .contains("tolerance +50% / 10 ms): regressed"),
        "{p99}"
    );
    assert_eq!(check(&r, "baseline_reload_time")["passed"], false, "{out}");
    assert_eq!(check(&r, "baseline_max_gap")["passed"], true, "{out}");
    assert_eq!(check(&r, "no_failed_requests")["passed"], true, "{out}");

    // The same scenario with v2 importing for 2 s instead of 1 s: the reload takes
    // about a second longer, past +25% / 250 ms.
    let slower = dir.path().join("symlink.toml");
    let text = std::fs::read_to_string(&symlink).unwrap();
    assert!(text.contains("startup_delay = \"1s\""));
    std::fs::write(
        &slower,
        text.replace("startup_delay = \"1s\"", "startup_delay = \"2s\""),
    )
    .unwrap();
    let (code, out, r) = run(&slower, Some(&base), &dir.path().join("slower.json"));
    assert_eq!(code, 1, "{out}");
    let reload = check(&r, "baseline_reload_time");
    assert_eq!(reload["passed"], false, "{out}");
    assert!(
        reload["detail"]
            .as_str()
            .unwrap()
            .starts_with("reload time ")
            && reload["detail"]
                .as_str()
                .unwrap()
                .ends_with("tolerance +25% / 250 ms): regressed"),
        "{reload}"
    );
    assert_eq!(check(&r, "no_failed_requests")["passed"], true, "{out}");
    assert!(out.contains("REGRESSED"), "{out}");
}
