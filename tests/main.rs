//! Integration tests: one binary, a module per topic. Tests that start processes
//! run one at a time (see util::serial) and check that nothing survives the harness.
//! `fast::` is the fast tier (no server, no load): `cargo test --test main -- fast::`.

mod util;

mod fast;

mod stacks;

mod action;
mod baseline;
mod builtin_scenarios;
mod command;
mod compare_report;
mod exposure;
mod external;
mod external_python;
mod faults;
mod init;
mod load;
mod mix;
mod pid1_shell;
mod repeat;
mod report;
mod report_html;
mod security;
mod websockets;
mod wheel;
