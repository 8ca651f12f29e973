//! docs/reference.md's generated `[app]` and `[reload]` blocks are exactly what the
//! registries (`app::KINDS`, `strategy::REGISTRY`, the common keys' docs) generate,
//! and `zdt-check explain` prints the same docs in the terminal.
//!
//! When a strategy or an app kind, or one of their options, changes, regenerate the
//! blocks (between `<!-- BEGIN GENERATED: … -->` and `<!-- END GENERATED: … -->`) with
//!
//!     ZDT_BLESS=1 cargo test --test main -- fast::reference
//!
//! which rewrites docs/reference.md in place.

use crate::util::{bin, dump, repo};
use zdt_check::reference;

#[test]
fn generated_blocks_are_up_to_date() {
    let path = repo().join("docs/reference.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let want = reference::splice(&doc).unwrap_or_else(|e| panic!("docs/reference.md: {e}"));
    if doc == want {
        return;
    }
    if std::env::var_os("ZDT_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let first = doc
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .map_or(doc.lines().count().min(want.lines().count()), |i| i);
    panic!(
        "docs/reference.md's generated blocks differ from the registries (first at line {}):\n  committed: {:?}\n  generated: {:?}\nregenerate with: {}",
        first + 1,
        doc.lines().nth(first).unwrap_or(""),
        want.lines().nth(first).unwrap_or(""),
        reference::REGENERATE
    );
}

#[test]
fn explain_a_strategy() {
    let out = bin().args(["explain", "symlink-swap"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("strategy symlink-swap: "), "{text}");
    assert!(
        text.contains("settle (default: \"500ms\")") && text.contains("unlink-then-link"),
        "{text}"
    );
}

#[test]
fn explain_a_key_lists_every_entry_that_has_it() {
    let out = bin().args(["explain", "stop_old"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for s in [
        "symlink-swap",
        "naive-restart",
        "nginx-reload",
        "haproxy-pool",
    ] {
        assert!(
            text.contains(&format!("reload.stop_old (strategy {s};")),
            "{text}"
        );
    }
    let out = bin().args(["explain", "app.workers"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("app kind gunicorn") && text.contains("app kind uwsgi"),
        "{text}"
    );
}

#[test]
fn explain_an_unknown_name_exits_2() {
    let out = bin().args(["explain", "teleport"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "unknown strategy, app kind or key \"teleport\"; known: strategies: symlink-swap,"
        ),
        "{err}"
    );
    assert!(
        err.contains("reload.settle") && err.contains("app.workers"),
        "{err}"
    );
}
