//! Two network namespaces joined by a veth pair, for benchmarks that compare I/O backends on
//! the same link: the relay's end `tern0` (in the server namespace) and the peers' end `peer0`.
//! Created with `ip` (root needed), removed on drop. Threads enter a namespace with
//! [`tern::datapath::io::enter_netns`]; sockets keep the namespace they were created in.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

/// The relay's end of the pair.
pub const SERVER_IF: &str = "tern0";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A veth pair between two fresh namespaces, IPv4-addressed.
pub struct Veth {
    server: String,
    client: String,
    /// The relay's address on `tern0`.
    pub server_ip: IpAddr,
    /// The peers' address on `peer0`.
    pub client_ip: IpAddr,
}

impl Veth {
    /// Namespaces `tern-bench-PID-{srv,cli}` joined by a veth with `queues` queues per end.
    pub fn new(queues: u32) -> Result<Veth, String> {
        let pid = std::process::id();
        let v = Veth {
            server: format!("tern-bench-{pid}-srv"),
            client: format!("tern-bench-{pid}-cli"),
            server_ip: "10.13.0.1".parse().expect("address"),
            client_ip: "10.13.0.2".parse().expect("address"),
        };
        ip(&["netns", "add", &v.server])?;
        ip(&["netns", "add", &v.client])?;
        let q = queues.to_string();
        let (s, c) = (v.server.as_str(), v.client.as_str());
        ip(&[
            "-n",
            s,
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
            "peer0",
            "netns",
            c,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
        ])?;
        ip(&["-n", s, "addr", "add", "10.13.0.1/24", "dev", SERVER_IF])?;
        ip(&["-n", c, "addr", "add", "10.13.0.2/24", "dev", "peer0"])?;
        for (ns, dev) in [(s, SERVER_IF), (c, "peer0"), (s, "lo"), (c, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(v)
    }

    /// The server namespace's file, for `enter_netns`.
    pub fn server_ns(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.server)
    }

    /// The client namespace's file.
    pub fn client_ns(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.client)
    }

    /// Runs `f` on a thread inside namespace `ns` and returns its result.
    pub fn run_in<T: Send>(ns: &std::path::Path, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tern::datapath::io::enter_netns(ns).expect("setns");
                    f()
                })
                .join()
                .expect("thread in namespace")
        })
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.server]);
        let _ = ip(&["netns", "del", &self.client]);
    }
}
