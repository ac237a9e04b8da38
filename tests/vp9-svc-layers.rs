//! VP9 SVC (L3T3_KEY): a subscriber limited to spatial layer 1 and temporal layer 1 receives
//! only those layer frames, with the RTP marker on the last packet of its top spatial layer of
//! each picture, and sequence numbers and PictureIDs contiguous; raised to spatial layer 2, it
//! asks the publisher for a keyframe and gets the third layer from that keyframe on, not before.

mod common;

use std::time::{Duration, Instant};

use common::peer::{publisher_and_subscriber, Peer};
use tern::datapath::{Command, LayerLimit, SubscriptionParams};
use tern::wire::keyframe::VideoCodec;
use tern::wire::rtp::RtpPacket;
use tern::wire::vp9::Vp9Descriptor;

const PUB: u32 = 0xaaaa;
const SUB: u32 = 0xbbbb;

/// One received packet: sequence number, marker, PictureID, spatial and temporal layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Got {
    seq: u16,
    marker: bool,
    picture_id: u16,
    sid: u8,
    tid: u8,
}

/// The publisher's pictures: TIDs 0 2 1 2 …, three spatial layers of one packet each (B and
/// E), P clear on a keyframe (with the scalability structure), the marker on layer 2.
struct Stream {
    seq: u16,
    picture: u16,
}

impl Stream {
    fn send(&mut self, publisher: &mut Peer, pictures: u16, keyframe_first: bool) {
        for i in 0..pictures {
            let p = self.picture;
            let key = keyframe_first && i == 0;
            let tid = if key {
                0
            } else {
                [0u8, 2, 1, 2][usize::from(p % 4)]
            };
            let tl0 = (p / 4) as u8;
            for sid in 0..3u8 {
                let [hi, lo] = (p | 0x8000).to_be_bytes();
                let u = if tid > 0 { 0x10 } else { 0 };
                let d = u8::from(sid > 0); // upper layers depend on the lower one
                let first = 0xa0 | 0x0c | if key { 0 } else { 0x40 }; // I L B E, P
                let mut payload = vec![first, hi, lo, (tid << 5) | u | (sid << 1) | d, tl0];
                if key && sid == 0 {
                    payload[0] |= 0x02; // V: N_S = 2, no sizes, no groups
                    payload.push(2 << 5);
                }
                payload.push(0x55);
                let mut packet =
                    common::peer::rtp_packet(96, PUB, self.seq, u32::from(p) * 3000, &payload);
                if sid == 2 {
                    packet[1] |= 0x80;
                }
                publisher.send_plain_rtp(packet);
                self.seq = self.seq.wrapping_add(1);
            }
            self.picture = self.picture.wrapping_add(1);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn receive(sub: &mut Peer, wait: Duration) -> Vec<Got> {
    let mut got = Vec::new();
    while let Some(p) = sub.recv_rtp(Instant::now() + wait) {
        let rtp = RtpPacket::parse(&p).unwrap();
        let d = Vp9Descriptor::parse(rtp.payload()).expect("a VP9 descriptor");
        let layer = d.layer.expect("layer indices");
        got.push(Got {
            seq: rtp.sequence_number(),
            marker: rtp.marker(),
            picture_id: d.picture_id.expect("PictureID").value,
            sid: layer.sid,
            tid: layer.tid,
        });
    }
    got
}

/// Contiguous numbering, and each picture's packets end with the marker on spatial layer
/// `top`.
fn assert_pictures(got: &[Got], top: u8) {
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{w:?}");
        let step = w[1].picture_id.wrapping_sub(w[0].picture_id) & 0x7fff;
        assert!(step <= 1, "PictureIDs contiguous: {w:?}");
        if step == 1 {
            assert!(
                w[0].marker && w[0].sid == top,
                "marker ends a picture: {w:?}"
            );
            assert_eq!(w[1].sid, 0, "a picture starts at layer 0: {w:?}");
        } else {
            assert!(!w[0].marker, "no marker inside a picture: {w:?}");
        }
    }
}

#[test]
fn a_subscriber_gets_its_spatial_and_temporal_layers_with_the_marker_moved() {
    let params = SubscriptionParams {
        codec: Some(VideoCodec::Vp9),
        limit: LayerLimit {
            spatial: 1,
            temporal: 1,
        },
        ..SubscriptionParams::with_ssrc(SUB)
    };
    let (dp, mut publisher, mut sub) = publisher_and_subscriber(params);
    let quiet = Duration::from_millis(300);

    // A keyframe, then 11 pictures: the TID 0 and 1 pictures (6 of 12), layers 0 and 1 each.
    let mut stream = Stream {
        seq: 100,
        picture: 0x7ffc,
    };
    stream.send(&mut publisher, 12, true);
    let got = receive(&mut sub, quiet);
    assert_eq!(got.len(), 12, "{got:?}");
    assert!(got.iter().all(|g| g.sid <= 1 && g.tid <= 1), "{got:?}");
    assert_pictures(&got, 1);
    assert!(got.last().unwrap().marker);
    // Dropped: the six TID 2 pictures whole, and layer 2 of the six others.
    assert_eq!(dp.total_counters().layer_dropped, 6 * 3 + 6);

    // Up to spatial layer 2: a keyframe is asked for (past the 500 ms limit since the one the
    // subscription asked for); inter pictures keep two layers.
    std::thread::sleep(Duration::from_millis(500));
    let requests = dp.total_counters().keyframe_requests;
    dp.send(
        0,
        Command::SetLayerLimit {
            session: 2,
            ssrc: SUB,
            limit: LayerLimit {
                spatial: 2,
                temporal: 1,
            },
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(dp.total_counters().keyframe_requests > requests, "PLI sent");
    stream.send(&mut publisher, 4, false);
    let inter = receive(&mut sub, quiet);
    assert!(inter.iter().all(|g| g.sid <= 1), "{inter:?}");
    stream.send(&mut publisher, 4, true);
    let keyed = receive(&mut sub, quiet);
    assert_eq!(keyed.iter().filter(|g| g.sid == 2).count(), 2, "{keyed:?}");
    let mut all = got;
    all.extend(&inter);
    assert_pictures(&all, 1);
    assert_pictures(&keyed, 2);
    let joined = [all[all.len() - 1], keyed[0]];
    assert_eq!(joined[1].seq, joined[0].seq.wrapping_add(1));
    assert_eq!(joined[1].picture_id, (joined[0].picture_id + 1) & 0x7fff);
}
