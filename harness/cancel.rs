//! Cancellation: a flag async code can wait on, raised when the run must stop (the
//! signal policy that raises it lives in `cli`). A leaf: it imports nothing of the
//! crate, so the load generator can hold one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

/// A cancellation flag that async code can wait on.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<(AtomicBool, Notify)>,
    /// Why it was raised (the first reason given wins): `SIGINT`, `SIGTERM`, ...
    reason: Arc<OnceLock<&'static str>>,
}

impl Cancel {
    /// A flag nobody has raised (tests use this: no signal handler is installed).
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Raises the flag.
    pub fn cancel(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    /// Raises the flag, saying why (e.g. the signal's name, `SIGTERM`); reports name it.
    pub fn cancel_because(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        self.cancel();
    }

    /// Why the flag was raised, if a reason was given.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason.get().copied()
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }

    /// Resolves once the flag is raised.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}
