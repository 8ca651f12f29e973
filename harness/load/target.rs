//! Load targets: `http://host:port/path` or `https://host:port/path` over TCP, or
//! `unix:/path.sock` (HTTP/1.1 over a unix socket).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::tls::TlsSettings;

/// Where requests go and what they ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The socket to connect to.
    pub endpoint: Endpoint,
    /// The Host header value.
    pub host: String,
    /// The request path with query, e.g. `/slow?ms=20`.
    pub path: String,
    /// For an https target, how its TLS is checked (None: plain HTTP).
    pub tls: Option<TlsSettings>,
}

/// The socket a request connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path; it is resolved at every connect, so a symlink swap is seen.
    Unix(PathBuf),
}

impl Target {
    /// Parses `http://host:port/path`, `https://host:port/path` (the host is the TLS
    /// server name; trusted: the system bundle) or `unix:/path.sock`; `path` overrides
    /// the request path.
    pub fn parse(s: &str, path: Option<&str>) -> Result<Target, String> {
        let mut target = if let Some(rest) = s.strip_prefix("unix:") {
            if rest.is_empty() {
                return Err(format!(
                    "target `{s}`: a unix target needs a socket path, e.g. unix:/run/app.sock"
                ));
            }
            Target {
                endpoint: Endpoint::Unix(PathBuf::from(rest)),
                host: "localhost".into(),
                path: "/".into(),
                tls: None,
            }
        } else if let Some((rest, https)) = s
            .strip_prefix("http://")
            .map(|r| (r, false))
            .or_else(|| s.strip_prefix("https://").map(|r| (r, true)))
        {
            let (authority, p) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            if authority.is_empty() {
                return Err(format!(
                    "target `{s}`: missing host, e.g. http://127.0.0.1:8080/"
                ));
            }
            let (with_port, name) = match port_of(authority) {
                Some(port) => {
                    check_port(port).map_err(|why| format!("target `{s}`: {why}"))?;
                    (
                        authority.to_string(),
                        &authority[..authority.len() - port.len() - 1],
                    )
                }
                None => (
                    format!("{authority}:{}", if https { 443 } else { 80 }),
                    authority,
                ),
            };
            let addr = with_port
                .to_socket_addrs()
                .map_err(|e| format!("target `{s}`: cannot resolve `{authority}`: {e}"))?
                .next()
                .ok_or_else(|| format!("target `{s}`: `{authority}` resolves to no address"))?;
            Target {
                endpoint: Endpoint::Tcp(addr),
                host: authority.to_string(),
                path: p.to_string(),
                tls: https.then(|| TlsSettings::for_host(name)),
            }
        } else {
            return Err(format!(
                "target `{s}`: expected http://HOST:PORT/PATH, https://HOST:PORT/PATH or unix:/PATH.sock"
            ));
        };
        if let Some(p) = path {
            if !p.starts_with('/') {
                return Err(format!("request path `{p}` must start with `/`"));
            }
            target.path = p.to_string();
        }
        Ok(target)
    }

    /// The bytes of one GET request, built once per connection worker.
    pub fn request_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let conn = if keep_alive { "keep-alive" } else { "close" };
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: zdt-check\r\nAccept: */*\r\nConnection: {conn}\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }
}

/// The port written in `host:port` (`[v6]:port`), if any: what follows the last `:`
/// outside brackets.
pub fn port_of(authority: &str) -> Option<&str> {
    let (_, port) = authority.rsplit_once(':')?;
    (!port.contains(']')).then_some(port)
}

/// Checks a port as written: a number from 1 to 65535 (port 0 would let the kernel
/// pick one for a listener, and a connect to it is refused).
pub fn check_port(port: &str) -> Result<u16, String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port `{port}` is not a number from 1 to 65535"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port one can connect to: use 1-65535".into()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("port {port} is out of range: use 1-65535")),
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.endpoint {
            Endpoint::Tcp(a) if self.tls.is_some() => write!(f, "https://{a}{}", self.path),
            Endpoint::Tcp(a) => write!(f, "http://{a}{}", self.path),
            Endpoint::Unix(p) => write!(f, "unix:{} {}", p.display(), self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8080/x?y=1", None).unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(t.path, "/x?y=1");
        assert_eq!(t.host, "127.0.0.1:8080");
        let t = Target::parse("unix:/tmp/a.sock", Some("/slow?ms=5")).unwrap();
        assert_eq!(t.endpoint, Endpoint::Unix("/tmp/a.sock".into()));
        assert_eq!(t.path, "/slow?ms=5");
        assert!(Target::parse("ftp://x", None).is_err());
        assert!(Target::parse("unix:", None).is_err());
        let t = Target::parse("https://localhost:8443/x", None).unwrap();
        assert_eq!(t.tls.as_ref().unwrap().server_name, "localhost");
        assert_eq!(t.host, "localhost:8443");
        assert_eq!(
            t.to_string(),
            format!(
                "https://{}/x",
                match t.endpoint {
                    Endpoint::Tcp(a) => a.to_string(),
                    Endpoint::Unix(_) => unreachable!(),
                }
            )
        );
        let t = Target::parse("https://127.0.0.1/", None).unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("127.0.0.1:443".parse().unwrap()));
        assert_eq!(t.tls.unwrap().server_name, "127.0.0.1");
        let t = Target::parse("https://[::1]:8443/", None).unwrap();
        assert_eq!(t.tls.unwrap().server_name, "::1");
        assert_eq!(Target::parse("http://127.0.0.1/", None).unwrap().tls, None);
        assert!(Target::parse("unix:/a", Some("nope")).is_err());
        let t = Target::parse("http://[::1]:8080/", None).unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("[::1]:8080".parse().unwrap()));
        let t = Target::parse("http://127.0.0.1/", None).unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("127.0.0.1:80".parse().unwrap()));
    }

    #[test]
    fn ports_are_checked() {
        for (target, want) in [
            (
                "http://127.0.0.1:99999/",
                "port 99999 is out of range: use 1-65535",
            ),
            (
                "http://127.0.0.1:0/",
                "port 0 is not a port one can connect to",
            ),
            ("http://[::1]:0/", "port 0"),
            ("http://127.0.0.1:/", "port `` is not a number"),
            ("http://127.0.0.1:http/", "port `http` is not a number"),
            ("http://127.0.0.1:18446744073709551617/", "out of range"),
        ] {
            let e = Target::parse(target, None).unwrap_err();
            assert!(e.starts_with(&format!("target `{target}`: ")), "{e}");
            assert!(e.contains(want), "{target}: {e}");
        }
        assert_eq!(check_port("65535"), Ok(65535));
        assert_eq!(port_of("[::1]"), None);
        assert_eq!(port_of("[::1]:8"), Some("8"));
    }
}
