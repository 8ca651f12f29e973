//! An external app (`[app] kind = "external"`) serving https: the user's own nginx,
//! brought up by a start command with a certificate from a CA the test makes, and
//! reloaded onto v2 by a deploy command. The load and the readiness probe trust that
//! CA (`load.ca_file`) and check the name `localhost` (`load.server_name`); the run
//! passes with every request over TLS (the deploy command checks the reloaded nginx
//! with `zdt-check wait-ready https://... --ca-file`). With no `ca_file`, the system bundle does not
//! know that CA: the probe never passes and the run ends as a harness error (exit 2).

use crate::util::{require_stack, run_scenario};

/// `conf.sh VERSION`: renders nginx.conf (https on `$ZDT_PORT`, every path answers 200
/// with `X-App-Version`).
const CONF: &str = r#"#!/bin/sh
set -e
d="$ZDT_RUN_DIR/ngx"
mkdir -p "$d"
user=""
[ "$(id -u)" = 0 ] && user="user root root;"
cat >"$d/nginx.conf.new" <<END
$user
worker_processes 1;
pid "$d/nginx.pid";
error_log "$d/error.log" warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path "$d/cb"; proxy_temp_path "$d/p"; fastcgi_temp_path "$d/f";
  uwsgi_temp_path "$d/u"; scgi_temp_path "$d/s";
  server {
    listen 127.0.0.1:$ZDT_PORT ssl;
    ssl_certificate "$TLS_DIR/server.pem";
    ssl_certificate_key "$TLS_DIR/server.key";
    location / { add_header X-App-Version $1 always; return 200 "$1\n"; }
  }
}
END
mv "$d/nginx.conf.new" "$d/nginx.conf"
"#;

/// `start.sh`: v1's config, then nginx in the foreground.
const START: &str = r#"#!/bin/sh
set -e
./conf.sh "$ZDT_VERSION"
d="$ZDT_RUN_DIR/ngx"
exec nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g "daemon off;"
"#;

/// `deploy.sh`: the new version's config, `nginx -s reload`, the old workers gone
/// (at most 10 s), then `zdt-check wait-ready` over https, trusting the stack's CA.
const DEPLOY: &str = r#"#!/bin/sh
set -e
./conf.sh "$ZDT_NEW_VERSION"
d="$ZDT_RUN_DIR/ngx"
old=$(pgrep -P "$(cat "$d/nginx.pid")" | tr '\n' ' ')
nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -s reload
# Done when the old workers have left (each finishes its requests first).
i=0
for pid in $old; do
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1)); [ "$i" -lt 200 ] || { echo "old worker $pid still there" >&2; exit 1; }
        sleep 0.05
    done
done
"$ZDT_BIN" wait-ready "https://127.0.0.1:$ZDT_PORT" --ca-file "$TLS_DIR/ca.pem" \
    --server-name localhost --timeout 10s
"#;

/// Writes the stack's scripts into `dir`.
fn write_stack(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for (name, text) in [
        ("conf.sh", CONF),
        ("start.sh", START),
        ("deploy.sh", DEPLOY),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The scenario for the stack in `dir`, with `load_tls` added to `[load]`.
fn scenario(dir: &std::path::Path, load_tls: &str) -> String {
    format!(
        "name = \"own nginx serving https\"\n\
         [app]\nkind = \"external\"\nstart = [\"./start.sh\"]\n\
         target = \"https://127.0.0.1:${{ZDT_PORT}}/\"\nversions = [\"v1\", \"v2\"]\n\
         ready_timeout = \"10s\"\nenv = {{ TLS_DIR = {:?} }}\n\
         [load]\nrate = 200\nkeep_alive = false\nwarmup = \"1s\"\ncooldown = \"1s\"\n{load_tls}\n\
         [reload]\nstrategy = \"command\"\ncommand = [\"./deploy.sh\"]\nstep_timeout = \"20s\"\n\
         [assert]\nmax_failed = 0\nnew_version_took_over = true\n",
        dir.join("tls").display().to_string()
    )
}

#[test]
fn an_external_stack_serving_https_passes_trusting_its_ca() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = zdt_check::front::tls::generate(&dir.path().join("tls")).unwrap();
    write_stack(dir.path());
    let path = dir.path().join("own-https.toml");
    let ca = files.ca.display().to_string();
    let load_tls = format!("ca_file = {ca:?}\nserver_name = \"localhost\"");
    std::fs::write(&path, scenario(dir.path(), &load_tls)).unwrap();
    let r = run_scenario(path.to_str().unwrap());
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let target = r.report["load"]["target"].as_str().unwrap_or_default();
    assert!(target.starts_with("https://127.0.0.1:"), "{}", r.dump());
    let handshakes = r.report["stats"]["tls"]["handshakes"].as_u64().unwrap_or(0);
    assert!(handshakes > 100, "{}", r.dump());
}

#[test]
fn an_external_https_stack_with_an_unknown_ca_is_never_ready() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    zdt_check::front::tls::generate(&dir.path().join("tls")).unwrap();
    write_stack(dir.path());
    let path = dir.path().join("own-https.toml");
    let toml = scenario(dir.path(), "server_name = \"localhost\"")
        .replace("ready_timeout = \"10s\"", "ready_timeout = \"2s\"");
    std::fs::write(&path, toml).unwrap();
    let out = crate::util::bin().arg("run").arg(&path).output().unwrap();
    let text = crate::util::dump(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("did not answer GET /_status"), "{text}");
    assert!(
        text.contains("(last probe: tls_cert_rejected)"),
        "the probe says why: {text}"
    );
}
