//! Zero false verdicts, short version for CI: every built-in scenario gives the
//! same verdict three times in a row (benches/repeat.sh runs them all N=20 times).

use crate::util::{at, bin, dump, serial};

#[test]
fn builtin_scenarios_give_the_same_verdict_every_time() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("c.json");
    let cases = [
        ("scenarios/symlink.toml", 3),
        ("scenarios/negative/naive.toml", 0),
        ("scenarios/negative/swap-before-ready.toml", 0),
        ("scenarios/negative/unlink-then-link.toml", 0),
        ("scenarios/negative/stop-without-drain.toml", 0),
    ];
    let mut cmd = bin();
    cmd.args(["compare", "--repeat", "3", "--json"]).arg(&json);
    for (f, _) in cases {
        cmd.arg(at(f));
    }
    let out = cmd.output().unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for (row, (file, passes)) in doc["rows"].as_array().unwrap().iter().zip(cases) {
        assert_eq!(
            row["passes"],
            passes,
            "{file} passed {}/3, expected {passes}/3:\n{}",
            row["passes"],
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(row["errors"], 0, "{file}: {}", dump(&out));
    }
}

/// `--until-bound` stops a scenario's runs once the pooled bound during the reload is
/// below the target (symlink: 0 of about 640 per run, ≤ 0.47% after one), and runs a
/// scenario that drops requests (naive restart) the full `--repeat`.
#[test]
fn compare_until_bound_stops_when_the_bound_is_reached_and_not_before() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("c.json");
    let out = bin()
        .args(["compare", "--repeat", "3", "--until-bound", "2%", "--json"])
        .arg(&json)
        .arg(at("scenarios/symlink.toml"))
        .arg(at("scenarios/negative/naive.toml"))
        .output()
        .unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(rows[0]["runs"], 1, "{}", dump(&out));
    assert_eq!(rows[0]["during_failed"], 0);
    assert!(rows[0]["during_failure_rate_upper95"].as_f64().unwrap() < 0.02);
    assert!(
        err.contains("below --until-bound 2.0%, no more runs"),
        "{err}"
    );
    assert_eq!(rows[1]["runs"], 3, "{}", dump(&out));
    assert!(rows[1]["during_failed"].as_u64().unwrap() > 0);
    assert!(
        err.contains("--until-bound 2.0% not reached in 3 runs"),
        "{err}"
    );
}
