//! The `[app]` and `[reload]` reference, generated from the registries
//! ([`app::KINDS`], [`strategy::REGISTRY`] and the common keys' docs next to
//! `AppConfig` and `ReloadConfig`): as Markdown for docs/reference.md, and as plain
//! text for `zdt-check explain NAME`.
//!
//! docs/reference.md holds the Markdown between marker comments
//! (`<!-- BEGIN GENERATED: app (zdt-check reference) -->` … `<!-- END GENERATED: app -->`,
//! the same for `reload`); the fast-tier test `fast::reference` fails when they differ
//! from what the registries generate. Regenerate them with
//!
//! ```sh
//! ZDT_BLESS=1 cargo test --test main -- fast::reference
//! ```

use crate::app::{self, AppKindEntry};
use crate::config::OptionDoc;
use crate::strategy::{self, Entry};
use crate::sys::tools::Tool;

/// How to regenerate the blocks in docs/reference.md.
pub const REGENERATE: &str = "ZDT_BLESS=1 cargo test --test main -- fast::reference";

/// The names of the generated blocks, in the order they appear in docs/reference.md.
pub const BLOCKS: &[&str] = &["app", "reload"];

/// The comment that opens generated block `name`.
pub fn begin_marker(name: &str) -> String {
    format!("<!-- BEGIN GENERATED: {name} (zdt-check reference) -->")
}

/// The comment that closes generated block `name`.
pub fn end_marker(name: &str) -> String {
    format!("<!-- END GENERATED: {name} -->")
}

/// The Markdown of generated block `name` (one of [`BLOCKS`]).
pub fn block(name: &str) -> Option<String> {
    match name {
        "app" => Some(app_markdown()),
        "reload" => Some(reload_markdown()),
        _ => None,
    }
}

/// `doc` with every generated block's content replaced by what the registries
/// generate now; an error if a block's markers are missing.
pub fn splice(doc: &str) -> Result<String, String> {
    let mut out = doc.to_string();
    for name in BLOCKS {
        let (begin, end) = (begin_marker(name), end_marker(name));
        let start = out
            .find(&begin)
            .ok_or_else(|| format!("no `{begin}` marker"))?
            + begin.len();
        let stop = out[start..]
            .find(&end)
            .ok_or_else(|| format!("no `{end}` marker after `{begin}`"))?
            + start;
        let body = block(name).unwrap_or_default();
        out.replace_range(start..stop, &format!("\n\n{body}\n"));
    }
    Ok(out)
}

/// A Markdown table cell: pipes escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A `key | default | meaning` table.
fn options_table(docs: &[OptionDoc]) -> String {
    if docs.is_empty() {
        return "No options of its own.\n".into();
    }
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for d in docs {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            d.key,
            cell(d.default),
            cell(d.doc)
        ));
    }
    out
}

/// `s` with its first letter upper-case (a summary opening a paragraph).
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Tool names, or `nothing`.
fn tools(tools: &[Tool]) -> String {
    if tools.is_empty() {
        "nothing".into()
    } else {
        tools
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The app kinds whose instances zdt-check starts (where the instance keys apply).
fn starting_kinds() -> Vec<&'static str> {
    app::KINDS
        .iter()
        .filter(|k| k.starts_instances)
        .map(|k| k.name)
        .collect()
}

/// The strategies that work with app kind `kind`.
fn strategies_for(kind: &str) -> Vec<&'static str> {
    strategy::REGISTRY
        .iter()
        .filter(|s| s.app_kinds.contains(&kind))
        .map(|s| s.name)
        .collect()
}

/// Which app kinds a common `[app]` key applies to.
fn common_app_key_kinds(key: &str) -> String {
    if app::INSTANCE_KEYS.contains(&key) {
        starting_kinds().join(", ")
    } else {
        "all".into()
    }
}

