//! The crate's layers: each top-level module of harness/ imports only from modules in
//! layers below its own, so there is no import cycle and the load generator never
//! depends on what drives it. Read from the source (`crate::x` paths outside
//! `#[cfg(test)]`), so a contributor adding an upward import sees this test fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// From the bottom up; a module may import any module of a lower layer, none of its
/// own or a higher one. docs/architecture.md explains each layer.
const LAYERS: &[&[&str]] = &[
    &["error", "cancel"],
    &["config", "stats"],
    &["load"],
    &["websocket", "progress", "steps"],
    &["fixture", "sys"],
    &["front"],
    &["app"],
    &["strategy"],
    &["verdict"],
    &["scenario"],
    &["report"],
    &["run", "compare", "doctor", "init", "reference", "check"],
    &["cli"],
];

/// The top-level modules named by `crate::` paths in `src`.
fn imported(src: &str) -> BTreeSet<String> {
    let code: String = without_test_items(src)
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> Option<String> {
        let s = s.trim_start();
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (end > 0).then(|| s[..end].to_string())
    };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The top-level names of a `crate::{a, b::{c, d}}` group.
            let (mut depth, mut start) = (1, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => {
                        out.extend(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        out.extend(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.extend(ident(rest));
        }
    }
    out
}

/// `src` without the items under `#[cfg(test)]` (each up to its matching brace):
/// tests may compose the crate from any layer.
fn without_test_items(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let item = &rest[i..];
        let Some(open) = item.find('{') else {
            return out;
        };
        let mut depth = 0;
        let mut end = item.len();
        for (j, c) in item[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Each top-level module (a file or a folder under harness/) and what it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = first.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let mut deps = imported(&std::fs::read_to_string(&f).unwrap());
        deps.remove(&top);
        g.entry(top).or_default().extend(deps);
    }
    g
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn the_import_reader_sees_every_form_of_path() {
    let src = "use crate::a::B;\nuse crate::{b, c::{D, E}, d as f};\n// use crate::commented;\nfn x() { crate::e::run(); }\n#[cfg(test)]\nmod tests { use crate::only_in_tests; }\nuse crate::after_tests;\n";
    let got: Vec<String> = imported(src).into_iter().collect();
    assert_eq!(got, ["a", "after_tests", "b", "c", "d", "e"]);
}

#[test]
fn every_module_imports_only_from_layers_below_it() {
    let g = graph();
    assert!(g.len() >= 15, "read too few modules: {:?}", g.keys());
    let mut wrong = Vec::new();
    for (module, deps) in &g {
        let Some(here) = layer_of(module) else {
            wrong.push(format!(
                "`{module}` is in no layer: add it to LAYERS (and docs/architecture.md)"
            ));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                Some(there) if there < here => {}
                Some(there) => wrong.push(format!(
                    "`{module}` (layer {here}) imports `{dep}` (layer {there}): only lower layers may be imported"
                )),
                // A module in no layer is reported as its own entry.
                None => {}
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn an_upward_import_is_caught() {
    // The check itself must be able to fail: the load generator importing the run.
    let deps = imported("use crate::run::RunOptions;");
    let (load, run) = (layer_of("load").unwrap(), layer_of("run").unwrap());
    assert!(deps.contains("run") && run > load);
}
