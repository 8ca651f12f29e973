//! nginx serving https in front (`front.tls`): its reload passes with fresh and kept
//! TLS connections, and a load that trusts another CA fails every request as
//! `tls_cert_rejected`, nothing else. A certificate rotated atomically in the reload
//! is served afterwards with nothing failed; one done wrong (the new certificate with
//! the old key, or the new key before the new certificate) is refused by
//! `nginx -s reload` and caught by `new_cert_served`, with nothing failed either.

use crate::util::{at, require_stack};

#[test]
fn nginx_reload_with_tls_passes() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    crate::util::run_scenario(&at("scenarios/nginx-reload-tls.toml")).assert_passes_over_https();
}

#[test]
fn tls_with_the_wrong_ca_fails_with_tls_cert_rejected() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/negative/tls-wrong-ca.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    assert!(r.check("reload_completed"), "{}", r.dump());
    let scheduled = r.report["stats"]["scheduled"].as_u64().unwrap_or(0);
    assert!(scheduled > 100, "{}", r.dump());
    assert_eq!(r.class("tls_cert_rejected"), scheduled, "{}", r.dump());
    assert_eq!(r.class("tls_handshake"), 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["tls"]["handshakes"], 0, "{}", r.dump());
}

/// The detail of the named check.
fn detail(r: &crate::util::RunResult, name: &str) -> String {
    r.report["verdict"]["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_else(|| panic!("no check {name}: {}", r.dump()))
        .to_string()
}

/// The ids of the certificates the full handshakes saw, first seen first.
fn certs_seen(r: &crate::util::RunResult) -> Vec<String> {
    r.report["stats"]["tls"]["certs"]
        .as_array()
        .unwrap_or_else(|| panic!("no stats.tls.certs: {}", r.dump()))
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn certificate_rotation_by_reload_serves_the_new_certificate() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/nginx-cert-rotation.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_cert_served"), "{}", r.dump());
    // The run's first certificate, then the new one, which is served last.
    let seen = certs_seen(&r);
    assert_eq!(seen.len(), 2, "{}", r.dump());
    let certs = &r.report["stats"]["tls"]["certs"];
    let old_last = certs[0]["last_ms"].as_f64().unwrap();
    let new_last = certs[1]["last_ms"].as_f64().unwrap();
    assert!(new_last > old_last, "{}", r.dump());
    assert!(
        detail(&r, "new_cert_served").starts_with(&format!("new certificate {} served", seen[1])),
        "{}",
        r.dump()
    );
}

/// A rotation done wrong: `nginx -s reload` refuses the config (the key does not
/// match the certificate), nginx keeps serving the old certificate, nothing fails.
fn rotation_done_wrong_is_caught(scenario: &str, how: &str) {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at(scenario));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(!r.check("new_cert_served"), "{}", r.dump());
    let d = detail(&r, "new_cert_served");
    assert!(
        d.contains(&format!("({how} rotation at")) && d.contains("never served"),
        "{}",
        r.dump()
    );
    // Only the run's first certificate was ever seen.
    assert_eq!(certs_seen(&r).len(), 1, "{}", r.dump());
    assert!(!r.check("reload_completed"), "{}", r.dump());
    assert!(
        detail(&r, "reload_completed").contains("key values mismatch"),
        "{}",
        r.dump()
    );
}

#[test]
fn certificate_rotation_with_the_old_key_fails_on_new_cert_served() {
    rotation_done_wrong_is_caught(
        "scenarios/negative/nginx-cert-rotation-key-mismatch.toml",
        "key-mismatch",
    );
}

#[test]
fn certificate_rotation_torn_fails_on_new_cert_served() {
    rotation_done_wrong_is_caught("scenarios/negative/nginx-cert-rotation-torn.toml", "torn");
}

