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
    if let Some(l) = r.pass_rate_lower95 {
        properties.push(("pass_rate_lower95".to_string(), l.to_string()));
    }
    if let Some(u) = r.during_failure_rate_upper95 {
        properties.extend([
            ("during_failed".to_string(), r.during_failed.to_string()),
            ("during_requests".to_string(), r.during_requests.to_string()),
            ("during_failure_rate_upper95".to_string(), u.to_string()),
        ]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::collect::Tally;
    use crate::report::html::tests::fixture;

    #[test]
    fn compare_junit_a_suite_per_scenario_a_case_per_run() {
        let mut failing = Tally::default();
        failing.add(fixture("naive"));
        failing.add(fixture("naive"));
        let mut passing = Tally::default();
        let mut ok = fixture("swap <&>");
        ok.exit_code = 0;
        passing.add(ok);
        let xml = render(
            &[failing.finish(), passing.finish()],
            SystemTime::UNIX_EPOCH,
        );
        assert!(xml.contains(
            "<testsuites name=\"zdt-check compare\" tests=\"3\" failures=\"2\" errors=\"0\""
        ));
        assert!(xml.contains("<testsuite name=\"naive\" tests=\"2\" failures=\"2\" errors=\"0\""));
        assert!(xml.contains("<testsuite name=\"swap &lt;&amp;&gt;\" tests=\"1\" failures=\"0\""));
        assert!(xml.contains("<testcase classname=\"naive\" name=\"naive run 2\""));
        assert!(xml.contains("<property name=\"passed\" value=\"0/2\"/>"));
        assert!(xml.contains("<property name=\"pass_rate_lower95\" value=\"0\"/>"));
        // 1 of 1: 0.05^(1/1).
        assert!(
            xml.contains("<property name=\"pass_rate_lower95\" value=\"0.050000000000000044\"/>"),
            "{xml}"
        );
        // The failure names the failed check and the failed requests by class.
        let failure = "<failure message=\"no_failed_requests: 30 failed of 3000 (connect_refused 30) &lt;b&gt;&#10;failed by class: connect_refused 30\" type=\"verdict\">";
        assert_eq!(xml.matches(failure).count(), 2, "{xml}");
        assert_eq!(xml.matches("<system-out>").count(), 3);
    }
}
