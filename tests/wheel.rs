//! The Python package: pyproject.toml builds a maturin bin wheel of the crate (the
//! `dist` profile, no debug info); installed into a fresh venv, that venv's
//! `zdt-check` runs the README's first command (the symlink swap on the embedded
//! fixture) and passes. The build venv with maturin is made by
//! .ci/install-servers.sh (`ZDT_BUILD_VENV`, default `<repo>/.venv-build`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{assert_no_leftovers, dump, repo};

fn maturin() -> Option<PathBuf> {
    let venv = std::env::var_os("ZDT_BUILD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-build"));
    let m = venv.join("bin/maturin");
    if m.exists() {
        return Some(m);
    }
    let msg = format!("missing {}: run `bash .ci/install-servers.sh`", m.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (in CI a missing tool is a failure, never a skip)");
    }
    eprintln!("SKIPPED (not in CI): {msg}");
    None
}

#[test]
fn the_wheel_installs_into_a_fresh_venv_and_runs_the_first_readme_command() {
    let Some(maturin) = maturin() else { return };
    // Serial throughout: maturin, pip and the runs are children of this test process,
    // which the other tests' leftover checks would take for a harness's leak.
    let _guard = crate::util::serial();
    let work = tempfile::tempdir().unwrap();
    let wheels = work.path().join("wheels");
    let build = Command::new(&maturin)
        .args(["build", "--quiet", "--profile", "dist", "--out"])
        .arg(&wheels)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(build.status.success(), "maturin build: {}", dump(&build));
    let wheel: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(wheel.len(), 1, "{wheel:?}");
    let name = wheel[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("zdt_check-") && name.ends_with(".whl"),
        "{name}"
    );

    let venv = work.path().join("venv");
    let mk = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(mk.status.success(), "{}", dump(&mk));
    let pip = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel[0])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(pip.status.success(), "pip install: {}", dump(&pip));
    let exe = venv.join("bin/zdt-check");
    assert!(exe.exists(), "no {}", exe.display());

    // The README's first command, with the installed binary instead of `cargo run`.
    let out = Command::new(&exe)
        .args(["run", "scenarios/symlink.toml", "--no-progress"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verdict: PASS"),
        "{}",
        dump(&out)
    );
    // The Python sample apps are embedded: a gunicorn scenario copied away from the
    // checkout runs from the installed binary alone.
    if !crate::util::require_stack(&["gunicorn"]) {
        return;
    }
    let away = work.path().join("gunicorn-hup.toml");
    std::fs::copy(repo().join("scenarios/gunicorn-hup.toml"), &away).unwrap();
    let out = Command::new(&exe)
        .arg("run")
        .arg(&away)
        .arg("--no-progress")
        .current_dir(work.path())
        .env("ZDT_VENV", crate::util::venv().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
}
