//! https settings given wrong: each scenario key (`load.ca_file`,
//! `load.insecure_skip_verify`, `load.server_name`, `front.tls`) and each
//! `zdt-check load` flag exits 2 with a message naming where and which, before any
//! load; and an nginx without the SSL module refuses `front.tls`.

use crate::util::{at, bin, dump};

/// Runs the scenario `toml` (written next to nothing else); exit code and stderr.
fn run_text(toml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let out = bin().args(["run"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{}", dump(&out));
    assert!(out.stdout.is_empty(), "nothing runs: {}", dump(&out));
    (out.status.code().unwrap_or(-1), stderr)
}

const TLS_FRONT: &str = "[front]\ntls = true\n[reload]\nstrategy = \"symlink-swap\"\n";

#[test]
fn tls_keys_need_an_https_target() {
    let (code, err) =
        run_text("[load]\nca_file = \"ca.pem\"\n[reload]\nstrategy = \"symlink-swap\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:2:11: `load.ca_file`: only for an https target"),
        "{err}"
    );
    let (code, err) = run_text(
        "[load]\ninsecure_skip_verify = true\nserver_name = \"x\"\n[reload]\nstrategy = \"symlink-swap\"\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:2:24: `load.insecure_skip_verify`: only for an https target"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:3:15: `load.server_name`: only for an https target"),
        "{err}"
    );
}

/// An external stack's https target: the load's TLS keys apply to it (and to its
/// readiness probe), and are checked where they are written; with a plain target they
/// say to give an https:// one.
#[test]
fn an_external_https_target_takes_the_tls_keys() {
    const EXT: &str = "[app]\nkind = \"external\"\ntarget = \"https://127.0.0.1:8443/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.toml");
    let ca = at("fixtures/tls/other-ca.pem");
    std::fs::write(
        &path,
        format!("{EXT}[load]\nca_file = {ca:?}\nserver_name = \"localhost\"\n"),
    )
    .unwrap();
    let out = bin().args(["check"]).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "an https target with a CA file is accepted: {}",
        dump(&out)
    );
    let (code, err) = run_text(&format!(
        "{EXT}[load]\nca_file = {ca:?}\ninsecure_skip_verify = true\n"
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:9:24: `load.insecure_skip_verify`: give `ca_file` or `insecure_skip_verify`, not both"),
        "{err}"
    );
    let (code, err) = run_text(&format!("{EXT}[load]\nserver_name = \"a b\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:8:15: `load.server_name`"), "{err}");
    let (code, err) = run_text(&format!("{EXT}[load]\nca_file = \"missing.pem\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:8:11: `load.ca_file`: cannot read"),
        "{err}"
    );
    let (code, err) = run_text(
        "[app]\nkind = \"external\"\ntarget = \"http://127.0.0.1:8080/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n[load]\ninsecure_skip_verify = true\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:8:24: `load.insecure_skip_verify`: only for an https target: give `app.target` as https://"),
        "{err}"
    );
    let (code, err) = run_text(
        "[app]\nkind = \"external\"\ntarget = \"https://10.1.2.3:8443/\"\n[reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:3:10: `app.target`") && err.contains("not a loopback address"),
        "{err}"
    );
}

#[test]
fn tls_keys_are_checked() {
    let (code, err) = run_text(&format!("{TLS_FRONT}[load]\nca_file = \"missing.pem\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:6:11: `load.ca_file`: cannot read") && err.contains("missing.pem"),
        "{err}"
    );
    let (code, err) = run_text(&format!("{TLS_FRONT}[load]\nca_file = \"bad.toml\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`load.ca_file`") && err.contains("no PEM certificate"),
        "{err}"
    );
    let ca = at("fixtures/tls/other-ca.pem");
    let (code, err) = run_text(&format!(
        "{TLS_FRONT}[load]\nca_file = {ca:?}\ninsecure_skip_verify = true\nserver_name = \"not a name\"\n"
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:7:24: `load.insecure_skip_verify`: give `ca_file` or `insecure_skip_verify`, not both"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:8:15: `load.server_name`: \"not a name\" is neither a DNS name nor an IP address"),
        "{err}"
    );
    let (code, err) = run_text("[front]\ntls = \"yes\"\n[reload]\nstrategy = \"symlink-swap\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:2:7: `front.tls`"), "{err}");
    let (code, err) = run_text(&format!("{TLS_FRONT}[websockets]\nconnections = 2\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`websockets.connections`: websockets over TLS are not supported"),
        "{err}"
    );
}

