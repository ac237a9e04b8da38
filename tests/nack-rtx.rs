//! With RTX negotiated (RFC 4588), a NACKed packet comes back on the subscriber's RTX stream:
//! RTX SSRC and payload type, consecutive RTX sequence numbers, the original sequence number
//! in the first two payload bytes, then the original payload, and the marker and timestamp of
//! the original. The primary stream's numbering is untouched.

mod common;

use std::time::{Duration, Instant};

use common::peer::Peer;
use tern::datapath::{
    Command, Datapath, DatapathConfig, IoMode, MediaKind, SubscriptionParams, TrackRef,
};
use tern::wire::rtcp;

const PUB_SSRC: u32 = 0xabcd;
const SUB_SSRC: u32 = 0x5002;
const RTX_SSRC: u32 = 0x7002;
const RTX_PT: u8 = 97;

#[test]
fn a_nack_is_answered_on_the_rtx_stream() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    let mut sub = Peer::install(&dp, 0, 2, true);
    sub.connect();
    dp.send(
        0,
        Command::Publish {
            session: 1,
            track: 9,
            ssrc: Some(PUB_SSRC),
            by_mid: None,
            kind: MediaKind::Video,
            nack: false,
            rtx: None,
            transport_cc: None,
            codec: None,
            dependency_descriptor: None,
        },
    )
    .unwrap();
    let params = SubscriptionParams {
        rtx: Some((RTX_SSRC, RTX_PT)),
        ..SubscriptionParams::with_ssrc(SUB_SSRC)
    };
    let track = TrackRef {
        id: 9,
        worker: 0,
        kind: MediaKind::Video,
    };
    dp.subscribe(0, 2, track, params).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    sub.lose = vec![1003, 1005];
    for seq in 1000..1010u16 {
        publisher.send_rtp(
            PUB_SSRC,
            seq,
            u32::from(seq) * 90,
            format!("part {seq}").as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..8 {
        let p = sub
            .recv_rtp(Instant::now() + Duration::from_secs(3))
            .expect("originals");
        assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), SUB_SSRC);
    }
    let mut nack = [0u8; 64];
    let n = rtcp::write_nack_lost(&mut nack, 0x1234, SUB_SSRC, &[1003, 1005]).unwrap();
    sub.send_rtcp(&nack[..n]);
    let mut rtx_seqs = Vec::new();
    let mut osns = Vec::new();
    while osns.len() < 2 {
        let p = sub
            .recv_rtp(Instant::now() + Duration::from_secs(3))
            .expect("retransmissions arrive");
        assert_eq!(
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            RTX_SSRC,
            "on the RTX SSRC"
        );
        assert_eq!(p[1] & 0x7f, RTX_PT, "with the RTX payload type");
        let osn = u16::from_be_bytes([p[12], p[13]]);
        assert_eq!(&p[14..], format!("part {osn}").as_bytes(), "OSN + payload");
        assert_eq!(
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from(osn) * 90,
            "original timestamp"
        );
        rtx_seqs.push(u16::from_be_bytes([p[2], p[3]]));
        osns.push(osn);
    }
    osns.sort();
    assert_eq!(osns, vec![1003, 1005]);
    assert_eq!(
        rtx_seqs[1],
        rtx_seqs[0].wrapping_add(1),
        "RTX numbering is its own, consecutive: {rtx_seqs:?}"
    );
    // The primary stream continues where it was.
    publisher.send_rtp(PUB_SSRC, 1010, 1010 * 90, b"part 1010");
    let p = sub
        .recv_rtp(Instant::now() + Duration::from_secs(3))
        .expect("primary continues");
    assert_eq!(u16::from_be_bytes([p[2], p[3]]), 1010);
    assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), SUB_SSRC);
}
