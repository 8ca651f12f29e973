//! The real stacks (nginx, haproxy, gunicorn, uWSGI, flup, supervisord), one module per server family
//! (netns: haproxy-pool across test hosts, network namespaces).
//! In CI a missing server fails the test; elsewhere the test says what to install.

mod flup;
mod gunicorn;
mod haproxy;
mod haproxy_reload;
mod netns;
mod nginx;
mod supervisor;
mod uwsgi;
