//! `zdt-check compare --html`: one self-contained page comparing the scenarios
//! (inline CSS and SVG, no script, nothing fetched), drawn with the run report's
//! charts ([`crate::report::chart`]) and style.
//!
//! - The comparison table, ranked by [`super::RANKING_RULE`] (stated on the page).
//! - Every scenario's timeline, stacked in rank order on one time axis, aligned at
//!   the start of the first reload step (t = 0), with shared y axes (requests/s
//!   and latency). Each is the representative run's: the median by reload duration.
//! - Latency by percentile, one chart per phase, one curve per scenario (its
//!   runs' histograms pooled), all three on one latency axis.

use std::fmt::Write;
use std::path::Path;

use super::collect::Compared;
use super::{rank, Row, Spread, DURING_BOUND_NOTE, PASS_RATE_NOTE, RANKING_RULE};
use crate::error::{Error, Result};
use crate::report::chart::{self, Curve, Frame};
use crate::report::html::{escape, scenario_line, CSS};

/// Colours of the scenarios, in rank order (then repeating).
const SCENARIO_COLOURS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#9c755f", "#edc948",
];

/// Extra rules for this page, on top of the run report's.
const EXTRA_CSS: &str = r#"
.rank{display:inline-block;min-width:26px;padding:0 6px;border-radius:4px;background:#1f2d3d;color:#fff;font-weight:700;text-align:center}
.passed{font-weight:700}.passed.all{color:#2e7d32}.passed.some{color:#c62828}
table.ranking td,table.ranking th{padding:5px 10px}
table.ranking td.strategy,.nowrap{white-space:nowrap}
.range{display:block;color:#666;font-size:11.5px}
table.ranking td.scenario{min-width:190px}
section.phase h2{font-size:17px}
"#;

/// Writes the comparison page for `compared` (scenario order) to `path`.
pub fn write(path: &Path, compared: &[Compared]) -> Result<()> {
    std::fs::write(path, render(compared)).map_err(|e| Error::io(path, e))
}

/// The comparison page for `compared` (in the order the scenarios were given).
pub fn render(compared: &[Compared]) -> String {
    let rows: Vec<Row> = compared.iter().map(|c| c.row.clone()).collect();
    let order = rank(&rows);
    let colour = |i: usize| {
        let pos = order.iter().position(|&o| o == i).unwrap_or(i);
        SCENARIO_COLOURS[pos % SCENARIO_COLOURS.len()]
    };
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        o,
        "<title>zdt-check compare: {} scenario{}</title>",
        compared.len(),
        if compared.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "<style>{CSS}{EXTRA_CSS}</style>\n</head>\n<body>\n<main>"
    );
    o.push_str("<h1>zdt-check compare</h1>\n");
    let runs: usize = compared.iter().map(|c| c.row.runs).sum();
    let _ = writeln!(
        o,
        "<p class=\"sub\">zdt-check {}: {} scenario{}, {runs} run{} in all. Latencies are of ok responses, measured from the scheduled send time.</p>",
        env!("CARGO_PKG_VERSION"),
        compared.len(),
        if compared.len() == 1 { "" } else { "s" },
        if runs == 1 { "" } else { "s" },
    );

    ranking_table(&mut o, compared, &order, &colour);
    timelines(&mut o, compared, &order);
    percentiles(&mut o, compared, &order, &colour);
    o.push_str("</main>\n</body>\n</html>\n");
    o
}

/// A median over the runs, with its range under it when the runs differ.
fn spread_cell(s: &Spread, runs: usize) -> String {
    if runs <= 1 || (s.max - s.min).abs() < 0.05 {
        format!("{:.1}", s.median)
    } else {
        format!(
            "{:.1}<span class=\"range\">{:.1}–{:.1}</span>",
            s.median, s.min, s.max
        )
    }
}

fn passed_cell(r: &Row) -> String {
    let class = if r.runs > 0 && r.passes == r.runs {
        "all"
    } else {
        "some"
    };
    let mut errors = if r.errors > 0 {
        format!(
            " ({} error{})",
            r.errors,
            if r.errors == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    if r.interrupted > 0 {
        errors.push_str(&format!(" ({} interrupted)", r.interrupted));
    }
    let bound = super::pass_rate_text(r).map_or(String::new(), |t| {
        format!("<span class=\"range pass-rate\">{}</span>", escape(&t))
    });
    let during = super::during_bound_text(r).map_or(String::new(), |t| {
        format!("<span class=\"range during-bound\">{}</span>", escape(&t))
    });
    format!(
        "<span class=\"passed {class}\">{}/{}</span>{errors}{bound}{during}",
        r.passes, r.runs
    )
}

fn ranking_table(
    o: &mut String,
    compared: &[Compared],
    order: &[usize],
    colour: &dyn Fn(usize) -> &'static str,
) {
    o.push_str("<section class=\"run\" id=\"ranking\">\n<h2>Ranking</h2>\n");
    let _ = writeln!(
        o,
        "<p class=\"sub ranking-rule\">Ranked by {RANKING_RULE}. Figures are medians over a scenario's runs (with their range under them when the runs differ); a reload lasts from the start of its first step to the end of its last; the dip is how much less ok throughput there was during the reload than before it. {PASS_RATE_NOTE} {DURING_BOUND_NOTE}</p>"
    );
    o.push_str("<table class=\"ranking\"><thead><tr><th class=\"num\">rank</th><th>scenario</th><th>strategy</th><th class=\"num\">passed</th><th class=\"num\">reload (ms)</th><th class=\"num\">dip (%)</th><th class=\"num\">p99 during (ms)</th><th class=\"num\">max gap (ms)</th><th>failed requests by class</th><th>versions</th></tr></thead><tbody>\n");
    for (pos, &i) in order.iter().enumerate() {
        let r = &compared[i].row;
        let measured = |v: String| if r.measured > 0 { v } else { "–".into() };
        let p99 = r
            .latency
            .iter()
            .find(|l| l.phase == "during")
            .map_or("–".into(), |l| format!("{:.1}", l.p99));
        let failed = if r.measured == 0 {
            "–".to_string()
        } else if r.failed.is_empty() {
            "0".to_string()
        } else {
            r.failed
                .iter()
                .map(|(k, n)| {
                    format!(
                        "<span class=\"nowrap\"><span class=\"sw\" style=\"background:{}\"></span>{} {n}</span>",
                        chart::outcome_colour(k),
                        escape(k)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "<tr data-rank=\"{}\" data-scenario=\"{}\"><td class=\"num\"><span class=\"rank\">{}</span></td><td class=\"scenario\"><span class=\"sw\" style=\"background:{}\"></span><a href=\"#scenario-{i}\">{}</a></td><td class=\"strategy\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{p99}</td><td class=\"num\">{}</td><td>{failed}</td><td>{}</td></tr>",
            pos + 1,
            escape(&r.name),
            pos + 1,
            colour(i),
            escape(&r.name),
            escape(&r.strategy),
            passed_cell(r),
            measured(spread_cell(&r.reload_ms, r.measured)),
            measured(spread_cell(&r.dip_percent, r.measured)),
            measured(spread_cell(&r.max_gap_ms, r.measured)),
            escape(&r.versions.join(" → ")),
        );
    }
    o.push_str("</tbody></table>\n</section>\n");
}

/// The frame every stacked timeline shares: the union of their spans around
/// their own origins, and the largest rate and latency.
fn shared_frame(compared: &[Compared]) -> Option<Frame> {
    let reps: Vec<_> = compared
        .iter()
        .filter_map(|c| c.representative.as_ref())
        .collect();
    if reps.is_empty() {
        return None;
    }
    let mut frame = Frame {
        origin_ms: 0.0,
        from_ms: f64::INFINITY,
        to_ms: f64::NEG_INFINITY,
        per_second: true,
        count_max: 0.0,
        latency_max: 0.0,
        plot_height: 200.0,
        time_caption: "time since the first reload step started (s)".into(),
        origin_label: Some("first reload step".into()),
    };
    for k in reps {
        let t = k.view();
        frame.from_ms = frame.from_ms.min(-k.origin_ms());
        frame.to_ms = frame.to_ms.max(t.end_ms() - k.origin_ms());
        frame.count_max = frame.count_max.max(t.max_count(true));
        frame.latency_max = frame.latency_max.max(t.max_p99());
    }
    Some(frame)
}

fn timelines(o: &mut String, compared: &[Compared], order: &[usize]) {
    o.push_str("<h2 class=\"section\">Timelines, aligned at the first reload step</h2>\n");
    o.push_str("<p class=\"sub\">One run per scenario, in rank order, on one time axis: t = 0 is the start of that run's first reload step. With several runs, the one shown is the median by reload duration. Both y axes are shared: requests per second (stacked by outcome) and p50/p99 latency.</p>\n");
    let frame = shared_frame(compared);
    for (pos, &i) in order.iter().enumerate() {
        let c = &compared[i];
        let r = &c.row;
        let _ = writeln!(
            o,
            "<section class=\"run scenario\" id=\"scenario-{i}\" data-rank=\"{}\" data-scenario=\"{}\">",
            pos + 1,
            escape(&r.name)
        );
        let _ = writeln!(
            o,
            "<h2><span class=\"rank\">{}</span>{} <span class=\"note\">passed {}</span></h2>",
            pos + 1,
            escape(&r.name),
            passed_cell(r)
        );
        let mut sub = scenario_line(&r.scenario, &r.strategy, c.load.as_ref(), None);
        match (&c.representative, &frame) {
            (Some(k), Some(frame)) => {
                let verdict = match k.exit_code {
                    0 => "PASS",
                    1 => "FAIL",
                    _ => "ERROR",
                };
                let reload = k
                    .reload_ms
                    .map_or("no reload step".into(), |ms| format!("reload {ms:.1} ms"));
                let _ = write!(
                    sub,
                    " · <span class=\"representative\" data-run=\"{}\">shown: run {} of {} ({reload}, {verdict}){}</span>",
                    k.run,
                    k.run,
                    r.runs,
                    if r.runs > 1 { ", the median by reload duration" } else { "" }
                );
                let _ = writeln!(o, "<p class=\"sub\">{sub}</p>");
                let t = k.view();
                let frame = Frame {
                    origin_ms: k.origin_ms(),
                    ..frame.clone()
                };
                o.push_str(&chart::timeline_svg(&t, &frame));
                o.push_str(&chart::timeline_legend(&t));
            }
            _ => {
                let _ = writeln!(o, "<p class=\"sub\">{sub}</p>");
                o.push_str("<p class=\"note\">No timeline: no run of this scenario got as far as the load.</p>\n");
            }
        }
        o.push_str("</section>\n");
    }
}

/// What a phase is called in a chart's heading.
fn phase_title(name: &str) -> String {
    match name {
        "before" => "before the reload".into(),
        "during" => "during the reload".into(),
        "after" => "after the reload".into(),
        other => other.to_string(),
    }
}

fn percentiles(
    o: &mut String,
    compared: &[Compared],
    order: &[usize],
    colour: &dyn Fn(usize) -> &'static str,
) {
    o.push_str("<h2 class=\"section\">Latency by percentile, per phase</h2>\n");
    o.push_str("<p class=\"sub\">One curve per scenario: the latency of its ok responses in that phase, every run's histogram pooled. The three charts share their latency axis.</p>\n");
    let mut names: Vec<&str> = Vec::new();
    for &i in order {
        for p in &compared[i].phases {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
    }
    let rank_of = ["before", "during", "after", "whole run"];
    names.sort_by_key(|n| rank_of.iter().position(|o| o == n).unwrap_or(9));
    let curves_of = |phase: &str| -> Vec<(usize, Curve)> {
        order
            .iter()
            .filter_map(|&i| {
                let c = &compared[i];
                c.phases.iter().find(|p| p.name == phase).map(|p| {
                    (
                        i,
                        Curve {
                            class: "scenario-curve",
                            attr: "data-scenario",
                            name: &c.row.name,
                            colour: colour(i),
                            points: &p.curve,
                        },
                    )
                })
            })
            .collect()
    };
    let all: Vec<Curve> = names
        .iter()
        .flat_map(|n| curves_of(n).into_iter().map(|(_, c)| c))
        .collect();
    let range = chart::latency_range(&all);
    for name in names {
        let curves = curves_of(name);
        let _ = writeln!(
            o,
            "<section class=\"run phase\" id=\"phase-{}\" data-phase=\"{}\">\n<h2>{}</h2>",
            escape(&name.replace(' ', "-")),
            escape(name),
            escape(&phase_title(name))
        );
        let only: Vec<Curve> = curves.iter().map(|(_, c)| *c).collect();
        o.push_str(&chart::percentile_svg(
            &only,
            range,
            &format!("latency by percentile {}, per scenario", phase_title(name)),
        ));
        let items: Vec<String> = curves
            .iter()
            .map(|(i, _)| {
                let c = &compared[*i];
                let p = c
                    .phases
                    .iter()
                    .find(|p| p.name == name)
                    .expect("curves_of found it");
                format!(
                    "<span><span class=\"line-sw\" style=\"border-color:{}\"></span>{} ({} run{}): {} ok, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms</span>",
                    colour(*i),
                    escape(&c.row.name),
                    p.runs,
                    if p.runs == 1 { "" } else { "s" },
                    p.latency.count,
                    p.latency.p50,
                    p.latency.p99,
                    p.latency.max
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "<div class=\"legend\">{}</div>\n</section>",
            items.join("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::collect::Tally;
    use crate::report::html::tests::fixture;
    use crate::report::RunReport;

    /// A scenario of `runs`, folded as compare folds them.
    fn compared(runs: Vec<RunReport>) -> Compared {
        let mut t = Tally::default();
        for r in runs {
            t.add(r);
        }
        t.finish()
    }

    /// The `x1` of the first `<line` after `marker` in `svg`.
    fn line_x_after(svg: &str, marker: &str) -> f64 {
        let at = svg.find(marker).unwrap_or_else(|| panic!("no {marker}"));
        let rest = &svg[at..];
        let x = &rest[rest.find("x1=\"").unwrap() + 4..];
        x[..x.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn compare_html_ranks_aligns_and_is_self_contained() {
        // The fixture fails (30 refused); its first step starts at 900 ms.
        let failing = compared(vec![fixture("naive <b>")]);
        // A passing scenario whose first step starts at 400 ms, run twice.
        let pass = |reload_end: f64| {
            let mut r = fixture("swap & co");
            r.exit_code = 0;
            r.steps[0].start_ms = 400.0;
            r.steps[1].end_ms = reload_end;
            r
        };
        let passing = compared(vec![pass(1600.0), pass(1800.0), pass(1700.0)]);
        assert_eq!(passing.representative.as_ref().unwrap().run, 3);
        let page = render(&[failing, passing]);

        assert!(page.starts_with("<!DOCTYPE html>"));
        for external in ["src=", "<link", "@import", "url(", "<script", "https://"] {
            assert!(!page.contains(external), "external reference {external}");
        }
        assert!(!page.contains("naive <b>"), "unescaped name");
        // The passing scenario ranks first, in the table and in the timelines.
        let table_first = page.find("<tr data-rank=\"1\" data-scenario=\"swap &amp; co\">");
        let table_second = page.find("<tr data-rank=\"2\" data-scenario=\"naive &lt;b&gt;\">");
        assert!(table_first.is_some() && table_second.is_some(), "{page}");
        assert!(table_first < table_second);
        let panel = |name: &str| {
            page.find(&format!("data-scenario=\"{name}\">\n<h2>"))
                .unwrap_or_else(|| panic!("no panel for {name}"))
        };
        assert!(panel("swap &amp; co") < panel("naive &lt;b&gt;"));
        assert!(page.contains(RANKING_RULE));
        assert!(page
            .contains("shown: run 3 of 3 (reload 1300.0 ms, PASS), the median by reload duration"));
        assert!(page.contains("3/3</span>") && page.contains("0/1</span>"));
        // 3 of 3: 0.05^(1/3) = 36.8%, rounded down; 0 of 1: 0%.
        assert!(page
            .contains("3/3</span><span class=\"range pass-rate\">pass rate ≥ 36% at 95%</span>"));
        assert!(
            page.contains("0/1</span><span class=\"range pass-rate\">pass rate ≥ 0% at 95%</span>")
        );

        // Two timelines on one axis: t = 0 (each run's first step start) at the same x.
        let svgs: Vec<&str> = page
            .split("<svg class=\"chart timeline\"")
            .skip(1)
            .collect();
        assert_eq!(svgs.len(), 2);
        let (x_pass, x_fail) = (
            line_x_after(svgs[0], "class=\"origin-marker\""),
            line_x_after(svgs[1], "class=\"origin-marker\""),
        );
        assert_eq!(x_pass, x_fail);
        // And each run's first step band starts there, though on the load clock
        // they are 500 ms apart.
        for svg in &svgs {
            let marker = "class=\"step-span\" x=\"";
            let band = &svg[svg.find(marker).unwrap() + marker.len()..];
            let x: f64 = band[..band.find('"').unwrap()].parse().unwrap();
            assert!(
                (x - x_pass).abs() < 0.11,
                "step band at {x}, origin at {x_pass}"
            );
        }
        // Percentile curves: a chart per phase, a curve per scenario.
        for phase in ["before", "during", "after"] {
            let at = page
                .find(&format!(
                    "<section class=\"run phase\" id=\"phase-{phase}\" data-phase=\"{phase}\">"
                ))
                .unwrap_or_else(|| panic!("no {phase} chart"));
            let section = &page[at..at + page[at..].find("</section>").unwrap()];
            assert_eq!(section.matches("<g class=\"scenario-curve\"").count(), 2);
            assert!(section.contains("(3 runs)"));
        }
    }

    #[test]
    fn compare_html_without_measurements_still_renders() {
        let mut r = fixture("broken");
        r.stats = None;
        r.verdict = None;
        r.exit_code = 2;
        let page = render(&[compared(vec![r])]);
        assert!(page.contains("No timeline: no run of this scenario got as far as the load."));
        assert!(page.contains("0/1</span> (1 error)"));
        assert!(!page.contains("<svg"));
    }
}
