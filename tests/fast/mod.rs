//! The fast tier: tests that start no real server and run no load, each done in
//! about a second or less, needing nothing installed (the built-in fixture or `sh`
//! at most, briefly). The one longer test is the hostile-server table (about 15 s):
//! servers in the test process, each misbehaving case under a second of load. Run with
//! the library's unit tests:
//!
//!     cargo test --lib && cargo test --test main -- fast::
//!
//! Everything else in tests/ (real stacks, scenarios under load) is the full suite.

mod bad_input;
mod baseline;
mod check;
mod cli;
mod docs_links;
mod harness_errors;
mod hostile;
pub mod init;
mod layers;
mod reference;
mod report_schema;
mod tls_input;
