//! Helpers for the `xdp-*` tests: two network namespaces joined by a veth pair, created by the
//! test and removed by `Drop` (also when the test fails), and threads that run inside one of
//! them. The relay's end is `tern0` (in the server namespace), the clients' end `peer0`.
//!
//! These tests need root (namespaces, XDP): without it they fail and say so; they never skip.
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::serve_support::{config_dir, Served, TERN};

/// The server end of the veth pair.
pub const SERVER_IF: &str = "tern0";
/// The clients' end.
pub const CLIENT_IF: &str = "peer0";

/// Panics, saying why, unless the test runs as root.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the xdp tests create network namespaces and attach XDP programs: run them as root \
         (they fail rather than skip)"
    );
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` command (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop (with every interface in it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace with a name unique to this process and call, loopback up.
    pub fn new(role: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tern-xdp-{}-{}-{role}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The namespace's file (what `setns` takes).
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `f` on a thread inside this namespace (sockets it and its spawned threads create
    /// live here) and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                tern::datapath::io::enter_netns(&path).expect("setns into the test namespace");
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs `fut` on a tokio runtime whose threads all live in this namespace.
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.run(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(fut)
        })
    }

    /// A command run inside the namespace (`ip netns exec NAME PROGRAM`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two namespaces joined by a veth pair, addressed over IPv4 or IPv6.
pub struct VethPair {
    // Dropped client first, then server (deleting either removes the pair).
    pub client: Netns,
    pub server: Netns,
    pub server_ip: IpAddr,
    pub client_ip: IpAddr,
}

impl VethPair {
    /// A pair with `queues` receive and transmit queues on each end.
    pub fn new(queues: u32, v6: bool) -> VethPair {
        let server = Netns::new("srv");
        let client = Netns::new("cli");
        let q = queues.to_string();
        server.ip(&[
            "link",
            "add",
            SERVER_IF,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_IF,
            "netns",
            &client.name,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
        ]);
        let (server_ip, client_ip, plen) = if v6 {
            ("fd13::1", "fd13::2", "64")
        } else {
            ("10.13.0.1", "10.13.0.2", "24")
        };
        for (ns, dev, addr) in [
            (&server, SERVER_IF, server_ip),
            (&client, CLIENT_IF, client_ip),
        ] {
            let cidr = format!("{addr}/{plen}");
            if v6 {
                ns.ip(&["addr", "add", &cidr, "dev", dev, "nodad"]);
            } else {
                ns.ip(&["addr", "add", &cidr, "dev", dev]);
            }
            ns.ip(&["link", "set", dev, "up"]);
        }
        VethPair {
            client,
            server,
            server_ip: server_ip.parse().unwrap(),
            client_ip: client_ip.parse().unwrap(),
        }
    }

    /// Makes every frame the clients send arrive on the relay's receive queue `queue`: XPS on
    /// `peer0` maps every CPU to its transmit queue `queue`, and a veth delivers on the peer's
    /// receive queue of the same number.
    pub fn force_queue(&self, queue: u32, queues: u32) {
        let cpus = std::fs::read_dir("/sys/devices/system/cpu")
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("cpu")?.parse::<u32>().ok()
            })
            .max()
            .expect("cpus")
            + 1;
        let mut words = vec![0u32; cpus.div_ceil(32) as usize];
        for c in 0..cpus {
            words[(c / 32) as usize] |= 1 << (c % 32);
        }
        let all: Vec<String> = words.iter().rev().map(|w| format!("{w:08x}")).collect();
        let mut script = String::new();
        for q in 0..queues {
            let mask = if q == queue {
                all.join(",")
            } else {
                "0".into()
            };
            script += &format!("echo {mask} > /sys/class/net/{CLIENT_IF}/queues/tx-{q}/xps_cpus; ");
        }
        let out = self
            .client
            .command("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "setting XPS: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What `ip link show tern0` says in the server namespace.
    pub fn server_link(&self) -> String {
        self.server.ip(&["link", "show", SERVER_IF])
    }
}

/// `tern.toml` for a relay on the server end: HTTP and media on `ip` (free ports), `workers`
/// unpinned workers, `io = "xdp"` on `tern0`, then `media_extra` lines in `[media]`.
pub fn xdp_config(dir: &Path, ip: IpAddr, workers: usize, media_extra: &str) -> String {
    let cores: Vec<String> = (0..workers).map(|c| c.to_string()).collect();
    format!(
        "[http]\nlisten = \"{}\"\n\n[media]\nbind = \"{ip}\"\nport_base = 0\nworkers = [{}]\n\
         placement = \"unbound\"\nio = \"xdp\"\ninterface = \"{SERVER_IF}\"\n{media_extra}\n\n\
         [auth]\njwt_secret_file = \"{}\"\n",
        SocketAddr::new(ip, 0),
        cores.join(", "),
        dir.join("jwt-secret").display()
    )
}

/// `tern serve` in the server namespace with [`xdp_config`], started and serving.
pub fn serve_xdp(pair: &VethPair, workers: usize, secret: &str, media_extra: &str) -> Served {
    let dir = config_dir("xdp", secret, "");
    let toml = xdp_config(&dir, pair.server_ip, workers, media_extra);
    std::fs::write(dir.join("tern.toml"), toml).unwrap();
    Served::start_with(pair.server.command(TERN), dir, &[])
}