#[test]
fn load_tls_flags_are_checked() {
    let ca = at("fixtures/tls/other-ca.pem");
    for (args, want) in [
        (
            vec!["http://127.0.0.1:1/", "--ca-file", &ca],
            "--ca-file: only for an https:// target",
        ),
        (
            vec!["http://127.0.0.1:1/", "--insecure-skip-verify"],
            "--insecure-skip-verify: only for an https:// target",
        ),
        (
            vec!["https://127.0.0.1:1/", "--ca-file", "/nonexistent/ca.pem"],
            "--ca-file: cannot read /nonexistent/ca.pem",
        ),
        (
            vec![
                "https://127.0.0.1:1/",
                "--ca-file",
                &ca,
                "--insecure-skip-verify",
            ],
            "--ca-file and --insecure-skip-verify: give one",
        ),
        (
            vec!["https://127.0.0.1:1/", "--server-name", "a b"],
            "--server-name: \"a b\" is neither a DNS name nor an IP address",
        ),
    ] {
        let out = bin().arg("load").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", dump(&out));
        assert!(err.contains(want), "{args:?}\nwant: {want}\n{}", dump(&out));
        assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
    }
}

/// An nginx built without the SSL module (a stand-in whose `-V` lists none) cannot
/// serve `front.tls`: the run ends with exit 2 (a harness error) saying so, before any load.
#[test]
fn a_front_without_tls_support_refuses_front_tls() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("nginx");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'nginx version: nginx/1.22.1' >&2\necho 'configure arguments: --without-http_ssl_module' >&2\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let scenario = dir.path().join("tls.toml");
    std::fs::write(
        &scenario,
        "[app]\nkind = \"builtin\"\n[front]\ntls = true\n[reload]\nstrategy = \"symlink-swap\"\n",
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = bin()
        .args(["run"])
        .arg(&scenario)
        .env("PATH", path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(
        said.contains("front.tls:") && said.contains("was built without the SSL module"),
        "{}",
        dump(&out)
    );
}

/// `wait-ready` takes the https flags of `load`, checked the same way.
#[test]
fn wait_ready_takes_the_https_flags() {
    let out = bin()
        .args(["wait-ready", "http://127.0.0.1:9/", "--ca-file", "x.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-file: only for an https:// target"),
        "{err}"
    );
    let out = bin()
        .args([
            "wait-ready",
            "https://127.0.0.1:9/",
            "--ca-file",
            "missing.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--ca-file: cannot read"),
        "{}",
        dump(&out)
    );
}

/// `[front] kind = "haproxy"` only with a haproxy strategy, which takes no nginx front
/// and no nginx key in its own: each a located error.
#[test]
fn a_haproxy_front_goes_with_the_haproxy_strategies_only() {
    let (code, err) = run_text(
        "[front]\nkind = \"haproxy\"\ntls = true\n[reload]\nstrategy = \"nginx-reload\"\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "bad.toml:2:8: `front.kind`: a haproxy front is run only by the haproxy strategies"
        ),
        "{err}"
    );
    let (code, err) = run_text("[front]\ntls = true\n[reload]\nstrategy = \"haproxy-reload\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:1:1: `front.kind`: strategy \"haproxy-reload\" runs haproxy as its own front server"),
        "{err}"
    );
    let (code, err) = run_text(
        "[front]\nkind = \"haproxy\"\ntls = true\nworker_processes = 2\n[reload]\nstrategy = \"haproxy-pool\"\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:4:20: `front.worker_processes`: an nginx key: a haproxy front takes only `kind`, `tls` and `http2`"),
        "{err}"
    );
    let (code, err) = run_text(
        "[front]\nkind = \"haproxy\"\n[reload]\nstrategy = \"haproxy-pool\"\n[load]\nca_file = \"x.pem\"\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:6:11: `load.ca_file`: only for an https target"),
        "{err}"
    );
}
