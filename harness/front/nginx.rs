//! nginx as the front server, run without root privileges being needed, in a
//! private prefix inside the run dir: every path nginx would otherwise take
//! from its compiled-in defaults (pid, error log, the five temp paths) is set.
//!
//! A reload rewrites the upstream and signals the master (`nginx -s reload`,
//! which only signals and returns); [`Nginx::wait_workers_gone`] is how a
//! strategy learns that the old workers have really let go of the old upstream.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Site;
use crate::error::{Error, Result};
use crate::load::Endpoint;
use crate::sys::child::Child;
use crate::sys::procfs::proc_children;
use crate::sys::tools;

const CONF_TMPL: &str = include_str!("../../fixtures/nginx/nginx.conf.tmpl");
const LOC_PROXY: &str = include_str!("../../fixtures/nginx/location-proxy.tmpl");
const LOC_FASTCGI: &str = include_str!("../../fixtures/nginx/location-fastcgi.tmpl");
const LOC_UWSGI: &str = include_str!("../../fixtures/nginx/location-uwsgi.tmpl");

/// What nginx passes requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// HTTP (`proxy_pass`): gunicorn, the built-in fixture, uWSGI's http-socket.
    Http(Endpoint),
    /// FastCGI (`fastcgi_pass`): flup.
    FastCgi(Endpoint),
    /// The uwsgi protocol (`uwsgi_pass`): uWSGI's uwsgi-socket or fastrouter.
    Uwsgi(Endpoint),
}

impl Upstream {
    /// The socket nginx connects to.
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            Upstream::Http(e) | Upstream::FastCgi(e) | Upstream::Uwsgi(e) => e,
        }
    }
}

/// The `[front]` settings that go into nginx.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// `worker_processes`.
    pub worker_processes: u32,
    /// `worker_shutdown_timeout` (absent: not set, old workers wait for every
    /// connection, websockets included, to end).
    pub worker_shutdown_timeout: Option<Duration>,
    /// `keepalive N` in the upstream block: idle connections to the app each worker
    /// keeps for reuse (0: none, a new connection per request).
    pub upstream_keepalive: u32,
    /// `keepalive_timeout` in the upstream block: how long nginx keeps an idle
    /// upstream connection (absent: not set, nginx's default 60s).
    pub upstream_keepalive_timeout: Option<Duration>,
    /// `proxy_next_upstream` (and its FastCGI and uwsgi twins): `off`, or when nginx
    /// retries a request on another connection or server, e.g. `error timeout`.
    pub next_upstream: String,
    /// Serve https with these certificate files (None: plain HTTP).
    pub tls: Option<super::tls::TlsFiles>,
    /// `listen ... http2`: HTTP/2 by ALPN over TLS, h2c with prior knowledge without.
    pub http2: bool,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            worker_processes: 1,
            worker_shutdown_timeout: None,
            upstream_keepalive: 0,
            upstream_keepalive_timeout: None,
            next_upstream: "off".into(),
            tls: None,
            http2: false,
        }
    }
}

impl Tuning {
    /// The settings of a `[front]` table.
    pub fn of(fc: &crate::front::FrontConfig) -> Tuning {
        Tuning {
            worker_processes: *fc.worker_processes.get_ref(),
            worker_shutdown_timeout: fc.worker_shutdown_timeout.as_ref().map(|d| d.get_ref().0),
            upstream_keepalive: *fc.upstream_keepalive.get_ref(),
            upstream_keepalive_timeout: fc
                .upstream_keepalive_timeout
                .as_ref()
                .map(|d| d.get_ref().0),
            next_upstream: fc.next_upstream.get_ref().clone(),
            tls: None,
            http2: fc.is_http2(),
        }
    }

    /// The main-context directive for `worker_shutdown_timeout`, or nothing.
    fn shutdown_directive(&self) -> String {
        self.worker_shutdown_timeout.map_or(String::new(), |d| {
            format!("worker_shutdown_timeout {}ms;\n", d.as_millis().max(1))
        })
    }
}

