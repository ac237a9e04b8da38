//! `tern serve` with `io = "xdp"` on a machine that cannot do it stops with exit status 1 and
//! one line saying why, never falling back to another backend: no such interface, a driver
//! without native XDP when native is asked, no privileges, fewer queues than workers, and a
//! locked-memory limit too small for the UMEM. Each runs in a network namespace of its own.

mod serve_support;
mod xdp_support;

use std::path::Path;
use std::process::{Command, Output};

use serve_support::{config_dir, TERN};
use xdp_support::{require_root, xdp_config, Netns, VethPair};

/// Writes `toml` (with `SECRET_FILE` replaced) to a fresh config dir, runs `tern serve` through
/// `prefix` (program and arguments before `tern`) in `ns`, and returns its output and the
/// config path.
fn serve(ns: &Netns, prefix: &[&str], toml: impl FnOnce(&Path) -> String) -> (Output, String) {
    let dir = config_dir("xdp-errors", "s3cret", "");
    let path = dir.join("tern.toml");
    std::fs::write(&path, toml(&dir)).unwrap();
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = ns.command(program);
            c.args(args).arg(TERN);
            c
        }
        None => ns.command(TERN),
    };
    let out = cmd
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("TERN_JWT_SECRET")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out, path.display().to_string())
}

/// Exit status 1, and the last line of stderr is an error saying `want` (after tracing's
/// timestamp and level); nothing says it is serving.
fn assert_refused(out: &Output, want: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let last = stderr.lines().last().and_then(|l| l.split_once(" ERROR "));
    assert_eq!(last.map(|(_, m)| m), Some(want), "stderr: {stderr}");
    assert!(!stderr.contains("serving"), "{stderr}");
}

fn on_loopback(dir: &Path, mode: &str) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n[media]\nbind = \"127.0.0.1\"\nport_base = 0\n\
         workers = [0]\nplacement = \"unbound\"\nio = \"xdp\"\ninterface = \"lo\"\n\
         xdp_mode = \"{mode}\"\n[auth]\njwt_secret_file = \"{}\"\n",
        dir.join("jwt-secret").display()
    )
}

#[test]
fn missing_interface() {
    require_root();
    let ns = Netns::new("err");
    let (out, path) = serve(&ns, &[], |dir| {
        on_loopback(dir, "native").replace("interface = \"lo\"", "interface = \"nosuchif13\"")
    });
    assert_refused(
        &out,
        &format!(
            "tern: refusing to start: {path}:9: media.interface: no network interface \
             \"nosuchif13\" on this machine"
        ),
    );
}

#[test]
fn native_asked_of_a_driver_without_native_xdp() {
    require_root();
    let ns = Netns::new("err");
    let (out, _) = serve(&ns, &[], |dir| on_loopback(dir, "native"));
    assert_refused(
        &out,
        "tern: cannot start: datapath: media.interface lo (driver unknown) has no native XDP; \
         set media.xdp_mode = \"generic\" to use the kernel's generic XDP hook (slower)",
    );
}

#[test]
fn not_root() {
    require_root();
    let ns = Netns::new("err");
    let (out, _) = serve(
        &ns,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        |dir| on_loopback(dir, "generic"),
    );
    assert_refused(
        &out,
        "tern: cannot start: datapath: io = \"xdp\" needs CAP_NET_ADMIN, CAP_NET_RAW and \
         CAP_BPF (run as root, or grant them with AmbientCapabilities=); this process lacks \
         CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF",
    );
}

#[test]
fn fewer_queues_than_workers() {
    require_root();
    let pair = VethPair::new(1, false);
    let (out, _) = serve(&pair.server, &[], |dir| {
        xdp_config(dir, pair.server_ip, 2, "")
    });
    assert_refused(
        &out,
        "tern: cannot start: datapath: media.interface tern0 has 1 receive queue(s) but there \
         are 2 worker(s): each queue needs its own worker; set the queues to 2 (tern-tune \
         --apply, or ethtool -L tern0 combined 2) or run 1 worker(s)",
    );
}

#[test]
fn locked_memory_limit() {
    require_root();
    let pair = VethPair::new(1, false);
    let (out, _) = serve(
        &pair.server,
        &[
            "prlimit",
            "--memlock=65536:65536",
            "setpriv",
            "--inh-caps=-ipc_lock",
            "--bounding-set=-ipc_lock",
        ],
        |dir| xdp_config(dir, pair.server_ip, 1, ""),
    );
    assert_refused(
        &out,
        "tern: cannot start: datapath: worker 0: registering the AF_XDP UMEM (34 MiB of locked \
         memory) failed: No buffer space available (os error 105); this is RLIMIT_MEMLOCK \
         (current limit: 64 KiB) without CAP_IPC_LOCK; raise it with LimitMEMLOCK=infinity in \
         the systemd unit or `ulimit -l unlimited` in the shell, or grant CAP_IPC_LOCK",
    );
    assert!(
        !pair.server_link().contains("prog/xdp"),
        "a failed start leaves nothing attached"
    );
}

#[test]
fn check_config_accepts_what_only_serve_can_refuse() {
    // The refusals above are about this machine at start-up, not the file: check-config
    // passes the same file (so an operator can tell the two apart).
    let dir = config_dir("xdp-errors", "s3cret", "");
    let path = dir.join("tern.toml");
    std::fs::write(&path, on_loopback(&dir, "native")).unwrap();
    let out = Command::new(TERN)
        .args(["check-config"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
