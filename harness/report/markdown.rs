//! The Markdown summary (`run --markdown`): per run the verdict, the accounting
//! identity, the phases' failures with their bound, and each failed check, short
//! enough for a CI job's summary page (GitHub's `$GITHUB_STEP_SUMMARY`) or a pull
//! request comment.

use std::fmt::Write;
use std::path::Path;

use super::{RunReport, RunResult};
use crate::error::{Error, Result};

/// The summary of `runs`: a title line with the count of each result, then one
/// section per run.
pub fn render(runs: &[RunReport]) -> String {
    let mut o = String::new();
    let count = |want: RunResult| runs.iter().filter(|r| r.result == want).count();
    let mut tally = Vec::new();
    for res in [
        RunResult::Pass,
        RunResult::Fail,
        RunResult::Error,
        RunResult::Interrupted,
    ] {
        let n = count(res);
        if n > 0 {
            tally.push(format!("{n} {}", res.as_str()));
        }
    }
    let _ = writeln!(o, "## zdt-check: {}\n", tally.join(", "));
    for r in runs {
        run(&mut o, r);
    }
    o
}

/// Writes [`render`] of `runs` to `path`.
pub fn write(path: &Path, runs: &[RunReport]) -> Result<()> {
    std::fs::write(path, render(runs))
        .map_err(|e| Error::Harness(format!("writing {}: {e}", path.display())))
}

/// `PASS` and `FAIL` with a mark a reader sees at a glance.
fn badge(r: RunResult) -> &'static str {
    match r {
        RunResult::Pass => "✅ PASS",
        RunResult::Fail => "❌ FAIL",
        RunResult::Error => "⚠️ ERROR",
        RunResult::Interrupted => "⏹️ INTERRUPTED",
    }
}

/// Text that is safe inside a table cell: no pipe, no line break.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `s` as an inline code span: the fence is one backtick longer than the longest run
/// of backticks inside, so a path or name holding backticks cannot end it early.
fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if longest > 0 { " " } else { "" };
    format!("{fence}{pad}{}{pad}{fence}", s.replace('\n', " "))
}

fn percent(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.2}%", v * 100.0))
}

