//! Finding the real servers: nginx, uWSGI, and a Python venv with gunicorn and flup.
//!
//! The venv is taken from `app.venv` in the scenario, else `$ZDT_VENV`, else a
//! `.venv` in the current directory or above the zdt-check binary (a checkout
//! that ran `.ci/install-servers.sh`). Programs are otherwise looked up on PATH.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the venv is, if anywhere.
pub fn venv(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ZDT_VENV") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        candidates.extend(cwd.ancestors().map(|a| a.join(".venv")));
    }
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|a| a.join(".venv")));
    }
    candidates
        .into_iter()
        .find(|c| c.join("bin/python").exists())
}

/// A program on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `name` from the venv's bin/ (or PATH), or an error saying how to install it.
pub fn require_venv_program(configured: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(v) = venv(configured) {
        let p = v.join("bin").join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    on_path(name).ok_or_else(|| missing(name))
}

/// A system program, or an error saying how to install it.
pub fn require(name: &str) -> Result<PathBuf> {
    on_path(name).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> Error {
    Error::Harness(format!(
        "{name} not found: run `bash .ci/install-servers.sh` (installs nginx, uWSGI and a venv with gunicorn and flup), \
         or set ZDT_VENV / app.venv to a venv that has it"
    ))
}

/// First line of `program args` output (for `doctor`), if it runs.
pub fn version_of(program: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}
