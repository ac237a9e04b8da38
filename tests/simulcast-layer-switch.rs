//! A subscriber moves from one simulcast layer to another on the same RTP stream: the old layer
//! keeps flowing until the new one reaches a keyframe; from that keyframe on only the new layer
//! is sent, its sequence numbers continuing the old layer's (+1) and its timestamps one frame
//! (3000 at 90 kHz) after the old layer's last; the new layer's earlier packets, late ones
//! included, are never sent, nor are they what a NACK for a pre-switch number gets.

mod common;

use std::time::{Duration, Instant};

use common::peer::{eventually, plain_publish, Peer};
use tern::datapath::{Datapath, DatapathConfig, IoMode, MediaKind, SubscriptionParams, TrackRef};
use tern::wire::keyframe::VideoCodec;
use tern::wire::rtcp;

const H: u32 = 0xaaaa; // layer h's SSRC, track 3
const L: u32 = 0xcccc; // layer l's SSRC, track 4
const SUB: u32 = 0xbbbb;
/// VP8 payloads (RFC 7741): start of partition 0, then a keyframe or an inter frame.
const KEY: [u8; 4] = [0x10, 0x10, 0x02, 0x00];
const INTER: [u8; 4] = [0x10, 0x11, 0x02, 0x00];

fn track(id: u32) -> TrackRef {
    TrackRef {
        id,
        worker: 0,
        kind: MediaKind::Video,
    }
}

/// Session 1 publishes layers h (track 3) and l (track 4); session 2 receives h under SSRC
/// `SUB` with the returned subscription.
fn on_layer_h() -> (Datapath, Peer, Peer, SubscriptionParams) {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut sub = Peer::install(&dp, 0, 2, true);
    publisher.connect();
    sub.connect();
    dp.send(0, plain_publish(1, 3, H, MediaKind::Video))
        .unwrap();
    dp.send(0, plain_publish(1, 4, L, MediaKind::Video))
        .unwrap();
    let params = SubscriptionParams::with_ssrc(SUB);
    dp.subscribe(0, 2, track(3), params.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    (dp, publisher, sub, params)
}

/// `(seq, ts, payload tag)` of each packet the subscriber receives before `wait` passes quietly.
fn received(sub: &mut Peer, wait: Duration) -> Vec<(u16, u32, u8)> {
    let mut got = Vec::new();
    while let Some(p) = sub.recv_rtp(Instant::now() + wait) {
        assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), SUB);
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        got.push((seq, ts, p[16]));
    }
    got
}

/// A VP8 payload: `vp8` then a tag byte naming the packet.
fn payload(vp8: [u8; 4], tag: u8) -> Vec<u8> {
    let mut p = vp8.to_vec();
    p.push(tag);
    p
}

#[test]
fn the_new_layer_starts_at_a_keyframe_and_continues_the_stream() {
    let (dp, mut publisher, mut sub, params) = on_layer_h();
    let quiet = Duration::from_millis(300);

    // On layer h: its packets as they are (no offsets).
    for seq in 100..103u16 {
        publisher.send_rtp(H, seq, 9000, &payload(INTER, seq as u8));
    }
    let before = received(&mut sub, quiet);
    assert_eq!(
        before,
        [(100, 9000, 100), (101, 9000, 101), (102, 9000, 102)]
    );

    dp.subscribe_switching(0, 2, track(4), params, Some(VideoCodec::Vp8))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Until l has a keyframe, h flows and l does not.
    publisher.send_rtp(L, 500, 70_000, &payload(INTER, 200));
    publisher.send_rtp(H, 103, 12_000, &payload(INTER, 103));
    publisher.send_rtp(L, 501, 70_000, &payload(INTER, 201));
    assert_eq!(received(&mut sub, quiet), [(103, 12_000, 103)]);

    // l's keyframe: numbered right after h's last packet, one frame later; then h stops. The
    // subscriber loses what becomes its 105.
    sub.lose = vec![105];
    publisher.send_rtp(L, 502, 73_000, &payload(KEY, 202));
    publisher.send_rtp(H, 104, 15_000, &payload(INTER, 104));
    publisher.send_rtp(L, 503, 73_000, &payload(INTER, 203));
    publisher.send_rtp(L, 499, 67_000, &payload(INTER, 199)); // late, from before the switch
    publisher.send_rtp(L, 504, 76_000, &payload(INTER, 204));
    let after = received(&mut sub, quiet);
    assert_eq!(
        after,
        [(104, 15_000, 202), (106, 18_000, 204)],
        "l from its keyframe on, continuing h's numbering (105 lost on the way)"
    );
    assert!(
        eventually(Duration::from_secs(1), || dp
            .total_counters()
            .layer_switches
            == 1),
        "{:?}",
        dp.total_counters()
    );

    // A NACK for 103 (h's last packet before the switch) maps onto l's 501, a packet of l the
    // subscriber never had: not sent. One for the lost 105 is l's 503: sent.
    let mut nack = [0u8; 32];
    let n = rtcp::write_nack_lost(&mut nack, 0x1, SUB, &[103, 105]).unwrap();
    sub.send_rtcp(&nack[..n]);
    assert_eq!(received(&mut sub, quiet), [(105, 15_000, 203)]);
    assert_eq!(
        dp.total_counters().nack_misses,
        1,
        "{:?}",
        dp.total_counters()
    );
}

