//! Integration tests: one binary, a module per topic. Tests that start processes
//! run one at a time (see util::serial) and check that nothing survives the harness.

mod util;

mod stacks;
mod fast;

mod bad_input;
mod builtin_scenarios;
mod cli;
mod command;
mod compare_report;
mod external;
mod external_python;
mod faults;
mod init;
mod load;
mod mix;
mod repeat;
mod report;
mod report_html;
mod security;
mod websockets;
