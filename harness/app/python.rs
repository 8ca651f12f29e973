//! The sample Python apps, embedded in the binary and written into the run dir,
//! so a run needs no checkout of this repository: only the servers themselves.

use std::path::{Path, PathBuf};

use tokio::net::UnixDatagram;

use super::AppEnv;
use crate::error::{Error, Result};
use crate::load::Endpoint;

const FILES: &[(&str, &str)] = &[
    ("app.py", include_str!("../../fixtures/python/app.py")),
    (
        "asgi_app.py",
        include_str!("../../fixtures/python/asgi_app.py"),
    ),
    (
        "fcgi_runner.py",
        include_str!("../../fixtures/python/fcgi_runner.py"),
    ),
    (
        "gunicorn_conf.py",
        include_str!("../../fixtures/python/gunicorn_conf.py"),
    ),
    (
        "wsgi_ready.py",
        include_str!("../../fixtures/python/wsgi_ready.py"),
    ),
];

/// Writes the sample app files into `run_dir/py` (once) and returns that directory.
pub fn write_app_dir(run_dir: &Path) -> Result<PathBuf> {
    let dir = run_dir.join("py");
    if !dir.join("app.py").exists() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for (name, text) in FILES {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(dir)
}

/// Writes `version` into the version file the app reads at import (atomically: temp + rename,
/// so an import never sees a half-written file).
pub fn write_version(path: &Path, version: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, version).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The environment every Python app instance gets.
pub fn app_env(version_file: &Path, startup_delay: std::time::Duration) -> Vec<(String, String)> {
    vec![
        (
            "ZDT_VERSION_FILE".into(),
            version_file.display().to_string(),
        ),
        (
            "ZDT_STARTUP_DELAY".into(),
            format!("{:.3}", startup_delay.as_secs_f64()),
        ),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ]
}

/// The listening arguments of the Python servers that take them the same way (uvicorn,
/// granian): `--host/--port` or `--uds`.
pub fn bind_args(endpoint: &Endpoint) -> Vec<String> {
    match endpoint {
        Endpoint::Tcp(a) => vec![
            "--host".into(),
            a.ip().to_string(),
            "--port".into(),
            a.port().to_string(),
        ],
        Endpoint::Unix(p) => vec!["--uds".into(), p.display().to_string()],
    }
}

/// The `--bind` value of the Python servers that take an address that way (gunicorn,
/// hypercorn): `HOST:PORT` or `unix:PATH`.
pub fn bind_address(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp(a) => a.to_string(),
        Endpoint::Unix(p) => format!("unix:{}", p.display()),
    }
}

/// Removes a socket file left at `endpoint` by a killed predecessor in the same slot
/// (strategies reuse a slot only once its previous instance is stopped): SIGKILL gives
/// uvicorn and granian no chance to unlink it, and both refuse to bind over it.
/// Anything but a socket is left alone (the server then says what is in the way).
pub fn remove_stale_socket(endpoint: &Endpoint) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Endpoint::Unix(path) = endpoint else {
        return Ok(());
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))
        }
        _ => Ok(()),
    }
}

/// Binds a new readiness socket for `slot` in the run dir; returns it and the
/// `ZDT_READY_SOCKET` variable that names it to the app's workers.
pub fn ready_socket(env: &AppEnv, slot: &str) -> Result<(UnixDatagram, (String, String))> {
    let path = env.path(&format!("{slot}.ready"));
    let _ = std::fs::remove_file(&path);
    let ready = UnixDatagram::bind(&path).map_err(|e| Error::io(&path, e))?;
    Ok((
        ready,
        ("ZDT_READY_SOCKET".into(), path.display().to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s1.sock");
        // A socket nobody listens on any more: what a killed server leaves.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert!(sock.exists());
        remove_stale_socket(&Endpoint::Unix(sock.clone())).unwrap();
        assert!(!sock.exists());
        // Absent: nothing to do. A regular file: left for the server to complain about.
        remove_stale_socket(&Endpoint::Unix(sock.clone())).unwrap();
        std::fs::write(&sock, "not a socket").unwrap();
        remove_stale_socket(&Endpoint::Unix(sock.clone())).unwrap();
        assert!(sock.exists());
        remove_stale_socket(&Endpoint::Tcp(([127, 0, 0, 1], 9).into())).unwrap();
    }
}
