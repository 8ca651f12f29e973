//! `zdt-check doctor`: which servers are installed, their versions, and which
//! scenarios can run here.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::scenario;
use crate::sys::tools;

/// One server or tool the scenarios may need.
struct Found {
    name: &'static str,
    version: Option<String>,
    hint: &'static str,
}

fn python_module_version(python: &Path, module: &str) -> Option<String> {
    let code = format!("from importlib.metadata import version; print(version({module:?}))");
    let out = std::process::Command::new(python)
        .args(["-c", &code])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn survey() -> Vec<Found> {
    let venv = tools::venv(None);
    let venv_python = venv
        .as_ref()
        .map(|v| v.join("bin/python"))
        .filter(|p| p.exists());
    let nginx = tools::on_path("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()));
    let haproxy = tools::on_path("haproxy")
        .or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")).filter(|p| p.exists()));
    let uwsgi = tools::on_path("uwsgi");
    let plugin = Path::new("/usr/lib/uwsgi/plugins/python3_plugin.so").exists();
    vec![
        Found {
            name: "nginx",
            version: nginx.and_then(|p| tools::version_of(&p, &["-v"])),
            hint: "apt-get install nginx",
        },
        Found {
            name: "haproxy",
            version: haproxy.and_then(|p| tools::version_of(&p, &["-v"])),
            hint: "apt-get install haproxy",
        },
        Found {
            name: "uwsgi",
            version: uwsgi
                .and_then(|p| tools::version_of(&p, &["--version"]))
                .map(|v| {
                    if plugin {
                        format!("{v} (python3 plugin)")
                    } else {
                        format!("{v} (NO python3 plugin: apt-get install uwsgi-plugin-python3)")
                    }
                }),
            hint: "apt-get install uwsgi-core uwsgi-plugin-python3",
        },
        Found {
            name: "gunicorn",
            version: venv_python
                .as_deref()
                .and_then(|p| python_module_version(p, "gunicorn")),
            hint: "bash .ci/install-servers.sh (a venv with gunicorn), or set ZDT_VENV",
        },
        Found {
            name: "flup",
            version: venv_python
                .as_deref()
                .and_then(|p| python_module_version(p, "flup")),
            hint: "bash .ci/install-servers.sh (a venv with flup), or set ZDT_VENV",
        },
        Found {
            name: "wrk",
            version: tools::on_path("wrk")
                .map(|_| "installed (used by benches/compare-wrk.sh)".into()),
            hint: "apt-get install wrk (benchmarks only)",
        },
    ]
}

/// What a scenario needs, by tool name.
fn needs(s: &scenario::Scenario) -> Vec<&'static str> {
    let mut n = Vec::new();
    match s.app.kind.get_ref().as_str() {
        "gunicorn" => n.push("gunicorn"),
        "uwsgi" => n.push("uwsgi"),
        "flup" => n.push("flup"),
        _ => {}
    }
    if s.front.is_some() {
        n.push("nginx");
    }
    if s.reload.strategy.get_ref().starts_with("haproxy-") {
        n.push("haproxy");
    }
    n
}

/// An external stack's line: what it runs, and any of its programs that is missing
/// (what the stack itself needs, only its own scripts know).
fn external_line(l: &scenario::Loaded) -> String {
    let Ok(a) = l.scenario.app.external() else {
        return "ready      (own stack)".into();
    };
    let programs: Vec<&String> = [&a.start, &a.stop]
        .into_iter()
        .flatten()
        .filter_map(|c| c.get_ref().first())
        .collect();
    let missing: Vec<String> = programs
        .iter()
        .filter(|p| p.contains('/'))
        .map(|p| crate::app::external::resolve_program(p, &l.dir))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    let what = match a.start.as_ref().and_then(|c| c.get_ref().first()) {
        Some(p) => format!("own stack, started by {p}"),
        None => "own stack, already running".to_string(),
    };
    if missing.is_empty() {
        format!("ready      ({what})")
    } else {
        format!("needs {}  ({what})", missing.join(", "))
    }
}

/// The doctor's report for the scenarios under `dir`.
pub fn report(dir: &Path) -> String {
    let found = survey();
    let mut o = String::new();
    let venv = tools::venv(None);
    let _ = writeln!(o, "zdt-check {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(
        o,
        "venv: {}",
        venv.map_or(
            "none found ($ZDT_VENV, or .venv near the binary or the current directory)".into(),
            |v| v.display().to_string()
        )
    );
    let _ = writeln!(o, "\nservers:");
    for f in &found {
        match &f.version {
            Some(v) => {
                let _ = writeln!(o, "  {:<9} {v}", f.name);
            }
            None => {
                let _ = writeln!(o, "  {:<9} MISSING ({})", f.name, f.hint);
            }
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for d in [dir.to_path_buf(), dir.join("negative")] {
        if let Ok(entries) = std::fs::read_dir(&d) {
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "toml")),
            );
        }
    }
    files.sort();
    if !files.is_empty() {
        let _ = writeln!(o, "\nscenarios in {}:", dir.display());
    }
    for f in files {
        let line = match scenario::load(&f) {
            Err(e) => format!("INVALID: {}", e.to_string().lines().next().unwrap_or("")),
            Ok(l) if l.scenario.app.is_external() => external_line(&l),
            Ok(l) => {
                let need = needs(&l.scenario);
                let missing: Vec<&str> = need
                    .iter()
                    .copied()
                    .filter(|n| found.iter().any(|f| f.name == *n && f.version.is_none()))
                    .collect();
                let need_text = if need.is_empty() {
                    "built-in fixture only".to_string()
                } else {
                    need.join(" + ")
                };
                if missing.is_empty() {
                    format!("ready      ({need_text})")
                } else {
                    format!("needs {}  ({need_text})", missing.join(", "))
                }
            }
        };
        let _ = writeln!(o, "  {:<44} {line}", f.display());
    }
    o
}
