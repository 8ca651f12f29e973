//! Reports: the JSON report's schema (real output matches it, checked on every
//! scenario run in util::run_scenario; that a report which drifts from it is
//! rejected is in fast::report_schema); JUnit XML against schema/junit.xsd; and
//! `run --html --junit --markdown --hdr-dir` end to end on a short scenario.

/// Runs xmllint on `xml` against schema/junit.xsd: (valid, xmllint's messages).
fn xmllint_junit(xml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(crate::util::repo().join("schema/junit.xsd"))
        .arg(&file)
        .output()
        .expect("running xmllint");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails unless `xml` is valid against schema/junit.xsd (xmllint's messages in the panic).
pub fn assert_valid_junit(xml: &str) {
    let (valid, messages) = xmllint_junit(xml);
    assert!(
        valid,
        "JUnit XML does not match schema/junit.xsd:\n{messages}\n{xml}"
    );
}

#[test]
fn report_junit_matches_the_junit_schema() {
    // Held while xmllint runs: the leak check counts every running child of this process.
    let _guard = crate::util::serial();
    if !crate::util::require_stack(&["xmllint"]) {
        return;
    }
    let mut error = crate::report_html::fixture("broken", false);
    error.exit_code = 2;
    error.stats = None;
    error.error =
        Some("starting v1: <nginx> exited\n--- last lines of its log ---\n\u{1b}[31m boom".into());
    let runs = [
        crate::report_html::fixture("ok & <fine>", true),
        crate::report_html::fixture("refused", false),
        error,
    ];
    let xml = zdt_check::report::junit::render(&runs, std::time::SystemTime::now());
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert_eq!(xml.matches("<error ").count(), 1);
    assert_valid_junit(&xml);
    // The schema is not a rubber stamp: a test case without its name is rejected.
    let (valid, _) = xmllint_junit(&xml.replacen(" name=\"refused\"", "", 1));
    assert!(
        !valid,
        "schema/junit.xsd accepted a testcase without a name"
    );
}

#[test]
fn report_flags_write_html_junit_and_hdr_files() {
    let _guard = crate::util::serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("short.toml");
    std::fs::write(
        &scenario,
        r#"name = "reports <&> e2e"
[app]
kind = "builtin"
startup_delay = "200ms"
[load]
rate = 200
path = "/slow?ms=5"
warmup = "300ms"
cooldown = "300ms"
grace = "500ms"
[reload]
strategy = "symlink-swap"
settle = "100ms"
"#,
    )
    .unwrap();
    let (html, junit, json, hdr, md) = (
        dir.path().join("r.html"),
        dir.path().join("junit.xml"),
        dir.path().join("r.json"),
        dir.path().join("hgrm"),
        dir.path().join("summary.md"),
    );
    let out = crate::util::bin()
        .arg("run")
        .arg(&scenario)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .arg("--hdr-dir")
        .arg(&hdr)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::dump(&out));

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    crate::util::assert_matches_schema(&doc);
    let run = &doc["runs"][0];
    assert!(run["duration_s"].as_f64().unwrap() > 1.0);
    assert_sane_footprint(&run["footprint"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\nverifier: ") && stdout.contains("% of one core)"),
        "{stdout}"
    );
    let curve = run["stats"]["phases"][1]["percentile_curve"]
        .as_array()
        .unwrap();
    assert_eq!(curve.len(), 51);

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("reports &lt;&amp;&gt; e2e"));
    assert!(page.contains("data-verdict=\"PASS\""));
    assert!(page.contains("<g class=\"step-marker\""));
    assert!(page.contains("<span class=\"footprint\""));

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testcase classname=\"zdt-check\" name=\"reports &lt;&amp;&gt; e2e\""));
    assert!(!xml.contains("<failure") && !xml.contains("<error"));
    assert!(xml.contains("verifier: "), "{xml}");
    if crate::util::have("xmllint") {
        assert_valid_junit(&xml);
    }

    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(summary.starts_with("## zdt-check: 1 PASS\n"), "{summary}");
    assert!(summary.contains("### ✅ PASS reports <&> e2e"), "{summary}");
    let scheduled = run["stats"]["scheduled"].as_u64().unwrap();
    assert!(
        summary.contains(&format!(
            "Requests: scheduled {scheduled} = ok {scheduled} "
        )),
        "{summary}"
    );
    assert!(summary.contains("| during | "), "{summary}");
    assert!(summary.contains("No check failed"), "{summary}");

    let mut names: Vec<String> = std::fs::read_dir(&hdr)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "reports-e2e.after.hgrm",
            "reports-e2e.before.hgrm",
            "reports-e2e.during.hgrm"
        ]
    );
    let during = std::fs::read_to_string(hdr.join("reports-e2e.during.hgrm")).unwrap();
    assert!(during.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    let count = run["stats"]["phases"][1]["latency"]["count"]
        .as_u64()
        .unwrap();
    assert!(
        during.contains(&format!("Total count    = {count:>12}]")),
        "{during}"
    );
    assert!(during.contains("#[Buckets = "));
}

/// The verifier's footprint of a real run: CPU used, a wall time, and a share of one
/// core between 0 and the number of cores (no timing assertion beyond that).
pub fn assert_sane_footprint(f: &serde_json::Value) {
    let num = |k: &str| {
        f[k].as_f64()
            .unwrap_or_else(|| panic!("footprint.{k} missing: {f}"))
    };
    let (user, sys, wall, share) = (
        num("cpu_user_s"),
        num("cpu_sys_s"),
        num("wall_s"),
        num("share_of_core"),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(user >= 0.0 && sys >= 0.0 && user + sys > 0.0, "{f}");
    assert!(wall > 0.0, "{f}");
    assert!(share > 0.0 && share <= cores, "{f}");
    assert!(((user + sys) / wall - share).abs() < 1e-6, "{f}");
    assert_eq!(f["warning"].is_string(), share > 0.5, "{f}");
}