/// nginx serving https from a config of the test's own (`return 200`), with a CA and
/// certificate made by `front::tls::generate`; stopped, its whole process group, on drop.
pub(super) struct TlsNginx {
    child: std::process::Child,
    pub(super) port: u16,
    _dir: tempfile::TempDir,
    pub(super) ca: std::path::PathBuf,
}

impl TlsNginx {
    fn start() -> TlsNginx {
        TlsNginx::listening("ssl")
    }

    /// nginx with `listen 127.0.0.1:PORT <params>` (`ssl`, `ssl http2`, `http2`; the
    /// certificate directives are there in every case).
    pub(super) fn listening(params: &str) -> TlsNginx {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let files = zdt_check::front::tls::generate(&dir.path().join("tls")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        // SAFETY: geteuid only reads this process's credentials.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root root;"
        } else {
            ""
        };
        let conf = format!(
            "{user}\nworker_processes 1;\npid \"{d}/nginx.pid\";\nerror_log \"{d}/error.log\" warn;\n\
             events {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n\
             client_body_temp_path \"{d}/cb\"; proxy_temp_path \"{d}/p\"; fastcgi_temp_path \"{d}/f\";\n\
             uwsgi_temp_path \"{d}/u\"; scgi_temp_path \"{d}/s\";\n\
             server {{ listen 127.0.0.1:{port} {params}; ssl_certificate \"{}\"; ssl_certificate_key \"{}\";\n\
             location / {{ return 200 \"ok\\n\"; }} }}\n}}\n",
            files.cert.display(),
            files.key.display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting nginx");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "nginx did not listen on {port} within 10s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TlsNginx {
            child,
            port,
            ca: files.ca,
            _dir: dir,
        }
    }
}

impl Drop for TlsNginx {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test started (nginx's master and workers).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// `zdt-check load https://...` against it: its JSON report's stats.
fn load(ngx: &TlsNginx, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = crate::util::bin()
        .arg("load")
        .arg(format!("https://127.0.0.1:{}/", ngx.port))
        .arg("--ca-file")
        .arg(&ngx.ca)
        .args(["-c", "4", "-d", "1s", "--json"])
        .arg(&json)
        .args(extra)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("no report: {}", crate::util::dump(&out)));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    crate::util::assert_matches_schema(&doc);
    doc["runs"][0]["stats"].clone()
}

#[test]
fn zdt_check_load_over_https_fresh_kept_and_rejected() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let _one = crate::util::serial();
    let ngx = TlsNginx::start();
    let count = |s: &serde_json::Value, k: &str| s["classes"][k].as_u64().unwrap_or(0);

    // Kept connections: every request ok, one handshake per connection (nginx closes
    // one after its 1000th request: keepalive_requests).
    let s = load(&ngx, &["--server-name", "localhost"]);
    let scheduled = s["scheduled"].as_u64().unwrap();
    assert!(scheduled > 50, "{s}");
    assert_eq!(count(&s, "ok"), scheduled, "{s}");
    let handshakes = s["tls"]["handshakes"].as_u64().unwrap();
    assert!((4..=4 + scheduled / 1000).contains(&handshakes), "{s}");

    // Fresh connections: a handshake a request, almost all of them resumed.
    let s = load(&ngx, &["--no-keep-alive"]);
    let scheduled = s["scheduled"].as_u64().unwrap();
    assert_eq!(count(&s, "ok"), scheduled, "{s}");
    assert_eq!(s["tls"]["handshakes"].as_u64().unwrap(), scheduled, "{s}");
    assert!(s["tls"]["resumed"].as_u64().unwrap() * 2 > scheduled, "{s}");

    // A name the certificate is not made for: every request tls_cert_rejected.
    let s = load(&ngx, &["--server-name", "example.com", "--no-keep-alive"]);
    let scheduled = s["scheduled"].as_u64().unwrap();
    assert!(scheduled > 50, "{s}");
    assert_eq!(count(&s, "tls_cert_rejected"), scheduled, "{s}");
    assert_eq!(s["tls"]["handshakes"], 0, "{s}");
}
