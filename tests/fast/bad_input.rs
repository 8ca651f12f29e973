//! Bad input: every user mistake exits 2 with a message naming file, line, column
//! and field, and never a backtrace.

use crate::util::{at, bin, dump};

fn run_text(toml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let out = bin().args(["run"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{}",
        dump(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing runs on bad input: {}",
        dump(&out)
    );
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn syntax_error() {
    let (code, err) = run_text("[reload]\nstrategy = \"symlink-swap\n");
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:2:"), "{err}");
}

#[test]
fn unknown_key() {
    let (code, err) = run_text("[reload]\nstrategy = \"symlink-swap\"\n\n[load]\nrat = 100\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:5:1: `load.rat`") && err.contains("unknown field `rat`"),
        "{err}"
    );
}

#[test]
fn wrong_type() {
    let (code, err) =
        run_text("[reload]\nstrategy = \"symlink-swap\"\n[load]\nconnections = \"many\"\n");
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:4:15: `load.connections`"), "{err}");
}

#[test]
fn bad_value_and_wrong_strategy_option() {
    let (code, err) = run_text("[reload]\nstrategy = \"naive-restart\"\nswitch = \"rename\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:3:10: `reload.switch`: not an option of strategy \"naive-restart\""),
        "{err}"
    );
    let (code, err) =
        run_text("[load]\nwarmup = \"soon\"\n[reload]\nstrategy = \"naive-restart\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("`load.warmup`") && err.contains("invalid duration"),
        "{err}"
    );
}

#[test]
fn missing_file() {
    let out = bin()
        .args(["run", "scenarios/does-not-exist.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scenarios/does-not-exist.toml: cannot read scenario file"),
        "{err}"
    );
}

#[test]
fn every_file_is_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[reload]\n").unwrap();
    let out = bin()
        .args(["run", "scenarios/symlink.toml"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(
        out.stdout.is_empty(),
        "symlink.toml must not have run: {}",
        dump(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing field `strategy`"),
        "{}",
        dump(&out)
    );
}

#[test]
fn external_app_keys_are_checked() {
    let base = "[reload]\nstrategy = \"command\"\ncommand = [\"./deploy.sh\"]\n[app]\nkind = \"external\"\n";
    let (code, e) = run_text(base);
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:5:8: `app.target`: an external app needs `target"),
        "{e}"
    );
    let (code, e) = run_text(&format!("{base}target = \"http://10.1.2.3:80/\"\n"));
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:6:10: `app.target`: 10.1.2.3 is not a loopback address")
            && e.contains("`app.allow_remote = true`"),
        "{e}"
    );
    let (code, e) = run_text(&format!("{base}target = \"http://staging.example:80/\"\n"));
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:6:10: `app.target`: \"staging.example:80\" is not an IP address")
            && e.contains("`app.allow_remote = true`"),
        "{e}"
    );
    let (code, e) = run_text(&format!(
        "{base}target = \"http://:80/\"\nallow_remote = true\n"
    ));
    assert_eq!(code, 2);
    assert!(e.contains("`app.target`: has no host"), "{e}");
    let (_, e) = run_text(&format!(
        "{base}target = \"http://127.0.0.1:8000/health\"\n"
    ));
    assert!(e.contains("has a path") && e.contains("load.path"), "{e}");
    let (_, e) = run_text(&format!(
        "{base}target = \"http://127.0.0.1:8000/\"\nstart = []\n"
    ));
    assert!(
        e.contains("bad.toml:7:9: `app.start`: must name a program"),
        "{e}"
    );
    let (_, e) = run_text(
        &format!("{base}target = \"http://127.0.0.1:8000/\"\nversions = [\"a\", \"b\"]\n[load]\n")
            .replace(
                "command = [\"./deploy.sh\"]\n",
                "command = [\"./deploy.sh\"]\ndeploys = 3\n",
            ),
    );
    assert!(
        e.contains("`reload.deploys`: 3 deploys, but app.versions lists 1"),
        "{e}"
    );
    let (_, e) = run_text(&format!(
        "{base}target = \"http://127.0.0.1:8000/\"\nenv = {{ ZDT_RUN_DIR = \"/\" }}\n"
    ));
    assert!(e.contains("`app.env`") && e.contains("ZDT_"), "{e}");
    let (_, e) = run_text("[app]\nstart = [\"./up.sh\"]\n[reload]\nstrategy = \"naive-restart\"\n");
    assert!(
        e.contains("bad.toml:2:9: `app.start`: not an option of app kind \"builtin\" (it applies to: external)"),
        "{e}"
    );
    let (_, e) = run_text(
        &format!("{base}target = \"http://127.0.0.1:8000/\"\n")
            .replace("strategy = \"command\"", "strategy = \"symlink-swap\""),
    );
    assert!(
        e.contains("does not work with app.kind = \"external\""),
        "{e}"
    );
}

#[test]
fn websockets_table_is_checked() {
    let base = "[reload]\nstrategy = \"symlink-swap\"\n[websockets]\n";
    let (code, e) = run_text(&format!("{base}connections = 4\nmax_drop = 1\n"));
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:5:1: `websockets.max_drop`") && e.contains("unknown field `max_drop`"),
        "{e}"
    );
    let (code, e) = run_text(&format!("{base}connections = 4\ninterval = \"100\"\n"));
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:5:12: `websockets.interval`") && e.contains("invalid duration"),
        "{e}"
    );
    let (code, e) = run_text(&format!("{base}connections = -1\n"));
    assert_eq!(code, 2);
    assert!(e.contains("bad.toml:4:15: `websockets.connections`"), "{e}");
    let (code, e) = run_text(&format!("{base}connections = 2\ntimeout = \"2m\"\n"));
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:5:11: `websockets.timeout`: must be between 1ms and 60s"),
        "{e}"
    );
    let (code, e) = run_text(
        "[app]\nkind = \"uwsgi\"\n[reload]\nstrategy = \"uwsgi-chain\"\n[websockets]\nconnections = 2\n",
    );
    assert_eq!(code, 2);
    assert!(
        e.contains(
            "bad.toml:6:15: `websockets.connections`: app kind \"uwsgi\" serves no websockets"
        ),
        "{e}"
    );
    let (code, e) =
        run_text("[reload]\nstrategy = \"nginx-reload\"\n[front]\nworker_shutdown_timeout = 1\n");
    assert_eq!(code, 2);
    assert!(
        e.contains("bad.toml:4:27: `front.worker_shutdown_timeout`") && e.contains("write a unit"),
        "{e}"
    );
}

#[test]
fn request_mix_is_checked() {
    let base = "[reload]\nstrategy = \"symlink-swap\"\n[load]\n";
    for (mix, want) in [
        (
            "[[load.mix]]\nname = \"a\"\nmethod = \"FETCH\"\n",
            "bad.toml:6:10: `load.mix[0].method`: unknown method \"FETCH\"",
        ),
        (
            "[[load.mix]]\nname = \"a\"\n[[load.mix]]\nname = \"a\"\n",
            "bad.toml:7:8: `load.mix[1].name`: kind \"a\" is named twice",
        ),
        (
            "[[load.mix]]\nname = \"a b\"\n",
            "bad.toml:5:8: `load.mix[0].name`: must be 1 to 32 letters",
        ),
        (
            "[[load.mix]]\nname = \"a\"\nupload = \"1s\"\n",
            "bad.toml:6:10: `load.mix[0].upload`: a slow upload needs a body",
        ),
        (
            "[[load.mix]]\nname = \"a\"\necho = true\n",
            "`load.mix[0].echo`: checks the echo of a body",
        ),
        (
            "[[load.mix]]\nname = \"a\"\nheaders = { Content-Length = \"5\" }\n",
            "`load.mix[0].headers`: Content-Length is written by the load generator itself",
        ),
        (
            "[[load.mix]]\nname = \"a\"\nbody = 20000000\n",
            "bad.toml:6:8: `load.mix[0].body`: must be at most 16777216 bytes",
        ),
        (
            "[[load.mix]]\nname = \"a\"\nweight = 0\n",
            "`load.mix[0].weight`: must be between 1 and 1000000",
        ),
        (
            "[[load.mix]]\nname = \"a\"\npath = \"x\"\n",
            "`load.mix[0].path`: must start with `/`",
        ),
        (
            "[[load.mix]]\nname = \"a\"\nbdy = 1\n",
            "unknown field `bdy`",
        ),
    ] {
        let (code, err) = run_text(&format!("{base}{mix}"));
        assert_eq!(code, 2, "{mix}: {err}");
        assert!(err.contains(want), "{mix}\nwant: {want}\ngot: {err}");
    }
}

#[test]
fn front_retry_and_upstream_keepalive_are_checked() {
    let base = "[reload]\nstrategy = \"nginx-reload\"\n[app]\nkind = \"gunicorn\"\n[front]\n";
    for (front, want) in [
        (
            "next_upstream = \"error retry\"\n",
            "bad.toml:6:17: `front.next_upstream`: unknown token \"retry\"",
        ),
        (
            "next_upstream = \"off error\"\n",
            "`front.next_upstream`: expected `off` or nginx's proxy_next_upstream tokens",
        ),
        (
            "upstream_keepalive = 20000\n",
            "bad.toml:6:22: `front.upstream_keepalive`: must be between 0 (off) and 10000",
        ),
        (
            "upstream_keepalive_timeout = \"5s\"\n",
            "bad.toml:6:30: `front.upstream_keepalive_timeout`: needs front.upstream_keepalive",
        ),
        (
            "upstream_keepalive = 2\nupstream_keepalive_timeout = \"2h\"\n",
            "bad.toml:7:30: `front.upstream_keepalive_timeout`: must be between 1ms and 1h",
        ),
    ] {
        let (code, err) = run_text(&format!("{base}{front}"));
        assert_eq!(code, 2, "{front}: {err}");
        assert!(err.contains(want), "{front}\nwant: {want}\ngot: {err}");
    }
}

#[test]
fn builtin_keep_alive_timeout_is_checked() {
    let base = "[reload]\nstrategy = \"symlink-swap\"\n[app]\nkind = \"builtin\"\n";
    for (app, want) in [
        (
            "idle_close = \"sometimes\"\nkeep_alive_timeout = \"1s\"\n",
            "bad.toml:5:14: `app.idle_close`: ",
        ),
        (
            "idle_close = \"with-next-request\"\n",
            "bad.toml:5:14: `app.idle_close`: needs app.keep_alive_timeout",
        ),
        (
            "keep_alive_timeout = \"0s\"\n",
            "bad.toml:5:22: `app.keep_alive_timeout`: must be between 1ms and 1h",
        ),
    ] {
        let (code, err) = run_text(&format!("{base}{app}"));
        assert_eq!(code, 2, "{app}: {err}");
        assert!(err.contains(want), "{app}\nwant: {want}\ngot: {err}");
    }
}

/// `compare --html/--junit` into a directory that does not exist: bad input, before
/// anything runs.
#[test]
fn compare_output_dir_missing_is_bad_input() {
    for flag in ["--html", "--junit"] {
        let out = bin()
            .args(["compare", &at("scenarios/symlink.toml"), flag])
            .arg("/nonexistent-zdt-dir/out.file")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
        assert!(
            stderr.contains(&format!(
                "zdt-check: error: {flag} /nonexistent-zdt-dir/out.file: No such file or directory"
            )),
            "{stderr}"
        );
        // Nothing ran.
        assert!(
            !stderr.contains("run 1/1") && out.stdout.is_empty(),
            "{}",
            dump(&out)
        );
    }
}

/// A scenario whose `[reload]` strategy is unknown: the checks of `[load]` and `[app]`
/// come first, so a test of them never starts a run, even on a harness without them.
const NO_RUN: &str = "[reload]\nstrategy = \"teleport\"\n";

#[test]
fn load_durations_are_bounded() {
    for (toml, want) in [
        (
            "[load]\ntimeout = \"0s\"\n",
            "bad.toml:2:11: `load.timeout`: must be more than 0",
        ),
        (
            "[load]\nconnect_timeout = \"0ms\"\n",
            "bad.toml:2:19: `load.connect_timeout`: must be more than 0",
        ),
        (
            "[load]\nwarmup = \"100000d\"\n",
            "bad.toml:2:10: `load.warmup`: duration \"100000d\" is too long: at most 24h",
        ),
        (
            "[load]\ngrace = \"500000000000y\"\n",
            "`load.grace`: duration \"500000000000y\" is too long",
        ),
        (
            "[app]\nready_timeout = \"25h\"\n",
            "bad.toml:2:17: `app.ready_timeout`: duration \"25h\" is too long: at most 24h",
        ),
    ] {
        let (code, err) = run_text(&format!("{toml}{NO_RUN}"));
        assert_eq!(code, 2, "{toml}: {err}");
        assert!(err.contains(want), "{toml}\nwant: {want}\ngot: {err}");
    }
}

#[test]
fn target_and_listen_ports_are_checked() {
    let external = "[reload]\nstrategy = \"command\"\ncommand = [\"./deploy.sh\"]\n[app]\nkind = \"external\"\n";
    for (toml, want) in [
        (
            format!("{external}target = \"http://127.0.0.1:99999/\"\n"),
            "bad.toml:6:10: `app.target`: port 99999 is out of range: use 1-65535",
        ),
        (
            format!("{external}target = \"http://127.0.0.1:0/\"\n"),
            "bad.toml:6:10: `app.target`: port 0 is not a port one can connect to",
        ),
        (
            "[reload]\nstrategy = \"nginx-reload\"\n[front]\nlisten = \"127.0.0.1:70000\"\n"
                .to_string(),
            "bad.toml:4:10: `front.listen`: port 70000 is out of range: use 1-65535",
        ),
    ] {
        let (code, err) = run_text(&toml);
        assert_eq!(code, 2, "{toml}: {err}");
        assert!(err.contains(want), "{toml}\nwant: {want}\ngot: {err}");
    }
}

#[test]
fn load_rate_and_connections_are_bounded() {
    for (toml, want) in [
        (
            "[load]\nrate = 2e6\n",
            "bad.toml:2:8: `load.rate`: 2000000 requests/s is more than the load generator can send: at most 1000000",
        ),
        ("[load]\nrate = nan\n", "`load.rate`: NaN is not a rate"),
        (
            "[load]\nconnections = 60000\n",
            "bad.toml:2:15: `load.connections`: 60000 connections: must be between 1 and 50000",
        ),
        (
            "[sweep]\nconnections = [8, 60000]\n",
            "`sweep.connections`: 60000 connections: must be between 1 and 50000",
        ),
        (
            "[sweep]\nrate = [1e7]\n",
            "`sweep.rate`: 10000000 requests/s is more than",
        ),
    ] {
        let (code, err) = run_text(&format!("{toml}{NO_RUN}"));
        assert_eq!(code, 2, "{toml}: {err}");
        assert!(err.contains(want), "{toml}\nwant: {want}\ngot: {err}");
    }
}

/// `run` warns about a rate its connections cannot carry (and checks its output
/// paths before anything runs).
#[test]
fn run_warns_about_a_rate_the_connections_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.toml");
    std::fs::write(
        &path,
        "name = \"hot\"\n[load]\nrate = 2500\nconnections = 2\n[reload]\nstrategy = \"symlink-swap\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("run")
        .arg(&path)
        .args(["--json", "/nonexistent-zdt-dir/x.json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(out.stdout.is_empty(), "{}", dump(&out));
    assert!(
        err.contains(
            "zdt-check: warning: hot: `load.rate`: a rate of 2500 requests/s over 2 connections"
        ) && err.contains("--json /nonexistent-zdt-dir/x.json: No such file or directory"),
        "{err}"
    );
}

#[test]
fn each_mix_error_is_at_its_own_key() {
    // `echo` without `body`: at `echo`, not at the entry's `name`.
    let (code, err) = run_text(
        "[reload]\nstrategy = \"symlink-swap\"\n[[load.mix]]\nname = \"up\"\nmethod = \"POST\"\necho = true\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:6:8: `load.mix[0].echo`: checks the echo of a body")
            && err.contains("6 | echo = true"),
        "{err}"
    );
}

#[test]
fn sweep_errors_are_at_their_key_and_headers_are_not_found_in_comments() {
    let (code, err) = run_text(
        "# a comment naming [sweep] and [front]\n[reload]\nstrategy = \"symlink-swap\"\n[sweep]\nstartup_delay = [\"1s\"]\nrate = [0]\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:6:8: `sweep.rate`: 0 is not a rate"),
        "{err}"
    );
    let (code, err) = run_text(
        "# no [front] here: [front] comes below\n[app]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n[front]\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:8:1: `front`: an external app brings its own front server"),
        "{err}"
    );
}

#[test]
fn run_reports_every_validation_problem() {
    let (code, err) = run_text(
        "[load]\nrate = 0\npath = \"x\"\n[reload]\nstrategy = \"naive-restart\"\nsettle = \"1s\"\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:2:8: `load.rate`")
            && err.contains("bad.toml:3:8: `load.path`")
            && err.contains("bad.toml:6:10: `reload.settle`"),
        "{err}"
    );
}

/// haproxy-pool's `take_out = "404"` uses the built-in app's 404 switch: with another
/// app kind it is bad input at the key, before anything starts (no harness error later).
#[test]
fn haproxy_pool_take_out_404_needs_the_builtin_app() {
    for kind in ["gunicorn", "uvicorn", "granian"] {
        let (code, err) = run_text(&format!(
            "[app]\nkind = \"{kind}\"\n\n[reload]\nstrategy = \"haproxy-pool\"\ntake_out = \"404\"\n"
        ));
        assert_eq!(code, 2, "{kind}: {err}");
        assert!(
            err.contains(&format!("bad.toml:6:12: `reload.take_out`: \"404\" needs app.kind = \"builtin\" (only its status page has the 404 switch), not \"{kind}\"")),
            "{kind}: {err}"
        );
    }
    // The built-in app takes it, and the other ways out take any kind.
    let ok = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.toml");
        std::fs::write(&path, text).unwrap();
        let out = bin().arg("check").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("take_out"), "{}", dump(&out));
    };
    ok("[app]\nkind = \"builtin\"\n[reload]\nstrategy = \"haproxy-pool\"\ntake_out = \"404\"\n");
    ok("[app]\nkind = \"uvicorn\"\n[reload]\nstrategy = \"haproxy-pool\"\ntake_out = \"maint\"\n");
}
