//! The command line: help, version, and usage errors with exit code 2.

use crate::util::{bin, dump};

#[test]
fn help_for_each_command() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["load", "--help"],
        vec!["fixture", "--help"],
        vec!["init", "--help"],
        vec!["explain", "--help"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", dump(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}: {}",
            dump(&out)
        );
    }
    let out = bin().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("zdt-check "));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["run"],
        vec!["frobnicate"],
        vec!["load", "ftp://x"],
        vec!["load", "http://127.0.0.1:1/", "--rate", "0"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", dump(&out));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "{args:?}: {}",
            dump(&out)
        );
    }
}
