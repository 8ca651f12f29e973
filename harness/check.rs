//! `zdt-check check`: each scenario read and validated, the programs it names resolved
//! and the tools it needs looked up, without starting anything (but the tools'
//! version probes `doctor` runs). Every problem is listed, each at its file, line and
//! key; the exit code is 0 when there are none, 2 otherwise.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write;
use std::path::Path;

use crate::config::Locator;
use crate::error::{Error, EXIT_ERROR, EXIT_PASS};
use crate::scenario::{self, Scenario};
use crate::sys::program;
use crate::sys::tools::Tool;

/// One scenario file checked: what it needs, and its problems.
#[derive(Debug, Default)]
pub struct Checked {
    /// What was found: the app kind and strategy, its programs, its tools (one line each).
    pub found: Vec<String>,
    /// Every problem, located (`file:line:col: `key`: message`, the line quoted).
    pub problems: Vec<String>,
}

/// The installed versions of the tools asked about so far (each probed once).
#[derive(Debug, Default)]
pub struct Versions(BTreeMap<Tool, Option<String>>);

impl Versions {
    /// `tool`'s installed version, or `None` if it is missing.
    fn of(&mut self, tool: Tool) -> Option<String> {
        self.0.entry(tool).or_insert_with(|| tool.version()).clone()
    }
}

/// Checks the scenario file at `path`.
pub fn check(path: &Path, versions: &mut Versions) -> Checked {
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            return Checked {
                found: Vec::new(),
                problems: vec![format!(
                    "{}: cannot read scenario file: {e}",
                    path.display()
                )],
            }
        }
    };
    let loc = Locator { path, src: &src };
    let (parsed, problems) = scenario::parse_all(path, &src);
    let mut c = Checked {
        found: Vec::new(),
        problems: problems.iter().map(Error::to_string).collect(),
    };
    if let Some(s) = parsed {
        let dir = scenario::dir_of(path);
        c.found.push(format!(
            "app.kind = {:?}, reload.strategy = {:?}",
            s.app.kind.get_ref(),
            s.reload.strategy.get_ref()
        ));
        programs(&s, &dir, &loc, &mut c);
        tools(&s, &loc, versions, &mut c);
    }
    c
}

/// Resolves each program the app kind's and the strategy's options name.
fn programs(s: &Scenario, dir: &Path, loc: &Locator, c: &mut Checked) {
    // An external stack's commands get its `env`, which may set their PATH.
    let path_var = s
        .app
        .external()
        .ok()
        .and_then(|o| o.env.as_ref())
        .and_then(|e| e.get_ref().get("PATH").cloned());
    let named = s
        .app
        .options
        .programs()
        .into_iter()
        .chain(s.reload.options.programs());
    let mut found = Vec::new();
    for (key, argv) in named {
        let Some(argv0) = argv.get_ref().first() else {
            continue;
        };
        match program::locate(argv0, dir, path_var.as_deref().map(OsStr::new)) {
            Ok(p) => found.push(format!("{key} {argv0} ({})", p.display())),
            Err(why) => {
                found.push(format!("{key} {argv0} (NOT FOUND)"));
                c.problems
                    .push(loc.error(argv.span(), Some(key), &why).to_string());
            }
        }
    }
    if !found.is_empty() {
        c.found.push(format!("programs: {}", found.join(", ")));
    }
}

/// Looks up each tool the scenario needs (`scenario::needs`, as `doctor` does), a missing one a problem
/// located at the key that needs it.
fn tools(s: &Scenario, loc: &Locator, versions: &mut Versions, c: &mut Checked) {
    let needs = scenario::needs(s);
    if needs.is_empty() {
        c.found.push(if s.app.is_external() {
            "needs installed: nothing but its own programs".into()
        } else {
            "needs installed: nothing (the built-in fixture is part of zdt-check)".into()
        });
        return;
    }
    let mut listed = Vec::new();
    for n in needs {
        let name = n.tool.name();
        match versions.of(n.tool) {
            Some(v) => listed.push(format!("{name} ({v})")),
            None => {
                listed.push(format!("{name} (MISSING)"));
                let span = match n.key {
                    "app.kind" => s.app.kind.span(),
                    "reload.strategy" => s.reload.strategy.span(),
                    _ => loc.table_at(n.key),
                };
                let why = format!("needs {name}, which is not installed ({})", n.tool.hint());
                c.problems
                    .push(loc.error(span, Some(n.key), &why).to_string());
            }
        }
    }
    c.found
        .push(format!("needs installed: {}", listed.join(", ")));
}

/// Checks every file, prints what each needs and every problem (stdout); returns the
/// exit code: 0 when there is no problem, 2 otherwise.
pub fn run(paths: &[impl AsRef<Path>]) -> u8 {
    let mut versions = Versions::default();
    let mut out = String::new();
    let (mut problems, mut bad_files) = (0, 0);
    for path in paths {
        let path = path.as_ref();
        let c = check(path, &mut versions);
        let verdict = match c.problems.len() {
            0 => "ok".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        };
        let _ = writeln!(out, "{}: {verdict}", path.display());
        for line in &c.found {
            let _ = writeln!(out, "  {line}");
        }
        for p in &c.problems {
            for line in p.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        problems += c.problems.len();
        bad_files += usize::from(!c.problems.is_empty());
    }
    print!("{out}");
    if problems == 0 {
        EXIT_PASS
    } else {
        eprintln!(
            "zdt-check: {problems} problem{} in {bad_files} of {} scenario file{}",
            if problems == 1 { "" } else { "s" },
            paths.len(),
            if paths.len() == 1 { "" } else { "s" }
        );
        EXIT_ERROR
    }
}
