//! Process infrastructure: child process groups and their registry, short commands
//! run under a time bound, the process table, the reaper that outlives a killed
//! harness, the child subreaper and orphan sweep, test hosts in network namespaces,
//! readiness probes, finding the installed tools, and where a program a scenario names
//! is found.
//!
//! Nothing here knows about scenarios, app kinds or strategies.

pub mod bounded;
pub mod child;
pub mod groups;
pub mod netns;
pub mod orphans;
pub mod port;
pub mod procfs;
pub mod program;
pub mod readiness;
pub mod reaper;
pub mod spawn_netns;
pub mod tools;
