//! Front servers between the load and the app: nginx and haproxy, each with its
//! config rendering, control sockets and lifecycle, and the `[front]` settings.

pub mod config;
pub mod haproxy;
pub mod nginx;
pub mod tls;

pub use config::{front_listen, FrontConfig};

use std::path::Path;
use std::time::Duration;

/// Where a front server lives and how it knows the app answers: the run directory
/// (its config, logs and sockets go in a folder there) and the app's readiness probe.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The private run directory.
    pub run_dir: &'a Path,
    /// The path a request through the front server asks for to see the app answer.
    pub status_path: &'a str,
    /// Longest the front server and the app behind it may take to answer.
    pub ready_timeout: Duration,
}
