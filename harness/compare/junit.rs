//! `zdt-check compare --junit`: JUnit XML with one `<testsuite>` per scenario and
//! one `<testcase>` per run (`<name> run N`), in the run report's shape
//! ([`crate::report::junit`], `schema/junit.xsd`).
//!
//! A failed run is a `<failure>` naming the failed checks and the failed requests
//! by class; a harness error an `<error>`. Each suite's `<properties>` carry the
//! table's figures (passes, reload duration, dip, p99 during, max gap).

use std::path::Path;
use std::time::SystemTime;

use super::collect::Compared;
use crate::error::{Error, Result};
use crate::report::junit::{render_suites, Suite};

/// The `<testsuites>` name.
pub const SUITES: &str = "zdt-check compare";

/// The JUnit XML for `compared` (scenario order), stamped with `at`.
pub fn render(compared: &[Compared], at: SystemTime) -> String {
    let suites: Vec<Suite> = compared.iter().map(suite).collect();
    render_suites(SUITES, &suites, at)
}

/// Writes the JUnit XML for `compared` to `path`.
pub fn write(path: &Path, compared: &[Compared]) -> Result<()> {
    std::fs::write(path, render(compared, SystemTime::now())).map_err(|e| Error::io(path, e))
}

fn suite(c: &Compared) -> Suite {
    let r = &c.row;
    let p99_during = r
        .latency
        .iter()
        .find(|l| l.phase == "during")
        .map_or("-".into(), |l| format!("{:.1}", l.p99));
    let mut properties = vec![
        ("scenario".to_string(), r.scenario.clone()),
        ("strategy".to_string(), r.strategy.clone()),
        ("passed".to_string(), format!("{}/{}", r.passes, r.runs)),
    ];
    if r.measured > 0 {
        properties.extend([
            (
                "reload_ms_median".to_string(),
                format!("{:.1}", r.reload_ms.median),
            ),
            (
                "dip_percent_median".to_string(),
                format!("{:.1}", r.dip_percent.median),
            ),
            ("p99_during_ms_median".to_string(), p99_during),
            (
                "max_gap_ms_median".to_string(),
                format!("{:.1}", r.max_gap_ms.median),
            ),
        ]);
    }
    Suite {
        name: r.name.clone(),
        classname: r.name.clone(),
        properties,
        cases: c.cases.clone(),
    }
}
