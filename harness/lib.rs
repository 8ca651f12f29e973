//! zdt-check: proves, under load, whether a reload strategy is really zero-downtime.
//!
//! The binary (`main.rs`) only parses arguments and maps errors to exit codes;
//! everything else lives here so that tests can drive it in-process.
//!
//! Map of the crate:
//! - [`load`]: the load generator (pacer, HTTP/1.1 client, outcome classes).
//! - [`stats`]: windowed latency histograms, timeline, phases, max gap.
//! - [`app`]: child-process supervision and the app topologies.
//! - [`fixture`]: the built-in fixture server (needs nothing installed).
//! - [`strategy`]: one file per reload strategy, behind one trait.
//! - [`scenario`]: the TOML scenario schema and its validation.
//! - [`verdict`]: assertions judged over a run's statistics.
//! - [`websocket`]: websocket connections held across the reload, and how each ended.
//! - [`report`]: terminal, JSON, HTML, JUnit and `.hgrm` reports.
//! - [`run`]: one scenario run, start to finish; [`compare`]: several scenarios in one table.
//! - [`reference`]: the `[app]` and `[reload]` reference generated from the registries (docs/reference.md, `explain`).
//! - [`progress`]: live progress; [`cli`]: the command line; [`doctor`]: what is installed; [`check`]: a scenario checked without running it; [`init`]: a starter scenario; [`cancel`]: Ctrl-C handling; [`error`]: errors and exit codes.

pub mod app;
pub mod cancel;
pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod doctor;
pub mod error;
pub mod fixture;
pub mod front;
pub mod init;
pub mod load;
pub mod progress;
pub mod reference;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod steps;
pub mod strategy;
pub mod sys;
pub mod verdict;
pub mod websocket;
