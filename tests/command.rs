//! The `command` strategy: a user's deploy script as the reload step.

use crate::util::{at, run_scenario, run_scenario_text};

#[test]
fn correct_deploy_script_passes() {
    let r = run_scenario(&at("scenarios/command.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let step = &r.report["steps"][0];
    assert_eq!(step["name"], "deploy command");
    assert!(
        step["output"].as_str().unwrap().contains("deployed v2"),
        "its output is in the report: {}",
        r.dump()
    );
}

#[test]
fn deploy_script_with_the_classic_mistake_is_caught() {
    let r = run_scenario(&at("scenarios/negative/command-broken.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.class("connect_missing") > 100, "{}", r.dump());
}

#[test]
fn failing_deploy_command_fails_the_step_with_its_output() {
    let r = run_scenario_text(
        "fails",
        r#"
[load]
rate = 100
warmup = "300ms"
cooldown = "300ms"
[reload]
strategy = "command"
command = ["sh", "-c", "echo 'migration 42 failed' >&2; exit 3"]
"#,
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("reload_completed"));
    assert!(
        r.stdout.contains("exit status: 3") && r.stdout.contains("migration 42 failed"),
        "{}",
        r.dump()
    );
}

#[test]
fn hanging_deploy_command_times_out_and_is_killed() {
    let r = run_scenario_text(
        "hangs",
        r#"
[load]
rate = 100
warmup = "300ms"
cooldown = "300ms"
[reload]
strategy = "command"
command = ["sleep", "60"]
step_timeout = "1s"
"#,
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(
        r.stdout.contains("did not finish within 1s"),
        "{}",
        r.dump()
    );
    // run_scenario already checked that the sleep did not survive.
}

#[test]
fn sweep_covers_the_grid_and_shows_where_it_breaks() {
    let _g = crate::util::serial();
    let out = crate::util::bin()
        .args([
            "run",
            "--no-progress",
            &at("scenarios/sweeps/swap-before-ready.toml"),
        ])
        .output()
        .unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let missing = |point: &str| -> u64 {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| swap before ready (startup_delay={point})")))
            .unwrap_or_else(|| panic!("no row for {point}: {stdout}"));
        row.split("connect_missing ").nth(1).map_or(0, |r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
    };
    // Failures grow with the startup time the broken swap ignores.
    assert!(missing("1s") > 200, "{stdout}");
    assert!(missing("1s") > 4 * missing("100ms").max(1), "{stdout}");
}

#[test]
fn bare_scenario_file_name_finds_the_deploy_command() {
    // `cd scenarios && zdt-check run command.toml`: the command's relative path is
    // resolved against the scenario's directory, which a bare name leaves empty.
    let _g = crate::util::serial();
    let out = crate::util::bin()
        .current_dir(crate::util::repo().join("scenarios"))
        .args(["run", "--no-progress", "command.toml"])
        .output()
        .unwrap();
    crate::util::assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::dump(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verdict: PASS"),
        "{}",
        crate::util::dump(&out)
    );
}

#[test]
fn a_daemon_the_deploy_leaves_behind_is_swept_and_named() {
    // The deploy starts v2 correctly, and also a daemon in its own session: it escapes the
    // command's process group, so only the orphan sweep can find it.
    let deploy = at("examples/deploy-symlink.sh");
    let r = run_scenario_text(
        "daemon",
        &format!(
            r#"
[load]
rate = 100
warmup = "300ms"
cooldown = "300ms"
[reload]
strategy = "command"
command = ["sh", "-c", "setsid sleep 299 & exec {deploy}"]
"#
        ),
    );
    // run_scenario already checked that the daemon did not survive the harness.
    assert_eq!(r.code, 0, "{}", r.dump());
    let left: Vec<&str> = r.report["leftovers"]
        .as_array()
        .unwrap_or_else(|| panic!("no leftovers in the report: {}", r.dump()))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        left.len() == 1 && left[0].starts_with("pid ") && left[0].contains("sleep 299"),
        "{left:?}"
    );
    assert!(
        r.stdout
            .contains("killed 1 processes left behind by the stack: pid "),
        "{}",
        r.dump()
    );
}

#[test]
fn a_deploy_script_waiting_on_an_orphan_sees_it_go_when_it_exits() {
    // The script orphans a 300 ms sleep (it re-parents to zdt-check, the subreaper) and
    // waits for it as deploy scripts wait on an old master. Under init the wait ends
    // when the sleep does; so must it here (it took 1.0-1.4 s when zombies were reaped
    // after a second).
    let r = run_scenario_text(
        "orphan-wait",
        r#"
[load]
rate = 50
warmup = "300ms"
cooldown = "300ms"
[reload]
strategy = "command"
command = ["sh", "-c", """
f=$(mktemp)
sh -c 'sleep 0.3 & echo $! > "$1"' sh "$f"
pid=$(cat "$f"); rm -f "$f"
start=$(date +%s%N)
while kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
echo "waited $(( ($(date +%s%N) - start) / 1000000 )) ms"
"""]
"#,
    );
    let output = r.report["steps"][0]["output"].as_str().unwrap_or_default();
    let waited: u64 = output
        .split("waited ")
        .nth(1)
        .and_then(|w| w.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no wait reported: {}", r.dump()));
    assert!(
        (250..400).contains(&waited),
        "a 300 ms orphan was waited on for {waited} ms: {}",
        r.dump()
    );
}

#[test]
fn a_deploy_command_sees_what_a_plain_shell_would() {
    // Signal mask and dispositions, open fds, rlimits and umask, under zdt-check and
    // from a plain spawn: the verifier must not change what the deploy runs with.
    // (The process group, stdin and stdout/stderr differ on purpose: documented.)
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.sh");
    std::fs::write(
        &probe,
        "#!/bin/sh\n{ grep -E '^(SigBlk|SigIgn|NoNewPrivs)' /proc/self/status; ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; ulimit -a; umask; } > \"$1\" 2>&1\n",
    )
    .unwrap();
    std::fs::set_permissions(&probe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let under = dir.path().join("under");
    let plain = dir.path().join("plain");
    let r = run_scenario_text(
        "plain-shell",
        &format!(
            "[load]\nrate = 50\nwarmup = \"200ms\"\ncooldown = \"200ms\"\n[reload]\nstrategy = \"command\"\ncommand = [{:?}, {:?}]\n",
            probe.display().to_string(),
            under.display().to_string()
        ),
    );
    let status = std::process::Command::new(&probe)
        .arg(&plain)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // Dispositions of the standard signals (1-31) only: the real-time ones above are
    // glibc's own, and what this test process ignores there is not zdt-check's doing.
    let standard = |text: String| {
        text.lines()
            .map(|l| match l.strip_prefix("SigIgn:") {
                Some(hex) => {
                    let bits = u64::from_str_radix(hex.trim(), 16).unwrap();
                    format!("SigIgn: {:x}", bits & 0x7fff_ffff)
                }
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let under = std::fs::read_to_string(&under).unwrap_or_else(|_| panic!("{}", r.dump()));
    let plain = std::fs::read_to_string(&plain).unwrap();
    assert_eq!(
        standard(under),
        standard(plain),
        "under zdt-check vs a plain spawn"
    );
}
