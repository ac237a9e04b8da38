//! Transport-cc feedback to a publisher: for a publisher that negotiated the transport-wide
//! sequence number extension, the relay reports every ~50 ms which of those numbers arrived and
//! when (RTPFB FMT 15), and a number that never arrived as lost. Parsed with webrtc-rs's
//! `TransportLayerCc`, an independent implementation. Without it a browser's bandwidth estimate
//! never leaves its start rate (see tests/browser-publisher-bandwidth.rs).

mod common;

use std::time::{Duration, Instant};

use common::peer::Peer;
use tern::datapath::{Command, Datapath, DatapathConfig, IoMode, MediaKind};
use tern::wire::rtcp::RtcpIter;
use tern::wire::rtp::RtpBuilder;
use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use webrtc::util::Unmarshal;

const PUB_SSRC: u32 = 0xabcd;
const TWCC_ID: u8 = 5;

/// A plaintext RTP packet with a one-byte-header extension block carrying the transport-wide
/// sequence number `twcc` under id `TWCC_ID`.
fn packet(seq: u16, twcc: u16) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    let n = RtpBuilder {
        payload_type: 96,
        sequence_number: seq,
        timestamp: u32::from(seq) * 90,
        ssrc: PUB_SSRC,
        extensions: &[(TWCC_ID, &twcc.to_be_bytes())],
        ..Default::default()
    }
    .write(&mut p, b"payload")
    .unwrap();
    p.truncate(n);
    p
}

/// Every transport-cc status reported before `deadline`: (sequence number, received).
fn statuses_until(publisher: &mut Peer, deadline: Instant) -> Vec<(u16, bool)> {
    let mut out = Vec::new();
    while let Some(compound) = publisher.recv_rtcp(deadline) {
        for packet in RtcpIter::new(&compound) {
            let packet = packet.expect("relay's RTCP parses");
            let bytes = packet.as_bytes();
            if bytes[0] & 0x1f != 15 || bytes[1] != 205 {
                continue;
            }
            let fb = TransportLayerCc::unmarshal(&mut bytes::Bytes::copy_from_slice(bytes))
                .expect("webrtc-rs parses the feedback");
            assert_eq!(fb.media_ssrc, PUB_SSRC);
            let mut symbols = Vec::new();
            for chunk in &fb.packet_chunks {
                match chunk {
                    PacketStatusChunk::RunLengthChunk(r) => symbols.extend(std::iter::repeat_n(
                        r.packet_status_symbol,
                        r.run_length.into(),
                    )),
                    PacketStatusChunk::StatusVectorChunk(v) => symbols.extend(&v.symbol_list),
                }
            }
            symbols.truncate(fb.packet_status_count.into());
            for (i, s) in symbols.iter().enumerate() {
                let seq = fb.base_sequence_number.wrapping_add(i as u16);
                out.push((seq, *s != SymbolTypeTcc::PacketNotReceived));
            }
        }
    }
    out
}

/// A datapath with one connected publisher of `PUB_SSRC`, transport-cc under `transport_cc`.
fn publisher(transport_cc: Option<u8>) -> (Datapath, Peer) {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
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
            transport_cc,
            codec: None,
            dependency_descriptor: None,
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    (dp, publisher)
}

#[test]
fn a_publisher_gets_transport_cc_feedback_for_what_arrived() {
    let (dp, mut publisher) = publisher(Some(TWCC_ID));
    // Transport-wide numbers 65530..=65535, 0..=9 (the wrap), with 3 never sent.
    let twcc: Vec<u16> = (65_530..=65_535).chain(0..10).filter(|&t| t != 3).collect();
    for (i, &t) in twcc.iter().enumerate() {
        publisher.send_plain_rtp(packet(1000 + i as u16, t));
        std::thread::sleep(Duration::from_millis(2));
    }
    let statuses = statuses_until(&mut publisher, Instant::now() + Duration::from_millis(800));
    let mut expected: Vec<(u16, bool)> = (65_530..=65_535).map(|t| (t, true)).collect();
    expected.extend((0..10).map(|t| (t, t != 3)));
    assert_eq!(
        statuses, expected,
        "each number reported once, in order, 3 as lost"
    );
    assert!(dp.total_counters().transport_feedback >= 1);
}

#[test]
fn a_publisher_without_the_extension_gets_none() {
    let (dp, mut publisher) = publisher(None);
    for i in 0..10 {
        publisher.send_plain_rtp(packet(1000 + i, i));
    }
    let statuses = statuses_until(&mut publisher, Instant::now() + Duration::from_millis(300));
    assert!(statuses.is_empty(), "{statuses:?}");
    assert_eq!(dp.total_counters().transport_feedback, 0);
}
