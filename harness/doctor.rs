//! `zdt-check doctor`: which servers are installed, their versions, and which
//! scenarios can run here.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::scenario;
use crate::sys::tools::{self, Tool};

/// One server or tool the scenarios may need, and its version if installed.
struct Found {
    tool: Tool,
    version: Option<String>,
}

fn survey() -> Vec<Found> {
    Tool::ALL
        .iter()
        .map(|&tool| Found {
            tool,
            version: tool.version(),
        })
        .collect()
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
                let _ = writeln!(o, "  {:<9} {v}", f.tool.name());
            }
            None => {
                let _ = writeln!(o, "  {:<9} MISSING ({})", f.tool.name(), f.tool.hint());
            }
        }
    }
    if let Some(w) = tools::on_path("wrk") {
        let _ = writeln!(
            o,
            "  {:<9} installed at {} (used by benches/compare-wrk.sh)",
            "wrk",
            w.display()
        );
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
                let need: Vec<Tool> = scenario::needs(&l.scenario)
                    .iter()
                    .map(|n| n.tool)
                    .collect();
                let missing: Vec<&str> = need
                    .iter()
                    .filter(|n| found.iter().any(|f| f.tool == **n && f.version.is_none()))
                    .map(|n| n.name())
                    .collect();
                let need_text = if need.is_empty() {
                    "built-in fixture only".to_string()
                } else {
                    need.iter()
                        .map(|n| n.name())
                        .collect::<Vec<_>>()
                        .join(" + ")
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
