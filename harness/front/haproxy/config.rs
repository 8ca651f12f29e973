//! haproxy.cfg for a pool: the backend's settings (`PoolConfig`) and their rendering.
//! One backend `be` with a server `s1..sN` per app instance, health-checked with
//! `GET <status_path>` expecting 200 (fast `inter`/`fall`/`rise` for tests), and
//! by default `retries 0` without `option redispatch`, so that the balancer hides
//! nothing from the client. No `user`, `group`, `chroot` or `daemon`: they need root.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::load::Endpoint;

/// The backend's name in the config and on the admin socket.
pub(crate) const BACKEND: &str = "be";

/// The backend's settings.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    /// The servers' addresses, in order (`s1`, `s2`, ...).
    pub servers: Vec<Endpoint>,
    /// Health-check interval.
    pub inter: Duration,
    /// Consecutive failed checks before a server is DOWN.
    pub fall: u32,
    /// Consecutive passed checks before a server is UP.
    pub rise: u32,
    /// `retries` (0: a failed connect is the client's 503).
    pub retries: u32,
    /// `option redispatch` (retry on another server).
    pub redispatch: bool,
    /// `http-check disable-on-404`: a status page answering 404 puts the server in NOLB.
    pub disable_on_404: bool,
    /// The health-check path (the app's status path).
    pub status_path: String,
    /// The frontend's `maxconn`, if limited: at that many connections haproxy stops
    /// accepting and new ones wait in its listener's kernel accept queue.
    pub frontend_maxconn: Option<u32>,
    /// `option idle-close-on-response`: on a soft stop, idle keep-alive connections are
    /// kept until their next request, answered with `Connection: close`.
    pub idle_close_on_response: bool,
    /// Serve https on the frontend (`bind ... ssl crt ...`), or plain HTTP.
    pub tls: Option<TlsBind>,
    /// HTTP/2 on the frontend (`[front] http2`): over TLS, `h2` first in the ALPN list
    /// ([`ALPN_H2`]); on a plain bind, `proto h2`: h2c with prior knowledge only.
    pub http2: bool,
    /// `hard-stop-after`: how long an old worker may finish its connections on a soft
    /// stop before haproxy closes what is left ([`HARD_STOP_AFTER`] unless set).
    pub hard_stop_after: Duration,
}

/// The default `hard-stop-after` (an old worker's longest soft stop).
pub(crate) const HARD_STOP_AFTER: Duration = Duration::from_secs(30);

/// The frontend's TLS: haproxy 2.6 reads the certificate and its key from one PEM
/// (`crt`; a key apart would have to be named `<crt>.key`, haproxy has no `key`
/// keyword before 3.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsBind {
    /// The PEM with the server certificate and its private key.
    pub crt: std::path::PathBuf,
    /// The CA that signed it (what the readiness probe trusts).
    pub ca: std::path::PathBuf,
    /// The protocols offered by ALPN, in order of preference.
    pub alpn: Vec<&'static str>,
}

/// The ALPN protocols the frontend offers without `[front] http2`: HTTP/1.1 only.
pub(crate) const ALPN: &[&str] = &["http/1.1"];

/// The ALPN protocols the frontend offers with `[front] http2`: h2 first, then HTTP/1.1.
pub(crate) const ALPN_H2: &[&str] = &["h2", "http/1.1"];

impl PoolConfig {
    /// Server name of the `i`th (0-based) server.
    pub fn server_name(i: usize) -> String {
        format!("s{}", i + 1)
    }
}

/// A value inside haproxy double quotes.
fn quoted(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
    )
}

/// A server address line's address part.
fn server_addr(e: &Endpoint) -> String {
    match e {
        Endpoint::Tcp(a) => a.to_string(),
        Endpoint::Unix(p) => quoted(&format!("unix@{}", p.display())),
    }
}

/// A `maxconn` that fits the fd limit (two fds per proxied connection, some spare).
fn fitting_maxconn() -> u64 {
    let nofile = crate::load::limits::nofile_soft_limit().unwrap_or(1024);
    (nofile.saturating_sub(64) / 2).clamp(64, 4000)
}

