//! The load generator on its own, against the built-in fixture: coordinated
//! omission, max gap accuracy, and the accounting of refused connects.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{assert_no_leftovers, bin, dump, serial};

/// A fixture on a free port; killed on drop.
struct Fixture {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start(extra: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let mut cmd = bin();
        cmd.args(["fixture", "--listen", "tcp:127.0.0.1:0", "--ready-file"])
            .arg(&ready)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            if let Ok(s) = std::fs::read_to_string(&ready) {
                break s.trim().trim_start_matches("tcp:").to_string();
            }
            assert!(Instant::now() < deadline, "fixture did not start");
            std::thread::sleep(Duration::from_millis(10));
        };
        Fixture {
            child,
            url: format!("http://{addr}/"),
            _dir: dir,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load(url: &str, args: &[&str], except: &[u32]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let out = bin()
        .args(["load", url])
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_no_leftovers(&out, except);
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(&json).unwrap_or_else(|_| panic!("{}", dump(&out))),
    )
    .unwrap();
    crate::util::assert_matches_schema(&doc);
    let stats = doc["runs"][0]["stats"].clone();
    assert_eq!(stats["identity_holds"], true, "{}", dump(&out));
    stats
}

#[test]
fn coordinated_omission_is_corrected() {
    let _g = serial();
    // The fixture holds every response for 500 ms, 1 s after it starts listening.
    let f = Fixture::start(&["--pause-after", "1s", "--pause-for", "500ms"]);
    // 200 req/s over 2 connections: both stall, and about 100 scheduled sends wait for them.
    let s = load(
        &f.url,
        &["--rate", "200", "-c", "2", "-d", "3s"],
        &[f.child.id()],
    );
    assert_eq!(s["failed"], 0);
    let corrected = &s["latency"];
    let uncorrected = &s["latency_uncorrected"];
    // About 80 of ~600 requests were scheduled more than 100 ms before the pause ended:
    // the corrected p90 shows the stall...
    assert!(
        corrected["p90"].as_f64().unwrap() > 100.0,
        "corrected: {corrected}"
    );
    assert!(
        corrected["max"].as_f64().unwrap() > 400.0,
        "corrected: {corrected}"
    );
    // ...while from the actual send time only the 2 requests in flight saw it (< 1%).
    assert!(
        uncorrected["p99"].as_f64().unwrap() < 50.0,
        "uncorrected: {uncorrected}"
    );
    assert!(s["late_sends"].as_u64().unwrap() > 50, "{s}");
}

#[test]
fn max_gap_matches_an_outage_of_known_length() {
    let _g = serial();
    let f = Fixture::start(&["--pause-after", "1s", "--pause-for", "500ms"]);
    // Plenty of connections: nothing queues, so successes stop and resume with the pause.
    let s = load(
        &f.url,
        &["--rate", "200", "-c", "64", "-d", "3s"],
        &[f.child.id()],
    );
    let gap = s["max_gap_ms"].as_f64().unwrap();
    // No shorter than the pause less one request interval (5 ms) and timer slack. A
    // busy machine (tests run beside this one) can only lengthen it, by the time
    // the fixture and the load thread take to be scheduled again (up to 19 ms seen
    // with the whole suite running): 30 ms is allowed for that. A gap measured per
    // timeline window instead of per response would be off by up to 100 ms.
    assert!(
        (492.0..=530.0).contains(&gap),
        "max gap {gap} ms for a 500 ms pause: {s}"
    );
}

#[test]
fn refused_connects_are_counted_not_retried() {
    let _g = serial();
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = load(
        &format!("http://127.0.0.1:{port}/"),
        &["--rate", "100", "-c", "4", "-d", "1s", "--no-keep-alive"],
        &[],
    );
    let refused = s["classes"]["connect_refused"].as_u64().unwrap();
    assert_eq!(refused, s["scheduled"].as_u64().unwrap(), "{s}");
    assert!((95..=105).contains(&refused), "1 s at 100 req/s: {s}");
}

#[test]
fn status_codes_are_classified() {
    let _g = serial();
    let f = Fixture::start(&[]);
    let url = format!("{}status/502", f.url);
    let s = load(
        &url,
        &["--rate", "50", "-c", "2", "-d", "1s"],
        &[f.child.id()],
    );
    assert_eq!(s["ok"], 0, "{s}");
    assert_eq!(s["by_code"]["http_5xx"]["http_502"], s["scheduled"], "{s}");
    assert_eq!(s["classes"]["http_5xx"], s["scheduled"], "{s}");
}

#[test]
fn requests_past_their_timeout_end_as_timeouts_on_time() {
    let _g = serial();
    // Every response is held for 1.5 s from 1 s in; requests give up after 300 ms.
    let f = Fixture::start(&["--pause-after", "1s", "--pause-for", "1500ms"]);
    let s = load(
        &f.url,
        &["--rate", "100", "-c", "8", "-d", "3s", "--timeout", "300ms"],
        &[f.child.id()],
    );
    let timeouts = s["classes"]["timeout"].as_u64().unwrap_or(0);
    // Each connection times out at 1.3, 1.6, 1.9 and 2.2 s; the one sent at 2.2 s is
    // answered as the pause ends. A timer firing late (600 ms) would give half as many.
    assert!((28..=40).contains(&timeouts), "{timeouts} timeouts: {s}");
    assert_eq!(s["failed"].as_u64().unwrap(), timeouts, "{s}");
    // The rest were answered, none long after the limit (one may land as it expires).
    assert!(s["ok"].as_u64().unwrap() > 100, "{s}");
    assert!(
        s["latency_uncorrected"]["max"].as_f64().unwrap() < 350.0,
        "{s}"
    );
}

#[test]
fn report_load_prints_the_verifier_footprint() {
    let _g = serial();
    let f = Fixture::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let out = bin()
        .args([
            "load", &f.url, "--rate", "200", "-c", "4", "-d", "500ms", "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert_no_leftovers(&out, &[f.child.id()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\nverifier: ")
            && stdout.contains(" s of load (")
            && stdout.contains("% of one core)"),
        "{}",
        dump(&out)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    crate::util::assert_matches_schema(&doc);
    crate::report::assert_sane_footprint(&doc["runs"][0]["footprint"]);
}

#[test]
fn requests_slower_than_the_old_grace_default_end_ok_not_hung() {
    let _g = serial();
    let f = Fixture::start(&[]);
    // 2.5 s requests for 1 s: the last ones end 3.5 s in. The default grace (the 5 s
    // timeout + 1 s) lets them; a fixed 2 s grace left the last half second's hung.
    let url = format!("{}slow?ms=2500", f.url);
    let s = load(
        &url,
        &["--rate", "20", "-c", "64", "-d", "1s"],
        &[f.child.id()],
    );
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["ok"], s["scheduled"], "{s}");
}

/// A load interrupted by SIGTERM: the requests it cut in flight are `interrupted`,
/// neither hung nor failed; the report says INTERRUPTED by SIGTERM and the exit code is 2.
#[test]
fn sigterm_cuts_requests_as_interrupted_not_hung() {
    let _g = serial();
    let f = Fixture::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    // 50 req/s of 300 ms requests: about 15 in flight at any time.
    let url = format!("{}slow?ms=300", f.url);
    let child = bin()
        .args([
            "load", &url, "--rate", "50", "-c", "32", "-d", "30s", "--json",
        ])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the harness we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    assert_no_leftovers(&out, &[f.child.id()]);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("verdict: INTERRUPTED by SIGTERM"),
        "{}",
        dump(&out)
    );
    assert!(!stdout.contains("Ctrl-C"), "{}", dump(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    crate::util::assert_matches_schema(&doc);
    let run = &doc["runs"][0];
    assert_eq!(run["result"], "INTERRUPTED", "{}", dump(&out));
    assert_eq!(run["interrupted_by"], "SIGTERM", "{}", dump(&out));
    let s = &run["stats"];
    assert!(s["interrupted"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["hung"], 0, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["identity_holds"], true, "{s}");
}

#[test]
fn hung_requests_say_how_long_they_were_open_and_what_to_raise() {
    let _g = serial();
    let f = Fixture::start(&[]);
    // 3 s requests with a 1 s grace: the ones in flight at the end are slow, not stuck.
    let url = format!("{}slow?ms=3000", f.url);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let out = bin()
        .args([
            "load", &url, "--rate", "10", "-c", "64", "-d", "1s", "--grace", "1s",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_no_leftovers(&out, &[f.child.id()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the oldest had been in flight 2.")
            && stdout.contains("raise `load.timeout`"),
        "{}",
        dump(&out)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    crate::util::assert_matches_schema(&doc);
    let s = &doc["runs"][0]["stats"];
    let oldest = s["hung_oldest_ms"].as_f64().unwrap();
    assert!((1900.0..2600.0).contains(&oldest), "{s}");
    assert_eq!(s["grace_ms"], 1000.0, "{s}");
}
