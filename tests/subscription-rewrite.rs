//! Per-subscription rewriting: SSRC, payload type, sequence number and timestamp are mapped
//! into the subscriber's negotiated values, and a NACK in the subscriber's numbering is
//! answered with the right packet. Header extensions are renumbered into the subscriber's ids,
//! the MID becomes the subscriber's, and those it did not negotiate are dropped.

mod common;

use std::time::{Duration, Instant};

use common::peer::publisher_and_subscriber;
use tern::datapath::{ExtensionRewrite, SubscriptionParams};
use tern::wire::rtcp;
use tern::wire::rtp::{RtpBuilder, RtpPacket};

#[test]
fn the_subscriber_sees_its_own_numbering() {
    let params = SubscriptionParams {
        ssrc: 0xbbbb,
        payload_types: vec![(96, 102)],
        seq_offset: 1000,
        ts_offset: 7,
        rtx: None,
        extensions: None,
        egress: Default::default(),
        codec: None,
        limit: Default::default(),
        dependency_descriptor: None,
    };
    let (_dp, mut publisher, mut sub) = publisher_and_subscriber(params);

    sub.lose = vec![65535u16.wrapping_add(1000)]; // the subscriber loses what it knows as seq 999
    for seq in [65533u16, 65534, 65535, 0, 1] {
        publisher.send_rtp(0xaaaa, seq, 90_000, format!("p{seq}").as_bytes());
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let p = sub
            .recv_rtp(Instant::now() + Duration::from_secs(2))
            .expect("relayed");
        assert_eq!(p[1] & 0x7f, 102, "payload type mapped");
        assert_eq!(
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            90_007,
            "timestamp offset"
        );
        assert_eq!(
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            0xbbbb,
            "SSRC"
        );
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let original = seq.wrapping_sub(1000);
        assert_eq!(
            &p[12..],
            format!("p{original}").as_bytes(),
            "sequence offset across the wrap"
        );
        seen.push(seq);
    }
    assert_eq!(seen, vec![997, 998, 1000, 1001]);

    let mut nack = [0u8; 32];
    let n = rtcp::write_nack_lost(&mut nack, 0x1, 0xbbbb, &[999]).unwrap();
    sub.send_rtcp(&nack[..n]);
    let p = sub
        .recv_rtp(Instant::now() + Duration::from_secs(2))
        .expect("retransmission");
    assert_eq!(u16::from_be_bytes([p[2], p[3]]), 999);
    assert_eq!(
        &p[12..],
        b"p65535",
        "the subscriber's 999 is the publisher's 65535"
    );
}

/// A publisher packet numbered like Firefox: MID "1" as id 3, abs-send-time as id 4,
/// transport-wide sequence number as id 7.
fn firefox_numbered(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 128];
    let n = RtpBuilder {
        payload_type: 96,
        sequence_number: seq,
        timestamp: 1000,
        ssrc: 0xaaaa,
        extensions: &[(3, b"1"), (4, &[0x11, 0x22, 0x33]), (7, &[0, 9])],
        ..Default::default()
    }
    .write(&mut p, format!("frame {seq}").as_bytes())
    .unwrap();
    p.truncate(n);
    p
}

#[test]
fn header_extensions_are_renumbered_for_the_subscriber() {
    // Chromium's numbering on the subscriber: abs-send-time 2, MID 4 (its section "video-0").
    let params = SubscriptionParams {
        extensions: Some(ExtensionRewrite {
            ids: vec![(4, 2)],
            mid: Some((3, 4, b"video-0".to_vec())),
        }),
        ..SubscriptionParams::with_ssrc(0xbbbb)
    };
    let (_dp, mut publisher, mut sub) = publisher_and_subscriber(params);
    sub.lose = vec![11];
    for seq in 10..13 {
        publisher.send_plain_rtp(firefox_numbered(seq));
    }
    let check = |p: &[u8], seq: u16| {
        let p = RtpPacket::parse(p).expect("a valid RTP packet");
        assert_eq!(p.ssrc(), 0xbbbb);
        assert_eq!(p.sequence_number(), seq);
        let ext: Vec<_> = p.extensions().map(|e| e.unwrap()).collect();
        assert_eq!(
            ext,
            [(4, &b"video-0"[..]), (2, &[0x11, 0x22, 0x33][..])],
            "subscriber's MID and ids; no transport-wide sequence number"
        );
        assert_eq!(p.payload(), format!("frame {seq}").as_bytes());
    };
    for seq in [10, 12] {
        let p = sub
            .recv_rtp(Instant::now() + Duration::from_secs(2))
            .expect("relayed");
        check(&p, seq);
    }
    // A retransmission is rewritten the same way.
    let mut nack = [0u8; 32];
    let n = rtcp::write_nack_lost(&mut nack, 0x1, 0xbbbb, &[11]).unwrap();
    sub.send_rtcp(&nack[..n]);
    let p = sub
        .recv_rtp(Instant::now() + Duration::from_secs(2))
        .expect("retransmission");
    check(&p, 11);
}
