//! The systemd units pass `systemd-analyze verify`, `tern.service` scores ≤ 1.5 on
//! `systemd-analyze security`, its stop timeout covers the drain timeout, and the .deb metadata
//! installs files that exist to the paths the units name.
//!
//! These tests need `systemd-analyze` (Debian package `systemd`; `scripts/test-all.sh` installs
//! it). Without it they fail: they do not skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MAX_EXPOSURE: f64 = 1.5;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): install the Debian package `systemd` \
             (scripts/test-all.sh does)"
            )
        })
}

/// A throwaway root holding the units, stand-ins for the binaries they run, and the host's
/// unit directory (for `sysinit.target` and friends), so `verify` runs offline and unprivileged
/// against exactly the files in `systemd/`.
fn fake_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for bin in ["usr/bin/tern", "usr/sbin/tern-tune", "bin/kill"] {
        let path = r.join(bin);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        set_mode(&path, 0o755);
    }
    let host_units = Path::new("/lib/systemd/system");
    let units = r.join("lib/systemd/system");
    fs::create_dir_all(&units).unwrap();
    for entry in fs::read_dir(host_units).expect("read /lib/systemd/system") {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), units.join(entry.file_name())).unwrap();
        }
    }
    let etc = r.join("etc/systemd/system");
    fs::create_dir_all(&etc).unwrap();
    for unit in ["tern.service", "tern-tuning.service"] {
        fs::copy(repo().join("systemd").join(unit), etc.join(unit)).unwrap();
    }
    root
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn both_units_pass_systemd_analyze_verify() {
    let root = fake_root();
    let r = root.path();
    for unit in ["tern.service", "tern-tuning.service"] {
        let path = r.join("etc/systemd/system").join(unit);
        let out = analyze(&[
            "verify",
            &format!("--root={}", r.display()),
            "--man=no",
            path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "verify {unit} failed: {stdout}{stderr}"
        );
        // verify exits 0 on unknown keys and bad values ("…, ignoring"): any output is a defect.
        assert!(
            stderr.trim().is_empty() && stdout.trim().is_empty(),
            "verify {unit} complained:\n{stdout}{stderr}"
        );
    }
}

#[test]
fn tern_service_exposure_is_at_most_1_5() {
    let unit = repo().join("systemd/tern.service");
    let out = analyze(&[
        "security",
        "--offline=true",
        "--no-pager",
        unit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line in:\n{stdout}{stderr}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the score in {line:?}"));
    eprintln!("systemd-analyze security: {line}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{stdout}"
    );
}

fn unit_value(unit: &str, key: &str) -> Vec<String> {
    let text = fs::read_to_string(repo().join("systemd").join(unit)).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn tern_service_settings_the_relay_depends_on() {
    let stop = unit_value("tern.service", "TimeoutStopSec");
    let stop = humantime::parse_duration(&stop[0]).unwrap();
    let drain = tern::config::Config::default().drain_timeout();
    assert!(
        stop > drain,
        "TimeoutStopSec {stop:?} <= drain timeout {drain:?}"
    );
    assert!(stop >= drain + Duration::from_secs(5));
    assert_eq!(unit_value("tern.service", "Type"), ["notify"]);
    assert_eq!(unit_value("tern.service", "KillMode"), ["mixed"]);
    assert_eq!(unit_value("tern.service", "Restart"), ["on-failure"]);
    // io_uring lives in @aio: an allow list of @system-service keeps it; no deny list may drop it.
    for filter in unit_value("tern.service", "SystemCallFilter") {
        assert!(
            !filter.contains("@aio") && !filter.contains("io_uring"),
            "{filter}"
        );
        assert!(
            !(filter.starts_with('~') && filter.contains("@resources")),
            "sched_setaffinity"
        );
    }
    assert_eq!(
        unit_value("tern.service", "ExecStart"),
        ["/usr/bin/tern serve --config /etc/tern/tern.toml"]
    );
    assert_eq!(unit_value("tern-tuning.service", "Type"), ["oneshot"]);
    assert_eq!(
        unit_value("tern-tuning.service", "Before"),
        ["tern.service"]
    );
}

#[test]
fn deb_metadata_installs_existing_files_where_the_units_expect_them() {
    let manifest: toml::Table =
        toml::from_str(&fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().unwrap();
    let mut dests = Vec::new();
    for asset in assets {
        let asset = asset.as_array().unwrap();
        let src = asset[0].as_str().unwrap();
        let dest = asset[1].as_str().unwrap();
        if let Some((dir, suffix)) = src.split_once("/*") {
            // A glob such as `man/*.1`: at least one file matches.
            let matches = fs::read_dir(repo().join(dir))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(suffix)
                })
                .count();
            assert!(matches > 0, "asset {src} matches nothing");
            continue;
        }
        if !src.starts_with("target/") {
            assert!(repo().join(src).is_file(), "asset {src} missing");
        }
        let file = Path::new(src).file_name().unwrap().to_str().unwrap();
        dests.push(if dest.ends_with('/') {
            format!("/{dest}{file}")
        } else {
            format!("/{dest}")
        });
    }
    for expected in [
        "/usr/bin/tern",
        "/usr/sbin/tern-tune",
        "/lib/systemd/system/tern.service",
        "/lib/systemd/system/tern-tuning.service",
        "/etc/tern/tern.toml",
    ] {
        assert!(
            dests.iter().any(|d| d == expected),
            "{expected} not in {dests:?}"
        );
    }
    let conffiles = deb["conf-files"].as_array().unwrap();
    assert!(conffiles
        .iter()
        .any(|c| c.as_str() == Some("/etc/tern/tern.toml")));
    let scripts = deb["maintainer-scripts"].as_str().unwrap();
    assert!(repo().join(scripts).join("postinst").is_file());
}
