//! The built-in fixture as an app instance: `zdt-check fixture ...` as a child process.

use std::path::Path;

use super::process::Child;
use super::AppEnv;
use crate::error::Result;
use crate::load::Endpoint;

/// The `--listen` argument for an endpoint.
pub fn listen_arg(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp(a) => format!("tcp:{a}"),
        Endpoint::Unix(p) => format!("unix:{}", p.display()),
    }
}

/// The file whose existence makes an instance's `/_status` answer 404: next to its
/// log (`<slot>.log` → `<slot>.nolb`).
pub fn status_404_file(log: &Path) -> std::path::PathBuf {
    log.with_extension("nolb")
}

/// Spawns the fixture serving `version` on `endpoint`.
pub fn spawn(
    env: &AppEnv,
    name: &str,
    endpoint: &Endpoint,
    version: &str,
    log: &Path,
) -> Result<Child> {
    let c = &env.config;
    let mut args = vec![
        "fixture".to_string(),
        "--listen".into(),
        listen_arg(endpoint),
        "--version".into(),
        version.to_string(),
        "--startup-delay".into(),
        format!("{}ms", c.startup_delay.0.as_millis()),
        "--on-term".into(),
        c.on_term.get_ref().clone(),
        "--drain-timeout".into(),
        format!("{}ms", c.stop_timeout.0.as_millis()),
    ];
    if c.bind_early {
        args.push("--bind-early".into());
    }
    // The slot's out-of-rotation switch (haproxy-pool's take_out = "404").
    args.extend([
        "--status-404-if".into(),
        status_404_file(log).display().to_string(),
    ]);
    Child::spawn(name, &env.exe, &args, &[], &env.run_dir, log)
}
