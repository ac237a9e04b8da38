//! RTCP feedback: a subscriber's NACK is answered from the relay's cache with the lost packet
//! (under the subscriber's keys); PLI reaches the publisher, at most one per track per 500 ms,
//! from the same worker and across workers.

mod common;

use std::time::{Duration, Instant};

use common::peer::{wire_up, Peer};
use tern::datapath::{Datapath, DatapathConfig, IoMode, MediaKind};
use tern::wire::rtcp::{self, Rtcp, RtcpIter};

fn pli_count(publisher: &mut Peer, media_ssrc: u32, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut n = 0;
    while let Some(compound) = publisher.recv_rtcp(deadline) {
        for p in RtcpIter::new(&compound).flatten() {
            if matches!(p.typed(), Ok(Rtcp::Pli(_))) {
                assert_eq!(
                    p.media_ssrc(),
                    Some(media_ssrc),
                    "PLI names the publisher's SSRC"
                );
                n += 1;
            }
        }
    }
    n
}

#[test]
fn a_nack_gets_the_retransmission() {
    let dp = Datapath::start(DatapathConfig::for_tests(2, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    publisher.connect();
    // One subscriber on the publisher's worker, one across the ring.
    let mut subs = [
        Peer::install(&dp, 0, 2, true),
        Peer::install(&dp, 1, 3, true),
    ];
    for s in &mut subs {
        s.connect();
    }
    wire_up(
        &dp,
        &publisher,
        5,
        0xabcd,
        MediaKind::Video,
        &[&subs[0], &subs[1]],
    );
    std::thread::sleep(Duration::from_millis(200));
    for s in &mut subs {
        s.lose = vec![507, 511]; // the network loses these two on the way to each subscriber
    }
    for seq in 500..520u16 {
        publisher.send_rtp(
            0xabcd,
            seq,
            u32::from(seq) * 90,
            format!("frame part {seq}").as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    for s in &mut subs {
        let mut got = 0;
        while got < 18 {
            s.recv_rtp(Instant::now() + Duration::from_secs(3))
                .expect("original packets");
            got += 1;
        }
        let my_ssrc = 0x5000 + s.session as u32;
        let mut nack = [0u8; 64];
        let n = rtcp::write_nack_lost(&mut nack, my_ssrc ^ 1, my_ssrc, &[507, 511]).unwrap();
        s.send_rtcp(&nack[..n]);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let p = s
                .recv_rtp(Instant::now() + Duration::from_secs(3))
                .expect("retransmissions arrive");
            let seq = u16::from_be_bytes([p[2], p[3]]);
            assert_eq!(
                &p[12..],
                format!("frame part {seq}").as_bytes(),
                "the same payload"
            );
            assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), my_ssrc);
            seen.push(seq);
        }
        seen.sort();
        assert_eq!(seen, vec![507, 511], "subscriber {}", s.session);
    }
    assert!(common::peer::eventually(Duration::from_secs(2), || dp
        .total_counters()
        .nack_retransmits
        >= 4));
}

#[test]
fn pli_reaches_the_publisher_rate_limited() {
    for (pub_worker, sub_worker) in [(0, 0), (0, 1)] {
        let dp = Datapath::start(DatapathConfig::for_tests(2, IoMode::Auto)).unwrap();
        let mut publisher = Peer::install(&dp, pub_worker, 1, true);
        publisher.connect();
        let mut sub = Peer::install(&dp, sub_worker, 2, true);
        sub.connect();
        wire_up(&dp, &publisher, 5, 0xabcd, MediaKind::Video, &[&sub]);
        // The new subscription asks for a keyframe once.
        assert_eq!(
            pli_count(&mut publisher, 0xabcd, Duration::from_millis(400)),
            1,
            "workers {pub_worker}->{sub_worker}"
        );

        let mut pli = [0u8; 16];
        let n = rtcp::write_pli(&mut pli, 0x999, 0x5002).unwrap();
        std::thread::sleep(Duration::from_millis(200)); // 600 ms since the last request
        for _ in 0..5 {
            sub.send_rtcp(&pli[..n]);
        }
        assert_eq!(
            pli_count(&mut publisher, 0xabcd, Duration::from_millis(400)),
            1,
            "a burst of five becomes one"
        );
        std::thread::sleep(Duration::from_millis(200));
        sub.send_rtcp(&pli[..n]);
        assert_eq!(
            pli_count(&mut publisher, 0xabcd, Duration::from_millis(400)),
            1,
            "after 500 ms another goes through"
        );
        assert!(dp.total_counters().keyframe_suppressed >= 4);
    }
}
