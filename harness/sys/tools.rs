//! Finding the real servers: nginx, uWSGI, and a Python venv with gunicorn, flup, uvicorn, granian and hypercorn.
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
        "{name} not found: run `bash .ci/install-servers.sh` (installs nginx, uWSGI and a venv with gunicorn, flup, uvicorn, granian and hypercorn), \
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

/// A server or program a scenario may need installed. App kinds, strategies and the
/// front server name theirs in their registry entries; `doctor` asks each for its
/// version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    /// nginx, the front server.
    Nginx,
    /// haproxy, the balancer of the haproxy strategies.
    Haproxy,
    /// uWSGI with its python3 plugin.
    Uwsgi,
    /// gunicorn, in the venv.
    Gunicorn,
    /// flup (FastCGI), in the venv.
    Flup,
    /// uvicorn (ASGI), in the venv (other pinned versions beside it).
    Uvicorn,
    /// granian (ASGI/WSGI), in the venv.
    Granian,
    /// hypercorn (ASGI), in the venv.
    Hypercorn,
}

impl Tool {
    /// Every tool, in the order `doctor` lists them.
    pub const ALL: &'static [Tool] = &[
        Tool::Nginx,
        Tool::Haproxy,
        Tool::Uwsgi,
        Tool::Gunicorn,
        Tool::Flup,
        Tool::Uvicorn,
        Tool::Granian,
        Tool::Hypercorn,
    ];

    /// Its name, as `doctor` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Nginx => "nginx",
            Tool::Haproxy => "haproxy",
            Tool::Uwsgi => "uwsgi",
            Tool::Gunicorn => "gunicorn",
            Tool::Flup => "flup",
            Tool::Uvicorn => "uvicorn",
            Tool::Granian => "granian",
            Tool::Hypercorn => "hypercorn",
        }
    }

    /// How to install it.
    pub fn hint(self) -> &'static str {
        match self {
            Tool::Nginx => "apt-get install nginx",
            Tool::Haproxy => "apt-get install haproxy",
            Tool::Uwsgi => "apt-get install uwsgi-core uwsgi-plugin-python3",
            Tool::Gunicorn => "bash .ci/install-servers.sh (a venv with gunicorn), or set ZDT_VENV",
            Tool::Flup => "bash .ci/install-servers.sh (a venv with flup), or set ZDT_VENV",
            Tool::Uvicorn => "bash .ci/install-servers.sh (a venv with uvicorn), or set ZDT_VENV",
            Tool::Granian => "bash .ci/install-servers.sh (a venv with granian), or set ZDT_VENV",
            Tool::Hypercorn => {
                "bash .ci/install-servers.sh (a venv with hypercorn), or set ZDT_VENV"
            }
        }
    }

    /// Its installed version (with a note where it is incomplete), or `None` if missing.
    pub fn version(self) -> Option<String> {
        let sbin = |name: &str| {
            on_path(name)
                .or_else(|| Some(PathBuf::from("/usr/sbin").join(name)).filter(|p| p.exists()))
        };
        match self {
            Tool::Nginx => sbin("nginx").and_then(|p| version_of(&p, &["-v"])),
            Tool::Haproxy => sbin("haproxy").and_then(|p| version_of(&p, &["-v"])),
            Tool::Uwsgi => {
                let plugin = Path::new("/usr/lib/uwsgi/plugins/python3_plugin.so").exists();
                on_path("uwsgi")
                    .and_then(|p| version_of(&p, &["--version"]))
                    .map(|v| {
                        if plugin {
                            format!("{v} (python3 plugin)")
                        } else {
                            format!("{v} (NO python3 plugin: apt-get install uwsgi-plugin-python3)")
                        }
                    })
            }
            Tool::Gunicorn => python_module_version("gunicorn").map(|v| with_pinned(v, "gunicorn")),
            Tool::Flup => python_module_version("flup"),
            Tool::Uvicorn => python_module_version("uvicorn").map(|v| with_pinned(v, "uvicorn")),
            Tool::Granian => python_module_version("granian"),
            Tool::Hypercorn => python_module_version("hypercorn"),
        }
    }
}

/// `version`, and the pinned versions of `package` beside the venv: "27.0.1 (also
/// 20.1.0 in ...)".
fn with_pinned(version: String, package: &str) -> String {
    let others = versioned_venvs(package);
    if others.is_empty() {
        version
    } else {
        format!("{version} (also {})", others.join(", "))
    }
}

/// The `<venv>-<package>-<version>` venvs beside the venv (pinned versions of a
/// server a scenario may ask for), as "<version> in <dir>".
fn versioned_venvs(package: &str) -> Vec<String> {
    let Some(base) = venv(None) else {
        return Vec::new();
    };
    let (Some(parent), Some(name)) = (base.parent(), base.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}-{package}-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let v = n.strip_prefix(&prefix)?.to_string();
            e.path()
                .join("bin")
                .join(package)
                .exists()
                .then(|| format!("{v} in {}", e.path().display()))
        })
        .collect();
    found.sort();
    found
}

/// A Python package's version in the venv.
fn python_module_version(module: &str) -> Option<String> {
    let python = venv(None)?.join("bin/python");
    if !python.exists() {
        return None;
    }
    let code = format!("from importlib.metadata import version; print(version({module:?}))");
    let out = std::process::Command::new(python)
        .args(["-c", &code])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
