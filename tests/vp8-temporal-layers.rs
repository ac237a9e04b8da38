//! VP8 temporal layers (L1T3): a subscriber limited to a lower temporal layer receives only the
//! frames whose TID is at most its layer, with its sequence numbers, PictureIDs and TL0PICIDX
//! contiguous although frames are left out; a NACK for a lost packet names the subscriber's
//! number and gets exactly that packet back; raised to all layers, it gets
//! TID 2 again from the next base-layer frame on, still contiguous.

mod common;

use std::time::{Duration, Instant};

use common::peer::{publisher_and_subscriber, Peer};
use tern::datapath::{Command, LayerLimit, SubscriptionParams, ALL_LAYERS};
use tern::wire::keyframe::VideoCodec;
use tern::wire::rtcp;
use tern::wire::rtp::RtpPacket;
use tern::wire::vp8::Vp8Descriptor;

const PUB: u32 = 0xaaaa;
const SUB: u32 = 0xbbbb;
/// Packets per frame.
const PER_FRAME: u16 = 2;

/// One received packet: sequence number, PictureID, TL0PICIDX, TID, the tag the publisher put
/// after the descriptor (its own sequence number).
#[derive(Debug, Clone)]
struct Got {
    seq: u16,
    picture_id: u16,
    tl0: u8,
    tid: u8,
    tag: u16,
}

fn parse(p: Vec<u8>) -> Got {
    let rtp = RtpPacket::parse(&p).expect("RTP");
    assert_eq!(rtp.ssrc(), SUB);
    let d = Vp8Descriptor::parse(rtp.payload()).expect("a VP8 descriptor");
    let body = &rtp.payload()[d.len..];
    Got {
        seq: rtp.sequence_number(),
        picture_id: d.picture_id.expect("PictureID").value,
        tl0: d.tl0_pic_idx.expect("TL0PICIDX"),
        tid: d.tid.expect("TID"),
        tag: u16::from_be_bytes([body[1], body[2]]),
    }
}

/// The publisher's L1T3 stream: frame `f` (TIDs 0 2 1 2 …, Y on the TID 2 frame after each
/// base frame, PictureID from near the 15-bit wrap), `PER_FRAME` packets each.
struct Stream {
    seq: u16,
    frame: u16,
}

impl Stream {
    fn send_frames(&mut self, publisher: &mut Peer, frames: u16) {
        for _ in 0..frames {
            let f = self.frame;
            let tid = [0u8, 2, 1, 2][usize::from(f % 4)];
            let sync = f % 4 == 1;
            let picture_id = 0x7ff0u16.wrapping_add(f) & 0x7fff;
            let tl0 = (250u16 + f / 4) as u8;
            for k in 0..PER_FRAME {
                let [hi, lo] = (picture_id | 0x8000).to_be_bytes();
                let first = if k == 0 { 0x90 } else { 0x80 }; // S on the first packet only
                let tk = (tid << 6) | (u8::from(sync) << 5);
                let key = if f == 0 { 0x10 } else { 0x11 }; // VP8 header: P bit
                let mut payload = vec![first, 0xe0, hi, lo, tl0, tk, key];
                payload.extend_from_slice(&self.seq.to_be_bytes());
                let mut p =
                    common::peer::rtp_packet(96, PUB, self.seq, u32::from(f) * 3000, &payload);
                if k + 1 == PER_FRAME {
                    p[1] |= 0x80; // marker: last packet of the frame
                }
                publisher.send_plain_rtp(p);
                self.seq = self.seq.wrapping_add(1);
            }
            self.frame += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn receive(sub: &mut Peer, wait: Duration) -> Vec<Got> {
    let mut got = Vec::new();
    while let Some(p) = sub.recv_rtp(Instant::now() + wait) {
        got.push(parse(p));
    }
    got
}

/// Sequence numbers, PictureIDs (15 bits) and TL0PICIDX run on without gaps.
fn assert_contiguous(got: &[Got]) {
    for w in got.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence numbers: {w:?}"
        );
        let step = w[1].picture_id.wrapping_sub(w[0].picture_id) & 0x7fff;
        let tl0_step = w[1].tl0.wrapping_sub(w[0].tl0);
        if w[1].tag.wrapping_sub(w[0].tag) == 1 && step == 0 {
            continue; // the same frame's next packet
        }
        assert_eq!(step, 1, "PictureIDs: {w:?}");
        assert!(tl0_step <= 1, "TL0PICIDX: {w:?}");
        if w[1].tid == 0 {
            assert_eq!(tl0_step, 1, "a base frame steps TL0PICIDX: {w:?}");
        }
    }
}

#[test]
fn a_subscriber_limited_to_tid_1_gets_a_contiguous_stream_and_its_nacks_answered() {
    let params = SubscriptionParams {
        codec: Some(VideoCodec::Vp8),
        limit: LayerLimit {
            spatial: ALL_LAYERS,
            temporal: 1,
        },
        seq_offset: 1000,
        ..SubscriptionParams::with_ssrc(SUB)
    };
    let (dp, mut publisher, mut sub) = publisher_and_subscriber(params);
    let quiet = Duration::from_millis(300);

    // 16 frames from a keyframe: TIDs 0 and 1 only reach the subscriber. The sixth packet it
    // is sent (the second of frame 4, after two frames left out) is lost on the way.
    let first = 65500u16.wrapping_add(1000);
    let lost = first.wrapping_add(5);
    sub.lose = vec![lost];
    let mut stream = Stream {
        seq: 65500,
        frame: 0,
    };
    stream.send_frames(&mut publisher, 16);
    let mut got = receive(&mut sub, quiet);
    assert_eq!(got.len(), 8 * usize::from(PER_FRAME) - 1, "{got:?}");
    assert!(got.iter().all(|g| g.tid <= 1), "{got:?}");
    assert_eq!(got[0].seq, first);
    let dropped = dp.total_counters().layer_dropped;
    assert_eq!(dropped, 8 * u64::from(PER_FRAME), "TID 2 packets counted");

    // The NACK names the subscriber's number; the retransmission (no RTX negotiated: the same
    // packet again) fills the gap exactly: number, PictureID, TL0PICIDX, publisher's packet.
    let mut nack = [0u8; 64];
    let n = rtcp::write_nack_lost(&mut nack, 0x1234, SUB, &[lost]).unwrap();
    sub.send_rtcp(&nack[..n]);
    let again = sub
        .recv_rtp(Instant::now() + Duration::from_secs(2))
        .map(parse)
        .expect("the retransmission");
    assert_eq!(again.seq, lost);
    assert_eq!(
        again.tag,
        65500u16.wrapping_add(9),
        "frame 4's second packet"
    );
    got.insert(5, again);
    assert_contiguous(&got);
    assert_eq!(dp.total_counters().nack_retransmits, 1);

    // All layers: TID 2 comes back from the next base frame on, numbering still contiguous.
    dp.send(
        0,
        Command::SetLayerLimit {
            session: 2,
            ssrc: SUB,
            limit: LayerLimit::default(),
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.send_frames(&mut publisher, 8);
    let more = receive(&mut sub, quiet);
    let tids: Vec<u8> = more
        .iter()
        .step_by(usize::from(PER_FRAME))
        .map(|g| g.tid)
        .collect();
    assert_eq!(tids, [0, 2, 1, 2, 0, 2, 1, 2]);
    let mut all = got.clone();
    all.extend(more);
    assert_contiguous(&all);
    assert_eq!(
        dp.total_counters().layer_dropped,
        dropped,
        "nothing more dropped"
    );
}
