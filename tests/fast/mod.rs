//! The fast tier: tests that need no servers and start no processes
//! (`cargo test --test main -- fast::`).

mod docs_links;
