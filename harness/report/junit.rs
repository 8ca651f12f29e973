//! JUnit XML (`--junit`): one `<testsuite name="zdt-check">` with one
//! `<testcase>` per scenario, so CI systems show each scenario as a test.
//!
//! A failed verdict is a `<failure>` listing the failed checks (`name: detail`,
//! one a line); a harness error or an interrupted run is an `<error>`; the
//! terminal report goes into `<system-out>`. The shape is the common
//! Jenkins/Ant one (`testsuites/testsuite/testcase/failure|error|skipped,
//! system-out`); `schema/junit.xsd` describes exactly what is written.
//! `zdt-check compare --junit` writes the same shape with one suite per
//! scenario ([`render_suites`]).

use std::fmt::Write;
use std::path::Path;
use std::time::SystemTime;

use super::{terminal, RunReport};
use crate::error::{Error, Result, EXIT_ERROR, EXIT_PASS};

/// The suite name and every test case's class name.
pub const SUITE: &str = "zdt-check";

/// How one run counts in JUnit terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseResult {
    /// Every assertion held.
    Passed,
    /// The run completed and assertions failed: one `name: detail` line per failed check.
    Failed(String),
    /// No verdict: a harness error, or the run was interrupted.
    Error(String),
}

/// Classifies a run by its exit code, with the text that explains it.
pub fn case_result(r: &RunReport) -> CaseResult {
    let failed_checks = || -> String {
        r.verdict
            .iter()
            .flat_map(|v| v.checks.iter().filter(|c| !c.not_failed()))
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match r.exit_code {
        EXIT_PASS => CaseResult::Passed,
        EXIT_ERROR => {
            let mut why = Vec::new();
            if r.interrupted {
                why.push(format!(
                    "{}: the run did not finish; nothing is judged against the server",
                    r.interrupted_by_text()
                ));
            }
            if let Some(e) = &r.error {
                why.push(e.clone());
            }
            if why.is_empty() {
                why.push("no verdict".into());
            }
            CaseResult::Error(why.join("\n"))
        }
        _ => {
            let text = failed_checks();
            CaseResult::Failed(if text.is_empty() {
                "verdict: FAIL".into()
            } else {
                text
            })
        }
    }
}

/// Escapes `s` for XML text (`attr = false`) or a double-quoted attribute value
/// (`attr = true`: line breaks and tabs become character references so parsers
/// keep them). Characters XML 1.0 does not allow become U+FFFD.
pub fn escape(s: &str, attr: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\r' => o.push_str("&#13;"),
            '\n' if attr => o.push_str("&#10;"),
            '\t' if attr => o.push_str("&#9;"),
            '\n' | '\t' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// The first line of `s`, at most 200 characters: a `message` attribute.
fn headline(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut h: String = first.chars().take(200).collect();
    if h.len() < first.len() || s.lines().nth(1).is_some() {
        h.push_str(" ...");
    }
    h
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC (the xsd's timestamp form, no zone).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// One test case as JUnit shows it: a run's name, time, result and terminal report.
#[derive(Debug, Clone)]
pub struct Case {
    /// The test case's name.
    pub name: String,
    /// Seconds the run took.
    pub time_s: f64,
    /// Passed, failed (the failed checks) or error.
    pub result: CaseResult,
    /// The run was interrupted (the error's type).
    pub interrupted: bool,
    /// The terminal report (`<system-out>`).
    pub system_out: String,
}

impl Case {
    /// The test case of run `r`, named after its scenario.
    pub fn of(r: &RunReport) -> Case {
        Case {
            name: r.name.clone(),
            time_s: r.duration_s.max(0.0),
            result: case_result(r),
            interrupted: r.interrupted,
            system_out: terminal::render(r),
        }
    }
}

/// One `<testsuite>`: its name, its cases' class name, properties, cases.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite's name.
    pub name: String,
    /// Every test case's `classname`.
    pub classname: String,
    /// `<property name value>` pairs (none: no `<properties>` element).
    pub properties: Vec<(String, String)>,
    /// The test cases.
    pub cases: Vec<Case>,
}

impl Suite {
    /// `tests="N" failures="N" errors="N"` of these cases.
    fn counts<'a>(cases: impl Iterator<Item = &'a Case>) -> String {
        let (mut tests, mut failures, mut errors) = (0, 0, 0);
        for c in cases {
            tests += 1;
            match c.result {
                CaseResult::Passed => {}
                CaseResult::Failed(_) => failures += 1,
                CaseResult::Error(_) => errors += 1,
            }
        }
        format!("tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\"")
    }

    fn time(&self) -> f64 {
        self.cases.iter().map(|c| c.time_s).sum()
    }
}

/// The JUnit XML for `runs`, stamped with `at`: one suite named [`SUITE`], a case per
/// run, the runs' failure rates, their steps' exposure and their baseline figures in
/// its `<properties>` ([`failure_rates`], [`exposures`], [`baseline`]).
pub fn render(runs: &[RunReport], at: SystemTime) -> String {
    let suite = Suite {
        name: SUITE.into(),
        classname: SUITE.into(),
        properties: runs
            .iter()
            .flat_map(|r| {
                failure_rates(r)
                    .into_iter()
                    .chain(exposures(r))
                    .chain(baseline(r))
            })
            .collect(),
        cases: runs.iter().map(Case::of).collect(),
    };
    render_suites(SUITE, &[suite], at)
}

/// A run's failure rate and its one-sided 95% upper bound, per phase and for the
/// whole run, as properties (JUnit has none per test case): `<run>.<phase>.failure_rate`
/// and `<run>.<phase>.failure_rate_upper95` (`whole_run` for the run), shares from 0
/// to 1 as in the JSON; none for a phase without requests or a run without stats.
pub fn failure_rates(r: &RunReport) -> Vec<(String, String)> {
    let Some(st) = &r.stats else {
        return Vec::new();
    };
    let phases = st
        .phases
        .iter()
        .filter(|p| p.name != "whole run")
        .map(|p| (p.name.as_str(), p.failure_rate, p.failure_rate_upper95));
    let run = ("whole_run", st.failure_rate, st.failure_rate_upper95);
    let mut out = Vec::new();
    for (phase, rate, upper) in phases.chain([run]) {
        if let (Some(rate), Some(upper)) = (rate, upper) {
            out.push((format!("{}.{phase}.failure_rate", r.name), rate.to_string()));
            out.push((
                format!("{}.{phase}.failure_rate_upper95", r.name),
                upper.to_string(),
            ));
        }
    }
    out
}

/// Each reload step's exposure as properties: `<run>.step<N>.<figure>` for `name`,
/// `changes_serving`, `in_flight_at_start`, `in_flight_at_end`, `sent_near_start`,
/// `sent_near_end`, `connections_across` and `crossed` (as in the JSON); none for a
/// step without exposure.
pub fn exposures(r: &RunReport) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, s) in r.steps.iter().enumerate() {
        let Some(e) = &s.exposure else { continue };
        let key = |k: &str| format!("{}.step{}.{k}", r.name, i + 1);
        out.push((key("name"), s.name.clone()));
        out.push((key("changes_serving"), s.changes_serving.to_string()));
        for (k, v) in [
            ("in_flight_at_start", e.in_flight_at_start),
            ("in_flight_at_end", e.in_flight_at_end),
            ("sent_near_start", e.sent_near_start),
            ("sent_near_end", e.sent_near_end),
            ("connections_across", e.connections_across),
            ("crossed", e.crossed),
        ] {
            out.push((key(k), v.to_string()));
        }
    }
    out
}

