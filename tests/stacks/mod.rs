//! The real stacks (nginx, haproxy, gunicorn, uWSGI, flup, supervisord, uvicorn, granian,
//! hypercorn), one module per server family (netns: haproxy-pool across test hosts,
//! network namespaces; remote: targets off this machine, on a test host; reuseport: the
//! SO_REUSEPORT
//! handover on a test host, with net.ipv4.tcp_migrate_req at 0 and 1).
//! external_tls: a user's own stack serving https (its own nginx, its own CA).
//! haproxy_h2 / nginx_h2: haproxy and nginx as HTTP/2 fronts.
//! python_kinds: uvicorn and granian under symlink-swap, nginx-reload and haproxy-pool.
//! In CI a missing server fails the test; elsewhere the test says what to install.

mod external_tls;
mod flup;
mod granian;
mod gunicorn;
mod haproxy;
mod haproxy_h2;
mod haproxy_reload;
mod haproxy_tls;
mod hypercorn;
mod netns;
mod nginx;
mod nginx_h2;
mod nginx_tls;
mod python_kinds;
mod remote;
mod reuseport;
mod supervisor;
mod uvicorn;
mod uwsgi;
