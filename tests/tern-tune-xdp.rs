//! `tuning/tern-tune` for `media.io = "xdp"`, on a real veth in a namespace of its own (the
//! sysctl part runs against an empty fake /proc and /sys, so the host is not touched):
//! `--check` reports the driver's native XDP and zero-copy support and that the interface has
//! 4 receive queues for 2 workers, `--apply` sets 2 (after which `tern serve` starts with xdp,
//! where before it refused), and `--check` then passes.

mod serve_support;
mod xdp_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use xdp_support::{require_root, serve_xdp, xdp_config, VethPair, SERVER_IF};

fn tune(pair: &VethPair, root: &Path, config: &Path, mode: &str) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tuning/tern-tune");
    pair.server
        .command("bash")
        .arg(script)
        .args([mode, "--config"])
        .arg(config)
        .env("TERN_TUNE_ROOT", root)
        .output()
        .expect("bash runs tern-tune")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_line(text: &str, status: &str, name: &str, current: &str, recommended: &str) -> bool {
    text.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 4
            && f[0] == status
            && f[1] == name
            && f[2] == format!("current=\"{current}\"")
            && f[3] == format!("recommended=\"{recommended}\"")
    })
}

#[test]
fn queues_driver_and_zero_copy_are_checked_and_queues_applied() {
    require_root();
    let pair = VethPair::new(4, false);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("sys/devices/system/cpu")).unwrap();
    std::fs::write(root.path().join("sys/devices/system/cpu/online"), "0-3\n").unwrap();
    let config = root.path().join("tern.toml");
    std::fs::write(&config, xdp_config(root.path(), pair.server_ip, 2, "")).unwrap();

    let check = tune(&pair, root.path(), &config, "--check");
    let text = stdout(&check);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(
        has_line(&text, "DIFF", "tern0.xdp_queues", "4", "2"),
        "{text}"
    );
    assert!(
        text.contains("note tern0: driver veth: native XDP yes, AF_XDP zero-copy no"),
        "{text}"
    );
    assert!(text.contains("no ntuple filters"), "{text}");

    // As the check says, tern serve refuses these queues.
    let dir = serve_support::config_dir("tune-xdp", "s", "");
    std::fs::write(
        dir.join("tern.toml"),
        xdp_config(&dir, pair.server_ip, 2, ""),
    )
    .unwrap();
    let refused = pair
        .server
        .command(serve_support::TERN)
        .args(["serve", "--config"])
        .arg(dir.join("tern.toml"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("has 4 receive queue(s)"),
        "{refused:?}"
    );

    let apply = tune(&pair, root.path(), &config, "--apply");
    let text = stdout(&apply);
    assert_eq!(apply.status.code(), Some(0), "{text}");
    assert!(
        has_line(&text, "set", "tern0.xdp_queues", "4", "2"),
        "{text}"
    );
    let channels = pair
        .server
        .command("ethtool")
        .args(["-l", SERVER_IF])
        .output()
        .unwrap();
    let channels = stdout(&channels);
    let current = channels
        .split("Current hardware settings:")
        .nth(1)
        .unwrap_or("");
    assert!(
        current
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["RX:", "2"]),
        "{channels}"
    );

    let check = tune(&pair, root.path(), &config, "--check");
    let text = stdout(&check);
    assert_eq!(check.status.code(), Some(0), "{text}");
    assert!(
        has_line(&text, "ok", "tern0.xdp_queues", "2", "2"),
        "{text}"
    );

    // And now it serves (a veth's XDP also wants its peer to send on no more queues).
    pair.client.ip(&["link", "set", "peer0", "down"]);
    let peer = pair
        .client
        .command("ethtool")
        .args(["-L", "peer0", "rx", "2", "tx", "2"])
        .output()
        .unwrap();
    assert!(peer.status.success(), "{peer:?}");
    pair.client.ip(&["link", "set", "peer0", "up"]);
    let served = serve_xdp(&pair, 2, "s", "");
    drop(served);
}