/// A running nginx front server.
#[derive(Debug)]
pub struct Nginx {
    bin: PathBuf,
    prefix: PathBuf,
    listen: std::net::SocketAddr,
    tuning: Tuning,
    child: Child,
}

/// `user` directive: nginx started as root runs its workers as `nobody`, who cannot
/// reach sockets in a 0700 run dir; name the harness's own user instead.
fn user_directive() -> Option<(String, String)> {
    // SAFETY: geteuid/getpwuid/getgrgid read process credentials and static passwd entries;
    // the strings are copied before any other call could overwrite them.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            return Some(("root".into(), "root".into()));
        }
        let user = std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned();
        let gr = libc::getgrgid((*pw).pw_gid);
        let group = if gr.is_null() {
            user.clone()
        } else {
            std::ffi::CStr::from_ptr((*gr).gr_name)
                .to_string_lossy()
                .into_owned()
        };
        Some((user, group))
    }
}

/// nginx's command line for the private prefix (the same for `-s reload`).
fn base_args(prefix: &std::path::Path, foreground: bool) -> Vec<String> {
    let mut a = vec![
        "-p".into(),
        prefix.display().to_string(),
        "-c".into(),
        prefix.join("nginx.conf").display().to_string(),
        "-e".into(),
        prefix.join("error.log").display().to_string(),
    ];
    if foreground {
        a.extend(["-g".into(), "daemon off;".into()]);
    }
    a
}

/// Fails unless the nginx binary was built with the SSL module (`nginx -V` lists
/// `--with-http_ssl_module`): a front without TLS support cannot serve `front.tls`.
async fn require_ssl_module(bin: &std::path::Path) -> Result<()> {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(bin)
            .arg("-V")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| Error::Harness("nginx -V did not return within 10s".into()))?
    .map_err(|e| Error::Harness(format!("nginx -V: {e}")))?;
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    if text.contains("--with-http_ssl_module") {
        Ok(())
    } else {
        Err(Error::Harness(format!(
            "front.tls: {} was built without the SSL module (`nginx -V` lists no --with-http_ssl_module): install an nginx with it (Debian's has it)",
            bin.display()
        )))
    }
}

