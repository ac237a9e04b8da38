//! RFC 4571 framing on ICE-TCP, with both I/O backends: a Binding request split across many
//! writes is answered once whole, several frames in one write are each delivered, and a stream
//! of media frames cut at arbitrary byte boundaries reaches a TCP subscriber and a UDP subscriber
//! whole, in order, byte for byte.

mod common;

use std::time::{Duration, Instant};

use common::peer::{eventually, rtp_packet, wire_up_sessions, Peer};
use common::tcp_peer::TcpPeer;
use tern::datapath::{Datapath, DatapathConfig, IoKind, IoMode, MediaKind};

const PACKETS: u16 = 40;

fn payload(seq: u16) -> Vec<u8> {
    (0..(50 + usize::from(seq) * 29 % 1100))
        .map(|i| (i as u16).wrapping_mul(seq | 1) as u8)
        .collect()
}

/// Writes `bytes` in pieces of the sizes `cuts` cycles through, pausing between them so the
/// relay reads them apart.
fn write_in_pieces(peer: &mut TcpPeer, bytes: &[u8], cuts: &[usize]) {
    let (mut at, mut i) = (0, 0);
    while at < bytes.len() {
        let end = (at + cuts[i % cuts.len()]).min(bytes.len());
        peer.write_raw(&bytes[at..end]);
        (at, i) = (end, i + 1);
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn run(mode: IoMode, want: IoKind) {
    let dp = Datapath::start(DatapathConfig::for_tests(1, mode)).expect("datapath starts");
    assert_eq!(dp.io_kind(0), want);
    let mut publisher = TcpPeer::install(&dp, 0, 1, true);
    let mut tcp_sub = TcpPeer::install(&dp, 0, 2, true);
    let mut udp_sub = Peer::install(&dp, 0, 3, true);

    // One Binding request dribbled in 1-, 5- and 9-byte writes: answered once it is whole.
    let pwd = publisher.ice.local_pwd.clone();
    let request = common::tcp_peer::frame(&publisher.binding_request(Some(&pwd), true));
    write_in_pieces(&mut publisher, &request, &[1, 5, 9]);
    let answer = publisher
        .recv_frame(Instant::now() + Duration::from_secs(5))
        .expect("the dribbled request is answered");
    assert_eq!(&answer[..2], &[0x01, 0x01], "a Binding success response");

    // Three requests in one write: three answers.
    let mut three = Vec::new();
    for _ in 0..3 {
        three.extend(common::tcp_peer::frame(
            &tcp_sub.binding_request(Some(&tcp_sub.ice.local_pwd.clone()), true),
        ));
    }
    tcp_sub.write_raw(&three);
    for i in 0..3 {
        let f = tcp_sub
            .recv_frame(Instant::now() + Duration::from_secs(5))
            .unwrap_or_else(|| panic!("answer {i} of 3"));
        assert_eq!(&f[..2], &[0x01, 0x01]);
    }
    udp_sub.connect();
    wire_up_sessions(&dp, (1, 0), 7, 0xabcd, MediaKind::Video, &[(2, 0), (3, 0)]);
    std::thread::sleep(Duration::from_millis(200));

    // Every media frame, back to back, written in pieces that cut prefixes and payloads.
    let mut stream = Vec::new();
    for seq in 0..PACKETS {
        let plain = rtp_packet(96, 0xabcd, 100 + seq, u32::from(seq) * 3000, &payload(seq));
        stream.extend(publisher.protected_rtp(&plain));
    }
    write_in_pieces(&mut publisher, &stream, &[1, 7, 2, 300, 3, 1500, 11, 64]);

    let deadline = Instant::now() + Duration::from_secs(10);
    for seq in 0..PACKETS {
        for (name, got) in [
            ("tcp", tcp_sub.recv_rtp(deadline)),
            ("udp", udp_sub.recv_rtp(deadline)),
        ] {
            let p = got.unwrap_or_else(|| panic!("{name} subscriber: packet {seq}"));
            assert_eq!(
                u16::from_be_bytes([p[2], p[3]]),
                100 + seq,
                "{name}: in order"
            );
            assert_eq!(
                &p[12..],
                &payload(seq)[..],
                "{name}: packet {seq} byte for byte"
            );
        }
    }
    assert!(eventually(Duration::from_secs(2), || {
        let c = dp.total_counters();
        c.tcp_frames_in >= 1 + 3 + u64::from(PACKETS) && c.tcp_sessions == 2
    }));
    let c = dp.total_counters();
    assert_eq!(c.tcp_connections, 2, "{c:?}");
    assert_eq!(
        c.tcp_closed_garbage + c.tcp_closed_oversized + c.tcp_closed_unauthenticated,
        0,
        "{c:?}"
    );
    assert_eq!(c.tcp_dropped_send_buffer_full, 0, "{c:?}");
    assert!(
        c.tcp_bytes_out > 0 && c.tcp_bytes_in as usize >= stream.len(),
        "{c:?}"
    );
}

#[test]
fn frames_split_and_coalesced_with_io_uring() {
    if let Err(missing) = tern::datapath::io::probe_uring() {
        panic!("this test needs io_uring, and the kernel lacks: {missing}");
    }
    run(IoMode::Uring, IoKind::Uring);
}

#[test]
fn frames_split_and_coalesced_with_mmsg() {
    run(IoMode::Mmsg, IoKind::Mmsg);
}
