//! Harness errors that need nothing installed and end in well under a second: an
//! app or a user's stack that never gets ready, a start command that fails. Each
//! exits 2 with no verdict, says why with the app's own output, and leaves nothing
//! behind. (Those needing gunicorn or nginx are in faults.)

use crate::util::run_unstartable;

#[test]
fn an_app_that_never_gets_ready_is_a_harness_error_with_its_log() {
    let stdout = run_unstartable(
        "slow",
        "[app]\nstartup_delay = \"5s\"\nready_timeout = \"300ms\"\n[reload]\nstrategy = \"symlink-swap\"\n",
    );
    assert!(
        stdout.contains("error: starting v1") && stdout.contains("not ready after 300ms"),
        "{stdout}"
    );
}

#[test]
fn a_start_command_that_fails_is_a_harness_error_with_its_output() {
    let stdout = run_unstartable(
        "start-fails",
        "[app]\nkind = \"external\"\nstart = [\"sh\", \"-c\", \"echo 'port 8000 already in use' >&2; exit 4\"]\ntarget = \"http://127.0.0.1:9/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n",
    );
    assert!(
        stdout.contains("exit status: 4") && stdout.contains("port 8000 already in use"),
        "{stdout}"
    );
}

#[test]
fn a_stack_that_never_gets_ready_is_a_harness_error_and_is_stopped() {
    let stdout = run_unstartable(
        "never-ready",
        "[app]\nkind = \"external\"\nstart = [\"sh\", \"-c\", \"echo booting; sleep 60\"]\ntarget = \"http://127.0.0.1:9/\"\nready_timeout = \"500ms\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n",
    );
    assert!(
        stdout.contains("did not answer GET /_status with 200 within 500ms")
            && stdout.contains("booting"),
        "{stdout}"
    );
}

#[test]
fn a_start_program_not_on_path_says_how_program_paths_are_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("start.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 60\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        "[app]\nkind = \"external\"\nstart = [\"start.sh\"]\ntarget = \"http://127.0.0.1:9/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let _g = crate::util::serial();
    let out = crate::util::bin()
        .args(["run", "--no-progress"])
        .arg(&path)
        .output()
        .unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::util::dump(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("starting start command (start.sh)")
            && stdout.contains(
                "\"start.sh\" is not on PATH: a bare program name is looked up on PATH only"
            )
            && stdout.contains("is taken from the scenario's directory")
            && stdout.contains("start.sh is beside the scenario: write \"./start.sh\""),
        "{stdout}"
    );
}