/// The `[app]` reference: the common keys, then each app kind.
pub fn app_markdown() -> String {
    let mut out =
        String::from("Common keys:\n\n| key | default | kinds | meaning |\n|---|---|---|---|\n");
    for d in app::config::COMMON_DOCS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.key,
            cell(d.default),
            common_app_key_kinds(d.key),
            cell(d.doc)
        ));
    }
    for k in app::KINDS {
        out.push_str(&format!(
            "\n#### `{}`\n\n{}.\n\n",
            k.name,
            sentence(k.summary)
        ));
        out.push_str(&format!("- needs installed: {}\n", tools(k.tools)));
        out.push_str(&format!(
            "- needs `[front]`: {}\n",
            if k.needs_front.is_some() { "yes" } else { "no" }
        ));
        out.push_str(&format!(
            "- instances started by zdt-check: {}\n",
            if k.starts_instances { "yes" } else { "no" }
        ));
        out.push_str(&format!(
            "- strategies: {}\n\n",
            strategies_for(k.name)
                .iter()
                .map(|s| format!("[{s}](strategies/{s}.md)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str(&options_table(k.options));
    }
    out
}

/// The `[reload]` reference: the common keys, then each strategy.
pub fn reload_markdown() -> String {
    let mut out = String::from("Common keys:\n\n");
    out.push_str(&options_table(strategy::config::COMMON_DOCS));
    for s in strategy::REGISTRY {
        out.push_str(&format!(
            "\n#### `{}`\n\n{}; see [{}](strategies/{}.md).\n\n",
            s.name,
            sentence(s.summary),
            s.name,
            s.name
        ));
        out.push_str(&format!("- app kinds: {}\n", s.app_kinds.join(", ")));
        out.push_str(&format!(
            "- needs `[front]`: {}\n",
            if s.needs_front.is_some() { "yes" } else { "no" }
        ));
        out.push_str(&format!(
            "- needs installed (besides the app kind's and the front server's): {}\n\n",
            tools(s.tools)
        ));
        out.push_str(&options_table(s.options));
    }
    out
}

/// Markdown made terminal text: `` ` `` dropped, `[text](target)` as `text (target)`
/// (a relative target is under docs/).
fn plain(md: &str) -> String {
    let mut out = String::new();
    let mut rest = md;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| m + open) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| c + mid) else {
            break;
        };
        let target = &rest[mid + 2..close];
        let target = if target.contains("://") {
            target.to_string()
        } else {
            format!("docs/{target}")
        };
        out.push_str(&rest[..open]);
        out.push_str(&format!("{} ({target})", &rest[open + 1..mid]));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out.replace('`', "")
}

/// One key as terminal text: `section.key = default` then its meaning.
fn plain_option(section: &str, owner: &str, d: &OptionDoc) -> String {
    format!(
        "{section}.{} ({owner}; default: {})\n    {}\n",
        d.key,
        plain(d.default),
        plain(d.doc)
    )
}

/// The options of one entry as indented terminal text.
fn plain_options(section: &str, docs: &[OptionDoc]) -> String {
    if docs.is_empty() {
        return format!("  no [{section}] options of its own\n");
    }
    let mut out = format!("  [{section}] options:\n");
    for d in docs {
        out.push_str(&format!(
            "    {} (default: {})\n        {}\n",
            d.key,
            plain(d.default),
            plain(d.doc)
        ));
    }
    out
}

/// A strategy as terminal text.
fn explain_strategy(s: &Entry) -> String {
    format!(
        "strategy {}: {}\n  app kinds: {}\n  needs [front]: {}\n  needs installed (besides the app kind's and the front server's): {}\n  page: docs/strategies/{}.md\n{}",
        s.name,
        plain(s.summary),
        s.app_kinds.join(", "),
        if s.needs_front.is_some() { "yes" } else { "no" },
        tools(s.tools),
        s.name,
        plain_options("reload", s.options)
    )
}

/// An app kind as terminal text.
fn explain_kind(k: &AppKindEntry) -> String {
    format!(
        "app kind {}: {}\n  needs installed: {}\n  needs [front]: {}\n  instances started by zdt-check: {}\n  strategies: {}\n{}",
        k.name,
        plain(k.summary),
        tools(k.tools),
        if k.needs_front.is_some() { "yes" } else { "no" },
        if k.starts_instances { "yes" } else { "no" },
        strategies_for(k.name).join(", "),
        plain_options("app", k.options)
    )
}

/// Every entry that has `key` in `section` (`app` or `reload`), as terminal text.
fn explain_key(section: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if section == "app" {
        if let Some(d) = app::config::COMMON_DOCS.iter().find(|d| d.key == key) {
            let owner = match common_app_key_kinds(key).as_str() {
                "all" => "every app kind".to_string(),
                kinds => format!("app kinds {kinds}"),
            };
            out.push(plain_option("app", &owner, d));
        }
        for k in app::KINDS {
            if let Some(d) = k.options.iter().find(|d| d.key == key) {
                out.push(plain_option("app", &format!("app kind {}", k.name), d));
            }
        }
    } else {
        if let Some(d) = strategy::config::COMMON_DOCS.iter().find(|d| d.key == key) {
            out.push(plain_option("reload", "every strategy", d));
        }
        for s in strategy::REGISTRY {
            if let Some(d) = s.options.iter().find(|d| d.key == key) {
                out.push(plain_option("reload", &format!("strategy {}", s.name), d));
            }
        }
    }
    out
}

/// Every documented key of `section`, as `section.key`, without repeats.
fn known_keys(section: &str) -> Vec<String> {
    let docs: Vec<&OptionDoc> = if section == "app" {
        app::config::COMMON_DOCS
            .iter()
            .chain(app::KINDS.iter().flat_map(|k| k.options))
            .collect()
    } else {
        strategy::config::COMMON_DOCS
            .iter()
            .chain(strategy::REGISTRY.iter().flat_map(|s| s.options))
            .collect()
    };
    let mut keys: Vec<String> = Vec::new();
    for d in docs {
        let k = format!("{section}.{}", d.key);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// `zdt-check explain NAME`: the docs of a strategy, an app kind, or a key
/// (`reload.settle`, `app.workers`, or a bare `settle`: every entry that has it), as
/// terminal text; an error naming what is known if `name` is none of them.
pub fn explain(name: &str) -> Result<String, String> {
    if let Some(s) = strategy::find(name) {
        return Ok(explain_strategy(s));
    }
    if let Some(k) = app::find_kind(name) {
        return Ok(explain_kind(k));
    }
    let (sections, key): (&[&str], &str) = match name.split_once('.') {
        Some(("app", key)) => (&["app"], key),
        Some(("reload", key)) => (&["reload"], key),
        _ => (&["app", "reload"], name),
    };
    let found: Vec<String> = sections
        .iter()
        .flat_map(|section| explain_key(section, key))
        .collect();
    if !found.is_empty() {
        return Ok(found.join(""));
    }
    let names = |v: Vec<&str>| v.join(", ");
    Err(format!(
        "unknown strategy, app kind or key {name:?}; known: strategies: {}; app kinds: {}; keys: {}",
        names(strategy::REGISTRY.iter().map(|s| s.name).collect()),
        names(app::KINDS.iter().map(|k| k.name).collect()),
        known_keys("app")
            .into_iter()
            .chain(known_keys("reload"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_and_key_has_a_section() {
        let app = app_markdown();
        let reload = reload_markdown();
        for k in app::KINDS {
            assert!(app.contains(&format!("#### `{}`", k.name)), "{}", k.name);
        }
        for s in strategy::REGISTRY {
            assert!(
                reload.contains(&format!("(strategies/{}.md)", s.name)),
                "{}",
                s.name
            );
        }
        assert!(reload.contains("| `settle` | `\"500ms\"` |"));
    }

    #[test]
    fn explain_finds_names_and_keys() {
        assert!(explain("symlink-swap")
            .unwrap()
            .starts_with("strategy symlink-swap: "));
        assert!(explain("gunicorn")
            .unwrap()
            .starts_with("app kind gunicorn: "));
        let settle = explain("reload.settle").unwrap();
        assert!(settle.contains("strategy symlink-swap"), "{settle}");
        let workers = explain("workers").unwrap();
        assert!(
            workers.contains("app kind gunicorn") && workers.contains("app kind uwsgi"),
            "{workers}"
        );
        assert_eq!(explain("app.workers").unwrap(), workers);
        let e = explain("teleport").unwrap_err();
        assert!(e.starts_with("unknown ") && e.contains("; known: "), "{e}");
        assert!(explain("app.settle").is_err());
    }

    #[test]
    fn splice_replaces_only_the_blocks() {
        let doc = format!(
            "a\n{}\nSTALE\n{}\nb\n{}\n{}\nc\n",
            begin_marker("app"),
            end_marker("app"),
            begin_marker("reload"),
            end_marker("reload")
        );
        let out = splice(&doc).unwrap();
        assert!(out.starts_with("a\n") && out.ends_with("\nc\n"), "{out}");
        assert!(!out.contains("STALE") && out.contains("#### `builtin`"));
        assert_eq!(splice(&out).unwrap(), out);
        assert!(splice("nothing").is_err());
    }
}
