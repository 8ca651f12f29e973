//! The fast tier: tests that need no server and no load run, for use while changing
//! code (`cargo test --lib && cargo test --test main -- fast::`).

mod docs_links;
mod layers;
