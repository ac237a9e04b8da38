//! The relay's own RTCP: sender reports to subscribers (for the SSRC they receive) and receiver
//! reports to publishers (a block for the SSRC they send), about once a second.

mod common;

use std::time::{Duration, Instant};

use common::peer::{wire_up, Peer};
use tern::datapath::{Datapath, DatapathConfig, IoMode, MediaKind};
use tern::wire::rtcp::{Rtcp, RtcpIter};

#[test]
fn subscribers_get_sender_reports_and_publishers_receiver_reports() {
    let dp = Datapath::start(DatapathConfig::for_tests(1, IoMode::Auto)).unwrap();
    let mut publisher = Peer::install(&dp, 0, 1, true);
    let mut sub = Peer::install(&dp, 0, 2, true);
    publisher.connect();
    sub.connect();
    wire_up(&dp, &publisher, 6, 0xcafe, MediaKind::Audio, &[&sub]);
    std::thread::sleep(Duration::from_millis(100));
    for seq in 0..20u16 {
        publisher.send_rtp(0xcafe, 300 + seq, u32::from(seq) * 960, b"opus frame");
    }

    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sr = None;
    while sr.is_none() {
        let compound = sub.recv_rtcp(deadline).expect("an SR within 3 s");
        for p in RtcpIter::new(&compound).flatten() {
            if let Ok(Rtcp::SenderReport(report)) = p.typed() {
                sr = Some((report.info.ssrc, report.info.packet_count));
            }
        }
    }
    assert_eq!(
        sr,
        Some((0x5002, 20)),
        "SR for the subscriber's SSRC, counting what it was sent"
    );

    let deadline = Instant::now() + Duration::from_secs(3);
    let mut rr_block = None;
    while rr_block.is_none() {
        let compound = publisher.recv_rtcp(deadline).expect("an RR within 3 s");
        for p in RtcpIter::new(&compound).flatten() {
            if let Ok(Rtcp::ReceiverReport(report)) = p.typed() {
                rr_block = report.report_blocks.clone().find(|b| b.ssrc == 0xcafe);
            }
        }
    }
    let block = rr_block.unwrap();
    assert_eq!(
        block.highest_seq, 319,
        "extended highest sequence number received"
    );
}
