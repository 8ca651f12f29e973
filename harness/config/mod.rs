//! Configuration plumbing shared by every section's owner (the app kinds, the
//! strategies, the verdict, the scenario that composes them): located errors,
//! human-written durations, each key's documentation ([`OptionDoc`]), and the two-pass table a registry entry's options are
//! read from.

pub mod duration;
pub mod locator;
pub mod option_doc;
pub mod table;

pub use duration::Dur;
pub use locator::{not_one_of, one_of, Locator};
pub use option_doc::OptionDoc;
pub use table::{keys_of, AppTable, Common, ReloadTable, Table, Without};

/// The programs a section's options name, each with its full key (`app.start`,
/// `reload.command`) and its argument list as written (the program first).
pub type Programs<'a> = Vec<(&'static str, &'a toml::Spanned<Vec<String>>)>;
