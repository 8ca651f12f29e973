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
    /// A bug in zdt-check: one of its threads panicked (`load thread zdt-load-0
    /// panicked: ...`). Never blamed on the server.
    #[error("internal error: {0} (this is a bug in zdt-check)")]
    Internal(String),
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

/// The message a panic was raised with (`panic!("...")`'s text), from its payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// The environment variable that makes [`test_panic_point`] panic: for the tests only.
pub const TEST_PANIC_VAR: &str = "ZDT_TEST_PANIC";

/// TEST-ONLY fault injection, compiled into debug builds only (a release build has
/// an empty function): panics if the environment variable [`TEST_PANIC_VAR`] is set
/// to `point` (`load-thread`, `collector`, `run`), so the tests can prove a panic in
/// that place ends the run as a harness error. Not a user-facing option.
#[inline]
#[track_caller]
pub fn test_panic_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(TEST_PANIC_VAR).is_some_and(|v| v == point) {
        panic!("injected by {TEST_PANIC_VAR}={point}");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        let literal = caught(|| panic!("boom"));
        let formatted = caught(|| panic!("boom {}", 7));
        let other = caught(|| std::panic::panic_any(7u8));
        assert_eq!(panic_message(&*literal), "boom");
        assert_eq!(panic_message(&*formatted), "boom 7");
        assert_eq!(panic_message(&*other), "(no message)");
        assert_eq!(
            Error::Internal("load thread zdt-load-0 panicked: boom".into()).to_string(),
            "internal error: load thread zdt-load-0 panicked: boom (this is a bug in zdt-check)"
        );
    }
}
