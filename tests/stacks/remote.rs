//! Targets off this machine, on a test host this test creates (a network namespace
//! with a veth link) serving the built-in fixture: `load` refuses it without
//! `--allow-remote` (exit 2, no report) and loads it with the switch; an external
//! scenario reaches it only with `app.allow_remote = true`. The load never leaves this
//! machine: the "remote" address lives in a namespace the test removes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use zdt_check::sys::netns::{TestHost, TestHosts};

use super::netns::{require_root, test_host_names};
use crate::util::{assert_no_leftovers, bin, dump, require_stack, serial};

const PORT: u16 = 8080;

/// The fixture serving on the test host's address, killed (by pid) on drop.
struct Remote {
    child: Child,
    url: String,
}

impl Remote {
    fn start(h: &TestHost) -> Remote {
        let listen = format!("{}:{PORT}", h.addr);
        let child = Command::new("ip")
            .args(["netns", "exec", &h.name])
            .arg(env!("CARGO_BIN_EXE_zdt-check"))
            .args(["fixture", "--listen", &listen, "--version", "v1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the fixture on the test host");
        let url = format!("http://{listen}/");
        let out = bin()
            .args(["wait-ready", &url, "--path", "/", "--timeout", "20s"])
            .output()
            .unwrap();
        let me = Remote { child, url };
        assert!(out.status.success(), "fixture not ready: {}", dump(&out));
        me
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load(url: &str, extra: &[&str], json: &std::path::Path) -> std::process::Output {
    bin()
        .args(["load", url, "--rate", "50", "-c", "4", "-d", "1s", "--json"])
        .arg(json)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_remote_target_needs_the_opt_in_and_then_is_loaded() {
    if !require_stack(&["ip"]) || !require_root() {
        return;
    }
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut hosts = TestHosts::create(1).expect("creating a test host");
    let h = hosts.hosts()[0].clone();
    let remote = Remote::start(&h);
    let pid = remote.child.id();

    // Without the switch: refused before anything is sent, naming the switch.
    let json = dir.path().join("refused.json");
    let out = load(&remote.url, &[], &json);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("is {}, not on this machine", h.addr))
            && err.contains("--allow-remote"),
        "{}",
        dump(&out)
    );
    assert!(out.stdout.is_empty() && !json.exists(), "{}", dump(&out));

    // With it: every request answered, and the report names the address.
    let json = dir.path().join("allowed.json");
    let out = load(&remote.url, &["--allow-remote"], &json);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    assert_no_leftovers(&out, &[pid]);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &doc["runs"][0];
    assert_eq!(run["load"]["target"], remote.url.as_str(), "{run}");
    let ok = run["stats"]["classes"]["ok"].as_u64().unwrap_or(0);
    assert!(ok >= 40, "{}", dump(&out));
    assert_eq!(run["stats"]["failed"], 0, "{}", dump(&out));

    // An external scenario on the same host: refused without the key, run with it.
    let scenario = |allow: &str| {
        format!(
            "name = \"remote target\"\n[app]\nkind = \"external\"\ntarget = \"{}\"\nstatus_path = \"/\"\n{allow}\
             [load]\nrate = 50\nwarmup = \"1s\"\ncooldown = \"1s\"\npath = \"/\"\n\
             [reload]\nstrategy = \"command\"\ncommand = [\"sleep\", \"1\"]\n\
             [assert]\nnew_version_took_over = false\n",
            remote.url
        )
    };
    for (allow, code) in [("", 2), ("allow_remote = true\n", 0)] {
        let path = dir.path().join(format!("remote{code}.toml"));
        std::fs::write(&path, scenario(allow)).unwrap();
        let json = dir.path().join(format!("remote{code}.json"));
        let out = bin()
            .arg("run")
            .arg(&path)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", dump(&out));
        assert_no_leftovers(&out, &[pid]);
        if code == 2 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("`app.target`") && err.contains("app.allow_remote = true"),
                "{}",
                dump(&out)
            );
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let run = &doc["runs"][0];
        assert_eq!(run["load"]["target"], remote.url.as_str(), "{run}");
        assert_eq!(run["stats"]["failed"], 0, "{}", dump(&out));
        assert!(
            run["stats"]["classes"]["ok"].as_u64().unwrap_or(0) > 0,
            "{}",
            dump(&out)
        );
    }

    drop(remote);
    hosts.remove().expect("removing the test host");
    let deadline = Instant::now() + Duration::from_secs(5);
    while test_host_names().iter().any(|n| n.ends_with(&h.name)) {
        assert!(Instant::now() < deadline, "test host {} left", h.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}
