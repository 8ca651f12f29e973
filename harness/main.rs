//! The zdt-check binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use zdt_check::cancel::Cancel;
use zdt_check::cli::{Cli, Command};
use zdt_check::error::EXIT_ERROR;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == zdt_check::sys::reaper::SUBCOMMAND)
    {
        return zdt_check::sys::reaper::run();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Help and --version are not errors; usage mistakes exit 2 as documented.
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    zdt_check::sys::groups::install_panic_hook();
    if matches!(cli.command, Command::Run(_) | Command::Compare(_)) {
        zdt_check::sys::reaper::start();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zdt-check: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // A panic on the main path is a harness error (exit 2), never exit 101: the panic
    // hook has already killed every child group and said what panicked; unwinding
    // removed the run directory on the way out.
    let run = std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async move {
            // The fixture handles its own signals (it is what gets SIGTERM in a reload).
            let cancel = if matches!(cli.command, Command::Fixture(_)) {
                Ok(Cancel::new())
            } else {
                zdt_check::cli::cancel_on_signals()
            };
            match cancel {
                Ok(cancel) => zdt_check::cli::run(cli, cancel).await,
                Err(e) => {
                    eprintln!("zdt-check: error: cannot install signal handlers: {e}");
                    ExitCode::from(EXIT_ERROR)
                }
            }
        })
    });
    let code = std::panic::catch_unwind(run).unwrap_or(ExitCode::from(EXIT_ERROR));
    zdt_check::sys::groups::kill_all_groups();
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}
