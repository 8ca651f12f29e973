//! The GitHub Action (action.yml) run locally: its steps' scripts
//! (.github/action/) with the variables GitHub sets, no network. A passing
//! scenario gives exit-code 0 and a PASS summary; a negative control gives 1, FAIL
//! and its failed check in the summary; the reports land where the upload step
//! takes them from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{at, dump, repo, serial};

/// The directory of the zdt-check binary under test, first on PATH.
fn path_with_bin() -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_zdt-check"));
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs an action script as GitHub would: `env` are its step's inputs.
fn step(script: &str, work: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("bash");
    c.arg(repo().join(".github/action").join(script))
        .current_dir(work)
        .stdin(Stdio::null())
        .env("PATH", path_with_bin())
        .env("GITHUB_ACTION_PATH", repo())
        .env("GITHUB_OUTPUT", work.join("output"))
        .env("GITHUB_STEP_SUMMARY", work.join("summary"))
        .env("GITHUB_PATH", work.join("path"))
        .env("RUNNER_TEMP", work);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn action_yml_runs_the_scripts_and_uploads_the_reports_dir() {
    let yml = read(repo().join("action.yml"));
    for want in [
        "using: composite",
        "bash \"$GITHUB_ACTION_PATH/.github/action/install.sh\"",
        "bash \"$GITHUB_ACTION_PATH/.github/action/run.sh\"",
        "uses: actions/upload-artifact@v4",
        "path: ${{ inputs.reports-dir }}",
        "EXIT_CODE: ${{ steps.run.outputs.exit-code }}",
    ] {
        assert!(yml.contains(want), "action.yml lacks {want:?}");
    }
}

#[test]
fn a_passing_scenario_passes_with_its_summary_and_reports() {
    let _guard = serial();
    let work = tempfile::tempdir().unwrap();
    let out = step(
        "run.sh",
        work.path(),
        &[("INPUT_SCENARIOS", &at("scenarios/symlink.toml"))],
    );
    assert!(out.status.success(), "{}", dump(&out));
    let outputs = read(work.path().join("output"));
    assert!(
        outputs.contains("exit-code=0\n") && outputs.contains("result=PASS\n"),
        "{outputs}\n{}",
        dump(&out)
    );
    let summary = read(work.path().join("summary"));
    assert!(summary.starts_with("## zdt-check: 1 PASS\n"), "{summary}");
    assert!(summary.contains("No check failed"), "{summary}");
    for f in ["junit.xml", "report.html", "report.json", "summary.md"] {
        let p = work.path().join("zdt-reports").join(f);
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 0),
            "{f}: {}",
            dump(&out)
        );
    }
}

#[test]
fn a_negative_control_sets_exit_code_1_and_lists_its_failed_check() {
    let _guard = serial();
    let work = tempfile::tempdir().unwrap();
    let out = step(
        "run.sh",
        work.path(),
        &[
            ("INPUT_SCENARIOS", &at("scenarios/negative/naive.toml")),
            ("INPUT_REPORTS_DIR", "out"),
        ],
    );
    // The step itself succeeds so that the upload runs; the gate step fails.
    assert!(out.status.success(), "{}", dump(&out));
    let outputs = read(work.path().join("output"));
    assert!(
        outputs.contains("exit-code=1\n") && outputs.contains("result=FAIL\n"),
        "{outputs}"
    );
    let summary = read(work.path().join("summary"));
    assert!(summary.contains("### ❌ FAIL"), "{summary}");
    assert!(
        summary.contains("- `no_failed_requests`: ") && summary.contains("connect_refused"),
        "{summary}"
    );
    assert!(work.path().join("out/junit.xml").exists());
}

#[test]
fn bad_input_is_an_error_in_the_summary() {
    let _guard = serial();
    let work = tempfile::tempdir().unwrap();
    let out = step(
        "run.sh",
        work.path(),
        &[("INPUT_SCENARIOS", "no/such/scenario.toml")],
    );
    assert!(out.status.success(), "{}", dump(&out));
    assert!(read(work.path().join("output")).contains("exit-code=2\nresult=ERROR\n"));
    let summary = read(work.path().join("summary"));
    assert!(summary.contains("## zdt-check: ERROR"), "{summary}");
    let empty = step("run.sh", work.path(), &[("INPUT_SCENARIOS", " \n ")]);
    assert!(String::from_utf8_lossy(&empty.stdout).contains("input scenarios is empty"));

    let install = step("install.sh", work.path(), &[("INPUT_INSTALL", "brew")]);
    assert_eq!(install.status.code(), Some(2), "{}", dump(&install));
    assert!(String::from_utf8_lossy(&install.stdout).contains("must be source, pip or none"));
    let none = step("install.sh", work.path(), &[("INPUT_INSTALL", "none")]);
    assert!(none.status.success(), "{}", dump(&none));
}
