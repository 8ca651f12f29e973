//! `zdt-check compare --html --junit` end to end: a passing scenario and a negative
//! control on the built-in fixture. The page is self-contained, ranks the passing
//! one first, stacks both timelines aligned at the first reload step and overlays
//! their percentile curves; a browser builds it; the JUnit XML is valid and holds
//! the control's failure. (A missing output directory, bad input, is in
//! fast::bad_input.)

use crate::util::{assert_no_leftovers, at, bin, dump, have, require_stack, serial};

const PASSING: &str = "symlink swap (builtin)";
const CONTROL: &str = "naive restart (builtin, tcp)";

/// The `x1` of the origin marker's line in each timeline chart of `page`.
fn origin_xs(page: &str) -> Vec<String> {
    page.split("<g class=\"origin-marker\"><line x1=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// Where the first reload step's band starts in each timeline chart of `page`.
fn first_step_xs(page: &str) -> Vec<String> {
    page.split("<svg class=\"chart timeline\"")
        .skip(1)
        .map(|svg| {
            let rest = svg
                .split("class=\"step-span\" x=\"")
                .nth(1)
                .expect("a step");
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn compare_writes_html_and_junit() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let (html, junit) = (dir.path().join("compare.html"), dir.path().join("j.xml"));
    let out = bin()
        .args(["compare", "--rate", "200"])
        .arg(at("scenarios/symlink.toml"))
        .arg(at("scenarios/negative/naive.toml"))
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_no_leftovers(&out, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for external in ["src=", "<link", "@import", "url(", "<script", "https://"] {
        assert!(!page.contains(external), "external reference {external}");
    }
    // The ranked table: the passing scenario first, the control second.
    let row = |rank: u8, name: &str| {
        page.find(&format!(
            "<tr data-rank=\"{rank}\" data-scenario=\"{name}\">"
        ))
        .unwrap_or_else(|| panic!("{name} is not ranked {rank}:\n{}", dump(&out)))
    };
    assert!(row(1, PASSING) < row(2, CONTROL));
    assert!(page.contains("<span class=\"passed all\">1/1</span>"));
    assert!(page.contains("<span class=\"passed some\">0/1</span>"));
    assert!(page.contains("connect_refused"));
    // Both timelines, in rank order, after the table, each aligned at t = 0.
    let panel = |name: &str| {
        page.find(&format!("data-scenario=\"{name}\">\n<h2>"))
            .unwrap_or_else(|| panic!("no timeline for {name}"))
    };
    assert!(row(2, CONTROL) < panel(PASSING) && panel(PASSING) < panel(CONTROL));
    assert_eq!(page.matches("<svg class=\"chart timeline\"").count(), 2);
    let xs = origin_xs(&page);
    assert_eq!(xs.len(), 2);
    assert_eq!(xs[0], xs[1]);
    // Each run's first reload step starts at t = 0 (unshifted, it would sit at the
    // end of its warm-up, a second to the right).
    assert_eq!(first_step_xs(&page), xs, "the timelines are not aligned");
    // The control's refused requests start at its first reload step (t = 0), where
    // the passing one's timeline has none.
    assert!(page.contains("class=\"bar fail\" data-key=\"connect_refused\""));
    // Percentile curves: one chart per phase, one curve per scenario.
    assert_eq!(page.matches("<section class=\"run phase\"").count(), 3);
    assert_eq!(page.matches("<g class=\"scenario-curve\"").count(), 6);

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            "<testsuite name=\"{CONTROL}\" tests=\"1\" failures=\"1\" errors=\"0\""
        )),
        "{xml}"
    );
    assert!(xml.contains(&format!(
        "<testsuite name=\"{PASSING}\" tests=\"1\" failures=\"0\" errors=\"0\""
    )));
    let failure = &xml[xml
        .find("<failure message=\"")
        .expect("the control's failure")..];
    let message = &failure[..failure.find("\" type=").unwrap()];
    assert!(
        message.contains("no_failed_requests: ")
            && message.contains("&#10;failed by class: connect_refused "),
        "{message}"
    );
    if have("xmllint") {
        crate::report::assert_valid_junit(&xml);
    }

    // As a browser builds it.
    if !require_stack(&["chromium"]) {
        return;
    }
    let dom = crate::report_html::dump_dom(&html);
    assert!(dom.contains("</html>"), "no DOM dumped:\n{dom}");
    assert_eq!(dom.matches("<svg class=\"chart timeline\"").count(), 2);
    assert_eq!(origin_xs(&dom), xs);
    assert!(dom.contains(&format!("<tr data-rank=\"1\" data-scenario=\"{PASSING}\">")));
    assert_eq!(dom.matches("<g class=\"scenario-curve\"").count(), 6);
    assert!(dom.contains("<title>zdt-check compare: 2 scenarios</title>"));
}
