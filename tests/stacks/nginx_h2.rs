//! nginx as an HTTP/2 front (`front.http2`): its reload under HTTP/2 clients passes
//! (GOAWAY on the old workers' connections, streams in flight finish, requests not yet
//! sent go on new connections), as it does with h1 and h2 side by side; a naive client
//! that keeps opening streams after the GOAWAY fails on `h2_refused` only, and a
//! `worker_shutdown_timeout` shorter than the long streams cuts them. `zdt-check load`
//! speaks h2 (ALPN) and h2c (prior knowledge) to an nginx the test starts.

use super::nginx_tls::TlsNginx;
use crate::util::{at, require_stack, RunResult};

/// A kind's per-kind stats in the run's report.
fn kind<'a>(r: &'a RunResult, name: &str) -> &'a serde_json::Value {
    r.report["stats"]["kinds"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["name"] == name))
        .unwrap_or_else(|| panic!("no kind {name}: {}", r.dump()))
}

/// Streams a correct client may still see refused across nginx's reload: one it sent
/// while the GOAWAY was on its way has an id above the GOAWAY's last stream id
/// (RFC 9113 6.8: not processed, safe to retry). Browsers retry it; a client that does
/// not (dotnet/corefx #39013) loses the request, so the scenario fails on it, and the
/// test, checking the mechanism, accepts at most this many. Seen once in a CI run
/// (1 of 1064); 0 in 15 runs measured.
const H2_RACE: u64 = 2;

#[test]
fn nginx_reload_under_h2_clients_passes() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/nginx-reload-h2.toml"));
    r.assert_pass_but_for_race("h2_refused", H2_RACE);
    assert_eq!(r.report["load"]["protocol"], "h2", "{}", r.dump());
    let h2 = &r.report["stats"]["h2"];
    // The old workers' connections each got a GOAWAY; new ones were opened after it.
    assert!(h2["goaways"].as_u64().unwrap_or(0) > 0, "{}", r.dump());
    assert!(
        h2["connections"].as_u64().unwrap_or(0) > h2["goaways"].as_u64().unwrap_or(0),
        "{}",
        r.dump()
    );
}

#[test]
fn nginx_reload_under_h2c_clients_passes() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/nginx-reload-h2c.toml"));
    r.assert_pass_but_for_race("h2_refused", H2_RACE);
    assert_eq!(r.report["load"]["protocol"], "h2c", "{}", r.dump());
    assert!(r.report["stats"]["tls"].is_null(), "{}", r.dump());
    let goaways = r.report["stats"]["h2"]["goaways"].as_u64().unwrap_or(0);
    assert!(goaways > 0, "{}", r.dump());
}

#[test]
fn nginx_reload_with_h1_and_h2_side_by_side_passes() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/nginx-reload-h1-h2.toml"));
    r.assert_pass_but_for_race("h2_refused", H2_RACE);
    assert_eq!(r.report["load"]["protocol"], "h1+h2", "{}", r.dump());
    for (name, protocol) in [("h1", "h1"), ("h2", "h2")] {
        let k = kind(&r, name);
        assert_eq!(k["protocol"], protocol, "{}", r.dump());
        assert!(k["ok"].as_u64().unwrap_or(0) > 100, "{}", r.dump());
    }
    assert!(
        r.report["stats"]["h2"]["goaways"].as_u64().unwrap_or(0) > 0,
        "{}",
        r.dump()
    );
}

#[test]
fn a_naive_h2_client_fails_with_h2_refused() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/negative/nginx-reload-h2-naive-client.toml"));
    r.assert_naive_h2_client_refused();
}

#[test]
fn a_shutdown_timeout_shorter_than_the_streams_cuts_them() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at(
        "scenarios/negative/nginx-reload-h2-shutdown-timeout.toml",
    ));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.check("no_failed_requests"), "{}", r.dump());
    // nginx 1.22 closes the connection when the timeout fires (no RST_STREAM): the
    // long streams still in flight end as resets of their connection.
    let long = kind(&r, "long");
    assert!(long["failed"].as_u64().unwrap_or(0) > 0, "{}", r.dump());
    let cut = r.class("reset_reused") + r.class("reset_fresh") + r.class("h2_reset");
    assert!(cut > 0, "{}", r.dump());
    assert_eq!(
        // (and, seldom, a short stream sent as the GOAWAY crossed it: measured once in 5)
        r.other_failures(&[
            "reset_reused",
            "reset_fresh",
            "h2_reset",
            "truncated",
            "h2_refused"
        ]),
        vec![],
        "{}",
        r.dump()
    );
}

/// `zdt-check load URL ARGS`: its exit code and, if it wrote one, the JSON report's stats.
fn load(url: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = crate::util::bin()
        .arg("load")
        .arg(url)
        .args(["-d", "1s", "--json"])
        .arg(&json)
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let Ok(text) = std::fs::read_to_string(&json) else {
        return (code, serde_json::Value::Null);
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    crate::util::assert_matches_schema(&doc);
    (code, doc["runs"][0]["stats"].clone())
}

#[test]
fn zdt_check_load_speaks_h2_and_h2c_to_nginx() {
    if !require_stack(&["nginx"]) {
        return;
    }
    let _one = crate::util::serial();
    let count = |s: &serde_json::Value, k: &str| s["classes"][k].as_u64().unwrap_or(0);

    // ALPN h2 over TLS: 2 connections of 4 streams, every stream ok.
    let ngx = TlsNginx::listening("ssl http2");
    let ca = ngx.ca.display().to_string();
    let url = format!("https://127.0.0.1:{}/", ngx.port);
    let (code, s) = load(
        &url,
        &["--h2", "-c", "2", "--streams", "4", "--ca-file", &ca],
    );
    let scheduled = s["scheduled"].as_u64().unwrap();
    assert!(scheduled > 50, "{s}");
    // nginx sends GOAWAY after keepalive_requests (1000) streams on a connection:
    // streams sent above its last stream id are refused, never retried.
    assert_eq!(count(&s, "ok") + count(&s, "h2_refused"), scheduled, "{s}");
    assert!(code == 0 || count(&s, "h2_refused") > 0, "{s}");
    assert!(s["h2"]["connections"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["tls"]["handshakes"], s["h2"]["connections"], "{s}");
    // Plain http:// is not h2 by ALPN: bad input, nothing sent.
    let (code, _) = load(&format!("http://127.0.0.1:{}/", ngx.port), &["--h2"]);
    assert_eq!(code, 2);
    drop(ngx);

    // h2c with prior knowledge on a plain `listen ... http2` port.
    let ngx = TlsNginx::listening("http2");
    let url = format!("http://127.0.0.1:{}/", ngx.port);
    let (code, s) = load(&url, &["--protocol", "h2c", "-c", "2", "--streams", "2"]);
    let scheduled = s["scheduled"].as_u64().unwrap();
    assert!(scheduled > 50, "{s}");
    assert_eq!(count(&s, "ok") + count(&s, "h2_refused"), scheduled, "{s}");
    assert!(code == 0 || count(&s, "h2_refused") > 0, "{s}");
    assert!(s["tls"].is_null(), "{s}");
    let (code, _) = load(&url, &["--protocol", "h2c", "--streams", "0"]);
    assert_eq!(code, 2);
}
