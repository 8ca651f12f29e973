//! `run --baseline`: a baseline that cannot be compared (unreadable, another schema,
//! another scenario or the same one under other settings) and a bad tolerance exit 2
//! before any run, naming the file (and the line and key).

use crate::util::{bin, dump};

/// A stored report of one judged run of `name` with `hash`, under `schema`.
fn stored(schema: &str, name: &str, hash: &str) -> String {
    serde_json::json!({
        "schema": schema,
        "version": "0.1.0",
        "runs": [{
            "name": name, "scenario_hash": hash, "result": "PASS",
            "stats": {"failed": 0, "max_gap_ms": 5.0, "phases": [
                {"name": "before", "start_ms": 0.0, "end_ms": 1000.0, "ok": 400, "failure_rate": 0.0, "latency": {"p99": 21.0}},
                {"name": "during", "start_ms": 1000.0, "end_ms": 2500.0, "ok": 600, "failure_rate": 0.0, "latency": {"p99": 22.0}}
            ]}
        }]
    })
    .to_string()
}

/// `zdt-check run scenarios/symlink.toml --baseline <file holding text>`: exit code and stderr.
fn run_against(text: Option<&str>, scenario: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("base.json");
    if let Some(t) = text {
        std::fs::write(&path, t).unwrap();
    }
    let out = bin()
        .args(["run", scenario, "--no-progress", "--baseline"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "nothing runs against a bad baseline: {}",
        dump(&out)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn baseline_of_another_scenario_or_other_settings_is_refused() {
    let (code, err, file) = run_against(
        Some(&stored(
            "zdt-check/report/v2",
            "some other scenario",
            "0123456789abcdef",
        )),
        "scenarios/symlink.toml",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("baseline {file}: no run of scenario \"symlink swap (builtin)\" (it holds \"some other scenario\")")),
        "{err}"
    );
    // The same name, run under another [load]: its hash differs.
    let (code, err, file) = run_against(
        Some(&stored(
            "zdt-check/report/v2",
            "symlink swap (builtin)",
            "0123456789abcdef",
        )),
        "scenarios/symlink.toml",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("baseline {file}: scenario \"symlink swap (builtin)\" was run with other settings (scenario_hash 0123456789abcdef, this run ")),
        "{err}"
    );
}

#[test]
fn baseline_of_another_schema_or_unreadable_is_refused() {
    let (code, err, file) = run_against(
        Some(&stored(
            "zdt-check/report/v1",
            "symlink swap (builtin)",
            "0123456789abcdef",
        )),
        "scenarios/symlink.toml",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "baseline {file}: schema \"zdt-check/report/v1\", expected \"zdt-check/report/v2\""
        )),
        "{err}"
    );
    let (code, err, file) = run_against(None, "scenarios/symlink.toml");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("baseline {file}: cannot read: ")),
        "{err}"
    );
    let (code, err, file) = run_against(Some("{\"schema\": "), "scenarios/symlink.toml");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("baseline {file}: not a JSON report: ")),
        "{err}"
    );
}

#[test]
fn bad_tolerance_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tol.toml");
    std::fs::write(
        &path,
        "[reload]\nstrategy = \"symlink-swap\"\n\n[assert.baseline]\nreload_time = \"25% / 1s\"\np99_during = \"50%\"\n",
    )
    .unwrap();
    let out = bin().args(["check"]).arg(&path).output().unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(
        err.contains("tol.toml:6:")
            && err.contains("`assert.baseline.p99_during`")
            && err.contains(
                "invalid tolerance \"50%\": expected a relative part and an absolute floor"
            ),
        "{err}"
    );
}
