//! uvicorn as an app instance: the sample ASGI app (asgi_app.py) under the real
//! `uvicorn` command, with N workers under uvicorn's own supervisor process (which
//! holds the listening socket), a readiness datagram from each worker once it has
//! imported the app (asgi_app.py sends it at lifespan startup), and optionally a
//! pinned uvicorn version from its own venv (`server_version`).
//!
//! With `workers = 1` uvicorn runs no supervisor: the one process serves, and its
//! SIGHUP is the default action (it exits). That is uvicorn's, not ours.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::net::UnixDatagram;
use toml::Spanned;

use super::{python, AppConfig, AppEnv, AppKind, Launch, Spawned};
use crate::config::{AppTable, OptionDoc};
use crate::error::{Error, Result};
use crate::sys::child::Child;
use crate::sys::tools::{self, Tool};

/// The `uvicorn` app kind: the sample ASGI app under uvicorn.
pub struct Uvicorn;

/// The app `module` when the scenario names none: the embedded sample ASGI app.
pub const SAMPLE_MODULE: &str = "asgi_app:app";

/// `[app]` options of a uvicorn app (besides the common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// `--workers`: worker processes per instance, 1 to 64 (default 2). With 1 uvicorn
    /// runs the server in its own process, without a supervisor.
    pub workers: Spanned<u32>,
    /// A uvicorn version, e.g. "0.50.0": its venv is `<venv>-uvicorn-<version>` beside
    /// the venv (`.ci/install-servers.sh` installs the pinned ones); default: the
    /// venv's own uvicorn.
    pub server_version: Option<Spanned<String>>,
    /// The ASGI app as `module:attribute` (default `asgi_app:app`, the sample app),
    /// imported from the sample apps' directory or the venv.
    pub module: Spanned<String>,
    /// A venv with uvicorn (default: $ZDT_VENV, or a `.venv` near the binary or the
    /// current directory).
    pub venv: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: Spanned::new(0..0, 2),
            server_version: None,
            module: Spanned::new(0..0, SAMPLE_MODULE.into()),
            venv: None,
        }
    }
}

impl AppKind for Uvicorn {
    const NAME: &'static str = "uvicorn";
    const SUMMARY: &'static str = "the sample ASGI app under uvicorn, N workers under its supervisor, each reporting when it has imported the app";
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc::new("workers", "`2`", "`--workers`: worker processes per instance (1 to 64); with 1 uvicorn runs no supervisor, and SIGHUP ends it"),
        OptionDoc::new("server_version", "the venv's", "a pinned uvicorn version, e.g. `\"0.50.0\"`, taken from its own venv `<venv>-uvicorn-<version>` beside the venv (`bash .ci/install-servers.sh` installs 0.50.0 there); a scenario run on two versions gates a server upgrade"),
        OptionDoc::new("module", "`\"asgi_app:app\"`", "the ASGI app as `module:attribute`, imported from the sample apps' directory or the venv; its workers must send the readiness datagram at lifespan startup, as the sample `asgi_app.py` does"),
        OptionDoc::new("venv", "—", "a venv with uvicorn, also handed to commands as `$ZDT_VENV` (default: `$ZDT_VENV`, or a `.venv` near the binary or the current directory)"),
    ];
    const TOOLS: &'static [Tool] = &[Tool::Uvicorn];
    const WEBSOCKETS: bool = true;
    type Options = Options;

    fn validate(o: &Options, _app: &AppConfig<()>, at: &AppTable) -> Result<()> {
        super::check_workers(&o.workers, at)?;
        let m = o.module.get_ref();
        if !is_module_ref(m) {
            return Err(at.error(
                o.module.span(),
                "app.module",
                &format!("{m:?} is not `module:attribute` (e.g. \"asgi_app:app\")"),
            ));
        }
        if let Some(v) = &o.server_version {
            if !is_version(v.get_ref()) {
                return Err(at.error(
                    v.span(),
                    "app.server_version",
                    &format!("{:?} is not a version like \"0.50.0\"", v.get_ref()),
                ));
            }
            versioned_venv(o.venv.as_deref(), v.get_ref())
                .map_err(|msg| at.error(v.span(), "app.server_version", &msg))?;
        }
        Ok(())
    }

    fn venv(o: &Options) -> Option<&Path> {
        o.venv.as_deref()
    }

    fn set_workers(o: &mut Options, n: u32) -> bool {
        o.workers = Spanned::new(0..0, n);
        true
    }

    fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<Spawned> {
        let (child, ready) = spawn(o, env, l)?;
        Ok(Spawned {
            child,
            ready_rx: Some(ready),
            uwsgi: None,
        })
    }
}

impl AppConfig {
    /// The uvicorn options (an error if the app is of another kind).
    pub fn uvicorn(&self) -> Result<&Options> {
        self.kind_options::<Uvicorn>()
    }
}

