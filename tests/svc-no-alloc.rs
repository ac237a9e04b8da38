//! Temporal-layer forwarding allocates nothing in a worker: a VP8 L1T3 stream fanned out over
//! two workers to subscribers limited to TID 0, TID 1 and none, with per-TID rate measurement
//! on the publisher's worker, dropped packets' sequence shifts and PictureID rewriting, and
//! NACKs answered through the sequence map.

mod common;
mod worker_alloc;

use std::time::Duration;

use common::peer::{eventually, Peer};
use tern::datapath::{
    Command, Datapath, DatapathConfig, IoMode, LayerLimit, MediaKind, SubscriptionParams, TrackRef,
    ALL_LAYERS,
};
use tern::wire::keyframe::VideoCodec;
use tern::wire::rtcp;
use worker_alloc::{mark_worker, worker_allocations};

const PUB: u32 = 0xabcd;

/// Frames from `from`, TIDs 0 2 1 2 …, two 600-byte packets each, with L1T3 descriptors.
fn send_frames(publisher: &mut Peer, from: u16, frames: u16) {
    for f in from..from + frames {
        let tid = [0u8, 2, 1, 2][usize::from(f % 4)];
        let [hi, lo] = (f | 0x8000).to_be_bytes();
        for k in 0..2u16 {
            let mut payload = vec![0x77u8; 600];
            let s = if k == 0 { 0x90 } else { 0x80 };
            let y = u8::from(f % 4 == 1) << 5;
            payload[..7].copy_from_slice(&[s, 0xe0, hi, lo, (f / 4) as u8, (tid << 6) | y, 0x11]);
            publisher.send_rtp(
                PUB,
                f.wrapping_mul(2).wrapping_add(k),
                u32::from(f) * 3000,
                &payload,
            );
        }
        std::thread::sleep(Duration::from_micros(800));
    }
}

#[test]
fn temporal_layer_forwarding_does_not_allocate() {
    let mut cfg = DatapathConfig::for_tests(2, IoMode::Auto);
    cfg.on_worker_start = Some(mark_worker);
    let dp = Datapath::start(cfg).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    let mut subs: Vec<Peer> = (0..6)
        .map(|i| Peer::install(&dp, i % 2, 10 + i as u64, true))
        .collect();
    for s in &mut subs {
        s.connect();
    }
    dp.send(
        0,
        Command::Publish {
            session: 1,
            track: 3,
            ssrc: Some(PUB),
            by_mid: None,
            kind: MediaKind::Video,
            nack: false,
            rtx: None,
            transport_cc: None,
            codec: Some(VideoCodec::Vp8),
            dependency_descriptor: None,
        },
    )
    .unwrap();
    for (i, s) in subs.iter().enumerate() {
        let temporal = [0, 1, ALL_LAYERS][i % 3];
        let params = SubscriptionParams {
            codec: Some(VideoCodec::Vp8),
            limit: LayerLimit {
                spatial: ALL_LAYERS,
                temporal,
            },
            dependency_descriptor: None,
            seq_offset: 77,
            ..SubscriptionParams::with_ssrc(0x5000 + s.session as u32)
        };
        let track = TrackRef {
            id: 3,
            worker: 0,
            kind: MediaKind::Video,
        };
        dp.subscribe(s.worker, s.session, track, params).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));

    // Warm up: every stream's first packets, drops and a rate report tick.
    send_frames(&mut publisher, 0, 100);
    std::thread::sleep(Duration::from_millis(1200));
    let before = worker_allocations();
    let out_before = dp.total_counters().media_out;

    send_frames(&mut publisher, 100, 400);
    // NACKs from each subscriber for numbers it was sent (and for ones it never was).
    for s in &mut subs {
        let mut nack = [0u8; 64];
        let ssrc = 0x5000 + s.session as u32;
        let n = rtcp::write_nack_lost(&mut nack, 0x1234, ssrc, &[320, 560, 1070, 1071]).unwrap();
        s.send_rtcp(&nack[..n]);
    }
    // 400 frames × 2 packets: TID 0 subscribers get a quarter, TID 1 half, the rest all.
    let expected = 2 * (200 + 400 + 800);
    assert!(eventually(Duration::from_secs(3), || {
        dp.total_counters().media_out - out_before >= expected
    }));
    std::thread::sleep(Duration::from_millis(200));
    let c = dp.total_counters();
    assert!(c.layer_dropped > 0 && c.nack_retransmits > 0, "{c:?}");
    let made = worker_allocations() - before;
    assert_eq!(
        made, 0,
        "workers allocated {made} times while dropping layers"
    );
}
