//! Cancellation: Ctrl-C (SIGINT) or SIGTERM asks the run to stop cleanly; a second
//! one kills every child group and exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A cancellation flag that async code can wait on.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<(AtomicBool, Notify)>,
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

    /// Raises the flag on the first SIGINT/SIGTERM; on the second, kills all child groups and exits 130.
    pub fn on_signals() -> std::io::Result<Cancel> {
        use tokio::signal::unix::{signal, SignalKind};
        let cancel = Cancel::new();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let c = cancel.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                seen += 1;
                if seen == 1 {
                    eprintln!("zdt-check: interrupted; stopping the run (again to abort at once)");
                    c.cancel();
                } else {
                    crate::app::process::kill_all_groups();
                    std::process::exit(130);
                }
            }
        });
        Ok(cancel)
    }
}
