//! `zdt-check check`: a scenario checked without running it. One test per kind of
//! problem (each located at its file, line and key, all of them listed), and the
//! built-in scenarios that need nothing installed check clean.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::{bin, dump};

/// `zdt-check check FILES` (run in `dir`, with no venv to be found, so that
/// gunicorn is missing whatever is installed); exit code and stdout, having
/// checked there was no panic.
fn check(dir: &Path, files: &[&str]) -> (i32, String) {
    let out = bin()
        .current_dir(dir)
        .env("ZDT_VENV", "/nonexistent-zdt-venv")
        .arg("check")
        .args(files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}", dump(&out));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Writes `text` as `name` in `dir`.
fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Writes an executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str) {
    write(dir, name, "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_builtin_scenario_that_needs_nothing_checks_clean() {
    let out = bin()
        .args(["check", "scenarios/symlink.toml", "scenarios/command.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    assert!(
        stdout.contains("scenarios/symlink.toml: ok")
            && stdout.contains("needs installed: nothing (the built-in fixture")
            && stdout.contains("scenarios/command.toml: ok")
            && stdout.contains("reload.command ../examples/deploy-symlink.sh ("),
        "{}",
        dump(&out)
    );
}

#[test]
fn a_syntax_error_is_located() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.toml",
        "[reload]\nstrategy = \"symlink-swap\n",
    );
    let (code, out) = check(dir.path(), &["s.toml"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("s.toml: 1 problem") && out.contains("s.toml:2:"),
        "{out}"
    );
}

#[test]
fn every_validation_problem_is_listed_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.toml",
        "[load]\nrate = 0\nconnections = 0\n[[load.mix]]\nname = \"up\"\necho = true\n[reload]\nstrategy = \"symlink-swap\"\nsettle = \"soon\"\n",
    );
    let (code, out) = check(dir.path(), &["s.toml"]);
    assert_eq!(code, 2, "{out}");
    for want in [
        "s.toml: 4 problems",
        "s.toml:2:8: `load.rate`",
        "s.toml:3:15: `load.connections`",
        "s.toml:6:8: `load.mix[0].echo`",
        "s.toml:9:10: `reload.settle`",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

#[test]
fn a_bare_program_name_not_on_path_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "start.sh");
    write(
        dir.path(),
        "s.toml",
        "[app]\nkind = \"external\"\nstart = [\"start.sh\"]\ntarget = \"http://127.0.0.1:9/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"./start.sh\"]\n",
    );
    let (code, out) = check(dir.path(), &["s.toml"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("s.toml: 1 problem")
            && out.contains("s.toml:3:9: `app.start`: \"start.sh\" is not on PATH")
            && out.contains("looked up on PATH only")
            && out.contains("taken from the scenario's directory")
            && out.contains("write \"./start.sh\""),
        "{out}"
    );
    assert!(out.contains("reload.command ./start.sh ("), "{out}");
}

#[test]
fn a_relative_program_that_does_not_exist_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.toml",
        "[reload]\nstrategy = \"command\"\ncommand = [\"./deploy.sh\", \"--now\"]\n",
    );
    let (code, out) = check(dir.path(), &["s.toml"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("s.toml:3:11: `reload.command`:")
            && out.contains("deploy.sh does not exist")
            && out.contains("taken from the scenario's directory"),
        "{out}"
    );
}

#[test]
fn a_program_that_is_not_executable_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "deploy.sh", "#!/bin/sh\n");
    write(
        dir.path(),
        "s.toml",
        "[reload]\nstrategy = \"command\"\ncommand = [\"./deploy.sh\"]\n",
    );
    let (code, out) = check(dir.path(), &["s.toml"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("`reload.command`:") && out.contains("is not executable"),
        "{out}"
    );
}

#[test]
fn a_missing_tool_is_a_problem_at_the_key_that_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.toml",
        "# gunicorn, with no venv to find it in\n[app]\nkind = \"gunicorn\"\n[reload]\nstrategy = \"gunicorn-hup\"\n",
    );
    let (code, out) = check(dir.path(), &["s.toml"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("needs installed: gunicorn (MISSING)")
            && out.contains("s.toml:3:8: `app.kind`: needs gunicorn, which is not installed"),
        "{out}"
    );
}

#[test]
fn every_file_and_every_kind_of_problem_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.toml",
        "[app]\nkind = \"external\"\nstart = [\"no-such-zdt-program\"]\ntarget = \"http://127.0.0.1:9/\"\n[load]\nrate = 0\n[reload]\nstrategy = \"command\"\ncommand = [\"./nope.sh\"]\n",
    );
    write(
        dir.path(),
        "good.toml",
        "[reload]\nstrategy = \"symlink-swap\"\n",
    );
    let (code, out) = check(dir.path(), &["bad.toml", "good.toml", "missing.toml"]);
    assert_eq!(code, 2, "{out}");
    for want in [
        "bad.toml: 3 problems",
        "bad.toml:6:8: `load.rate`",
        "bad.toml:3:9: `app.start`",
        "bad.toml:9:11: `reload.command`",
        "good.toml: ok",
        "missing.toml: 1 problem",
        "missing.toml: cannot read scenario file",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(!out.contains("beside the scenario"), "{out}");
}
