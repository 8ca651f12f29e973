//! Request mixes (`[[load.mix]]`): each kind is accounted for on its own, a reload
//! that is right passes for every kind, and a kind the reload breaks is named: the
//! POST that nginx does not retry, a body echo that does not match, the reused
//! connections an nginx reload closes.

use serde_json::Value;

use crate::util::{at, require_stack, run_scenario, run_scenario_text, RunResult};

/// The report's entry for request kind `name`.
fn kind<'a>(r: &'a RunResult, name: &str) -> &'a Value {
    r.report["stats"]["kinds"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["name"] == name))
        .unwrap_or_else(|| panic!("no kind {name:?} in the report: {}", r.dump()))
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Every kind's own identity holds, and the kinds add up to the run.
fn assert_kinds_add_up(r: &RunResult) {
    let kinds = r.report["stats"]["kinds"].as_array().expect("kinds");
    let mut scheduled = 0;
    let mut ok = 0;
    for k in kinds {
        assert_eq!(k["identity_holds"], true, "{}: {}", k["name"], r.dump());
        assert_eq!(
            n(&k["scheduled"]),
            n(&k["ok"]) + n(&k["failed"]),
            "{}",
            r.dump()
        );
        scheduled += n(&k["scheduled"]);
        ok += n(&k["ok"]);
        let phase_ok: u64 = k["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| n(&p["ok"]))
            .sum();
        assert_eq!(
            phase_ok,
            n(&k["ok"]),
            "{}: phases add up: {}",
            k["name"],
            r.dump()
        );
        assert!(
            n(&k["scheduled"]) > 0,
            "{} never drawn: {}",
            k["name"],
            r.dump()
        );
    }
    let stats = &r.report["stats"];
    assert_eq!(
        scheduled + n(&stats["never_sent"]),
        n(&stats["scheduled"]),
        "{}",
        r.dump()
    );
    assert_eq!(ok, n(&stats["ok"]), "{}", r.dump());
}

#[test]
fn a_drained_symlink_swap_passes_for_every_kind() {
    let r = run_scenario(&at("scenarios/mix-symlink.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert_kinds_add_up(&r);
    for name in ["get", "post", "upload", "stream"] {
        assert_eq!(kind(&r, name)["failed"], 0, "{name}: {}", r.dump());
    }
    // The mix is what was sent: weights 5:2:1:1, a slow upload takes its 300 ms.
    let share = n(&kind(&r, "get")["scheduled"]) as f64 / n(&r.report["stats"]["scheduled"]) as f64;
    assert!(
        (0.45..0.65).contains(&share),
        "get drawn {share}: {}",
        r.dump()
    );
    assert!(
        kind(&r, "upload")["latency"]["p50"].as_f64().unwrap() >= 300.0,
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains("requests by kind"), "{}", r.dump());
    assert!(r.stdout.contains("holds for every kind"), "{}", r.dump());
}

#[test]
fn a_scenario_without_a_mix_reports_no_kinds() {
    let r = run_scenario(&at("scenarios/symlink.toml"));
    assert!(r.report["stats"].get("kinds").is_none(), "{}", r.dump());
    assert!(!r.stdout.contains("requests by kind"), "{}", r.dump());
}

/// A stdlib HTTP server on `$ZDT_RUN_DIR/app.sock` that reads each body and echoes
/// its length with a wrong CRC-32.
const WRONG_ECHO: &str = r#"
import os, socketserver, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        body = b"version=v1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App-Version", "v1")
        if n:
            self.send_header("X-Body-Length", str(n))
            self.send_header("X-Body-Crc32", "00000000")
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a):
        pass
    def address_string(self):
        return "unix"
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
S(os.environ["ZDT_RUN_DIR"] + "/app.sock", H).serve_forever()
"#;

#[test]
fn a_body_echo_that_does_not_match_is_bad_body_for_that_kind_only() {
    let toml = format!(
        "[app]\nkind = \"external\"\nstart = [\"python3\", \"-c\", {WRONG_ECHO:?}]\ntarget = \"unix:${{ZDT_RUN_DIR}}/app.sock\"\n\
         [load]\nrate = 100\nwarmup = \"500ms\"\ncooldown = \"500ms\"\n\
         [[load.mix]]\nname = \"get\"\n[[load.mix]]\nname = \"post\"\nmethod = \"POST\"\nbody = 300\necho = true\n\
         [[load.mix]]\nname = \"unchecked\"\nmethod = \"POST\"\nbody = 300\n\
         [reload]\nstrategy = \"command\"\ncommand = [\"true\"]\n[assert]\nnew_version_took_over = false\n"
    );
    let r = run_scenario_text("wrong-echo", &toml);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_kinds_add_up(&r);
    let post = kind(&r, "post");
    assert!(n(&post["scheduled"]) > 10, "{}", r.dump());
    assert_eq!(
        post["classes"]["bad_body"],
        post["scheduled"],
        "{}",
        r.dump()
    );
    assert_eq!(kind(&r, "get")["failed"], 0, "{}", r.dump());
    assert_eq!(kind(&r, "unchecked")["failed"], 0, "{}", r.dump());
    assert!(
        r.stdout.contains("by kind: get 0, post bad_body"),
        "{}",
        r.dump()
    );
}

#[test]
fn nginx_retries_cut_gets_so_a_get_only_check_passes() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/nginx-retry-get-only.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn nginx_does_not_retry_cut_posts_and_the_mix_names_them() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/negative/nginx-retry-post.toml"));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_kinds_add_up(&r);
    let post = kind(&r, "post");
    // 50 ms requests at 400 req/s: about 10 POSTs in flight on the killed instance.
    assert!(
        n(&post["by_code"]["http_5xx"]["http_502"]) >= 3,
        "{}",
        r.dump()
    );
    assert_eq!(
        post["failed"],
        post["by_code"]["http_5xx"]["http_502"],
        "{}",
        r.dump()
    );
    assert_eq!(kind(&r, "get")["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
}

#[test]
fn an_nginx_reload_resets_only_reused_connections() {
    if !require_stack(&["gunicorn", "nginx"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/nginx-reload-mix.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_kinds_add_up(&r);
    for name in ["get", "post", "upload", "stream"] {
        assert_eq!(kind(&r, name)["failed"], 0, "{name}: {}", r.dump());
    }
    assert_eq!(kind(&r, "reused")["failed"], 0, "{}", r.dump());
    // The old nginx workers closed idle client connections; the load saw them.
    assert!(n(&r.report["stats"]["stale_closes"]) > 0, "{}", r.dump());
}

#[test]
fn gunicorn_hup_passes_for_every_kind() {
    if !require_stack(&["gunicorn"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/gunicorn-hup-mix.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_kinds_add_up(&r);
    for name in ["get", "post", "upload", "stream"] {
        assert_eq!(kind(&r, name)["failed"], 0, "{name}: {}", r.dump());
    }
    assert_eq!(kind(&r, "reused")["failed"], 0, "{}", r.dump());
    // The old workers closed their idle keep-alive connections; the load saw them.
    assert!(n(&r.report["stats"]["stale_closes"]) > 0, "{}", r.dump());
}

#[test]
fn a_drained_haproxy_roll_passes_for_every_kind() {
    if !require_stack(&["haproxy"]) {
        return;
    }
    let r = run_scenario(&at("scenarios/haproxy-pool-mix.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert_kinds_add_up(&r);
}
