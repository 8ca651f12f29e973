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
