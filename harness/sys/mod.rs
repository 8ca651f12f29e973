//! Process infrastructure: child process groups and their registry, the reaper that
//! outlives a killed harness, the child subreaper and orphan sweep, test hosts in
//! network namespaces, readiness probes, and finding the installed tools.
//!
//! Nothing here knows about scenarios, app kinds or strategies.

pub mod netns;
pub mod port;
pub mod process;
pub mod readiness;
pub mod reaper;
pub mod tools;
