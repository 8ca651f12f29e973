//! Located errors: byte spans of a scenario file turned into
//! `file:line:col: `table.key`: message` with the line quoted, so every user mistake
//! names the file, line and key.

use std::path::Path;

use toml::Spanned;

use crate::error::{Error, Result};

/// Turns byte spans into `file:line:col: field: message` errors.
pub struct Locator<'a> {
    /// The scenario file, as named in errors.
    pub path: &'a Path,
    /// Its text.
    pub src: &'a str,
}

impl Locator<'_> {
    /// A toml parse error, located.
    pub fn toml_error(&self, e: &toml::de::Error) -> Error {
        self.error(e.span().unwrap_or(0..0), None, e.message())
    }

    /// An error at `span`, naming `field` (or the key on that line).
    pub fn error(&self, span: std::ops::Range<usize>, field: Option<&str>, msg: &str) -> Error {
        let start = span.start.min(self.src.len());
        let before = &self.src[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.src[line_start..start].chars().count() + 1;
        let text = self.src[line_start..].lines().next().unwrap_or("");
        let field = field
            .map(str::to_string)
            .or_else(|| self.field_at(line_start, text));
        let field = field.map(|f| format!("`{f}`: ")).unwrap_or_default();
        let mut out = format!("{}:{line}:{col}: {field}{msg}", self.path.display());
        if !text.trim().is_empty() {
            out.push_str(&format!(
                "\n  {line:>4} | {text}\n       | {}^",
                " ".repeat(col.saturating_sub(1))
            ));
        }
        Error::Scenario(out)
    }

    /// Where the `[table]` header is written (not a mention in a comment); the file's
    /// start if it is not.
    pub fn table_at(&self, table: &str) -> std::ops::Range<usize> {
        let header = format!("[{table}]");
        let mut at = 0;
        for line in self.src.split_inclusive('\n') {
            let text = line.trim_start();
            if text.starts_with(&header) {
                let start = at + (line.len() - text.len());
                return start..start;
            }
            at += line.len();
        }
        0..0
    }

    /// Where the value of `key` in `[table]` is written (a `key = value` line under the
    /// header); the header if it is not found that way.
    pub fn key_at(&self, table: &str, key: &str) -> std::ops::Range<usize> {
        let head = self.table_at(table);
        let mut at = head.start;
        for (i, line) in self.src[head.start..].split_inclusive('\n').enumerate() {
            let text = line.trim_start();
            if i > 0 && text.starts_with('[') {
                break;
            }
            if let Some((k, v)) = text.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    let value = at + line.len() - v.trim_start().len();
                    return value..value;
                }
            }
            at += line.len();
        }
        head
    }

    /// `table.key` for the `key = value` line starting at `line_start`.
    fn field_at(&self, line_start: usize, text: &str) -> Option<String> {
        let key = text.split_once('=')?.0.trim().trim_matches('"');
        if key.is_empty() || key.starts_with('[') {
            return None;
        }
        let table = self.src[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('[') && !l.starts_with("[["))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        Some(match table {
            Some(t) => format!("{t}.{key}"),
            None => key.to_string(),
        })
    }
}

/// Checks that `v` is one of `allowed`.
pub fn one_of(loc: &Locator, v: &Spanned<String>, field: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&v.get_ref().as_str()) {
        Ok(())
    } else {
        Err(not_one_of(loc, v, field, allowed))
    }
}

/// The error for a value not in `allowed`.
pub fn not_one_of(loc: &Locator, v: &Spanned<String>, field: &str, allowed: &[&str]) -> Error {
    loc.error(
        v.span(),
        Some(field),
        &format!(
            "unknown value {:?}; expected one of: {}",
            v.get_ref(),
            allowed.join(", ")
        ),
    )
}
