//! ICE-TCP beside AF_XDP: with `io = "xdp"` the XDP program passes TCP to the kernel and each
//! worker polls its TCP sockets beside its AF_XDP socket, so a publisher and a subscriber on
//! ICE-TCP across the veth pair are answered and their media is forwarded whole and in order.
//! (Needs root: fails, never skips, without it.)

mod common;
mod serve_support;
mod xdp_support;

use std::time::{Duration, Instant};

use common::peer::{eventually, rtp_packet, wire_up_sessions};
use common::tcp_peer::TcpPeer;
use tern::datapath::{Datapath, DatapathConfig, IoConfig, IoKind, IoMode, MediaKind, Placement};
use xdp_support::{require_root, VethPair, SERVER_IF};

const PACKETS: u16 = 30;

fn payload(seq: u16) -> Vec<u8> {
    (0..(80 + usize::from(seq) * 37 % 1000))
        .map(|i| (i as u16).wrapping_mul(seq | 1) as u8)
        .collect()
}

#[test]
fn ice_tcp_sessions_work_with_the_xdp_backend() {
    require_root();
    let pair = VethPair::new(1, false);
    let cfg = DatapathConfig {
        placement: Placement::Unbound(1),
        port_base: 0,
        bind: pair.server_ip,
        io: IoConfig {
            mode: IoMode::Xdp,
            interface: Some(SERVER_IF.to_string()),
            ..IoConfig::default()
        },
        ..DatapathConfig::default()
    };
    let dp = pair
        .server
        .run(|| Datapath::start(cfg))
        .expect("the xdp datapath starts on tern0");
    assert_eq!(dp.io_kind(0), IoKind::Xdp);
    assert!(
        pair.server_link().contains("xdp"),
        "the XDP program is attached while TCP is served"
    );

    // Both peers connect from the clients' namespace: their TCP crosses tern0's XDP program.
    let (mut publisher, mut subscriber) = pair.client.run(|| {
        (
            TcpPeer::install(&dp, 0, 1, true),
            TcpPeer::install(&dp, 0, 2, true),
        )
    });
    for peer in [&mut publisher, &mut subscriber] {
        let pwd = peer.ice.local_pwd.clone();
        let request = common::tcp_peer::frame(&peer.binding_request(Some(&pwd), true));
        peer.write_raw(&request);
        let answer = peer
            .recv_frame(Instant::now() + Duration::from_secs(5))
            .expect("the Binding request over TCP is answered");
        assert_eq!(&answer[..2], &[0x01, 0x01], "a Binding success response");
    }
    wire_up_sessions(&dp, (1, 0), 7, 0xabcd, MediaKind::Video, &[(2, 0)]);
    std::thread::sleep(Duration::from_millis(200));

    for seq in 0..PACKETS {
        let plain = rtp_packet(96, 0xabcd, 500 + seq, u32::from(seq) * 3000, &payload(seq));
        let protected = publisher.protected_rtp(&plain);
        publisher.write_raw(&protected);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for seq in 0..PACKETS {
        let p = subscriber
            .recv_rtp(deadline)
            .unwrap_or_else(|| panic!("packet {seq} over ICE-TCP with io = xdp"));
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 500 + seq, "in order");
        assert_eq!(&p[12..], &payload(seq)[..], "packet {seq} byte for byte");
    }
    assert!(eventually(Duration::from_secs(2), || {
        dp.total_counters().tcp_sessions == 2
    }));
    let c = dp.total_counters();
    assert_eq!(c.tcp_connections, 2, "{c:?}");
    assert_eq!(
        c.tcp_closed_garbage + c.tcp_closed_oversized + c.tcp_closed_unauthenticated,
        0,
        "{c:?}"
    );
}