/// `module:attribute`, each a dotted Python name.
fn is_module_ref(s: &str) -> bool {
    let ident = |p: &str| {
        !p.is_empty()
            && p.split('.').all(|w| {
                w.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && w.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    matches!(s.split_once(':'), Some((m, a)) if ident(m) && ident(a))
}

/// Digits and dots, as pip pins them ("0.50.0").
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The venv holding uvicorn `version`: `<venv>-uvicorn-<version>` beside the venv
/// (`configured`, else the one found), with that exact version installed; else what to
/// do about it.
pub fn versioned_venv(
    configured: Option<&Path>,
    version: &str,
) -> std::result::Result<PathBuf, String> {
    let Some(base) = tools::venv(configured) else {
        return Err(format!(
            "uvicorn {version} is looked for in `<venv>-uvicorn-{version}` beside the venv, and no venv was found \
             (app.venv, $ZDT_VENV, or a .venv near the binary or the current directory): run `bash .ci/install-servers.sh`"
        ));
    };
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!("-uvicorn-{version}"));
    let dir = base.with_file_name(name);
    let how = format!(
        "run `bash .ci/install-servers.sh` (it installs the pinned versions), or \
         `python3 -m venv {d} && {d}/bin/pip install uvicorn=={version}`",
        d = dir.display()
    );
    if !dir.join("bin/uvicorn").exists() {
        return Err(format!(
            "uvicorn {version} not found: no {} ({how})",
            dir.join("bin/uvicorn").display()
        ));
    }
    if !has_dist_info(&dir, "uvicorn", version) {
        return Err(format!(
            "{} has no uvicorn {version} installed ({how})",
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
    libs.flatten().any(|py| {
        py.path()
            .join("site-packages")
            .join(format!("{package}-{version}.dist-info"))
            .is_dir()
    })
}

/// The uvicorn program an instance runs: the pinned version's venv, or the venv's.
fn program(o: &Options) -> Result<PathBuf> {
    match &o.server_version {
        Some(v) => versioned_venv(o.venv.as_deref(), v.get_ref())
            .map(|d| d.join("bin/uvicorn"))
            .map_err(|msg| Error::Harness(format!("app.server_version: {msg}"))),
        None => tools::require_venv_program(o.venv.as_deref(), "uvicorn"),
    }
}

/// Spawns uvicorn for `l.slot`; returns its process (the supervisor, or the one server
/// with `workers = 1`) and the bound readiness socket.
pub fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<(Child, UnixDatagram)> {
    let c = &env.config;
    let uvicorn = program(o)?;
    let py = python::write_app_dir(&env.run_dir)?;
    let (ready, ready_var) = python::ready_socket(env, l.slot)?;
    let mut args = vec![
        o.module.get_ref().clone(),
        "--app-dir".into(),
        py.display().to_string(),
        "--workers".into(),
        o.workers.get_ref().to_string(),
        // The pure-Python stack: no uvloop/httptools even where they are installed.
        "--loop".into(),
        "asyncio".into(),
        "--http".into(),
        "h11".into(),
        "--lifespan".into(),
        "on".into(),
        "--no-access-log".into(),
        "--timeout-graceful-shutdown".into(),
        c.stop_timeout.0.as_secs().max(1).to_string(),
    ];
    args.extend(python::bind_args(l.endpoint));
    let mut envs = python::app_env(l.version_file, c.startup_delay());
    envs.push(ready_var);
    let child = Child::spawn(l.name, &uvicorn, &args, &envs, &env.run_dir, l.log)?;
    Ok((child, ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(app: &str) -> Result<crate::scenario::Scenario> {
        crate::scenario::parse(
            Path::new("s.toml"),
            &format!("[app]\nkind = \"uvicorn\"\n{app}[reload]\nstrategy = \"uvicorn-hup\"\n"),
        )
    }

    #[test]
    fn names_and_versions() {
        assert!(is_module_ref("asgi_app:app"));
        assert!(is_module_ref("pkg.mod:app_1"));
        for bad in ["asgi_app", ":app", "a:", "a b:c", "1a:b", "a:b:c"] {
            assert!(!is_module_ref(bad), "{bad}");
        }
        assert!(is_version("0.50.0"));
        for bad in ["", "0.50.", "v0.50", "0.50.0rc1", "../x"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn options_and_their_errors() {
        let s = parse("workers = 3\n").unwrap();
        let o = s.app.uvicorn().unwrap();
        assert_eq!(*o.workers.get_ref(), 3);
        assert_eq!(o.module.get_ref(), SAMPLE_MODULE);
        let e = parse("workers = 0\n").unwrap_err().to_string();
        assert!(e.starts_with("s.toml:3:11: `app.workers`"), "{e}");
        let e = parse("module = \"asgi_app\"\n").unwrap_err().to_string();
        assert!(e.starts_with("s.toml:3:10: `app.module`"), "{e}");
        let e = parse("server_version = \"latest\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:3:18: `app.server_version`: \"latest\" is not a version"),
            "{e}"
        );
    }

    /// A pinned version whose venv is absent: the key, where the venv was looked for,
    /// and how to install it.
    #[test]
    fn a_missing_version_venv_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        let e = parse(&format!(
            "venv = \"{}\"\nserver_version = \"0.1.0\"\n",
            venv.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml:4:18: `app.server_version`: uvicorn 0.1.0 not found"),
            "{e}"
        );
        assert!(e.contains("venv-uvicorn-0.1.0/bin/uvicorn"), "{e}");
        assert!(e.contains("install-servers.sh"), "{e}");
        // Present but another version installed: said so.
        let other = dir.path().join("venv-uvicorn-0.1.0");
        std::fs::create_dir_all(other.join("bin")).unwrap();
        std::fs::write(other.join("bin/uvicorn"), "").unwrap();
        std::fs::create_dir_all(other.join("lib/python3.11/site-packages/uvicorn-0.2.0.dist-info"))
            .unwrap();
        let e = versioned_venv(Some(&venv), "0.1.0").unwrap_err();
        assert!(e.contains("has no uvicorn 0.1.0 installed"), "{e}");
        std::fs::create_dir_all(other.join("lib/python3.11/site-packages/uvicorn-0.1.0.dist-info"))
            .unwrap();
        assert_eq!(versioned_venv(Some(&venv), "0.1.0").unwrap(), other);
    }
}
