//! Errors that end a run without a verdict, and the exit codes they map to.

use std::path::PathBuf;

/// Exit code: every assertion held.
pub const EXIT_PASS: u8 = 0;
/// Exit code: the run completed and at least one assertion failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit code: bad input, or the harness could not complete the run.
pub const EXIT_ERROR: u8 = 2;

/// Anything that stops the harness from reaching a verdict. All map to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file that cannot be read or does not validate; the message carries file:line:col.
    #[error("{0}")]
    Scenario(String),
    /// Bad command-line input that clap could not catch (e.g. a malformed target).
    #[error("{0}")]
    Usage(String),
    /// A child process (app server, front server, deploy command) failed to start or become ready.
    #[error("{what}: {why}{}", log_tail.as_deref().map(|t| format!("\n--- last lines of its log ---\n{t}")).unwrap_or_default())]
    Child {
        what: String,
        why: String,
        log_tail: Option<String>,
    },
    /// A reload step failed (the strategy could not carry out its mechanism).
    #[error("reload step failed: {0}")]
    Step(String),
    /// The user interrupted the run (Ctrl-C / SIGTERM).
    #[error("interrupted")]
    Interrupted,
    /// I/O on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Anything else that is the harness's own fault.
    #[error("{0}")]
    Harness(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the harness error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
