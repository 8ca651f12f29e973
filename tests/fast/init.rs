//! `zdt-check init`: writes a starter scenario, never overwrites without --force.
//! (The written scenario run end to end is in the slow tier, tests/init.rs.)

use crate::util::{bin, dump};

/// `zdt-check init ARGS` in `dir`.
pub fn init(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    bin()
        .current_dir(dir)
        .arg("init")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn writes_a_valid_scenario_with_the_given_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(
        dir.path(),
        &[
            "--target",
            "unix:${ZDT_RUN_DIR}/app.sock",
            "--start",
            "./start.sh --port 8000",
            "--deploy",
            "python3 deploy.py --slot 'a b'",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("wrote zdt-scenario.toml"), "{stdout}");
    assert!(
        stdout.contains("zdt-check run zdt-scenario.toml"),
        "{stdout}"
    );
    assert!(stdout.contains("start.sh does not exist yet"), "{stdout}");
    let text = std::fs::read_to_string(dir.path().join("zdt-scenario.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["app"]["kind"].as_str(), Some("external"));
    assert_eq!(
        v["app"]["target"].as_str(),
        Some("unix:${ZDT_RUN_DIR}/app.sock")
    );
    let words = |v: &toml::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(words(&v["app"]["start"]), ["./start.sh", "--port", "8000"]);
    assert_eq!(
        words(&v["reload"]["command"]),
        ["python3", "deploy.py", "--slot", "a b"]
    );
    assert_eq!(v["reload"]["strategy"].as_str(), Some("command"));
    assert!(
        v["app"].get("versions").is_none(),
        "versions stay discovered"
    );
}

#[test]
fn defaults_and_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &["gate.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let v: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.path().join("gate.toml")).unwrap()).unwrap();
    assert_eq!(v["app"]["target"].as_str(), Some("http://127.0.0.1:8000/"));
    assert!(v["app"].get("start").is_none(), "no --start: commented out");
    assert_eq!(v["reload"]["command"].as_array().unwrap().len(), 1);
    assert_eq!(v["reload"]["command"][0].as_str(), Some("./deploy.sh"));
}

#[test]
fn refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zdt-scenario.toml");
    std::fs::write(&path, "# mine\n").unwrap();
    let out = init(dir.path(), &["--target", "http://127.0.0.1:9000/"]);
    assert_eq!(out.status.code(), Some(2), "{}", dump(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zdt-scenario.toml") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

    let out = init(
        dir.path(),
        &["--force", "--target", "http://127.0.0.1:9000/"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["app"]["target"].as_str(), Some("http://127.0.0.1:9000/"));
}

#[test]
fn bad_options_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--target", "https://example.com/"],
        vec!["--deploy", "./deploy.sh 'unclosed"],
        vec!["--start", ""],
    ] {
        let out = init(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", dump(&out));
        assert!(!dir.path().join("zdt-scenario.toml").exists(), "{args:?}");
    }
}

#[test]
fn the_written_scenario_parses_with_the_real_parser() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("defaults.toml", vec![]),
        (
            "full.toml",
            vec![
                "--target",
                "unix:${ZDT_RUN_DIR}/app.sock",
                "--start",
                "./start.sh --workers 2",
                "--deploy",
                "python3 deploy.py --env ci",
            ],
        ),
    ] {
        let mut all = vec![name];
        all.extend(args);
        let out = init(dir.path(), &all);
        assert_eq!(out.status.code(), Some(0), "{}", dump(&out));
        let path = dir.path().join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let sc = zdt_check::scenario::parse(&path, &text)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}\n{text}"));
        assert!(sc.app.is_external(), "{name}");
        assert!(
            sc.app.versions().is_empty(),
            "{name}: versions are discovered"
        );
        assert_eq!(sc.deploys().len(), 2, "{name}");
        assert_eq!(sc.reload.strategy.get_ref(), "command", "{name}");
    }
}
