//! Targets off this machine. Load goes to loopback or a unix socket unless the user
//! opts in with a switch whose name says "remote" (`zdt-check load --allow-remote`,
//! `app.allow_remote = true`): a typo in an address must not send a load test to a
//! production host. A host name is resolved once, when the target is parsed, and every
//! connection of the run goes to that address, which the report names.

use std::net::IpAddr;

use super::target::{Endpoint, Target};

/// The address a target leaves this machine for, if it does: a TCP address that is
/// not loopback (`None` for loopback and unix sockets).
pub fn remote_ip(target: &Target) -> Option<IpAddr> {
    match &target.endpoint {
        Endpoint::Tcp(addr) if !is_local(addr.ip()) => Some(addr.ip()),
        _ => None,
    }
}

/// Loopback, including an IPv4-mapped IPv6 loopback (`::ffff:127.0.0.1`), and the
/// unspecified address (a connect to `0.0.0.0` reaches this machine).
fn is_local(ip: IpAddr) -> bool {
    if ip.is_unspecified() {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Refuses a target off this machine unless `allowed`; `opt_in` names the switch that
/// allows it (`--allow-remote`), for the message.
pub fn check_allowed(target: &Target, allowed: bool, opt_in: &str) -> Result<(), String> {
    match remote_ip(target) {
        Some(ip) if !allowed => Err(format!(
            "{} is {ip}, not on this machine: load goes off this machine only with {opt_in} (and only to hosts you own)",
            target.host
        )),
        _ => Ok(()),
    }
}

/// How the report names where the load went: the address and path and, when a host
/// name was resolved to that address, the name.
pub fn describe(target: &Target) -> String {
    let name = super::target::port_of(&target.host)
        .and_then(|port| target.host.strip_suffix(port)?.strip_suffix(':'))
        .unwrap_or(&target.host);
    let literal = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok();
    match &target.endpoint {
        Endpoint::Tcp(_) if !literal => format!("{target} ({} resolved once)", target.host),
        _ => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_unix_are_local_others_remote() {
        for t in [
            "http://127.0.0.1:8/",
            "http://127.9.9.9:8/",
            "http://[::1]:8/",
            "http://[::ffff:127.0.0.1]:8/",
            "http://0.0.0.0:8/",
            "unix:/a.sock",
        ] {
            let t = Target::parse(t, None).unwrap();
            assert_eq!(remote_ip(&t), None, "{t}");
            assert_eq!(check_allowed(&t, false, "--allow-remote"), Ok(()));
        }
        for t in ["http://10.201.0.2:8/", "http://[2001:db8::1]:8/"] {
            let t = Target::parse(t, None).unwrap();
            assert!(remote_ip(&t).is_some(), "{t}");
            let e = check_allowed(&t, false, "--allow-remote").unwrap_err();
            assert!(
                e.contains("not on this machine")
                    && e.ends_with("only with --allow-remote (and only to hosts you own)"),
                "{e}"
            );
            assert_eq!(check_allowed(&t, true, "--allow-remote"), Ok(()));
        }
    }

    #[test]
    fn a_host_name_is_resolved_once_and_named_with_its_address() {
        let t = Target::parse("http://localhost:8080/x", None).unwrap();
        let Endpoint::Tcp(addr) = t.endpoint else {
            panic!("{t:?}")
        };
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(remote_ip(&t), None);
        assert_eq!(
            describe(&t),
            format!("http://{addr}/x (localhost:8080 resolved once)")
        );
        for (t, d) in [
            ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
            ("http://127.0.0.1/", "http://127.0.0.1:80/"),
            ("http://[::1]:9/", "http://[::1]:9/"),
        ] {
            assert_eq!(describe(&Target::parse(t, None).unwrap()), d);
        }
    }
}
