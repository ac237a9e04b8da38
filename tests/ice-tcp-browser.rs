//! A viewer behind a firewall that blocks UDP still gets through, over ICE-TCP: Chromium runs in a
//! network namespace this test creates, joined to the relay by a veth pair, where nftables drops
//! every UDP packet to the relay. Two demo-page tabs publish and subscribe to each other through
//! Tern and decode more than 30 frames each way, every selected candidate pair is TCP, and the
//! relay's metrics show sessions on TCP paths and media bytes sent over them. The same Chromium
//! in a namespace without the block uses UDP, and the relay has no session on TCP.
//!
//! The namespace, its veth pair and its nftables table are removed by a guard, also when the test
//! fails; names carry this process's id so parallel runs do not collide.

mod browser_support;
mod metrics_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use browser_support::{metric, page_url, run_script_in_netns, start_relay_with};

/// A network namespace with one veth link to the host: the host end `host_ip`/30, the
/// namespace end `ns_ip`/30. Dropping it kills what still runs inside and deletes both.
struct Netns {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
}

static CREATED: AtomicU32 = AtomicU32::new(0);

/// Runs `ip`/`nft` arguments, panicking with their output on failure.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e} (apt-get install iproute2 nftables)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// A fresh namespace; with `block_udp`, its nftables output chain drops UDP to the host end.
    fn create(block_udp: bool) -> Netns {
        let (pid, n) = (std::process::id(), CREATED.fetch_add(1, Ordering::Relaxed));
        // A /30 of 198.18.0.0/15 (RFC 2544, benchmarking) per namespace of this process.
        let index = (pid.wrapping_mul(4).wrapping_add(n)) % (1 << 15);
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + index * 4;
        let ns = Netns {
            name: format!("tern-tcp-{pid}-{n}"),
            host_if: format!("tt{pid:x}{n}h"),
            host_ip: Ipv4Addr::from(base + 1),
        };
        let ns_if = format!("tt{pid:x}{n}n");
        let ns_ip = Ipv4Addr::from(base + 2);
        run("ip", &["netns", "add", &ns.name]);
        // From here on, `ns` is dropped (and everything removed) if a step fails.
        let (name, host_if) = (ns.name.as_str(), ns.host_if.as_str());
        run(
            "ip",
            &[
                "link", "add", host_if, "type", "veth", "peer", "name", &ns_if,
            ],
        );
        run("ip", &["link", "set", &ns_if, "netns", name]);
        run(
            "ip",
            &["addr", "add", &format!("{}/30", ns.host_ip), "dev", host_if],
        );
        run("ip", &["link", "set", host_if, "up"]);
        run(
            "ip",
            &[
                "-n",
                name,
                "addr",
                "add",
                &format!("{ns_ip}/30"),
                "dev",
                &ns_if,
            ],
        );
        run("ip", &["-n", name, "link", "set", &ns_if, "up"]);
        run("ip", &["-n", name, "link", "set", "lo", "up"]);
        if block_udp {
            let nft = |rule: &str| run("ip", &["netns", "exec", name, "nft", rule]);
            nft("add table inet tern_block");
            nft("add chain inet tern_block out { type filter hook output priority 0; policy accept; }");
            nft(&format!(
                "add rule inet tern_block out ip daddr {} meta l4proto udp counter drop",
                ns.host_ip
            ));
        }
        ns
    }

    /// UDP packets the block has dropped (its rule's counter).
    fn udp_dropped(&self) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "nft",
                "list",
                "table",
                "inet",
                "tern_block",
            ])
            .output()
            .expect("nft list");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {text}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in the namespace (a Chromium left by a killed script).
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        // Deleting the namespace deletes its veth end, its peer and its nftables table.
        let quiet = |args: &[&str]| {
            let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
        };
        quiet(&["netns", "del", &self.name]);
        // Gone with its peer already, unless the peer never moved into the namespace.
        quiet(&["link", "del", &self.host_if]);
    }
}

/// Two tabs in `ns` publish and subscribe through a relay on the host end of its link; checks
/// the transport they use and returns the most sessions on TCP paths seen in `/metrics`.
async fn two_tabs_through(ns: &Netns, want: &str) -> (u64, u64) {
    let ip = ns.host_ip;
    let running = start_relay_with(|c| {
        c.http.listen = SocketAddr::from((ip, 0));
        c.media.bind = ip.into();
    })
    .await;
    let a = page_url(&running, "ice-tcp", "alice", None);
    let b = page_url(&running, "ice-tcp", "bob", None);
    // The page is not on localhost, so Chromium must be told to treat its origin as secure
    // (getUserMedia needs a secure context).
    let flags = format!(
        "--unsafely-treat-insecure-origin-as-secure=http://{}",
        running.http_addr
    );
    let script = {
        let name = ns.name.clone();
        let args = vec![want.to_string(), a, b];
        tokio::spawn(async move { run_script_in_netns(&name, "ice-tcp.mjs", args, &flags).await })
    };
    let mut tcp_sessions = 0;
    while !script.is_finished() {
        tcp_sessions = tcp_sessions.max(metric(&running, "tern_tcp_sessions_total").await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = script.await.expect("the script's task");
    println!("{want}: {} ({:?})", out.stdout.trim(), out.elapsed);
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert!(counters.media_out >= 60, "{counters:?}");
    assert_eq!(counters.auth_failures, 0, "{counters:?}");
    let tcp_bytes_out = metric(&running, "tern_tcp_bytes_out_total").await;
    running.stop().await;
    (tcp_sessions, tcp_bytes_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_behind_a_udp_block_uses_ice_tcp_and_without_it_udp() {
    let blocked = Netns::create(true);
    let (tcp_sessions, tcp_bytes) = two_tabs_through(&blocked, "tcp").await;
    assert!(
        tcp_sessions >= 4,
        "two publishers and two subscribers on TCP paths at once, saw {tcp_sessions}"
    );
    assert!(
        tcp_bytes > 100_000,
        "media went out over TCP: {tcp_bytes} bytes"
    );
    assert!(
        blocked.udp_dropped() > 0,
        "Chromium tried UDP first and was blocked"
    );
    drop(blocked);

    let open = Netns::create(false);
    let (tcp_sessions, _) = two_tabs_through(&open, "udp").await;
    assert_eq!(tcp_sessions, 0, "with UDP open no session is on TCP");
}
