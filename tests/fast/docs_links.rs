//! Every relative link in README.md and docs/**/*.md points at something that exists,
//! and every `#fragment` into a Markdown file names one of its headings.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// README.md and every `.md` file under docs/, sorted.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut files);
    files.sort();
    files
}

/// The text outside fenced code blocks and code spans, line by line, with line
/// numbers (code is not Markdown: `[a](b)` in code is not a link). A code span may
/// run over a line break; one left open ends with its paragraph.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut open_ticks = 0usize; // the length of the backtick run that opened a code span
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if line.trim().is_empty() {
            open_ticks = 0;
        }
        let mut kept = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '`' {
                kept.push(if open_ticks == 0 { c } else { ' ' });
                continue;
            }
            let mut run = 1;
            while chars.peek() == Some(&'`') {
                chars.next();
                run += 1;
            }
            if open_ticks == 0 {
                open_ticks = run;
            } else if open_ticks == run {
                open_ticks = 0;
            }
            kept.push(' ');
        }
        out.push((i + 1, kept));
    }
    out
}

/// The targets of the inline links `[text](target)` on one line of prose.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        // The target ends at the matching `)`; a title (`(url "title")`) ends at a space.
        let mut depth = 0usize;
        let mut end = after.len();
        for (k, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = k;
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let target = after[..end].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        out.push(target.to_string());
        rest = &after[end.min(after.len())..];
    }
    out
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, every other character
/// that is not a letter, a digit, `-` or `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (`# ...` to `###### ...`, outside code
/// blocks); a repeated heading gets `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        let Some(title) = line[hashes..].strip_prefix(' ') else {
            continue;
        };
        if hashes > 6 {
            continue;
        }
        let base = slug(title.trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Every broken relative link in `file`, as `file:line: target (why)`.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let dir = file.parent().expect("a file has a directory");
    let mut broken = Vec::new();
    for (line_no, line) in prose_lines(&text) {
        for target in link_targets(&line) {
            let lower = target.to_lowercase();
            if lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("mailto:")
            {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                dir.join(path)
            };
            if target.is_empty() || !resolved.exists() {
                broken.push(format!("{shown}:{line_no}: ({target}): no such file"));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            if resolved.extension().is_some_and(|e| e == "md") && resolved.is_file() {
                let into = fs::read_to_string(&resolved).unwrap_or_default();
                if !anchors(&into).contains(fragment) {
                    broken.push(format!(
                        "{shown}:{line_no}: ({target}): no heading #{fragment}"
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = doc_files(root);
    assert!(files.len() > 1, "found no docs/**/*.md next to README.md");
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(root, f)).collect();
    assert!(
        broken.is_empty(),
        "{} broken link(s) in the docs:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn slugs_and_links_are_read_as_github_does() {
    assert_eq!(slug("Set up and run"), "set-up-and-run");
    assert_eq!(
        slug("`[app]`: the app under test"),
        "app-the-app-under-test"
    );
    assert_eq!(
        slug("haproxy-pool across several hosts (test hosts, needs root)"),
        "haproxy-pool-across-several-hosts-test-hosts-needs-root"
    );
    assert_eq!(
        link_targets("see [a](x.md#b) and [c](../d/e.md \"t\"), [f](g(h).md)"),
        ["x.md#b", "../d/e.md", "g(h).md"]
    );
    // A code span may run over a line break; a link inside it is not a link.
    let code = prose_lines("a `x\n[l](t)` and [m](u)\n");
    let found: Vec<String> = code.iter().flat_map(|(_, l)| link_targets(l)).collect();
    assert_eq!(found, ["u"]);
    let text = "# T\n```\n# not a heading\n```\n## Twice\n## Twice\n";
    let got = anchors(text);
    assert!(got.contains("t") && got.contains("twice") && got.contains("twice-1"));
    assert!(!got.contains("not-a-heading"));
}
