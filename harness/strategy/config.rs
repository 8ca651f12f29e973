//! `[reload]`: the strategy's name, the keys every strategy has, and the strategy's
//! own options once its registry entry has read them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::StrategyOptions;
use crate::config::{Dur, OptionDoc};

/// The docs of the keys every strategy has (exactly the keys of [`ReloadConfig`]; a
/// unit test checks it).
pub const COMMON_DOCS: &[OptionDoc] = &[
    OptionDoc::new("strategy", "required", "one of the [strategies](strategies/README.md), each below"),
    OptionDoc::new("interval", "`\"1s\"`", "pause between reloads when there are several"),
    OptionDoc::new("deploys", "one per version after the first", "how many reloads; with listed versions it must match them; with discovered versions (external) 1 to 100, default 1"),
    OptionDoc::new("step_timeout", "strategy's own", "longest one step may take; what a step is, and the default, per strategy below"),
];

/// `[reload]`: the strategy, the keys every strategy has, and the strategy's own
/// options. Those are each strategy's `Options` type (`harness/strategy/<name>.rs`),
/// read by its registry entry in a second pass over the file (this struct ignores
/// their keys).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReloadConfig<O = Arc<dyn StrategyOptions>> {
    /// The strategy's name (see `strategy::REGISTRY`).
    pub strategy: Spanned<String>,
    /// Pause between two reloads when `app.versions` has more than two entries (default 1s).
    #[serde(default)]
    pub interval: Option<Dur>,
    /// How many reloads to run (default: one per version after the first; 1 when the
    /// versions are discovered). With listed versions it must match their count.
    #[serde(default)]
    pub deploys: Option<Spanned<u32>>,
    /// Longest one reload step may take; what a step is, and the default, is the
    /// strategy's own (see its `Options`).
    #[serde(default)]
    pub step_timeout: Option<Spanned<Dur>>,
    /// The strategy's own options, parsed and checked.
    #[serde(skip)]
    pub options: O,
}

impl<O> ReloadConfig<O> {
    /// The same keys with the strategy's parsed options (pass 1 holds `()` there).
    pub fn with_options<P>(self, options: P) -> ReloadConfig<P> {
        ReloadConfig {
            strategy: self.strategy,
            interval: self.interval,
            deploys: self.deploys,
            step_timeout: self.step_timeout,
            options,
        }
    }
}
