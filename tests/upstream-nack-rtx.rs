//! Upstream loss recovery: a packet lost between publisher and relay is NACKed to the publisher
//! by the relay itself (RFC 4585 generic NACK), retried every 50 ms up to three times, and the
//! retransmission — on the publisher's RTX stream (RFC 4588) or as a plain resend — goes out to
//! the subscribers as the original. RTX packets nobody asked for (Chromium's padding probes and
//! redundant retransmissions) are dropped and counted, not forwarded and not "unknown SSRC".

mod common;

use std::time::{Duration, Instant};

use common::peer::{eventually, Peer};
use tern::datapath::{
    Command, Datapath, DatapathConfig, IoMode, MediaKind, PublisherRtx, SubscriptionParams,
    TrackRef,
};
use tern::wire::rtcp::{Rtcp, RtcpIter};

const PUB_SSRC: u32 = 0xabcd;
const PUB_RTX_SSRC: u32 = 0xabce;
const PUB_RTX_PT: u8 = 97;
const SUB_SSRC: u32 = 0x5002;

struct Room {
    dp: Datapath,
    publisher: Peer,
    sub: Peer,
}

fn room(nack: bool, rtx: bool) -> Room {
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
            nack,
            rtx: rtx.then_some(PublisherRtx {
                ssrc: PUB_RTX_SSRC,
                apt: 96,
            }),
            transport_cc: None,
            codec: None,
            dependency_descriptor: None,
        },
    )
    .unwrap();
    let track = TrackRef {
        id: 9,
        worker: 0,
        kind: MediaKind::Video,
    };
    dp.subscribe(0, 2, track, SubscriptionParams::with_ssrc(SUB_SSRC))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    Room { dp, publisher, sub }
}

/// Sends 1000..=1009 but never `skip`; the subscriber receives the rest.
fn send_with_holes(room: &mut Room, skip: &[u16]) {
    for seq in 1000..1010u16 {
        if !skip.contains(&seq) {
            room.publisher.send_rtp(
                PUB_SSRC,
                seq,
                u32::from(seq) * 90,
                format!("part {seq}").as_bytes(),
            );
        }
    }
    for _ in 0..10 - skip.len() {
        room.sub
            .recv_rtp(Instant::now() + Duration::from_secs(3))
            .expect("the packets that were sent arrive");
    }
}

/// The sequence numbers of the NACKs for `PUB_SSRC` the publisher receives before `deadline`.
fn nacks_until(publisher: &mut Peer, deadline: Instant) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    while let Some(compound) = publisher.recv_rtcp(deadline) {
        for packet in RtcpIter::new(&compound) {
            let packet = packet.expect("relay's RTCP parses");
            if let Ok(Rtcp::Nack(nack)) = packet.typed() {
                assert_eq!(
                    packet.media_ssrc(),
                    Some(PUB_SSRC),
                    "NACK names the publisher's SSRC"
                );
                out.push(nack.lost().collect());
            }
        }
    }
    out
}

/// The first NACK for `PUB_SSRC` the publisher receives before `deadline`.
fn first_nack(publisher: &mut Peer, deadline: Instant) -> Vec<u16> {
    while let Some(compound) = publisher.recv_rtcp(deadline) {
        for packet in RtcpIter::new(&compound) {
            let packet = packet.expect("relay's RTCP parses");
            if let Ok(Rtcp::Nack(nack)) = packet.typed() {
                assert_eq!(packet.media_ssrc(), Some(PUB_SSRC));
                return nack.lost().collect();
            }
        }
    }
    panic!("no NACK reached the publisher");
}

fn rtx_payload(osn: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = osn.to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    p
}