/// Writes the config atomically, so a reload never reads half a file.
fn write_conf(path: &std::path::Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("conf.tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A value inside nginx double quotes (paths may hold spaces or quotes).
fn quoted_inner(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The `listen` parameters after the address, in nginx 1.22's syntax (`http2` is a
/// listen parameter there, not yet a directive of its own): ` ssl`, ` http2`, ` ssl http2`.
fn listen_params(tuning: &Tuning) -> String {
    let mut p = String::new();
    if tuning.tls.is_some() {
        p.push_str(" ssl");
    }
    if tuning.http2 {
        p.push_str(" http2");
    }
    p
}

/// Renders nginx.conf for `upstream`, listening on `listen`.
pub fn render(
    prefix: &std::path::Path,
    listen: std::net::SocketAddr,
    tuning: &Tuning,
    upstream: &Upstream,
) -> String {
    let mut server = match upstream.endpoint() {
        Endpoint::Tcp(a) => format!("        server {a};"),
        Endpoint::Unix(p) => format!(
            "        server \"unix:{}\";",
            quoted_inner(&p.display().to_string())
        ),
    };
    if tuning.upstream_keepalive > 0 {
        server.push_str(&format!(
            "\n        keepalive {};",
            tuning.upstream_keepalive
        ));
        if let Some(t) = tuning.upstream_keepalive_timeout {
            server.push_str(&format!(
                "\n        keepalive_timeout {}ms;",
                t.as_millis().max(1)
            ));
        }
    }
    let location = match upstream {
        Upstream::Http(_) => LOC_PROXY,
        Upstream::FastCgi(_) => LOC_FASTCGI,
        Upstream::Uwsgi(_) => LOC_UWSGI,
    };
    let ssl = match &tuning.tls {
        Some(f) => format!(
            "        ssl_certificate \"{}\";\n        ssl_certificate_key \"{}\";\n",
            quoted_inner(&f.cert.display().to_string()),
            quoted_inner(&f.key.display().to_string())
        ),
        None => String::new(),
    };
    let mut conf = CONF_TMPL.to_string();
    match user_directive() {
        Some((u, g)) => {
            conf = conf.replace("{{user}}", &u).replace("{{group}}", &g);
        }
        None => {
            conf = conf.replace("user {{user}} {{group}};\n", "");
        }
    }
    conf.replace("{{prefix}}", &quoted_inner(&prefix.display().to_string()))
        .replace("{{listen}}", &listen.to_string())
        .replace("{{listen_ssl}}", &listen_params(tuning))
        .replace("{{ssl}}\n", &ssl)
        .replace("{{worker_processes}}", &tuning.worker_processes.to_string())
        .replace(
            "{{worker_shutdown_timeout}}\n",
            &tuning.shutdown_directive(),
        )
        .replace("{{upstream_servers}}", &server)
        .replace("{{location_block}}", location.trim_end())
        .replace("{{next_upstream}}", &tuning.next_upstream)
        .replace(
            "{{fastcgi_keep_conn}}",
            if tuning.upstream_keepalive > 0 {
                "on"
            } else {
                "off"
            },
        )
}

impl Nginx {
    /// Renders the config into `run_dir/nginx`, starts nginx on `listen` (or a free
    /// loopback port) and waits until a request through it reaches the app
    /// (`status_path` answers 2xx).
    pub async fn start(
        env: &Site<'_>,
        upstream: &Upstream,
        tuning: Tuning,
        listen: Option<SocketAddr>,
    ) -> Result<Nginx> {
        let bin = tools::require("nginx").or_else(|_| {
            let p = PathBuf::from("/usr/sbin/nginx");
            if p.exists() {
                Ok(p)
            } else {
                tools::require("nginx")
            }
        })?;
        let probe_tls = match &tuning.tls {
            Some(files) => {
                require_ssl_module(&bin).await?;
                let trust = crate::load::tls::TlsSettings {
                    server_name: super::tls::SERVER_NAME.into(),
                    ca_file: Some(files.ca.clone()),
                    insecure_skip_verify: false,
                };
                Some(crate::load::tls::TlsClient::new(&trust).map_err(Error::Harness)?)
            }
            None => None,
        };
        let prefix = env.run_dir.join("nginx");
        std::fs::create_dir_all(&prefix).map_err(|e| Error::io(&prefix, e))?;
        let listen = match listen {
            Some(a) => a,
            None => crate::sys::port::free_loopback()?,
        };
        let conf = prefix.join("nginx.conf");
        write_conf(&conf, &render(&prefix, listen, &tuning, upstream))?;
        let args = base_args(&prefix, true);
        let child = Child::spawn(
            "nginx",
            &bin,
            &args,
            &[],
            env.run_dir,
            &prefix.join("nginx.out"),
        )?;
        let mut ngx = Nginx {
            bin,
            prefix,
            listen,
            tuning,
            child,
        };
        let endpoint = ngx.endpoint();
        // A plain `listen ... http2` port speaks h2c only: the probe does too.
        let h2c = ngx.tuning.http2 && ngx.tuning.tls.is_none();
        crate::sys::readiness::wait_ready_speaking(
            &endpoint,
            probe_tls.as_ref(),
            h2c,
            env.status_path,
            env.ready_timeout,
            Some(&mut ngx.child),
        )
        .await
        .map_err(|e| {
            // nginx reports start-up errors in its error log and on stderr (nginx.out).
            let tail = [ngx.prefix.join("error.log"), ngx.prefix.join("nginx.out")]
                .iter()
                .map(|p| crate::sys::child::log_tail(p, 20))
                .filter(|t| !t.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            Error::Child {
                what: "nginx".into(),
                why: match e {
                    Error::Child { why, .. } => why,
                    other => other.to_string(),
                },
                log_tail: Some(tail),
            }
        })?;
        Ok(ngx)
    }

    fn conf_path(&self) -> PathBuf {
        self.prefix.join("nginx.conf")
    }

    /// Where the load connects.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::Tcp(self.listen)
    }

    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// The config file.
    pub fn conf(&self) -> PathBuf {
        self.conf_path()
    }

    /// The prefix directory.
    pub fn prefix(&self) -> &std::path::Path {
        &self.prefix
    }

    /// The certificate files nginx serves https with (None: plain HTTP).
    pub fn tls_files(&self) -> Option<&super::tls::TlsFiles> {
        self.tuning.tls.as_ref()
    }

    /// The current worker pids.
    pub fn worker_pids(&self) -> Vec<i32> {
        proc_children(self.child.pid())
    }

    /// Points nginx at `upstream`: rewrites the config and runs `nginx -s reload`, which
    /// signals the master and returns at once. Returns the workers that were serving
    /// before (they finish their requests and exit on their own time).
    pub async fn reload(&mut self, upstream: &Upstream) -> Result<Vec<i32>> {
        let old = self.worker_pids();
        write_conf(
            &self.conf_path(),
            &render(&self.prefix, self.listen, &self.tuning, upstream),
        )?;
        let mut args = base_args(&self.prefix, false);
        args.extend(["-s".into(), "reload".into()]);
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::process::Command::new(&self.bin)
                .args(&args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| Error::Step("nginx -s reload did not return within 10s".into()))?
        .map_err(|e| Error::Step(format!("nginx -s reload: {e}")))?;
        if !out.status.success() {
            return Err(Error::Step(format!(
                "nginx -s reload failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(old)
    }

    /// Waits until none of `pids` is running and a new worker is up.
    pub async fn wait_workers_gone(&self, pids: &[i32], timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = self.worker_pids();
            let old_left = pids.iter().any(|p| now.contains(p));
            let new_up = now.iter().any(|p| !pids.contains(p));
            if !old_left && new_up {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                if !new_up {
                    // The master started no new worker: it refused the new config.
                    let refused = last_emerg(&self.prefix.join("error.log"));
                    return Err(Error::Step(format!(
                        "no new nginx worker after {timeout:?}, old workers {pids:?} still serving: the master refused the new config ({})",
                        refused.as_deref().unwrap_or("no [emerg] line in error.log")
                    )));
                }
                return Err(Error::Step(format!(
                    "old nginx workers {pids:?} still running after {timeout:?} (an old worker waits for its open connections, websockets included, unless worker_shutdown_timeout is set)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Graceful stop (SIGQUIT), then the whole group is killed.
    pub async fn stop(&mut self) {
        self.child.stop(libc::SIGQUIT, Duration::from_secs(5)).await;
    }
}

/// The last `[emerg]` line of an nginx error log, from `[emerg]` on.
fn last_emerg(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.find("[emerg]").map(|i| l[i..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_config_is_named_by_the_last_emerg_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        assert_eq!(last_emerg(&log), None);
        std::fs::write(
            &log,
            "2026/12/06 [emerg] 1#1: old\n2026/12/06 [emerg] 7#7: SSL_CTX_use_PrivateKey(\"k\") failed (key values mismatch)\n2026/12/06 [notice] 7#7: signal process started\n",
        )
        .unwrap();
        assert_eq!(
            last_emerg(&log).as_deref(),
            Some("[emerg] 7#7: SSL_CTX_use_PrivateKey(\"k\") failed (key values mismatch)")
        );
    }

    #[test]
    fn renders_every_placeholder() {
        let conf = render(
            std::path::Path::new("/tmp/run dir/nginx"),
            "127.0.0.1:8080".parse().unwrap(),
            &Tuning::default(),
            &Upstream::FastCgi(Endpoint::Unix("/tmp/run dir/app.sock".into())),
        );
        assert!(!conf.contains("{{"), "{conf}");
        assert!(
            conf.contains("server \"unix:/tmp/run dir/app.sock\";"),
            "{conf}"
        );
        assert!(conf.contains("fastcgi_param PATH_INFO         $uri;"));
        assert!(
            conf.contains("pid \"/tmp/run dir/nginx/nginx.pid\";"),
            "{conf}"
        );
        assert_eq!(quoted_inner(r#"a"b\c"#), r#"a\"b\\c"#);
        assert!(!conf.contains("worker_shutdown_timeout"), "{conf}");
    }

    #[test]
    fn proxies_websockets_and_sets_the_shutdown_timeout() {
        let tuning = Tuning {
            worker_processes: 2,
            worker_shutdown_timeout: Some(Duration::from_millis(1500)),
            ..Tuning::default()
        };
        let conf = render(
            std::path::Path::new("/tmp/r/nginx"),
            "127.0.0.1:8080".parse().unwrap(),
            &tuning,
            &Upstream::Http(Endpoint::Unix("/tmp/r/app.sock".into())),
        );
        assert!(!conf.contains("{{"), "{conf}");
        assert!(
            conf.contains("\nworker_shutdown_timeout 1500ms;\n"),
            "{conf}"
        );
        assert!(
            conf.contains("map $http_upgrade $connection_upgrade"),
            "{conf}"
        );
        assert!(
            conf.contains("proxy_set_header Upgrade $http_upgrade;"),
            "{conf}"
        );
        // A plain request still goes upstream without `Connection: close` / keep-alive headers.
        assert!(
            conf.contains("proxy_set_header Connection $connection_upgrade;"),
            "{conf}"
        );
        assert!(conf.contains("''      \"\";"), "{conf}");
        assert!(conf.contains("proxy_next_upstream off;"), "{conf}");
        assert!(!conf.contains("keepalive 1"), "{conf}");
    }

    #[test]
    fn keeps_upstream_connections_and_retries_as_told() {
        let tuning = Tuning {
            upstream_keepalive: 16,
            next_upstream: "error timeout".into(),
            ..Tuning::default()
        };
        let at = |u| {
            render(
                std::path::Path::new("/r"),
                "127.0.0.1:1".parse().unwrap(),
                &tuning,
                &u,
            )
        };
        let conf = at(Upstream::Http(Endpoint::Unix("/r/a.sock".into())));
        assert!(
            conf.contains("server \"unix:/r/a.sock\";\n        keepalive 16;"),
            "{conf}"
        );
        assert!(
            conf.contains("proxy_next_upstream error timeout;"),
            "{conf}"
        );
        assert!(!conf.contains("        keepalive_timeout"), "{conf}");
        let conf = at(Upstream::FastCgi(Endpoint::Unix("/r/a.sock".into())));
        assert!(conf.contains("fastcgi_keep_conn on;"), "{conf}");
        assert!(
            conf.contains("fastcgi_next_upstream error timeout;"),
            "{conf}"
        );
    }

    #[test]
    fn sets_the_upstream_keepalive_timeout() {
        let tuning = Tuning {
            upstream_keepalive: 2,
            upstream_keepalive_timeout: Some(Duration::from_millis(50)),
            ..Tuning::default()
        };
        let conf = render(
            std::path::Path::new("/r"),
            "127.0.0.1:1".parse().unwrap(),
            &tuning,
            &Upstream::Http(Endpoint::Unix("/r/a.sock".into())),
        );
        assert!(
            conf.contains("keepalive 2;\n        keepalive_timeout 50ms;"),
            "{conf}"
        );
    }
}
