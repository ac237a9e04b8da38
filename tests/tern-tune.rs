//! `tuning/tern-tune` against a fake /proc and /sys (TERN_TUNE_ROOT): `--check` names exactly
//! the settings that differ and exits 1; `--apply` fixes them; `--check` then exits 0; a second
//! `--apply` changes nothing.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tuning/tern-tune")
}

fn put(root: &Path, path: &str, value: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("{value}\n")).unwrap();
}

fn get(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path))
        .unwrap()
        .trim()
        .to_string()
}

/// Four cores, workers on 2 and 3; half the settings already right.
fn fake_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    put(r, "sys/devices/system/cpu/online", "0-3");
    put(
        r,
        "proc/meminfo",
        "MemTotal:        8000000 kB\nMemFree:  100 kB",
    );
    put(r, "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro");
    // sysctls: three differ, the rest match or are higher than recommended.
    put(r, "proc/sys/net/core/rmem_max", "212992"); // differs
    put(r, "proc/sys/net/core/wmem_max", "67108864"); // higher: fine, never lowered
    put(r, "proc/sys/net/core/rmem_default", "4194304");
    put(r, "proc/sys/net/core/wmem_default", "4194304");
    put(r, "proc/sys/net/core/netdev_max_backlog", "250000");
    put(r, "proc/sys/net/core/busy_poll", "0"); // differs
    put(r, "proc/sys/net/core/busy_read", "50");
    put(r, "proc/sys/net/ipv4/udp_mem", "1000\t300000\t600000"); // first field differs
    put(r, "proc/sys/net/ipv4/udp_rmem_min", "16384");
    put(r, "proc/sys/net/ipv4/udp_wmem_min", "16384");
    // A NIC with two MSI IRQs, one of them on the worker cores.
    put(r, "sys/class/net/eth0/device/msi_irqs/40", "msix");
    put(r, "sys/class/net/eth0/device/msi_irqs/41", "msix");
    put(r, "proc/irq/40/smp_affinity_list", "0-3"); // differs
    put(r, "proc/irq/41/smp_affinity_list", "1");
    put(r, "sys/class/net/eth0/queues/rx-0/rps_cpus", "0");
    put(
        r,
        "sys/class/net/eth0/queues/rx-1/rps_cpus",
        "00000000,00000008",
    ); // differs (core 3)
    put(r, "sys/class/net/eth0/queues/tx-0/xps_cpus", "3");
    // A virtual interface (no device/): left alone.
    put(r, "sys/class/net/lo/queues/rx-0/rps_cpus", "f");
    for cpu in 0..4 {
        let gov = if cpu == 2 { "powersave" } else { "performance" }; // cpu2 differs
        put(
            r,
            &format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"),
            gov,
        );
    }
    dir
}

fn run(root: &Path, mode: &str) -> Output {
    let out = Command::new("bash")
        .arg(script())
        .args([mode, "--workers", "2,3"])
        .env("TERN_TUNE_ROOT", root)
        .output()
        .expect("run bash tuning/tern-tune");
    eprintln!(
        "--- tern-tune {mode}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn names_with_status(out: &Output, status: &str) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(status)).then(|| words.next().unwrap().to_string())
        })
        .collect()
}

const EXPECTED_DIFFS: [&str; 6] = [
    "net.core.rmem_max",
    "net.core.busy_poll",
    "net.ipv4.udp_mem",
    "irq.40.smp_affinity_list",
    "eth0.rx-1.rps_cpus",
    "cpu2.scaling_governor",
];

#[test]
fn check_names_exactly_the_differing_settings() {
    let root = fake_root();
    let out = run(root.path(), "--check");
    assert_eq!(out.status.code(), Some(1));
    let expected: BTreeSet<String> = EXPECTED_DIFFS.iter().map(|s| s.to_string()).collect();
    assert_eq!(names_with_status(&out, "DIFF"), expected);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Each line gives current, recommended and why.
    let rmem = stdout
        .lines()
        .find(|l| l.contains("net.core.rmem_max"))
        .unwrap();
    assert!(rmem.contains("current=\"212992\"") && rmem.contains("recommended=\"33554432\""));
    assert!(rmem.contains('#'), "no reason in {rmem}");
    // The kernel-argument recommendation matches the worker cores.
    assert!(
        stdout.contains("isolcpus=managed_irq,domain,2,3"),
        "{stdout}"
    );
    assert!(stdout.contains("nohz_full=2,3"), "{stdout}");
    // --check changed nothing.
    assert_eq!(get(root.path(), "proc/sys/net/core/rmem_max"), "212992");
}

#[test]
fn apply_fixes_everything_and_is_idempotent() {
    let root = fake_root();
    let r = root.path();
    let first = run(r, "--apply");
    assert_eq!(first.status.code(), Some(0));
    let expected: BTreeSet<String> = EXPECTED_DIFFS.iter().map(|s| s.to_string()).collect();
    assert_eq!(names_with_status(&first, "set"), expected);

    assert_eq!(get(r, "proc/sys/net/core/rmem_max"), "33554432");
    assert_eq!(
        get(r, "proc/sys/net/core/wmem_max"),
        "67108864",
        "lowered a higher value"
    );
    assert_eq!(get(r, "proc/sys/net/core/busy_poll"), "50");
    // Only the low field of udp_mem is raised (8000000 kB = 2000000 pages; 1/16 = 125000).
    assert_eq!(get(r, "proc/sys/net/ipv4/udp_mem"), "125000 300000 600000");
    assert_eq!(get(r, "proc/irq/40/smp_affinity_list"), "0,1");
    assert_eq!(get(r, "proc/irq/41/smp_affinity_list"), "1");
    assert_eq!(get(r, "sys/class/net/eth0/queues/rx-1/rps_cpus"), "3");
    assert_eq!(get(r, "sys/class/net/lo/queues/rx-0/rps_cpus"), "f");
    assert_eq!(
        get(r, "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor"),
        "performance"
    );

    let check = run(r, "--check");
    assert_eq!(check.status.code(), Some(0));
    assert!(names_with_status(&check, "DIFF").is_empty());

    let snapshot = |r: &Path| -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        let mut stack = vec![r.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push((path.clone(), fs::read_to_string(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(r);
    let second = run(r, "--apply");
    assert_eq!(second.status.code(), Some(0));
    assert!(
        names_with_status(&second, "set").is_empty(),
        "second --apply changed things"
    );
    assert_eq!(snapshot(r), before);
}

#[test]
fn workers_come_from_the_config_file() {
    let root = fake_root();
    let config = root.path().join("tern.toml");
    fs::write(
        &config,
        "[http]\nlisten = \"0.0.0.0:8080\"\n\n[media]\nworkers = [2, 3]  # two\n",
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(script())
        .args(["--check", "--config", config.to_str().unwrap()])
        .env("TERN_TUNE_ROOT", root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("worker cores: 2,3"), "{stdout}");
    assert!(stdout.contains("nohz_full=2,3"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}
