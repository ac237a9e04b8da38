//! IPv6 works on ::1, and a dual-stack IPv6 socket presents IPv4 peers as `SocketAddr::V4` and
//! can answer them.

mod io_support;

use std::net::SocketAddr;

use io_support::*;
use tern::datapath::io::IoConfig;

fn echo_once(io: &mut tern::datapath::io::UdpIo, c: &std::net::UdpSocket, dst: SocketAddr) {
    let mut seen = Vec::new();
    c.send_to(b"hello over v6", dst).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.is_empty() && std::time::Instant::now() < deadline {
        io.run_once(std::time::Duration::from_millis(20), |d, src, tx| {
            seen.push(src);
            echo(d, src, tx)
        })
        .unwrap();
    }
    io.flush().unwrap();
    assert_eq!(
        seen,
        vec![c.local_addr().unwrap()],
        "source address as the client sees it"
    );
    let mut buf = [0u8; 64];
    let (n, _) = c.recv_from(&mut buf).expect("echo arrives");
    assert_eq!(&buf[..n], b"hello over v6");
}

#[test]
fn ipv6_loopback_echo() {
    for mode in backends() {
        let mut io = server("[::1]:0", mode, IoConfig::default(), None);
        assert!(io.local_addr().is_ipv6());
        let c = client("[::1]:0");
        let dst = io.local_addr();
        echo_once(&mut io, &c, dst);
    }
}

#[test]
fn dual_stack_socket_presents_ipv4_peers_as_v4() {
    for mode in backends() {
        let mut io = server("[::]:0", mode, IoConfig::default(), None);
        let c = client("127.0.0.1:0");
        let dst = SocketAddr::from(([127, 0, 0, 1], io.local_addr().port()));
        echo_once(&mut io, &c, dst);
    }
}