#[test]
fn asking_again_before_the_keyframe_or_for_the_current_layer_changes_nothing() {
    let (dp, mut publisher, mut sub, params) = on_layer_h();
    let quiet = Duration::from_millis(300);

    // Switch to l, then back to h before l had a keyframe: h goes on untouched.
    let vp8 = Some(VideoCodec::Vp8);
    dp.subscribe_switching(0, 2, track(4), params.clone(), vp8)
        .unwrap();
    dp.subscribe_switching(0, 2, track(3), params.clone(), vp8)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    publisher.send_rtp(L, 600, 1000, &payload(KEY, 1));
    publisher.send_rtp(H, 10, 5000, &payload(INTER, 2));
    assert_eq!(received(&mut sub, quiet), [(10, 5000, 2)]);
    // The current layer again: nothing to do either.
    dp.subscribe_switching(0, 2, track(3), params, vp8).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    publisher.send_rtp(H, 11, 8000, &payload(INTER, 3));
    publisher.send_rtp(L, 601, 4000, &payload(KEY, 4));
    assert_eq!(received(&mut sub, quiet), [(11, 8000, 3)]);
    assert_eq!(dp.total_counters().layer_switches, 0);
}

/// The media SSRCs of the PLIs the publisher receives before `wait` passes quietly.
fn plis_to_publisher(publisher: &mut Peer, wait: Duration) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(compound) = publisher.recv_rtcp(Instant::now() + wait) {
        for packet in rtcp::RtcpIter::new(&compound).flatten() {
            if let Ok(rtcp::Rtcp::Pli(_)) = packet.typed() {
                got.extend(packet.media_ssrc());
            }
        }
    }
    got
}

#[test]
fn once_the_new_layer_started_the_subscribers_rtcp_goes_to_it() {
    let (dp, mut publisher, mut sub, params) = on_layer_h();
    publisher.send_rtp(H, 1, 1000, &payload(INTER, 1));
    dp.subscribe_switching(0, 2, track(4), params, Some(VideoCodec::Vp8))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // l starts; h, stopped by its publisher, sends nothing more.
    publisher.send_rtp(L, 50, 4000, &payload(KEY, 2));
    let got = received(&mut sub, Duration::from_millis(300));
    assert_eq!(got, [(1, 1000, 1), (2, 4000, 2)]);
    assert_eq!(
        plis_to_publisher(&mut publisher, Duration::from_millis(300)),
        [H, L],
        "one when the subscriber joined h, one for the switch to l"
    );
    // Past the keyframe-request limit, the subscriber asks for a keyframe: of l, not of h.
    std::thread::sleep(Duration::from_millis(600));
    let mut pli = [0u8; 12];
    let n = rtcp::write_pli(&mut pli, 0x1, SUB).unwrap();
    sub.send_rtcp(&pli[..n]);
    assert_eq!(
        plis_to_publisher(&mut publisher, Duration::from_millis(300)),
        [L]
    );
    assert_eq!(dp.total_counters().layer_switches, 1);
}
