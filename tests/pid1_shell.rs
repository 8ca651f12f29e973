//! The container PID 1 hazard (examples/pid1-shell): a "container" whose entrypoint
//! is PID 1 of its own PID namespace, stopped as a runtime stops one (SIGTERM to
//! PID 1, SIGKILL after a grace period). With `exec` gunicorn is PID 1 and drains;
//! with a shell that does not exec, the SIGTERM is lost and the SIGKILL cuts the
//! requests in flight on the kept-alive connections.

use crate::util::{at, require_stack, run_scenario};

#[test]
fn exec_entrypoint_gets_sigterm_and_drains() {
    if !require_stack(&["gunicorn", "unshare"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/pid1-exec.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let out = r.deploy_outputs().concat();
    assert!(out.contains("exited on SIGTERM"), "{out}\n{}", r.dump());
    assert!(!out.contains("SIGKILL"), "{out}\n{}", r.dump());
}

#[test]
fn shell_entrypoint_loses_sigterm_and_sigkill_cuts_requests() {
    if !require_stack(&["gunicorn", "unshare"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/pid1-shell-no-exec.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    // Its own reason: the grace period ran out and the SIGKILL cut requests already
    // sent on kept-alive connections; nothing else failed.
    let out = r.deploy_outputs().concat();
    assert!(
        out.contains("still running 3s after SIGTERM: SIGKILL"),
        "{out}\n{}",
        r.dump()
    );
    let failed = r.report["stats"]["failed"].as_u64().unwrap();
    assert!(failed > 0, "{}", r.dump());
    assert_eq!(r.class("reset_reused"), failed, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}
