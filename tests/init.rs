//! `zdt-check init` end to end: the scenario it writes runs by its bare file name.
//! (Its other tests need no run: fast::init.)

use crate::fast::init::init;
use crate::util::{bin, dump};

/// The flow `init` prints: write the file, then `zdt-check run zdt-scenario.toml` from
/// its directory (a bare file name), here with the own-stack example scripts (the
/// built-in fixture: nothing to install).
#[test]
fn the_written_scenario_runs_by_its_bare_file_name() {
    let _guard = crate::util::serial();
    let dir = tempfile::tempdir().unwrap();
    let ex = crate::util::repo().join("examples/own-stack");
    let out = init(
        dir.path(),
        &[
            "--target",
            "unix:${ZDT_RUN_DIR}/app.sock",
            "--start",
            &ex.join("start.sh").display().to_string(),
            "--deploy",
            &ex.join("deploy.sh").display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let out = bin()
        .current_dir(dir.path())
        .args(["run", "--no-progress", "zdt-scenario.toml"])
        .output()
        .unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    // The flow is under test, not the machine: every request and version check must
    // hold; the latency budgets of the template may miss on a loaded CI box.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", dump(&out));
    for check in [
        "accounting",
        "reload_completed",
        "no_failed_requests",
        "new_version_took_over",
    ] {
        assert!(
            stdout.contains(&format!("[ok  ] {check}")),
            "{check}: {}",
            dump(&out)
        );
    }
}
