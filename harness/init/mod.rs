//! `zdt-check init`: writes a starter scenario for the user's own stack
//! (`app.kind = "external"`, `reload.strategy = "command"`), every key explained.
//!
//! The text lives in `template.toml` next to this file; the options are filled in as
//! TOML values (escaped by the `toml` crate), so any target or command stays valid TOML.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The starter scenario, with `{{NAME}}` placeholders.
pub const TEMPLATE: &str = include_str!("template.toml");

/// What to fill into the template.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// `http://HOST:PORT/` or `unix:/path.sock` (may contain `${ZDT_RUN_DIR}`).
    pub target: String,
    /// The command that brings up the stack, shell-like words; `None`: the key stays commented out.
    pub start: Option<String>,
    /// The deploy command, shell-like words.
    pub deploy: String,
}

/// Splits a command line into words like a POSIX shell does for quoting only:
/// whitespace separates words, `'...'` is literal, `"..."` allows `\"` and `\\`,
/// a backslash outside quotes escapes the next character. No expansion of any kind.
pub fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unbalanced ' in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unbalanced \" in `{s}`")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unbalanced \" in `{s}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(format!("trailing backslash in `{s}`")),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The target must be one the external app kind accepts (the scenario parser's own
/// rule: a loopback `http://IP:PORT/` or a `unix:` path), so the file parses as written.
fn check_target(t: &str) -> std::result::Result<(), String> {
    crate::app::external::check_target(t, false).map_err(|why| format!("--target `{t}`: {why}"))
}

fn command_array(flag: &str, cmd: &str) -> Result<String> {
    let words = split_words(cmd).map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
    if words.is_empty() {
        return Err(Error::Usage(format!("{flag}: empty command")));
    }
    Ok(toml::Value::Array(words.into_iter().map(toml::Value::String).collect()).to_string())
}

/// Renders the template for a scenario to be written at `path` (named in its header).
pub fn render(path: &Path, opts: &InitOptions) -> Result<String> {
    check_target(&opts.target).map_err(Error::Usage)?;
    let target = toml::Value::String(opts.target.clone()).to_string();
    let deploy = command_array("--deploy", &opts.deploy)?;
    let start = match &opts.start {
        Some(s) => format!("start = {}", command_array("--start", s)?),
        None => "# start = [\"./start.sh\"]".to_string(),
    };
    // The path only appears in a comment: keep it on one line.
    let shown: String = path
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let mut out = String::with_capacity(TEMPLATE.len() + 256);
    let mut rest = TEMPLATE;
    // One pass, so a value that happens to contain `{{...}}` is never substituted again.
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find("}}").expect("template placeholders are closed");
        out.push_str(match &after[..end] {
            "PATH" => &shown,
            "TARGET" => &target,
            "START" => &start,
            "DEPLOY" => &deploy,
            other => unreachable!("unknown template placeholder {other}"),
        });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes the rendered scenario. Without `force`, an existing file is an error
/// (exit 2) and nothing is written.
pub fn write(path: &Path, text: &str, force: bool) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{}: is a directory; give a file name, e.g. {}/zdt-scenario.toml",
            path.display(),
            path.display()
        )));
    }
    let mut f = if force {
        std::fs::File::create(path)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    }
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Usage(format!(
                "{}: already exists; nothing written (use --force to overwrite it)",
                path.display()
            ))
        } else {
            Error::io(path, e)
        }
    })?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// A program given with a `/` (relative to the scenario's directory) that does not exist
/// yet: worth a note, since the run would fail on it.
pub fn missing_program(scenario: &Path, cmd: &str) -> Option<PathBuf> {
    let program = split_words(cmd).ok()?.into_iter().next()?;
    if !program.contains('/') {
        return None;
    }
    let dir = scenario.parent().filter(|d| !d.as_os_str().is_empty());
    let full = match dir {
        Some(d) if !Path::new(&program).is_absolute() => d.join(&program),
        _ => PathBuf::from(&program),
    };
    (!full.exists()).then_some(full)
}

