//! `tern <command> --help` (or `-h`) prints the usage and exits 0, as `tern help` does, instead
//! of refusing the flag as an unknown argument and starting nothing.

use std::process::Command;

#[test]
fn every_command_answers_help() {
    let tern = env!("CARGO_BIN_EXE_tern");
    for args in [
        &["help"][..],
        &["--help"],
        &["serve", "--help"],
        &["serve", "-h"],
        &["check-config", "--help"],
        &["token", "--room", "r", "-h"],
    ] {
        let out = Command::new(tern).args(args).output().expect("tern runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert!(
            stdout.starts_with("usage: tern <command>"),
            "{args:?}: {stdout}"
        );
    }
    let out = Command::new(tern)
        .args(["serve", "--bogus"])
        .output()
        .expect("tern runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown flag is still refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument '--bogus'"));
}
