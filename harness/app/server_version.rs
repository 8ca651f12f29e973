//! A pinned server version as a scenario parameter (`[app] server_version`): the
//! server is taken from a venv of its own, `<venv>-<package>-<version>` beside the
//! venv, with exactly that version installed. A user gating a server upgrade runs
//! the same scenario on both versions; `.ci/install-servers.sh` installs the
//! versions this repository's scenarios pin.

use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::config::AppTable;
use crate::error::{Error, Result};
use crate::sys::tools;

/// Digits and dots, as pip pins them ("0.50.0").
pub fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether the pinned `version` (none: the venv's, taken to be current) is at least
/// `min`, comparing numeric components ("20.1.0" < "25.1.0"): for a flag a server
/// gained in some release.
pub fn at_least(version: Option<&Spanned<String>>, min: &str) -> bool {
    let Some(v) = version else { return true };
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(v.get_ref()) >= parts(min)
}

/// Validates `app.server_version` for `package` (its program `program`): a version,
/// and its venv present, located in the scenario file by `at`.
pub fn validate(
    v: &Spanned<String>,
    configured: Option<&Path>,
    package: &str,
    program: &str,
    at: &AppTable,
) -> Result<()> {
    if !is_version(v.get_ref()) {
        return Err(at.error(
            v.span(),
            "app.server_version",
            &format!("{:?} is not a version like \"0.50.0\"", v.get_ref()),
        ));
    }
    versioned_venv(configured, package, program, v.get_ref())
        .map(|_| ())
        .map_err(|msg| at.error(v.span(), "app.server_version", &msg))
}

/// `program` from the venv of `package` `version` when one is pinned, else from the
/// venv (`configured`, else the one found).
pub fn program(
    pinned: Option<&Spanned<String>>,
    configured: Option<&Path>,
    package: &str,
    program: &str,
) -> Result<PathBuf> {
    match pinned {
        Some(v) => versioned_venv(configured, package, program, v.get_ref())
            .map(|d| d.join("bin").join(program))
            .map_err(|msg| Error::Harness(format!("app.server_version: {msg}"))),
        None => tools::require_venv_program(configured, program),
    }
}

/// The venv holding `package` `version`: `<venv>-<package>-<version>` beside the
/// venv (`configured`, else the one found), with that exact version installed and
/// `bin/<program>` in it; else what to do about it.
pub fn versioned_venv(
    configured: Option<&Path>,
    package: &str,
    program: &str,
    version: &str,
) -> std::result::Result<PathBuf, String> {
    let Some(base) = tools::venv(configured) else {
        return Err(format!(
            "{package} {version} is looked for in `<venv>-{package}-{version}` beside the venv, and no venv was found \
             (app.venv, $ZDT_VENV, or a .venv near the binary or the current directory): run `bash .ci/install-servers.sh`"
        ));
    };
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!("-{package}-{version}"));
    let dir = base.with_file_name(name);
    let how = format!(
        "run `bash .ci/install-servers.sh` (it installs the pinned versions), or \
         `python3 -m venv {d} && {d}/bin/pip install {package}=={version}`",
        d = dir.display()
    );
    let exe = dir.join("bin").join(program);
    if !exe.exists() {
        return Err(format!(
            "{package} {version} not found: no {} ({how})",
            exe.display()
        ));
    }
    if !has_dist_info(&dir, package, version) {
        return Err(format!(
            "{} has no {package} {version} installed ({how})",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Whether `venv` has `package==version` installed (its `.dist-info` directory).
fn has_dist_info(venv: &Path, package: &str, version: &str) -> bool {
    let Ok(libs) = std::fs::read_dir(venv.join("lib")) else {
        return false;
    };
    let dist = format!("{}-{version}.dist-info", package.replace('-', "_"));
    libs.flatten()
        .any(|py| py.path().join("site-packages").join(&dist).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_pip_pins_them() {
        assert!(is_version("0.50.0"));
        assert!(is_version("23.0.0"));
        for bad in ["", "0.50.", "v0.50", "0.50.0rc1", "../x"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn at_least_compares_numerically() {
        let v = |s: &str| Spanned::new(0..0, s.to_string());
        assert!(at_least(None, "25.1.0"));
        assert!(at_least(Some(&v("27.0.1")), "25.1.0"));
        assert!(at_least(Some(&v("25.1.0")), "25.1.0"));
        assert!(!at_least(Some(&v("20.1.0")), "25.1.0"));
        assert!(!at_least(Some(&v("9.0")), "25.1.0"));
    }

    /// Absent, present with another version, present with this one.
    #[test]
    fn the_venv_must_hold_exactly_that_version() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        let e = versioned_venv(Some(&venv), "uvicorn-worker", "x", "0.1.0").unwrap_err();
        assert!(e.contains("uvicorn-worker 0.1.0 not found"), "{e}");
        assert!(e.contains("venv-uvicorn-worker-0.1.0/bin/x"), "{e}");
        assert!(e.contains("install-servers.sh"), "{e}");
        let other = dir.path().join("venv-uvicorn-worker-0.1.0");
        let site = other.join("lib/python3.11/site-packages");
        std::fs::create_dir_all(other.join("bin")).unwrap();
        std::fs::write(other.join("bin/x"), "").unwrap();
        std::fs::create_dir_all(site.join("uvicorn_worker-0.2.0.dist-info")).unwrap();
        let e = versioned_venv(Some(&venv), "uvicorn-worker", "x", "0.1.0").unwrap_err();
        assert!(e.contains("has no uvicorn-worker 0.1.0 installed"), "{e}");
        std::fs::create_dir_all(site.join("uvicorn_worker-0.1.0.dist-info")).unwrap();
        assert_eq!(
            versioned_venv(Some(&venv), "uvicorn-worker", "x", "0.1.0").unwrap(),
            other
        );
    }
}