fn run(o: &mut String, r: &RunReport) {
    let _ = writeln!(
        o,
        "### {} {} ({})\n",
        badge(r.result),
        cell(&r.name),
        code(&r.scenario)
    );
    let mut head = vec![format!("strategy {}", code(&r.strategy))];
    if let Some(l) = &r.load {
        let rate = l
            .rate
            .map_or("closed loop".into(), |x| format!("{x} req/s"));
        let conn = if l.keep_alive {
            "keep-alive"
        } else {
            "a new connection per request"
        };
        head.push(format!(
            "{rate}, {}, {} connections, {conn}",
            l.protocol, l.connections
        ));
    }
    let _ = writeln!(o, "{}; {:.1} s\n", head.join("; "), r.duration_s);
    if let Some(note) = r.load.as_ref().and_then(|l| l.engine_note.as_ref()) {
        let _ = writeln!(o, "Note: {}\n", cell(note));
    }
    if let Some(e) = &r.error {
        let _ = writeln!(o, "**Error:** {}\n", cell(e));
    }
    if r.interrupted {
        let _ = writeln!(
            o,
            "**{}**: what was measured until then.\n",
            r.interrupted_by_text()
        );
    }
    if let Some(st) = &r.stats {
        let parts = super::accounting_terms(st);
        let holds = if st.identity_holds {
            "holds"
        } else {
            "DOES NOT HOLD"
        };
        let _ = writeln!(
            o,
            "Requests: scheduled {} = {} (identity {holds}). Max gap without a successful response: {:.1} ms.\n",
            st.scheduled,
            parts.join(" + "),
            st.max_gap_ms
        );
        if !st.phases.is_empty() {
            let _ = writeln!(
                o,
                "| phase | requests | failed | failure rate | 95% upper bound | p99 ok (ms) |"
            );
            let _ = writeln!(o, "|---|---:|---|---:|---:|---:|");
            for p in &st.phases {
                let failed: u64 = p.failed.values().sum();
                let classes = if failed == 0 {
                    "0".to_string()
                } else {
                    p.failed
                        .iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {:.2} |",
                    p.name,
                    p.ok + failed,
                    classes,
                    percent(p.failure_rate),
                    percent(p.failure_rate_upper95),
                    p.latency.p99
                );
            }
            let _ = writeln!(
                o,
                "| whole run | {} | {} | {} | {} | {:.2} |",
                st.scheduled,
                st.failed,
                percent(st.failure_rate),
                percent(st.failure_rate_upper95),
                st.latency.p99
            );
            o.push('\n');
        }
    }
    for (i, s) in r.steps.iter().enumerate() {
        if s.changes_serving && s.exposure.is_some_and(|e| e.crossed == 0) {
            let _ = writeln!(
                o,
                "> **Warning:** step {} {} changes who serves and was crossed by no request: the run says nothing about it.\n",
                i + 1,
                code(&s.name)
            );
        }
    }
    if let Some(v) = &r.verdict {
        let failed: Vec<_> = v.checks.iter().filter(|c| !c.not_failed()).collect();
        if failed.is_empty() {
            let na = v.checks.iter().filter(|c| c.not_checked).count();
            let na = if na > 0 {
                format!(", {na} not judged")
            } else {
                String::new()
            };
            let _ = writeln!(o, "No check failed ({} checks{na}).\n", v.checks.len());
        } else {
            let _ = writeln!(o, "Failed checks:\n");
            for c in failed {
                let _ = writeln!(o, "- {}: {}", code(&c.name), cell(&c.detail));
            }
            o.push('\n');
        }
    }
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            o,
            "Against the baseline {} (median of {} runs):\n",
            code(&b.file),
            b.runs
        );
        let _ = writeln!(o, "| figure | baseline | this run | most allowed | |");
        let _ = writeln!(o, "|---|---:|---:|---:|---|");
        for row in &b.rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                row.figure,
                row.show(row.baseline),
                row.show(row.current),
                row.allowed.map_or("not judged".into(), |a| row.show(a)),
                if row.regressed { "**regressed**" } else { "" }
            );
        }
        o.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::run;

    #[test]
    fn a_failed_run_names_its_failed_checks_and_a_pass_says_none_failed() {
        let pass = run("good | one", 0, &[("accounting", true, "ok")]);
        let fail = run(
            "bad",
            1,
            &[
                ("accounting", true, "ok"),
                (
                    "no_failed_requests",
                    false,
                    "3 failed of 10 (reset_fresh 3)",
                ),
            ],
        );
        let md = render(&[pass, fail]);
        assert!(md.starts_with("## zdt-check: 1 PASS, 1 FAIL\n"), "{md}");
        assert!(
            md.contains("### ✅ PASS good \\| one (`scenarios/good | one.toml`)"),
            "{md}"
        );
        assert!(md.contains("No check failed (1 checks)."), "{md}");
        assert!(md.contains("### ❌ FAIL bad"), "{md}");
        assert!(
            md.contains("- `no_failed_requests`: 3 failed of 10 (reset_fresh 3)"),
            "{md}"
        );
        assert!(!md.contains("- `accounting`"), "{md}");
    }

    #[test]
    fn a_name_holding_backticks_cannot_end_its_code_span() {
        assert_eq!(code("plain.toml"), "`plain.toml`");
        assert_eq!(code("a`b.toml"), "`` a`b.toml ``");
        assert_eq!(code("x``y"), "``` x``y ```");
        let md = render(&[run("a`b", 0, &[("accounting", true, "ok")])]);
        assert!(md.contains("(`` scenarios/a`b.toml ``)"), "{md}");
    }

    #[test]
    fn an_error_is_shown_without_checks() {
        let mut r = run("broken", 2, &[]);
        r.error = Some("nginx did not start:\nbad config".into());
        let md = render(&[r]);
        assert!(md.contains("## zdt-check: 1 ERROR"), "{md}");
        assert!(
            md.contains("**Error:** nginx did not start: bad config"),
            "{md}"
        );
        assert!(!md.contains("checks"), "{md}");
    }
}
