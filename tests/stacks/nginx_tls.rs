//! nginx serving https in front (`front.tls`): its reload passes with fresh and kept
//! TLS connections, and a load that trusts another CA fails every request as
//! `tls_cert_rejected`, nothing else.

use crate::util::{at, require_stack};

#[test]
fn nginx_reload_with_tls_passes() {
    if !require_stack(&["nginx", "gunicorn"]) {
        return;
    }
    let r = crate::util::run_scenario(&at("scenarios/nginx-reload-tls.toml"));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.report["stats"]["failed"], 0, "{}", r.dump());
    assert!(r.check("new_version_took_over"), "{}", r.dump());
    let target = r.report["load"]["target"].as_str().unwrap_or_default();
    assert!(target.starts_with("https://127.0.0.1:"), "{}", r.dump());
    let tls = &r.report["stats"]["tls"];
    let handshakes = tls["handshakes"].as_u64().unwrap_or(0);
    let resumed = tls["resumed"].as_u64().unwrap_or(0);
    // Every fresh request is a handshake; most resume the session the last one got.
    assert!(handshakes > 100, "{}", r.dump());
    assert!(resumed > 0 && resumed < handshakes, "{}", r.dump());
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
