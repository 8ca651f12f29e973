//! `new_cert_served`: after a certificate rotation, the full TLS handshakes saw the
//! new certificate, and none saw another one once the reload was over.
//!
//! The evidence is what the load's full handshakes saw (`stats.tls.certs`): a resumed
//! handshake carries no certificate, so it proves nothing either way.

use super::{check, Check};
use crate::front::tls::CertRotation;
use crate::stats::CertSeen;

/// Passes when a full handshake saw `rotation.new_cert` and none saw another
/// certificate after `after_ms` (the end of the reload).
pub fn new_cert_served(certs: &[CertSeen], rotation: &CertRotation, after_ms: f64) -> Check {
    let name = "new_cert_served";
    let new = certs.iter().find(|c| c.id == rotation.new_cert);
    let stale: Vec<String> = certs
        .iter()
        .filter(|c| c.id != rotation.new_cert && c.last_ms > after_ms)
        .map(|c| {
            format!(
                "{} (another certificate) still served at {:.0} ms, after the reload ended at {after_ms:.0} ms",
                c.id, c.last_ms
            )
        })
        .collect();
    let new_part = match new {
        Some(c) => format!(
            "new certificate {} served from {:.0} ms ({} full handshakes)",
            c.id, c.first_ms, c.handshakes
        ),
        None => format!(
            "new certificate {} ({} rotation at {:.0} ms) never served",
            rotation.new_cert, rotation.how, rotation.at_ms
        ),
    };
    let passed = new.is_some() && stale.is_empty();
    let mut detail = new_part;
    if !stale.is_empty() {
        detail.push_str("; ");
        detail.push_str(&stale.join("; "));
    } else if new.is_some() {
        detail.push_str(&format!(", no other after {after_ms:.0} ms"));
    }
    let seen = certs.iter().map(|c| c.id.as_str()).collect::<Vec<_>>();
    detail.push_str(&format!("; seen: [{}]", seen.join(", ")));
    check(name, passed, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, first_ms: f64, last_ms: f64) -> CertSeen {
        CertSeen {
            id: id.into(),
            first_ms,
            last_ms,
            handshakes: 3,
        }
    }

    fn rotation() -> CertRotation {
        CertRotation {
            new_cert: "bbbb".into(),
            how: "atomic".into(),
            at_ms: 1000.0,
        }
    }

    #[test]
    fn the_new_certificate_only_after_the_reload_passes() {
        let c = new_cert_served(
            &[seen("aaaa", 0.0, 1100.0), seen("bbbb", 1050.0, 3000.0)],
            &rotation(),
            1200.0,
        );
        assert!(c.passed, "{}", c.detail);
    }

    #[test]
    fn the_old_certificate_after_the_reload_fails_naming_it() {
        let c = new_cert_served(
            &[seen("aaaa", 0.0, 2500.0), seen("bbbb", 1050.0, 3000.0)],
            &rotation(),
            1200.0,
        );
        assert!(!c.passed);
        assert!(
            c.detail
                .contains("aaaa (another certificate) still served at 2500 ms"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_new_certificate_never_seen_fails() {
        let c = new_cert_served(&[seen("aaaa", 0.0, 900.0)], &rotation(), 1200.0);
        assert!(!c.passed);
        assert!(
            c.detail
                .contains("new certificate bbbb (atomic rotation at 1000 ms) never served"),
            "{}",
            c.detail
        );
    }
}