#[test]
fn a_lost_packet_is_nacked_upstream_and_its_rtx_reaches_the_subscriber() {
    let mut room = room(true, true);
    send_with_holes(&mut room, &[1003, 1005]);
    let first = first_nack(
        &mut room.publisher,
        Instant::now() + Duration::from_millis(500),
    );
    assert_eq!(
        first,
        vec![1003, 1005],
        "the gaps are NACKed at once, in one NACK"
    );

    // A padding-only probe and a retransmission of a packet the relay has: dropped.
    room.publisher
        .send_rtp_pt(PUB_RTX_PT, PUB_RTX_SSRC, 500, 1, b"");
    room.publisher.send_rtp_pt(
        PUB_RTX_PT,
        PUB_RTX_SSRC,
        501,
        1001 * 90,
        &rtx_payload(1001, b"part 1001"),
    );
    // The one the relay asked for: forwarded as the original.
    room.publisher.send_rtp_pt(
        PUB_RTX_PT,
        PUB_RTX_SSRC,
        502,
        1003 * 90,
        &rtx_payload(1003, b"part 1003"),
    );
    let p = room
        .sub
        .recv_rtp(Instant::now() + Duration::from_secs(3))
        .expect("the recovered packet reaches the subscriber");
    assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), SUB_SSRC);
    assert_eq!(
        u16::from_be_bytes([p[2], p[3]]),
        1003,
        "original sequence number"
    );
    assert_eq!(p[1] & 0x7f, 96, "primary payload type");
    assert_eq!(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), 1003 * 90);
    assert_eq!(&p[12..], b"part 1003", "OSN removed");
    assert!(
        room.sub
            .recv_rtp(Instant::now() + Duration::from_millis(300))
            .is_none(),
        "nothing else was forwarded"
    );

    // 1005 never comes: asked twice more, 50 ms apart, then given up. (1003 may have been
    // asked for again too if its RTX took longer than 50 ms on a loaded machine.)
    let retries = nacks_until(
        &mut room.publisher,
        Instant::now() + Duration::from_millis(400),
    )
    .concat();
    assert_eq!(
        retries.iter().filter(|&&s| s == 1005).count(),
        2,
        "retries: {retries:?}"
    );
    assert!(retries.iter().all(|&s| s == 1005 || s == 1003));
    assert!(eventually(Duration::from_secs(2), || {
        room.dp.total_counters().upstream_lost == 1
    }));
    let c = room.dp.total_counters();
    assert_eq!(c.upstream_recovered, 1);
    assert_eq!(c.upstream_nacked, 2 + retries.len() as u64);
    assert_eq!(c.rtx_dropped, 2);
    assert_eq!(c.unknown_ssrc, 0);
}

#[test]
fn a_plain_resend_of_the_same_sequence_number_recovers_too() {
    let mut room = room(true, false);
    send_with_holes(&mut room, &[1004]);
    let nack = first_nack(
        &mut room.publisher,
        Instant::now() + Duration::from_millis(500),
    );
    assert_eq!(nack, vec![1004]);
    room.publisher
        .send_rtp(PUB_SSRC, 1004, 1004 * 90, b"part 1004");
    let p = room
        .sub
        .recv_rtp(Instant::now() + Duration::from_secs(3))
        .expect("the resend reaches the subscriber");
    assert_eq!(u16::from_be_bytes([p[2], p[3]]), 1004);
    assert_eq!(&p[12..], b"part 1004");
    // Asked for again only while the resend was on its way (50 ms apart), then never again.
    let retries = nacks_until(
        &mut room.publisher,
        Instant::now() + Duration::from_millis(300),
    );
    assert!(retries.len() <= 2, "{retries:?}");
    let c = room.dp.total_counters();
    assert_eq!((c.upstream_recovered, c.upstream_lost), (1, 0));
}

#[test]
fn a_publisher_that_did_not_negotiate_nack_is_not_sent_any() {
    let mut room = room(false, false);
    send_with_holes(&mut room, &[1002]);
    assert_eq!(
        nacks_until(
            &mut room.publisher,
            Instant::now() + Duration::from_millis(200)
        ),
        Vec::<Vec<u16>>::new()
    );
    let c = room.dp.total_counters();
    assert_eq!((c.upstream_nacks, c.upstream_lost), (0, 0));
}