/// Renders haproxy.cfg: the admin socket in `dir`, a frontend on `listen`, backend `be`.
pub(crate) fn render(dir: &Path, listen: SocketAddr, cfg: &PoolConfig) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
    let mut s = String::new();
    s.push_str(
        "# written by zdt-check; run as haproxy -W -db -f <this> -p haproxy.pid -S master.sock\n",
    );
    s.push_str("global\n");
    s.push_str(&format!(
        "    stats socket {} mode 600 level admin\n",
        quoted(&dir.join("a.sock").display().to_string())
    ));
    s.push_str(&format!("    maxconn {}\n", fitting_maxconn()));
    s.push_str(&format!(
        "    hard-stop-after {}\n",
        ms(cfg.hard_stop_after)
    ));
    s.push_str("defaults\n    mode http\n    log global\n");
    s.push_str("    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n");
    s.push_str(&format!(
        "    timeout check {}\n",
        ms(cfg.inter.max(Duration::from_millis(500)))
    ));
    s.push_str(&format!("    retries {}\n", cfg.retries));
    if cfg.redispatch {
        // Redispatch on every retry (not only the last), so a retry never waits on the dead server.
        s.push_str("    option redispatch 1\n");
    } else {
        s.push_str("    no option redispatch\n");
    }
    s.push_str(&format!("frontend fe\n    bind {listen}"));
    if let Some(t) = &cfg.tls {
        s.push_str(&format!(
            " ssl crt {} alpn {}",
            quoted(&t.crt.display().to_string()),
            t.alpn.join(",")
        ));
    } else if cfg.http2 {
        // A plain bind detects the HTTP/2 preface by itself (haproxy 2.6 answers h1 and
        // h2c on one port); `proto h2` makes it h2c only, as nginx's `listen ... http2`.
        s.push_str(" proto h2");
    }
    s.push('\n');
    if let Some(n) = cfg.frontend_maxconn {
        // haproxy's listen backlog defaults to the frontend's maxconn: the queue must
        // hold what waits beyond it, not drop SYNs (a 1 s retransmission each).
        s.push_str(&format!("    maxconn {n}\n    backlog 1024\n"));
    }
    if cfg.idle_close_on_response {
        s.push_str("    option idle-close-on-response\n");
    }
    s.push_str(&format!("    default_backend {BACKEND}\n"));
    s.push_str(&format!("backend {BACKEND}\n    balance roundrobin\n"));
    s.push_str(&format!(
        "    option httpchk GET {}\n",
        cfg.status_path.replace(' ', "%20")
    ));
    s.push_str("    http-check expect status 200\n");
    if cfg.disable_on_404 {
        s.push_str("    http-check disable-on-404\n");
    }
    s.push_str(&format!(
        "    default-server check inter {} fall {} rise {}\n",
        ms(cfg.inter),
        cfg.fall,
        cfg.rise
    ));
    for (i, e) in cfg.servers.iter().enumerate() {
        s.push_str(&format!(
            "    server {} {}\n",
            PoolConfig::server_name(i),
            server_addr(e)
        ));
    }
    s
}

/// The range a health-check interval (`inter`) must lie in: haproxy rejects
/// timers past about 24 days and treats 0 as its default; below 10 ms the checks
/// would load the app more than the requests under test.
pub(crate) const CHECK_INTER_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(60));

