//! The documentation of one scenario key, kept next to the type that reads it (a
//! strategy's or an app kind's `Options`, or the common keys of a section), so that
//! the reference (`docs/reference.md`) and `zdt-check explain` are generated from the
//! registries instead of copied by hand.

/// One key's documentation: its name, its default as written in a scenario, and what
/// it means (one Markdown line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDoc {
    /// The key, as written in the section (e.g. `settle`).
    pub key: &'static str,
    /// Its default, as Markdown (`` `"500ms"` ``, `required`, `—` for absent).
    pub default: &'static str,
    /// What it means, one Markdown line.
    pub doc: &'static str,
}

impl OptionDoc {
    /// A key's documentation.
    pub const fn new(key: &'static str, default: &'static str, doc: &'static str) -> Self {
        OptionDoc { key, default, doc }
    }
}

/// The keys `docs` documents, sorted (to compare with a type's keys as a set).
pub fn doc_keys(docs: &[OptionDoc]) -> Vec<&'static str> {
    let mut keys: Vec<&str> = docs.iter().map(|d| d.key).collect();
    keys.sort_unstable();
    keys
}

/// `keys` sorted (to compare with [`doc_keys`]).
pub fn sorted(keys: &[&'static str]) -> Vec<&'static str> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys
}
