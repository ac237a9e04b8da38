//! Every packet a subscriber session is sent carries that session's own transport-wide sequence
//! number and a fresh abs-send-time, never the publisher's: consecutive across its audio and
//! video tracks and its retransmissions, whether the publisher numbers extensions like the
//! subscriber (the packet is then copied as it is and the two values overwritten in place) or
//! not (renumbered copy), and added when the publisher's packet carried none.

mod common;

use std::time::{Duration, Instant};

use common::peer::{plain_publish, Peer};
use tern::datapath::{
    Datapath, DatapathConfig, EgressExtensions, ExtensionRewrite, IoMode, MediaKind,
    SubscriptionParams, TrackRef,
};
use tern::wire::rtcp;
use tern::wire::rtp::{find_extension, RtpBuilder};

const VIDEO: u32 = 0xaaaa;
const AUDIO: u32 = 0xcccc;
/// The publisher's ids: abs-send-time 2, transport-wide sequence number 3, MID 4.
const ABS: u8 = 2;
const TWCC: u8 = 3;
const MID: u8 = 4;
/// What the publisher's abs-send-time says: stale by the time any copy leaves.
const STALE: [u8; 3] = [0x12, 0x34, 0x56];

/// A plaintext packet as a Chromium publisher sends it: abs-send-time, its own transport-wide
/// number `twcc` and MID "1" (or no extension block at all with `twcc` `None`).
fn packet(ssrc: u32, seq: u16, twcc: Option<u16>) -> Vec<u8> {
    let t = twcc.unwrap_or(0).to_be_bytes();
    let exts: [(u8, &[u8]); 3] = [(ABS, &STALE), (TWCC, &t), (MID, b"1")];
    let mut p = vec![0u8; 200];
    let n = RtpBuilder {
        payload_type: 96,
        sequence_number: seq,
        timestamp: u32::from(seq) * 90,
        ssrc,
        extensions: if twcc.is_some() { &exts } else { &[] },
        ..Default::default()
    }
    .write(&mut p, format!("payload {seq}").as_bytes())
    .unwrap();
    p.truncate(n);
    p
}

fn track(id: u32, kind: MediaKind) -> TrackRef {
    TrackRef {
        id,
        worker: 0,
        kind,
    }
}

/// Session 1 publishes video (track 3) and audio (track 5); session 2 subscribes to both with
/// `video` and `audio` params. Returns the datapath and both peers.
fn relay(video: SubscriptionParams, audio: SubscriptionParams) -> (Datapath, Peer, Peer) {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut sub = Peer::install(&dp, 0, 2, true);
    publisher.connect();
    sub.connect();
    dp.send(0, plain_publish(1, 3, VIDEO, MediaKind::Video))
        .unwrap();
    dp.send(0, plain_publish(1, 5, AUDIO, MediaKind::Audio))
        .unwrap();
    dp.subscribe(0, 2, track(3, MediaKind::Video), video)
        .unwrap();
    dp.subscribe(0, 2, track(5, MediaKind::Audio), audio)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    (dp, publisher, sub)
}

/// `(transport-wide number, abs-send-time)` under the subscriber's ids `twcc` and `abs` of the
/// next `n` packets the subscriber receives, with their SSRCs.
fn stamps(sub: &mut Peer, n: usize, twcc: u8, abs: u8) -> Vec<(u32, u16, [u8; 3])> {
    (0..n)
        .map(|i| {
            let p = sub
                .recv_rtp(Instant::now() + Duration::from_secs(2))
                .unwrap_or_else(|| panic!("packet {i} relayed"));
            let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
            let seq = find_extension(&p, twcc).expect("transport-wide number");
            let time = find_extension(&p, abs).expect("abs-send-time");
            (
                ssrc,
                u16::from_be_bytes([seq[0], seq[1]]),
                [time[0], time[1], time[2]],
            )
        })
        .collect()
}

fn stamped(ssrc: u32, twcc: u8, abs: u8) -> SubscriptionParams {
    SubscriptionParams {
        egress: EgressExtensions {
            transport_cc: Some(twcc),
            abs_send_time: Some(abs),
        },
        ..SubscriptionParams::with_ssrc(ssrc)
    }
}

#[test]
fn alike_numbering_gets_the_sessions_own_sequence_in_place() {
    // Publisher and subscriber number extensions alike: no rewrite, the copy is the packet.
    let (_dp, mut publisher, mut sub) = relay(
        SubscriptionParams {
            rtx: Some((0x7777, 97)),
            ..stamped(0x5001, TWCC, ABS)
        },
        stamped(0x5002, TWCC, ABS),
    );
    let sent = [
        packet(VIDEO, 100, Some(9000)),
        packet(AUDIO, 7, Some(9001)),
        packet(VIDEO, 101, Some(9002)),
        packet(AUDIO, 8, Some(9003)),
    ];
    for p in &sent {
        publisher.send_plain_rtp(p.clone());
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = stamps(&mut sub, 4, TWCC, ABS);
    let seqs: Vec<(u32, u16)> = got.iter().map(|g| (g.0, g.1)).collect();
    assert_eq!(
        seqs,
        [(0x5001, 1), (0x5002, 2), (0x5001, 3), (0x5002, 4)],
        "one sequence for the session, across its tracks, from 1; never the publisher's 9000…"
    );
    assert!(
        got.iter().all(|g| g.2 != STALE),
        "abs-send-time is the relay's, not the publisher's: {got:?}"
    );

    // A retransmission (on RTX) is a new send: the next number.
    let mut nack = [0u8; 32];
    let n = rtcp::write_nack_lost(&mut nack, 0x1, 0x5001, &[100]).unwrap();
    sub.send_rtcp(&nack[..n]);
    let rtx = stamps(&mut sub, 1, TWCC, ABS);
    assert_eq!((rtx[0].0, rtx[0].1), (0x7777, 5));
}

#[test]
fn renumbered_and_bare_packets_get_the_subscribers_ids() {
    // The subscriber numbers differently: abs-send-time 11, transport-wide 12, MID 13.
    let rewrite = ExtensionRewrite {
        ids: vec![(ABS, 11)],
        mid: Some((MID, 13, b"v".to_vec())),
    };
    let (_dp, mut publisher, mut sub) = relay(
        SubscriptionParams {
            extensions: Some(rewrite),
            ..stamped(0x5001, 12, 11)
        },
        stamped(0x5002, 12, 11),
    );
    publisher.send_plain_rtp(packet(VIDEO, 100, Some(40_000)));
    std::thread::sleep(Duration::from_millis(2));
    // Audio without any extension block: the block is added.
    publisher.send_plain_rtp(packet(AUDIO, 1, None));
    std::thread::sleep(Duration::from_millis(2));
    publisher.send_plain_rtp(packet(VIDEO, 101, Some(40_001)));
    let got = stamps(&mut sub, 3, 12, 11);
    let seqs: Vec<(u32, u16)> = got.iter().map(|g| (g.0, g.1)).collect();
    assert_eq!(seqs, [(0x5001, 1), (0x5002, 2), (0x5001, 3)]);
    assert!(got.iter().all(|g| g.2 != STALE), "{got:?}");
}
