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

use super::{python, server_version, AppConfig, AppEnv, AppKind, Launch, Spawned};
use crate::config::{AppTable, OptionDoc};
use crate::error::Result;
use crate::sys::child::Child;
use crate::sys::tools::Tool;

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
            server_version::validate(v, o.venv.as_deref(), "uvicorn", "uvicorn", at)?;
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
        spawn(o, env, l).map(Spawned::with_ready)
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

/// The uvicorn program an instance runs: the pinned version's venv, or the venv's.
fn program(o: &Options) -> Result<PathBuf> {
    server_version::program(
        o.server_version.as_ref(),
        o.venv.as_deref(),
        "uvicorn",
        "uvicorn",
    )
}

/// Spawns uvicorn for `l.slot`; returns its process (the supervisor, or the one server
/// with `workers = 1`) and the bound readiness socket.
pub fn spawn(o: &Options, env: &AppEnv, l: &Launch) -> Result<(Child, UnixDatagram)> {
    let c = &env.config;
    let uvicorn = program(o)?;
    let py = python::write_app_dir(&env.run_dir)?;
    let (ready, ready_var) = python::ready_socket(env, l.slot)?;
    python::remove_stale_socket(l.endpoint)?;
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
    }
}