/// A run beside its baseline (`--baseline`), as properties: `<run>.baseline.<figure>`
/// (the baseline's), `<run>.current.<figure>` (this run's), `<run>.allowed.<figure>`
/// (the most allowed; absent when the figure is `off`), in the JSON's units.
pub fn baseline(r: &RunReport) -> Vec<(String, String)> {
    let Some(b) = &r.baseline else {
        return Vec::new();
    };
    let mut out = vec![(format!("{}.baseline.file", r.name), b.file.clone())];
    for row in &b.rows {
        out.push((
            format!("{}.baseline.{}", r.name, row.figure),
            row.baseline.to_string(),
        ));
        out.push((
            format!("{}.current.{}", r.name, row.figure),
            row.current.to_string(),
        ));
        if let Some(a) = row.allowed {
            out.push((format!("{}.allowed.{}", r.name, row.figure), a.to_string()));
        }
    }
    out
}

/// The JUnit XML for `suites` under `<testsuites name="{name}">`, stamped with `at`.
pub fn render_suites(name: &str, suites: &[Suite], at: SystemTime) -> String {
    let all = suites.iter().flat_map(|s| s.cases.iter());
    let time: f64 = suites.iter().map(Suite::time).sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" {} time=\"{time:.3}\">",
        escape(name, true),
        Suite::counts(all)
    );
    for suite in suites {
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" {} skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
            escape(&suite.name, true),
            Suite::counts(suite.cases.iter()),
            suite.time(),
            timestamp(at)
        );
        if !suite.properties.is_empty() {
            o.push_str("    <properties>\n");
            for (k, v) in &suite.properties {
                let _ = writeln!(
                    o,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    escape(k, true),
                    escape(v, true)
                );
            }
            o.push_str("    </properties>\n");
        }
        for case in &suite.cases {
            case_xml(&mut o, &suite.classname, case);
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

fn case_xml(o: &mut String, classname: &str, case: &Case) {
    let _ = writeln!(
        o,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
        escape(classname, true),
        escape(&case.name, true),
        case.time_s
    );
    match &case.result {
        CaseResult::Passed => {}
        CaseResult::Failed(text) => {
            let _ = writeln!(
                o,
                "      <failure message=\"{}\" type=\"verdict\">{}</failure>",
                escape(text, true),
                escape(text, false)
            );
        }
        CaseResult::Error(text) => {
            let _ = writeln!(
                o,
                "      <error message=\"{}\" type=\"{}\">{}</error>",
                escape(&headline(text), true),
                if case.interrupted {
                    "interrupted"
                } else {
                    "harness"
                },
                escape(text, false)
            );
        }
    }
    let _ = writeln!(
        o,
        "      <system-out>{}</system-out>",
        escape(&case.system_out, false)
    );
    let _ = writeln!(o, "    </testcase>");
}

/// Writes the JUnit XML for `runs` to `path`.
pub fn write(path: &Path, runs: &[RunReport]) -> Result<()> {
    std::fs::write(path, render(runs, SystemTime::now())).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use quick_xml::events::Event;
    use quick_xml::Reader;

    use super::*;
    use crate::report::sample::run;

    /// A parsed element: name, attributes, text.
    #[derive(Debug)]
    struct El {
        path: String,
        attrs: Vec<(String, String)>,
        text: String,
    }

    impl El {
        fn attr(&self, k: &str) -> &str {
            self.attrs
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no attribute {k} on {}", self.path))
        }
    }

    /// Parses `xml` strictly into elements with their `/`-joined paths.
    fn parse(xml: &str) -> Vec<El> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<usize> = Vec::new();
        let mut els: Vec<El> = Vec::new();
        let open =
            |e: &quick_xml::events::BytesStart, stack: &mut Vec<usize>, els: &mut Vec<El>| {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let parent = stack.last().map(|&i| els[i].path.clone());
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("well-formed attribute");
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().expect("valid escapes").into_owned(),
                        )
                    })
                    .collect();
                els.push(El {
                    path: parent.map_or(name.clone(), |p| format!("{p}/{name}")),
                    attrs,
                    text: String::new(),
                });
                els.len() - 1
            };
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) => {
                    let i = open(&e, &mut stack, &mut els);
                    stack.push(i);
                }
                Event::Empty(e) => {
                    open(&e, &mut stack, &mut els);
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Text(t) => {
                    if let Some(&i) = stack.last() {
                        els[i].text.push_str(&t.unescape().expect("valid escapes"));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed elements");
        els
    }

    #[test]
    fn report_junit_fails_on_dropped_websockets() {
        use crate::websocket::{End, Life, WsReport};
        let ws = WsReport::tally(
            "/ws",
            100.0,
            vec![Life {
                conn: 0,
                reopen: false,
                opened_ms: Some(2.0),
                version: Some("v1".into()),
                echoes: 9,
                end: End::Dropped,
                at_ms: 2636.5,
                code: None,
                detail: "closed without a close frame".into(),
            }],
        );
        let mut r = run("ws", 1, &[("accounting", true, "ok")]);
        let mut v = r.verdict.take().unwrap();
        v.push(crate::verdict::websockets_dropped(&ws, 0));
        r.verdict = Some(v);
        r.websockets = Some(ws);
        let xml = render(&[r], SystemTime::UNIX_EPOCH);
        let els = parse(&xml);
        let failure = els
            .iter()
            .find(|e| e.path == "testsuites/testsuite/testcase/failure")
            .expect("a failure");
        assert!(
            failure.text.starts_with(
                "websockets_dropped: 1 dropped without a close frame, at most 0 allowed"
            ),
            "{}",
            failure.text
        );
        let out = els
            .iter()
            .find(|e| e.path == "testsuites/testsuite/testcase/system-out")
            .unwrap();
        assert!(
            out.text
                .contains("websockets (1 on /ws, a message every 100 ms):"),
            "{}",
            out.text
        );
        assert!(
            out.text.contains("#0   dropped at 2636.5 ms"),
            "{}",
            out.text
        );
    }

    #[test]
    fn report_junit_structure_counts_and_failures() {
        let runs = vec![
            run("symlink", 0, &[("accounting", true, "ok")]),
            run(
                "naive",
                1,
                &[
                    ("accounting", true, "ok"),
                    (
                        "no_failed_requests",
                        false,
                        "12 failed of 900 (connect_refused 12)",
                    ),
                    ("max_gap", false, "no successful response for 900.0 ms"),
                ],
            ),
            RunReport {
                error: Some("starting v1: nginx not found\n--- last lines ---\nboom".into()),
                ..run("broken", 2, &[])
            },
        ];
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let xml = render(&runs, at);
        let els = parse(&xml);
        assert_eq!(els[0].path, "testsuites");
        let suite = els
            .iter()
            .find(|e| e.path == "testsuites/testsuite")
            .unwrap();
        assert_eq!(suite.attr("name"), "zdt-check");
        assert_eq!(suite.attr("tests"), "3");
        assert_eq!(suite.attr("failures"), "1");
        assert_eq!(suite.attr("errors"), "1");
        assert_eq!(suite.attr("time"), "4.500");
        assert_eq!(suite.attr("timestamp"), "2023-11-14T22:13:20");
        let cases: Vec<&El> = els
            .iter()
            .filter(|e| e.path == "testsuites/testsuite/testcase")
            .collect();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[1].attr("classname"), "zdt-check");
        assert_eq!(cases[1].attr("name"), "naive");
        assert_eq!(cases[1].attr("time"), "1.500");
        let failures: Vec<&El> = els
            .iter()
            .filter(|e| e.path.ends_with("testcase/failure"))
            .collect();
        assert_eq!(failures.len(), 1);
        let expected = "no_failed_requests: 12 failed of 900 (connect_refused 12)\nmax_gap: no successful response for 900.0 ms";
        assert_eq!(failures[0].attr("message"), expected);
        assert_eq!(failures[0].text, expected);
        let errors: Vec<&El> = els
            .iter()
            .filter(|e| e.path.ends_with("testcase/error"))
            .collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].attr("message"),
            "starting v1: nginx not found ..."
        );
        assert!(errors[0].text.ends_with("boom"));
        let outs: Vec<&El> = els
            .iter()
            .filter(|e| e.path == "testsuites/testsuite/testcase/system-out")
            .collect();
        assert_eq!(outs.len(), 3);
        assert!(outs[1].text.contains("== naive (scenarios/naive.toml) =="));
        assert!(outs[1].text.contains("verdict: FAIL"));
    }

    #[test]
    fn report_junit_properties_carry_the_failure_rates() {
        let mut r = crate::report::html::tests::fixture("naive");
        r.name = "naive".into();
        let xml = render(&[r, run("broken", 2, &[])], SystemTime::UNIX_EPOCH);
        // 30 refused of 700 during the reload, 30 of 3000 in all (see failure_bound's references).
        assert!(
            xml.contains(
                "<property name=\"naive.during.failure_rate\" value=\"0.04285714285714286\"/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"naive.whole_run.failure_rate\" value=\"0.01\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<property name=\"naive.whole_run.failure_rate_upper95\" value=\"0.01353930762"
            ),
            "{xml}"
        );
        // Each step's exposure: name, whether it changes who serves, six figures.
        assert!(
            xml.contains("<property name=\"naive.step1.name\" value=\"old instance stopped\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"naive.step1.changes_serving\" value=\"true\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"naive.step2.crossed\" value=\""),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<property ").count(),
            8 + 2 * 8,
            "before, during, after, whole run, and 2 steps; none for a run without stats"
        );
    }

    #[test]
    fn report_junit_gives_both_runs_of_a_baseline_as_properties() {
        use crate::verdict::baseline::{self, BaselineConfig, Figure, Figures};
        let mut r = run("b", 1, &[("baseline_p99_during", false, "regressed")]);
        let (mut base, mut cur) = (Figures::new(), Figures::new());
        base.insert(Figure::P99During, 12.0);
        cur.insert(Figure::P99During, 41.0);
        r.baseline = Some(baseline::compare(
            std::path::Path::new("old.json"),
            1,
            &base,
            &cur,
            &BaselineConfig::default().tolerances(),
        ));
        let xml = render(&[r], SystemTime::UNIX_EPOCH);
        for p in [
            "<property name=\"b.baseline.file\" value=\"old.json\"/>",
            "<property name=\"b.baseline.p99_during\" value=\"12\"/>",
            "<property name=\"b.current.p99_during\" value=\"41\"/>",
            "<property name=\"b.allowed.p99_during\" value=\"22\"/>",
        ] {
            assert!(xml.contains(p), "{p} in {xml}");
        }
    }

    #[test]
    fn report_junit_escapes_everything() {
        let nasty = "a<b>&\"c\" 'd' \u{1}\u{1b}[31m";
        let mut r = run(
            nasty,
            1,
            &[("no_failed_requests", false, "x < y && z > \"w\"\nline2")],
        );
        r.scenario = "]]></system-out><evil/>".into();
        let xml = render(&[r], SystemTime::UNIX_EPOCH);
        assert!(!xml.contains("<evil/>"));
        assert!(!xml.contains('\u{1}') && !xml.contains('\u{1b}'));
        let els = parse(&xml);
        let case = els.iter().find(|e| e.path.ends_with("testcase")).unwrap();
        assert_eq!(case.attr("name"), "a<b>&\"c\" 'd' \u{FFFD}\u{FFFD}[31m");
        let failure = els.iter().find(|e| e.path.ends_with("failure")).unwrap();
        assert_eq!(
            failure.attr("message"),
            "no_failed_requests: x < y && z > \"w\"\nline2"
        );
        let out = els.iter().find(|e| e.path.ends_with("system-out")).unwrap();
        assert!(out.text.contains("]]></system-out><evil/>"));
        assert!(!els.iter().any(|e| e.path.contains("evil")));
    }

    #[test]
    fn report_junit_interrupted_is_an_error() {
        let r = RunReport {
            interrupted: true,
            interrupted_by: Some("SIGTERM".into()),
            result: crate::report::RunResult::Interrupted,
            ..run("cut", 2, &[("accounting", true, "ok")])
        };
        match case_result(&r) {
            CaseResult::Error(t) => assert!(t.starts_with("INTERRUPTED by SIGTERM: "), "{t}"),
            other => panic!("{other:?}"),
        }
        let xml = render(&[r], SystemTime::UNIX_EPOCH);
        assert!(xml.contains("type=\"interrupted\""), "{xml}");
        assert!(xml.contains("verdict: INTERRUPTED by SIGTERM"), "{xml}");
        assert!(!xml.contains("verdict: FAIL"), "{xml}");
    }

    #[test]
    fn report_junit_timestamps() {
        let t = |s| timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "1970-01-01T00:00:00");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(t(4_102_444_799), "2099-12-31T23:59:59");
    }
}
