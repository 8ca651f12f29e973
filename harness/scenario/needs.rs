//! What a scenario needs installed, read from the registries (`doctor` and `check`
//! ask it): each tool with the key that makes the scenario need it.

use super::Scenario;
use crate::sys::tools::Tool;
use crate::{app, strategy};

/// A tool a scenario needs, and the key that makes it need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The tool.
    pub tool: Tool,
    /// `app.kind`, `reload.strategy` or `front` (the first of them that needs it).
    pub key: &'static str,
}

/// What a scenario needs, read from the registries: its app kind's tools, its
/// strategy's, and nginx for a `[front]`; each tool once, in `Tool` order.
pub fn needs<O, A>(s: &Scenario<O, A>) -> Vec<Need> {
    let mut n: Vec<Need> = Vec::new();
    let mut add = |tools: &[Tool], key| n.extend(tools.iter().map(|&tool| Need { tool, key }));
    if let Some(k) = app::find_kind(s.app.kind.get_ref()) {
        add(k.tools, "app.kind");
    }
    if let Some(e) = strategy::find(s.reload.strategy.get_ref()) {
        add(e.tools, "reload.strategy");
    }
    if s.front.as_ref().is_some_and(|f| f.kind() == "nginx") {
        add(&[Tool::Nginx], "front");
    }
    n.sort_by_key(|x| x.tool);
    n.dedup_by_key(|x| x.tool);
    n
}
