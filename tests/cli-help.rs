//! `tern <command> --help` (or `-h`) prints clap's help for it and exits 0, as `tern help`
//! does, instead of refusing the flag as an unknown argument and starting nothing; an unknown
//! flag is refused with exit 2 and clap's message naming it.

use std::process::Command;

#[test]
fn every_command_answers_help() {
    let tern = env!("CARGO_BIN_EXE_tern");
    for (args, usage) in [
        (&["help"][..], "Usage: tern <COMMAND>"),
        (&["--help"], "Usage: tern <COMMAND>"),
        (&["help", "serve"], "Usage: tern serve"),
        (&["serve", "--help"], "Usage: tern serve"),
        (&["serve", "-h"], "Usage: tern serve"),
        (&["check-config", "--help"], "Usage: tern check-config"),
        (&["token", "--room", "r", "-h"], "Usage: tern token"),
        (&["completions", "--help"], "Usage: tern completions"),
    ] {
        let out = Command::new(tern).args(args).output().expect("tern runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert!(stdout.contains(usage), "{args:?}: {stdout}");
    }
    // Every option keeps its name, and `--config` says it also reads TERN_CONFIG.
    let out = Command::new(tern)
        .args(["token", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--room",
        "--stream",
        "--publish",
        "--subscribe",
        "--identity",
        "--ttl",
        "--config",
    ] {
        assert!(help.contains(option), "{option} in {help}");
    }
    let out = Command::new(tern)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("-c, --config <FILE>"), "{help}");
    assert!(help.contains("TERN_CONFIG"), "{help}");

    let out = Command::new(tern)
        .args(["serve", "--bogus"])
        .output()
        .expect("tern runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown flag is still refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));
}

#[test]
fn version_is_printed_three_ways() {
    let tern = env!("CARGO_BIN_EXE_tern");
    let want = format!("tern {}", env!("CARGO_PKG_VERSION"));
    for arg in ["version", "--version", "-V"] {
        let out = Command::new(tern).arg(arg).output().expect("tern runs");
        assert!(out.status.success(), "{arg}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "{arg}");
    }
}
