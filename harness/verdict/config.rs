//! `[assert]`: what must hold for a run to pass.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::{Dur, Locator};
use crate::error::Result;
use crate::stats::outcome;

use super::baseline::BaselineConfig;

/// Assertions; a run passes when all hold.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssertConfig {
    /// Most failed requests allowed (outside `allow`).
    pub max_failed: u64,
    /// Failure classes (or keys like `http_502`) that are reported but not counted against `max_failed`.
    pub allow: Spanned<Vec<String>>,
    /// After the last step only the last version serves; before the first step only the first.
    pub new_version_took_over: bool,
    /// Budget for p99 latency during the reload.
    pub p99_during: Option<Dur>,
    /// Budget for the longest interval without a successful response.
    pub max_gap: Option<Dur>,
    /// Fewest requests that must cross each reload step that changes who serves (a
    /// switch, a stop, a drain): in flight at its start or end, or sent within
    /// ±10 ms of either. Unset: the report only warns about a step crossed by none.
    pub min_exposure: Option<Spanned<u64>>,
    /// Tolerances against a baseline report (`--baseline`): `[assert.baseline]`.
    pub baseline: BaselineConfig,
}

impl Default for AssertConfig {
    fn default() -> Self {
        AssertConfig {
            max_failed: 0,
            allow: Spanned::new(0..0, Vec::new()),
            new_version_took_over: true,
            p99_during: None,
            max_gap: None,
            min_exposure: None,
            baseline: BaselineConfig::default(),
        }
    }
}

impl AssertConfig {
    /// Checks that `allow` names failure classes or code keys, located by `loc`.
    pub fn validate(&self, loc: &Locator) -> Result<()> {
        for name in self.allow.get_ref() {
            if !outcome::is_valid_name(name) || name == "ok" {
                return Err(loc.error(
                    self.allow.span(),
                    Some("assert.allow"),
                    &format!(
                        "unknown outcome class {name:?}; expected a failure class ({}) or a code key like http_502",
                        outcome::CLASS_NAMES[1..].join(", ")
                    ),
                ));
            }
        }
        if let Some(m) = &self.min_exposure {
            if *m.get_ref() == 0 {
                return Err(loc.error(
                    m.span(),
                    Some("assert.min_exposure"),
                    "must be at least 1 (a request that crosses each step that changes who serves); leave it out to only warn when a step is crossed by none",
                ));
            }
        }
        self.baseline.validate(loc)
    }
}
