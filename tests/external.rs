//! The user's own stack (`[app] kind = "external"`): started by the user's start
//! command (or already running), deployed by the user's deploy command, judged
//! with known, discovered, or unreadable versions.

use crate::util::{assert_no_leftovers, at, bin, dump, run_scenario, run_scenario_text, serial};

#[test]
fn own_start_and_deploy_scripts_pass_through_two_deploys() {
    let r = run_scenario(&at("scenarios/own-stack.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    let steps: Vec<&str> = r.report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["detail"].as_str().unwrap())
        .collect();
    assert!(
        steps[0].starts_with("#1 (to v2)") && steps[1].starts_with("#2 (to v3)"),
        "{steps:?}"
    );
    let names: Vec<&str> = r.report["stats"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v1", "v2", "v3"], "{}", r.dump());
}

#[test]
fn discovered_versions_pass_when_each_deploy_brings_a_new_one() {
    let r = run_scenario(&at("scenarios/own-stack-discover.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.report["stats"]["versions"].as_array().unwrap().len(),
        3,
        "{}",
        r.dump()
    );
}

#[test]
fn a_deploy_returning_at_the_switch_is_judged_by_send_time() {
    let r = run_scenario(&at("scenarios/own-stack-return-at-once.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn own_deploy_switching_before_ready_is_caught() {
    let r = run_scenario(&at("scenarios/negative/own-stack-switch-before-ready.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"));
    assert!(r.class("connect_missing") > 100, "{}", r.dump());
}

/// A scenario on the own-stack example with `extra` appended to [app] and `reload` as [reload].
fn own_stack(app_extra: &str, reload: &str) -> String {
    format!(
        "[app]\nkind = \"external\"\nstart = [{start:?}]\ntarget = \"unix:${{ZDT_RUN_DIR}}/app.sock\"\n{app_extra}\n[load]\nrate = 200\nwarmup = \"500ms\"\ncooldown = \"500ms\"\n[reload]\nstrategy = \"command\"\n{reload}\n",
        start = at("examples/own-stack/start.sh"),
    )
}

#[test]
fn a_deploy_that_changes_nothing_fails_took_over_with_discovered_versions() {
    let r = run_scenario_text(
        "noop",
        &own_stack(
            "env = { IMPORT_DELAY = \"100ms\" }",
            "command = [\"sh\", \"-c\", \"echo nothing to do\"]\ndeploys = 2",
        ),
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.check("no_failed_requests"), "{}", r.dump());
    assert!(!r.check("new_version_took_over"));
    assert!(
        r.stdout.contains("deploy 1: no new version took over"),
        "{}",
        r.dump()
    );
}

#[test]
fn without_a_version_source_took_over_is_not_checked_never_passed() {
    let text = own_stack(
        "env = { IMPORT_DELAY = \"100ms\" }",
        &format!("command = [{:?}]", at("examples/own-stack/deploy.sh")),
    )
    .replace("[load]\n", "[load]\nversion_header = \"\"\n");
    let r = run_scenario_text("unversioned", &text);
    assert_eq!(r.code, 0, "{}", r.dump());
    let c = r.report["verdict"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "new_version_took_over")
        .unwrap()
        .clone();
    assert_eq!(c["passed"], false, "{c}");
    assert_eq!(c["not_checked"], true, "{c}");
    assert!(
        r.stdout.contains("[n/a ] new_version_took_over"),
        "{}",
        r.dump()
    );
}

#[test]
fn the_deploy_command_gets_the_iteration_and_versions() {
    let r = run_scenario_text(
        "env",
        &own_stack(
            "versions = [\"v1\", \"v2\", \"v3\"]\nenv = { IMPORT_DELAY = \"100ms\", MY_VAR = \"hello\" }",
            &format!(
                "command = [\"sh\", \"-c\", \"echo it=$ZDT_ITERATION/$ZDT_DEPLOYS $ZDT_OLD_VERSION-$ZDT_NEW_VERSION $MY_VAR; exec {}\"]",
                at("examples/own-stack/deploy.sh")
            ),
        ),
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let outputs: Vec<&str> = r.report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["output"].as_str())
        .collect();
    assert!(outputs[0].contains("it=1/2 v1-v2 hello"), "{outputs:?}");
    assert!(outputs[1].contains("it=2/2 v2-v3 hello"), "{outputs:?}");
}

#[test]
fn an_already_running_stack_is_used_as_it_is() {
    // The test brings up the "stack" itself; the scenario has no start command.
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let mut app = std::process::Command::new(env!("CARGO_BIN_EXE_zdt-check"))
        .args(["fixture", "--listen"])
        .arg(format!("unix:{}", sock.display()))
        .args(["--version", "v1", "--startup-delay", "0s"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scenario = dir.path().join("running.toml");
    std::fs::write(
        &scenario,
        format!(
            "[app]\nkind = \"external\"\ntarget = \"unix:{}\"\nready_timeout = \"5s\"\n[load]\nrate = 100\nwarmup = \"300ms\"\ncooldown = \"300ms\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n",
            sock.display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["run", "--no-progress"])
        .arg(&scenario)
        .output()
        .unwrap();
    assert_no_leftovers(&out, &[app.id()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A deploy that does nothing: no request failed, but no new version took over.
    assert_eq!(out.status.code(), Some(1), "{}", dump(&out));
    assert!(
        stdout.contains("[ok  ] no_failed_requests"),
        "{}",
        dump(&out)
    );
    assert!(
        stdout.contains("deploy 1: no new version took over (v1 kept serving)"),
        "{}",
        dump(&out)
    );
    // zdt-check did not start it, so it does not stop it.
    assert!(
        app.try_wait().unwrap().is_none(),
        "the user's stack was stopped"
    );
    app.kill().unwrap();
    app.wait().unwrap();
}

#[test]
fn a_tcp_stack_gets_a_free_port_for_the_run() {
    // No fixed port: `${ZDT_PORT}` in the target and `$ZDT_PORT` in the commands are
    // the same free loopback port, picked for this run.
    let r = run_scenario_text(
        "zdt-port",
        "[app]\nkind = \"external\"\nstart = [\"sh\", \"-c\", \"exec \\\"$ZDT_BIN\\\" fixture --listen tcp:127.0.0.1:$ZDT_PORT\"]\ntarget = \"http://127.0.0.1:${ZDT_PORT}/\"\n[load]\nrate = 100\nwarmup = \"300ms\"\ncooldown = \"300ms\"\nversion_header = \"\"\n[reload]\nstrategy = \"command\"\ncommand = [\"sh\", \"-c\", \"echo port=$ZDT_PORT target=$ZDT_TARGET others=$ZDT_PORT_2,$ZDT_PORT_4\"]\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.class("ok") > 50, "{}", r.dump());
    let out = r.report["steps"][0]["output"].as_str().unwrap_or_default();
    let port = out
        .split("port=")
        .nth(1)
        .and_then(|p| p.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {out:?}"));
    assert!(
        out.contains(&format!("target=http://127.0.0.1:{port}/")),
        "{out}"
    );
    let others: Vec<u16> = out
        .split("others=")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .split(',')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        others.len() == 2 && !others.contains(&port),
        "distinct extra ports: {out}"
    );
}

#[test]
fn the_stop_command_runs_while_the_deployed_instance_still_runs() {
    // The deploy starts v2 in its own process group; the stop command, which might
    // drain or deregister it, must find it alive: groups are killed after it.
    let dir = tempfile::tempdir().unwrap();
    let said = dir.path().join("said");
    let stop = format!(
        r#"p=$(cat "$ZDT_RUN_DIR/slot-$(cat "$ZDT_RUN_DIR/active-slot").pid"); if kill -0 "$p"; then echo running; else echo gone; fi > {}"#,
        said.display()
    );
    let r = run_scenario_text(
        "stop-order",
        &own_stack(
            &format!(
                "versions = [\"v1\", \"v2\"]\nenv = {{ IMPORT_DELAY = \"100ms\" }}\nstop = [\"sh\", \"-c\", {stop:?}]"
            ),
            &format!("command = [{:?}]", at("examples/own-stack/deploy.sh")),
        ),
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let text = std::fs::read_to_string(&said).unwrap_or_default();
    assert_eq!(text.trim(), "running", "{}", r.dump());
}