/// What is wrong with `inter` as a check interval, if anything.
pub(crate) fn check_inter_problem(inter: Duration) -> Option<&'static str> {
    let (lo, hi) = CHECK_INTER_RANGE;
    (inter < lo || inter > hi).then_some("must be between 10ms and 60s")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One TCP server, haproxy's defaults as the strategies render them.
    fn one_server() -> PoolConfig {
        PoolConfig {
            servers: vec![Endpoint::Tcp("127.0.0.1:9001".parse().unwrap())],
            inter: Duration::from_millis(100),
            fall: 2,
            rise: 2,
            retries: 0,
            redispatch: false,
            disable_on_404: false,
            status_path: "/_status".into(),
            frontend_maxconn: None,
            idle_close_on_response: false,
            tls: None,
            http2: false,
            hard_stop_after: HARD_STOP_AFTER,
        }
    }

    #[test]
    fn a_frontend_maxconn_comes_with_a_backlog_that_holds_the_wait() {
        let mut cfg = one_server();
        let plain = render(Path::new("/run"), "127.0.0.1:1".parse().unwrap(), &cfg);
        assert!(!plain.contains("backlog"), "{plain}");
        cfg.frontend_maxconn = Some(4);
        let out = render(Path::new("/run"), "127.0.0.1:1".parse().unwrap(), &cfg);
        assert!(
            out.contains("frontend fe\n    bind 127.0.0.1:1\n    maxconn 4\n    backlog 1024\n    default_backend be\n"),
            "{out}"
        );
    }

    #[test]
    fn renders_servers_checks_and_no_masking_by_default() {
        let cfg = PoolConfig {
            servers: vec![
                Endpoint::Unix("/tmp/run dir/s1.sock".into()),
                Endpoint::Tcp("127.0.0.1:9001".parse().unwrap()),
            ],
            rise: 3,
            ..one_server()
        };
        let c = render(
            Path::new("/tmp/r/hap"),
            "127.0.0.1:8080".parse().unwrap(),
            &cfg,
        );
        assert!(
            c.contains("stats socket \"/tmp/r/hap/a.sock\" mode 600 level admin"),
            "{c}"
        );
        assert!(
            c.contains("server s1 \"unix@/tmp/run dir/s1.sock\"\n"),
            "{c}"
        );
        assert!(c.contains("server s2 127.0.0.1:9001\n"), "{c}");
        assert!(
            c.contains("default-server check inter 100ms fall 2 rise 3"),
            "{c}"
        );
        assert!(c.contains("option httpchk GET /_status\n    http-check expect status 200"));
        assert!(
            c.contains("retries 0") && c.contains("no option redispatch"),
            "{c}"
        );
        for root_only in ["user ", "group ", "chroot", "daemon", "pidfile"] {
            assert!(!c.contains(root_only), "{root_only}: {c}");
        }
        assert!(!c.contains("disable-on-404"));
    }

    #[test]
    fn a_tls_frontend_binds_with_ssl_its_pem_and_alpn() {
        let mut cfg = one_server();
        let plain = render(Path::new("/run"), "127.0.0.1:1".parse().unwrap(), &cfg);
        assert!(!plain.contains("ssl"), "{plain}");
        cfg.tls = Some(TlsBind {
            crt: "/run/tls/haproxy.pem".into(),
            ca: "/run/tls/ca.pem".into(),
            alpn: vec!["h2", "http/1.1"],
        });
        cfg.idle_close_on_response = true;
        let out = render(Path::new("/run"), "127.0.0.1:1".parse().unwrap(), &cfg);
        assert!(
            out.contains("    option idle-close-on-response\n    default_backend be\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "    bind 127.0.0.1:1 ssl crt \"/run/tls/haproxy.pem\" alpn h2,http/1.1\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn http2_without_tls_is_an_h2c_only_bind() {
        let mut cfg = PoolConfig {
            http2: true,
            hard_stop_after: Duration::from_millis(1500),
            ..one_server()
        };
        let out = render(Path::new("/run"), "127.0.0.1:1".parse().unwrap(), &cfg);
        assert!(out.contains("    bind 127.0.0.1:1 proto h2\n"), "{out}");
        assert!(out.contains("    hard-stop-after 1500ms\n"), "{out}");
        cfg.tls = Some(TlsBind {
            crt: "/run/tls/haproxy.pem".into(),
            ca: "/run/tls/ca.pem".into(),
            alpn: ALPN_H2.to_vec(),
        });
        let out = render(Path::new("/run"), "127.0.0.1:1".parse().unwrap(), &cfg);
        assert!(
            out.contains("ssl crt \"/run/tls/haproxy.pem\" alpn h2,http/1.1\n"),
            "{out}"
        );
        assert!(!out.contains("proto h2"), "{out}");
    }
}