/// `s` as one shell word, for the "next, run:" hint (quoted only when it needs to be).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_quotes() {
        assert_eq!(
            split_words(r#"./deploy.sh --env 'c i' "a \"b\"" x\ y"#).unwrap(),
            vec!["./deploy.sh", "--env", "c i", "a \"b\"", "x y"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), vec![""]);
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert_eq!(shell_quote("a/b.toml"), "a/b.toml");
        assert_eq!(shell_quote("it's x"), r"'it'\''s x'");
        assert_eq!(split_words(&shell_quote("it's x")).unwrap(), vec!["it's x"]);
    }

    #[test]
    fn renders_valid_toml_with_escaped_values() {
        let opts = InitOptions {
            target: "unix:${ZDT_RUN_DIR}/a \"b\".sock".into(),
            start: Some(r#"bash -c 'exec x "$Y"'"#.into()),
            deploy: "./deploy.sh {{TARGET}} \\ back".into(),
        };
        let text = render(Path::new("x\ny.toml"), &opts).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["app"]["target"].as_str(), Some(opts.target.as_str()));
        assert_eq!(
            v["app"]["start"].as_array().unwrap()[2].as_str(),
            Some("exec x \"$Y\"")
        );
        let cmd: Vec<_> = v["reload"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(cmd, ["./deploy.sh", "{{TARGET}}", " back"]);
        assert!(!text.contains("{{PATH}}") && !text.contains("{{START}}"));
    }

    #[test]
    fn without_start_the_key_stays_commented() {
        let opts = InitOptions {
            target: "http://127.0.0.1:8000/".into(),
            start: None,
            deploy: "./deploy.sh".into(),
        };
        let v: toml::Value = toml::from_str(&render(Path::new("s.toml"), &opts).unwrap()).unwrap();
        assert!(v["app"].get("start").is_none());
        assert_eq!(v["app"]["kind"].as_str(), Some("external"));
    }

    /// Every key the template shows commented out is one the scenario parser accepts
    /// with that value: uncommenting any of them keeps the file valid.
    #[test]
    fn commented_out_keys_are_valid_too() {
        let opts = InitOptions {
            target: "unix:${ZDT_RUN_DIR}/app.sock".into(),
            start: None,
            deploy: "./deploy.sh".into(),
        };
        let text = render(Path::new("s.toml"), &opts).unwrap();
        let key = regex::Regex::new(r"^# ([a-z_]+ = .*)$").unwrap();
        let mut uncommented = 0;
        let all: String = text
            .lines()
            .map(|l| match key.captures(l) {
                Some(c) => {
                    uncommented += 1;
                    format!("{}\n", &c[1])
                }
                None => format!("{l}\n"),
            })
            .collect();
        assert!(uncommented >= 10, "{uncommented} keys found");
        let sc = crate::scenario::parse(Path::new("all.toml"), &all)
            .unwrap_or_else(|e| panic!("{e}\n{all}"));
        assert_eq!(sc.app.versions(), ["v1", "v2", "v3"]);
        assert_eq!(sc.deploys().len(), 2);
    }

    #[test]
    fn rejects_bad_targets_and_empty_commands() {
        let mut opts = InitOptions {
            target: "ftp://x".into(),
            start: None,
            deploy: "./deploy.sh".into(),
        };
        assert!(render(Path::new("s.toml"), &opts).is_err());
        for bad in [
            "http://example.com:80/",
            "http://10.0.0.1:80/",
            "http://127.0.0.1:80/x",
        ] {
            opts.target = bad.into();
            assert!(render(Path::new("s.toml"), &opts).is_err(), "{bad}");
        }
        opts.target = "http://127.0.0.1:8000/".into();
        opts.deploy = "  ".into();
        assert!(render(Path::new("s.toml"), &opts).is_err());
    }
}
