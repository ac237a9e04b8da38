//! With `io = "xdp"` attached, everything that is not media reaches the kernel as before: HTTP
//! signalling to the relay, ping, and UDP to another port of the same address all work on the
//! interface the program is attached to. When the process ends, normally (SIGTERM) or with
//! `kill -9`, nothing stays attached: `ip link show` and `bpftool net` show no XDP program.

mod serve_support;
mod xdp_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serve_support::Served;
use xdp_support::{require_root, serve_xdp, VethPair, SERVER_IF};

const SECRET: &str = "xdp-passes-secret";

/// Whether an XDP program is attached to the relay's end, by `ip link` and by `bpftool net`
/// (they must agree).
fn attached(pair: &VethPair) -> bool {
    let link = pair.server_link();
    let out = pair
        .server
        .command("bpftool")
        .args(["net", "show", "dev", SERVER_IF])
        .output()
        .expect("bpftool runs (scripts/test-all.sh installs it)");
    assert!(out.status.success(), "bpftool net: {out:?}");
    let bpftool = String::from_utf8_lossy(&out.stdout).into_owned();
    let by_ip = link.contains("prog/xdp");
    let by_bpftool = bpftool.lines().any(|l| l.starts_with(SERVER_IF));
    assert_eq!(
        by_ip, by_bpftool,
        "ip link:\n{link}\nbpftool net:\n{bpftool}"
    );
    by_ip
}

/// Waits (2 s at most) for the program to be gone after the process ended.
fn assert_detached(pair: &VethPair, how: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while attached(pair) {
        assert!(
            Instant::now() < deadline,
            "after {how}, an XDP program is still attached:\n{}",
            pair.server_link()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(pair: &VethPair) -> Served {
    let served = serve_xdp(pair, 1, SECRET, "");
    assert!(attached(pair), "tern serve attached its program");
    assert!(
        pair.server_link().contains("tern_media"),
        "{}",
        pair.server_link()
    );
    served
}

#[test]
fn http_ping_and_other_udp_pass_and_nothing_stays_attached() {
    require_root();
    let pair = VethPair::new(1, false);
    let mut served = start(&pair);

    // HTTP signalling to the relay.
    let base = served.base.clone();
    let (status, body) = pair.client.block_on(async move {
        let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(status, 200, "{body}");

    // Ping (ICMP, and ARP before it).
    let ping = pair
        .client
        .command("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2"])
        .arg(pair.server_ip.to_string())
        .output()
        .expect("ping runs (scripts/test-all.sh installs iputils-ping)");
    assert!(
        ping.status.success(),
        "ping: {}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );

    // UDP to another port of the media address: the kernel's socket gets it and answers.
    let server_ip = pair.server_ip;
    let echo = pair
        .server
        .run(|| UdpSocket::bind(SocketAddr::new(server_ip, 0)).unwrap());
    echo.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let client_ip = pair.client_ip;
    let client = pair
        .client
        .run(|| UdpSocket::bind(SocketAddr::new(client_ip, 0)).unwrap());
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client.send_to(b"not media", echo_addr).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = echo
        .recv_from(&mut buf)
        .expect("other UDP reaches the kernel");
    assert_eq!(&buf[..n], b"not media");
    echo.send_to(b"echo", from).unwrap();
    let (n, _) = client
        .recv_from(&mut buf)
        .expect("and its answer comes back");
    assert_eq!(&buf[..n], b"echo");

    // A normal exit detaches.
    served.kill("TERM");
    let status = served
        .wait_exit(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}: {:?}", served.log);
    assert_detached(&pair, "SIGTERM");

    // So does kill -9: the link's last descriptor closes with the process.
    let mut served = start(&pair);
    served.kill("KILL");
    served.wait_exit(Duration::from_secs(10)).expect("killed");
    assert_detached(&pair, "kill -9");
}
