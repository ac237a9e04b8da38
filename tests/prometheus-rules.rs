//! The alerting rules shipped in `ops/prometheus/tern-rules.yml` load in Prometheus
//! (`promtool check rules`) and do what their unit tests say (`promtool test rules`): a stuck
//! and a dead worker, rising SRTP auth failures, queue and ring drops, a spike of consent
//! expiries, p99 relay latency over its threshold. The unit tests are shown to bite: with a
//! threshold changed they fail.

use std::path::Path;
use std::process::{Command, Output};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/prometheus");

fn promtool(dir: &Path, args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is installed (test-all.sh installs Debian's `prometheus`)")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn rules_load_and_pass_their_unit_tests() {
    let dir = Path::new(DIR);
    let out = promtool(dir, &["check", "rules", "tern-rules.yml"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("SUCCESS: 8 rules found"),
        "{}",
        said(&out)
    );
    let out = promtool(dir, &["test", "rules", "tern-rules.test.yml"]);
    assert!(out.status.success(), "{}", said(&out));

    // At least three rules have unit tests (today: every alert but TernDown).
    let tests = std::fs::read_to_string(dir.join("tern-rules.test.yml")).unwrap();
    let mut tested: Vec<&str> = tests
        .lines()
        .filter_map(|l| l.trim().strip_prefix("alertname: "))
        .collect();
    tested.sort_unstable();
    tested.dedup();
    assert!(tested.len() >= 3, "{tested:?}");
    for alert in [
        "TernWorkerStuck",
        "TernWorkerDead",
        "TernSrtpAuthFailuresRising",
        "TernPacketDrops",
        "TernConsentExpiriesSpiking",
        "TernRelayLatencyHigh",
    ] {
        assert!(tested.contains(&alert), "{alert} has no unit test");
    }
}

#[test]
fn the_unit_tests_fail_when_a_threshold_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(Path::new(DIR).join("tern-rules.yml")).unwrap();
    let moved = rules.replace("[5m]))) > 0.005", "[5m]))) > 0.05");
    assert_ne!(
        moved, rules,
        "the latency threshold is where this test expects it"
    );
    std::fs::write(tmp.path().join("tern-rules.yml"), moved).unwrap();
    std::fs::copy(
        Path::new(DIR).join("tern-rules.test.yml"),
        tmp.path().join("tern-rules.test.yml"),
    )
    .unwrap();
    let out = promtool(tmp.path(), &["test", "rules", "tern-rules.test.yml"]);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("TernRelayLatencyHigh"),
        "{}",
        said(&out)
    );
}
