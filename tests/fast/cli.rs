//! The command line: help, version, and usage errors with exit code 2.

use crate::util::{bin, dump};

#[test]
fn help_for_each_command() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["load", "--help"],
        vec!["fixture", "--help"],
        vec!["init", "--help"],
        vec!["explain", "--help"],
        vec!["check", "--help"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", dump(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}: {}",
            dump(&out)
        );
    }
    let out = bin().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("zdt-check "));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["run"],
        vec!["check"],
        vec!["frobnicate"],
        vec!["load", "ftp://x"],
        vec!["load", "http://127.0.0.1:1/", "--rate", "0"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", dump(&out));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "{args:?}: {}",
            dump(&out)
        );
    }
}

/// Runs `zdt-check ARGS` (with the open-file soft limit lowered to `nofile`, if
/// given); returns the exit code and stderr, having checked there was no panic.
fn zdt(args: &[&str], nofile: Option<u64>) -> (i32, String, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    cmd.args(args);
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe; it only lowers this child's limit.
        unsafe {
            cmd.pre_exec(move || {
                let mut r = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
                r.rlim_cur = n.min(r.rlim_max);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{args:?}: {}",
        dump(&out)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Each `(args, what stderr must say)` exits 2 before any load, with that message.
fn refused(cases: &[(&[&str], &str)]) {
    for (args, want) in cases {
        let (code, stdout, err) = zdt(args, None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}\nwant: {want}\ngot: {err}");
        assert!(stdout.is_empty(), "{args:?}: nothing ran: {stdout}");
    }
}

const CLOSED_PORT: &str = "http://127.0.0.1:1/";

#[test]
fn durations_must_be_positive_and_at_most_a_day() {
    refused(&[
        (
            &["load", CLOSED_PORT, "-d", "0s"],
            "invalid value '0s' for '--duration <DURATION>': duration \"0s\" must be more than 0",
        ),
        (
            &[
                "load",
                CLOSED_PORT,
                "-d",
                "200ms",
                "--timeout",
                "500000000000y",
            ],
            "for '--timeout <TIMEOUT>': duration \"500000000000y\" is too long: at most 24h",
        ),
        (
            &["load", CLOSED_PORT, "-d", "200ms", "--timeout", "0s"],
            "for '--timeout <TIMEOUT>': duration \"0s\" must be more than 0",
        ),
        (
            &["load", CLOSED_PORT, "-d", "500000000000y"],
            "for '--duration <DURATION>': duration \"500000000000y\" is too long",
        ),
        (
            &["load", CLOSED_PORT, "-d", "200ms", "--grace", "25h"],
            "for '--grace <GRACE>': duration \"25h\" is too long: at most 24h",
        ),
        (
            &["wait-ready", CLOSED_PORT, "--timeout", "0s"],
            "for '--timeout <TIMEOUT>': duration \"0s\" must be more than 0",
        ),
        (
            // (An invalid --backlog after it: the fixture must not start, even unfixed.)
            &[
                "fixture",
                "--listen",
                "127.0.0.1:0",
                "--startup-delay",
                "48h",
                "--backlog",
                "x",
            ],
            "for '--startup-delay <DURATION>': duration \"48h\" is too long",
        ),
    ]);
}

#[test]
fn target_ports_out_of_range_or_zero_are_refused() {
    refused(&[
        (
            &["load", "http://127.0.0.1:99999/"],
            "target `http://127.0.0.1:99999/`: port 99999 is out of range: use 1-65535",
        ),
        (
            &["load", "http://127.0.0.1:0/", "-d", "100ms"],
            "port 0 is not a port one can connect to",
        ),
        (
            &["wait-ready", "http://127.0.0.1:0", "--timeout", "100ms"],
            "port 0",
        ),
    ]);
}

#[test]
fn rates_must_be_finite_positive_and_bounded() {
    refused(&[
        (
            &["load", CLOSED_PORT, "--rate", "1e9", "-d", "200ms"],
            "--rate: 1000000000 requests/s is more than the load generator can send: at most 1000000",
        ),
        (
            &["load", CLOSED_PORT, "--rate", "NaN", "-d", "200ms"],
            "--rate: NaN is not a rate",
        ),
        (
            &["load", CLOSED_PORT, "--rate", "inf", "-d", "200ms"],
            "--rate: inf is not a rate",
        ),
        (
            &["load", CLOSED_PORT, "--rate=-5", "-d", "200ms"],
            "--rate: -5 is not a rate",
        ),
        // compare takes the same flags, checked before the scenarios are read.
        (
            &["compare", "scenarios/does-not-exist.toml", "--rate", "1e9"],
            "--rate: 1000000000 requests/s is more than",
        ),
        (
            &[
                "compare",
                "scenarios/does-not-exist.toml",
                "--connections",
                "100000",
            ],
            "--connections: 100000 connections: must be between 1 and 50000",
        ),
    ]);
}

#[test]
fn compare_until_bound_takes_a_rate_and_needs_repeat() {
    refused(&[
        (
            &["compare", "scenarios/symlink.toml", "--until-bound", "0.1%"],
            "--until-bound needs --repeat N",
        ),
        (
            &[
                "compare",
                "scenarios/symlink.toml",
                "--repeat",
                "5",
                "--until-bound",
                "0",
            ],
            "`0` is out of range: a failure rate above 0 and below 100%",
        ),
        (
            &[
                "compare",
                "scenarios/symlink.toml",
                "--repeat",
                "5",
                "--until-bound",
                "120%",
            ],
            "`120%` is out of range",
        ),
        (
            &[
                "compare",
                "scenarios/symlink.toml",
                "--repeat",
                "5",
                "--until-bound",
                "few",
            ],
            "`few` is not a rate: write a percentage (`0.1%`) or a share (`0.001`)",
        ),
    ]);
}

#[test]
fn a_rate_beyond_what_the_connections_carry_is_warned_about() {
    // 3000 req/s over 2 connections: each would need to finish a request in 667 µs.
    let (code, _, err) = zdt(
        &[
            "load",
            CLOSED_PORT,
            "--rate",
            "3000",
            "-c",
            "2",
            "-d",
            "50ms",
        ],
        None,
    );
    assert_eq!(code, 1, "connections to port 1 are refused: {err}");
    assert!(
        err.contains("zdt-check: warning: --rate: a rate of 3000 requests/s over 2 connections")
            && err.contains("they carry at most 2000 requests/s"),
        "{err}"
    );
}

#[test]
fn connections_are_bounded_by_a_maximum_and_the_open_file_limit() {
    refused(&[(
        &["load", CLOSED_PORT, "-c", "100000", "--rate", "100"],
        "--connections: 100000 connections: must be between 1 and 50000",
    )]);
    let (code, stdout, err) = zdt(
        &[
            "load",
            CLOSED_PORT,
            "-c",
            "500",
            "--rate",
            "10",
            "-d",
            "200ms",
        ],
        Some(256),
    );
    assert_eq!(code, 2, "{err}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        err.contains("--connections: 500 connections do not fit the open-file limit (ulimit -n is 256; one file per connection and 64 for zdt-check itself: at most 192)"),
        "{err}"
    );
}

/// compare warns about each scenario as it will run (after --rate and --connections),
/// then checks its output paths, before anything runs.
#[test]
fn compare_warns_about_the_rate_it_sets() {
    let (code, stdout, err) = zdt(
        &[
            "compare",
            "scenarios/symlink.toml",
            "--rate",
            "5000",
            "--connections",
            "2",
            "--json",
            "/nonexistent-zdt-dir/x.json",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        err.contains("zdt-check: warning: symlink swap (builtin): `load.rate`: a rate of 5000 requests/s over 2"),
        "{err}"
    );
}

#[test]
fn output_paths_are_checked_before_the_run() {
    refused(&[
        (
            &[
                "load",
                CLOSED_PORT,
                "-d",
                "1s",
                "--json",
                "/nonexistent-zdt-dir/x.json",
            ],
            "zdt-check: error: --json /nonexistent-zdt-dir/x.json: No such file or directory",
        ),
        (
            &["load", CLOSED_PORT, "-d", "1s", "--json", "harness"],
            "--json harness: Is a directory",
        ),
        (
            &[
                "run",
                "scenarios/symlink.toml",
                "--json",
                "/nonexistent-zdt-dir/x.json",
            ],
            "zdt-check: error: --json /nonexistent-zdt-dir/x.json: No such file or directory",
        ),
        (
            &[
                "run",
                "scenarios/symlink.toml",
                "--html",
                "Cargo.toml/x.html",
            ],
            "--html Cargo.toml/x.html: Not a directory",
        ),
        (
            &[
                "run",
                "scenarios/symlink.toml",
                "--junit",
                "/nonexistent-zdt-dir/j.xml",
            ],
            "--junit /nonexistent-zdt-dir/j.xml: No such file or directory",
        ),
        (
            &[
                "run",
                "scenarios/symlink.toml",
                "--hdr-dir",
                "Cargo.toml/hgrm",
            ],
            "--hdr-dir Cargo.toml/hgrm: Not a directory",
        ),
        (
            &[
                "compare",
                "scenarios/symlink.toml",
                "--markdown",
                "/nonexistent-zdt-dir/t.md",
            ],
            "--markdown /nonexistent-zdt-dir/t.md: No such file or directory",
        ),
    ]);
}
