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
