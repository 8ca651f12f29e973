//! Where a program named in a scenario (`app.start`, `app.stop`, `reload.command`) is
//! found, and, when it is not, why, in words that say how program paths are resolved.
//!
//! The rule is exec's, on the path zdt-check hands it ([`resolve`]): an absolute path
//! is taken as is; a relative path with a `/` (`./deploy.sh`, `bin/deploy`) is taken
//! from the scenario file's directory (also the command's working directory); a bare
//! name (`deploy.sh`) is looked up on PATH only, never in the scenario's directory.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The path zdt-check spawns for `argv0`: relative to `dir` (the scenario's
/// directory) if it has a `/` and is not absolute; as given otherwise (an absolute
/// path, or a bare name that exec looks up on PATH).
pub fn resolve(argv0: &str, dir: &Path) -> PathBuf {
    let p = Path::new(argv0);
    if p.is_absolute() || !argv0.contains('/') {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// The file exec would run for `argv0` named in a scenario in `dir`, or why there is
/// none, with the rule that was applied. `path_var` is the PATH the command gets, if
/// the scenario sets its own (else zdt-check's).
pub fn locate(argv0: &str, dir: &Path, path_var: Option<&OsStr>) -> Result<PathBuf, String> {
    if argv0.is_empty() {
        return Err("the program is empty".into());
    }
    if argv0.contains('/') {
        // `dir/./x` is shown as `dir/x`: the same file.
        let p: PathBuf = resolve(argv0, dir).components().collect();
        return match runnable(&p) {
            Ok(()) => Ok(p),
            Err(why) if Path::new(argv0).is_absolute() => Err(format!("{argv0} {why}")),
            Err(why) => Err(format!(
                "{} {why} (a relative path with a `/`, like {argv0:?}, is taken from the scenario's directory, {}; a bare name is looked up on PATH)",
                p.display(),
                dir.display()
            )),
        };
    }
    let path = path_var
        .map(OsStr::to_os_string)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut not_runnable = None;
    for d in std::env::split_paths(&path) {
        // An empty PATH entry is the working directory: the scenario's.
        let p = if d.as_os_str().is_empty() {
            dir.join(argv0)
        } else {
            d.join(argv0)
        };
        match runnable(&p) {
            Ok(()) => return Ok(p),
            Err(why) if p.exists() => not_runnable = not_runnable.or(Some((p, why))),
            Err(_) => {}
        }
    }
    if let Some((p, why)) = not_runnable {
        return Err(format!("{argv0} on PATH is {}, which {why}", p.display()));
    }
    let mut why = format!(
        "{argv0:?} is not on PATH: a bare program name is looked up on PATH only (a relative path with a `/`, like \"./{argv0}\", is taken from the scenario's directory, {})",
        dir.display()
    );
    if dir.join(argv0).is_file() {
        why.push_str(&format!(
            "; {argv0} is beside the scenario: write \"./{argv0}\""
        ));
    }
    Err(why)
}

/// Whether `p` is a file exec can run; else why not.
fn runnable(p: &Path) -> Result<(), &'static str> {
    match std::fs::metadata(p) {
        Err(_) => Err("does not exist"),
        Ok(m) if m.is_dir() => Err("is a directory"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Err("is not executable (chmod +x it, or name its interpreter first: [\"sh\", \"./deploy.sh\"])")
        }
        Ok(_) => Ok(()),
    }
}

/// `e`, a failure to start `argv0`, with how program paths are resolved when `argv0`
/// does not resolve to a program that can run (see [`locate`]).
pub fn explain_spawn_error(e: Error, argv0: &str, dir: &Path, path_var: Option<&OsStr>) -> Error {
    match (e, locate(argv0, dir, path_var)) {
        (
            Error::Child {
                what,
                why,
                log_tail,
            },
            Err(how),
        ) => Error::Child {
            what,
            why: format!("{why}: {how}"),
            log_tail,
        },
        (e, _) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_for_each_form_of_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let script = d.join("start.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(locate("./start.sh", d, None).unwrap(), script);
        assert_eq!(locate(script.to_str().unwrap(), d, None).unwrap(), script);
        let e = locate("start.sh", d, Some(OsStr::new("/nonexistent"))).unwrap_err();
        assert!(e.contains("is not on PATH"), "{e}");
        assert!(e.contains("write \"./start.sh\""), "{e}");
        let e = locate("./nope.sh", d, None).unwrap_err();
        assert!(
            e.contains("does not exist") && e.contains("scenario's directory"),
            "{e}"
        );
        let e = locate("nope-zdt", d, Some(OsStr::new("/nonexistent"))).unwrap_err();
        assert!(!e.contains("beside the scenario"), "{e}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = locate("./start.sh", d, None).unwrap_err();
        assert!(e.contains("is not executable"), "{e}");
        assert_eq!(locate("sh", d, None).unwrap().file_name().unwrap(), "sh");
    }
}
