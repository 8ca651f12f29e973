//! The HTML report as a browser sees it: headless Chromium parses the page and
//! dumps its DOM, and the charts' SVG elements, the step markers and the verdict
//! must be in it. Without Chromium the test says what to install and passes
//! (in CI a missing Chromium is a failure).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zdt_check::report::{self, LoadSummary, RunReport};
use zdt_check::stats::outcome::Outcome;
use zdt_check::stats::versions::NO_VERSION;
use zdt_check::stats::Sample;
use zdt_check::stats::{Collector, LoadCounters};
use zdt_check::steps::StepEvent;
use zdt_check::verdict::{Check, Verdict};

use crate::util::require_stack;

/// A 3 s run at 1000 req/s: v1 until 1 s, 30 refused connections, then v2; two
/// reload steps. `passed` picks a clean verdict or a failed one.
pub fn fixture(name: &str, passed: bool) -> RunReport {
    let mut c = Collector::new(100_000_000, 1_000_000);
    c.live_span().mark_start(900_000_000);
    c.live_span().mark_end(1_600_000_000);
    for t in 0..3000u64 {
        let (outcome, version) = match t {
            0..=999 => (Outcome::Ok, 0),
            1000..=1029 if !passed => (Outcome::ConnectRefused, NO_VERSION),
            _ => (Outcome::Ok, 1),
        };
        let lat = if (1030..1100).contains(&t) {
            60
        } else {
            2 + t % 4
        };
        c.add(&Sample {
            scheduled_ns: t * 1_000_000,
            sent_ns: t * 1_000_000,
            done_ns: (t + lat) * 1_000_000,
            outcome,
            version,
            cut: zdt_check::load::Cut::NONE,
            kind: 0,
            conn: 0,
            conn_opened_ns: 0,
        });
    }
    let stats = c.finish(
        &LoadCounters {
            scheduled: 3000,
            sent: 3000,
            target_rate: 1000.0,
            schedule_ns: 3_000_000_000,
            end_ns: 3_200_000_000,
            ..Default::default()
        },
        &["v1".into(), "v2".into()],
    );
    let check = |name: &str, passed: bool, detail: &str| Check {
        name: name.into(),
        passed,
        not_checked: false,
        detail: detail.into(),
    };
    RunReport {
        scenario: format!("scenarios/{name}.toml"),
        name: name.into(),
        strategy: "naive-restart".into(),
        scenario_hash: String::new(),
        baseline: None,
        load: Some(LoadSummary {
            mode: "open".into(),
            rate: Some(1000.0),
            connections: 32,
            keep_alive: false,
            protocol: "h1".into(),
            streams: 1,
            target: "unix:/tmp/app.sock /slow?ms=2".into(),
            engine: "epoll".into(),
            engine_note: None,
        }),
        steps: vec![
            StepEvent {
                name: "old instance stopped".into(),
                start_ms: 900.0,
                end_ms: 1000.0,
                detail: "app v1: exited".into(),
                output: None,
                changes_serving: true,
                exposure: None,
            },
            StepEvent {
                name: "new instance ready".into(),
                start_ms: 1000.0,
                end_ms: 1600.0,
                detail: "app v2 <ready>".into(),
                output: Some("deploy.sh: <done>".into()),
                changes_serving: false,
                exposure: None,
            },
        ],
        stats: Some(stats),
        footprint: None,
        websockets: None,
        verdict: Some(Verdict {
            passed,
            checks: vec![
                check("accounting", true, "scheduled 3000 = ok + failed + hung"),
                if passed {
                    check("no_failed_requests", true, "0 failed of 3000")
                } else {
                    check(
                        "no_failed_requests",
                        false,
                        "30 failed of 3000 (connect_refused 30)",
                    )
                },
            ],
        }),
        error: None,
        interrupted: false,
        interrupted_by: None,
        run_dir: None,
        leftovers: Vec::new(),
        result: if passed {
            zdt_check::report::RunResult::Pass
        } else {
            zdt_check::report::RunResult::Fail
        },
        exit_code: u8::from(!passed),
        duration_s: 3.5,
    }
}

/// Headless Chromium's serialized DOM of `page` (killed after 60 s).
pub fn dump_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    let reader = {
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
        })
    };
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap().expect("chromium's output")
}

#[test]
fn report_html_renders_in_chromium() {
    // Held while Chromium runs: the leak check counts every running child of this process.
    let _guard = crate::util::serial();
    if !require_stack(&["chromium"]) {
        return;
    }
    let runs = [
        fixture("symlink <ok> & fine", true),
        fixture(
            "naive</title><script>document.title='pwned'</script>",
            false,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    report::html::write(&page, &runs).unwrap();
    let dom = dump_dom(&page);
    assert!(dom.contains("</html>"), "no DOM dumped:\n{dom}");

    // The browser built both charts for both runs.
    assert_eq!(dom.matches("<svg class=\"chart timeline\"").count(), 2);
    assert_eq!(dom.matches("<svg class=\"chart percentiles\"").count(), 2);
    // One ok bar per window with ok responses; the failed run has failure bars.
    let ok_windows = runs[1]
        .stats
        .as_ref()
        .unwrap()
        .timeline
        .iter()
        .filter(|w| w.ok > 0)
        .count();
    assert!(ok_windows > 20);
    assert_eq!(
        dom.matches("<rect class=\"bar ok\"").count(),
        ok_windows + runs[0].stats.as_ref().unwrap().timeline.len()
    );
    assert!(dom.contains("<rect class=\"bar fail\" data-key=\"connect_refused\""));
    assert!(dom.contains("<rect class=\"fail-mark\""));
    // Step markers (two per run), latency lines, version band, a curve per phase.
    assert_eq!(dom.matches("<g class=\"step-marker\"").count(), 4);
    assert_eq!(dom.matches("<path class=\"line p50\"").count(), 2);
    assert_eq!(dom.matches("<path class=\"line p99\"").count(), 2);
    assert!(dom.contains("<rect class=\"version-band\" data-version=\"v2\""));
    assert_eq!(dom.matches("<g class=\"phase-curve\"").count(), 6);
    // The verdicts, as text.
    assert!(dom.contains("data-verdict=\"PASS\">PASS</span>"));
    assert!(dom.contains("data-verdict=\"FAIL\">FAIL</span>"));
    // Hostile names stayed text: no script element, the title is the escaped name.
    assert!(!dom.contains("<script"), "a scenario name became markup");
    assert!(dom.contains("naive&lt;/title&gt;&lt;script&gt;"));
    assert!(dom.contains("<title>zdt-check: 2 runs</title>"));
    assert!(dom.contains("symlink &lt;ok&gt; &amp; fine"));
    assert!(dom.contains("<pre>deploy.sh: &lt;done&gt;</pre>"));
}
