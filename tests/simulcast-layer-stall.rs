//! The publisher's worker reports a simulcast layer that stops (no packet for `LAYER_STALL`,
//! or none that long after it was installed) and reports it again when its packets resume,
//! once per change; tracks that are no simulcast layers are never reported.

mod common;

use std::time::{Duration, Instant};

use common::peer::{plain_publish, Peer};
use tern::datapath::{
    Command, Datapath, DatapathConfig, Event, IoMode, MediaKind, MidBinding, RidBinding,
    LAYER_STALL,
};
use tern::wire::rtp::RtpBuilder;

/// A plaintext RTP packet of layer `rid` of MID "1" (one-byte extensions: MID id 4, RID id 10).
fn layer_packet(ssrc: u32, seq: u16, rid: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    let n = RtpBuilder {
        payload_type: 96,
        sequence_number: seq,
        ssrc,
        extensions: &[(4, b"1"), (10, rid)],
        ..Default::default()
    }
    .write(&mut p, &[0x10, 0x10, 0x02, 0x00])
    .unwrap();
    p.truncate(n);
    p
}

fn publish_layer(dp: &Datapath, track: u32, rid: &[u8]) {
    dp.send(
        0,
        Command::Publish {
            session: 1,
            track,
            ssrc: None,
            by_mid: Some(MidBinding {
                ext_id: 4,
                mid: b"1".to_vec(),
                payload_type: 96,
                rtx_payload_type: None,
                rid: Some(RidBinding {
                    ext_id: 10,
                    repaired_ext_id: None,
                    rid: rid.to_vec(),
                }),
            }),
            kind: MediaKind::Video,
            nack: false,
            rtx: None,
            transport_cc: None,
            codec: None,
            dependency_descriptor: None,
        },
    )
    .unwrap();
}

/// The layer events that arrive before `deadline`.
fn layer_events(dp: &Datapath, deadline: Instant) -> Vec<(u32, bool)> {
    let mut got = Vec::new();
    while let Ok(e) = dp
        .events()
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if let Event::LayerActive { track, active } = e {
            got.push((track, active));
        }
    }
    got
}

#[test]
fn a_layer_that_stops_is_reported_and_again_when_it_resumes() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    publish_layer(&dp, 3, b"h");
    publish_layer(&dp, 4, b"l");
    // A plain track beside them: never reported.
    dp.send(0, plain_publish(1, 5, 0x5555, MediaKind::Audio))
        .unwrap();

    // l keeps sending; h sends for a while, then stops.
    let start = Instant::now();
    let mut seq = 0u16;
    while start.elapsed() < LAYER_STALL * 3 {
        seq += 1;
        publisher.send_plain_rtp(layer_packet(0xcccc, seq, b"l"));
        if start.elapsed() < LAYER_STALL / 2 {
            publisher.send_plain_rtp(layer_packet(0xaaaa, seq, b"h"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        layer_events(&dp, Instant::now() + Duration::from_millis(300)),
        [(3, false)]
    );

    // h resumes: reported once, however many packets.
    for _ in 0..5 {
        seq += 1;
        publisher.send_plain_rtp(layer_packet(0xaaaa, seq, b"h"));
        publisher.send_plain_rtp(layer_packet(0xcccc, seq, b"l"));
    }
    assert_eq!(
        layer_events(&dp, Instant::now() + Duration::from_millis(500)),
        [(3, true)]
    );
    assert_eq!(dp.total_counters().ssrcs_learned, 2);
}

#[test]
fn a_layer_that_never_sends_is_reported_stopped() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    publish_layer(&dp, 3, b"h");
    let events = layer_events(&dp, Instant::now() + LAYER_STALL * 2);
    assert_eq!(events, [(3, false)]);
}
