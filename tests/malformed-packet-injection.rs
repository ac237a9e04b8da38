//! Malformed packet injection: every parser in `wire` survives every truncation and every
//! single-byte corruption of valid samples, and random bytes, without panicking; formats with
//! strict lengths reject what they must.

use proptest::prelude::*;
use tern::wire::demux::{classify, PacketKind};
use tern::wire::rtcp::{self, FirEntry, NackPair, ReportBlock, Rtcp, RtcpIter, SenderInfo};
use tern::wire::rtp::{self, RtpBuilder, RtpHeaderMut, RtpPacket};
use tern::wire::stun::StunMessage;

const STUN_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// RFC 5769 §2.1, §2.2 and §2.3.
fn stun_samples() -> Vec<Vec<u8>> {
    vec![
        hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
             00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
             00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
             00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
             80 28 00 04 e5 7a 3b cf"),
        hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 08 00 01 a1 47 e1 12 a6 43
             00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
             80 28 00 04 c0 7d 4c 96"),
        hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
             00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
             80 28 00 04 c8 fb 0b 4c"),
    ]
}

fn rtp_samples() -> Vec<Vec<u8>> {
    let one: [(u8, &[u8]); 3] = [(1, &[0xaa]), (3, &[1, 2, 3, 4, 5]), (14, &[9; 16])];
    let long = [7u8; 40];
    let two: [(u8, &[u8]); 3] = [(1, &[]), (200, &long), (15, &[1, 2])];
    let mut out = Vec::new();
    for (exts, csrcs, padding) in [(&one[..], &[1u32, 2, 3][..], 5u8), (&two[..], &[][..], 0)] {
        let mut buf = [0u8; 256];
        let builder = RtpBuilder {
            marker: true,
            payload_type: 96,
            sequence_number: 4242,
            timestamp: 0x1234_5678,
            ssrc: 0xdead_beef,
            csrcs,
            extensions: exts,
            padding,
            ..Default::default()
        };
        let n = builder.write(&mut buf, b"opus frame bytes").expect("fits");
        out.push(buf[..n].to_vec());
    }
    out
}

/// Each RTCP sample with the packet boundaries inside it.
fn rtcp_samples() -> Vec<(Vec<u8>, Vec<usize>)> {
    let block = ReportBlock {
        ssrc: 2,
        fraction_lost: 3,
        cumulative_lost: -4,
        highest_seq: 5,
        jitter: 6,
        last_sr: 7,
        delay_since_last_sr: 8,
    };
    let info = SenderInfo {
        ssrc: 1,
        ntp_timestamp: 0xe000_0000_8000_0000,
        rtp_timestamp: 3000,
        packet_count: 10,
        octet_count: 1000,
    };
    let mut samples = Vec::new();
    let mut buf = [0u8; 512];
    let a = rtcp::write_sender_report(&mut buf, &info, &[block, block]).expect("fits");
    let b = rtcp::write_sdes_cname(&mut buf[a..], 1, b"cname-of-the-publisher").expect("fits");
    samples.push((buf[..a + b].to_vec(), vec![a]));
    let n = rtcp::write_receiver_report(&mut buf, 9, &[block]).expect("fits");
    samples.push((buf[..n].to_vec(), vec![]));
    let pairs = [
        NackPair {
            pid: 10,
            blp: 0x8001,
        },
        NackPair { pid: 100, blp: 0 },
    ];
    let n = rtcp::write_nack(&mut buf, 1, 2, &pairs).expect("fits");
    samples.push((buf[..n].to_vec(), vec![]));
    let n = rtcp::write_pli(&mut buf, 1, 2).expect("fits");
    samples.push((buf[..n].to_vec(), vec![]));
    let entries = [
        FirEntry { ssrc: 2, seq_nr: 1 },
        FirEntry { ssrc: 3, seq_nr: 9 },
    ];
    let n = rtcp::write_fir(&mut buf, 1, &entries).expect("fits");
    samples.push((buf[..n].to_vec(), vec![]));
    let n = rtcp::write_remb(&mut buf, 1, 2_500_000, &[2, 3]).expect("fits");
    samples.push((buf[..n].to_vec(), vec![]));
    // Transport-wide CC: base 256, 3 packets, reference time, fb count, one chunk, deltas.
    samples.push((
        hex("8f cd 00 05 00 00 00 01 00 00 00 02 01 00 00 03 12 34 56 07 20 03 04 00"),
        vec![],
    ));
    // BYE with a reason.
    samples.push((
        hex("82 cb 00 04 00 00 00 01 00 00 00 02 03 62 79 65 00 00 00 00"),
        vec![],
    ));
    samples
}

/// Run `buf` through every parser and walk everything they hand back.
fn exercise(buf: &[u8]) {
    let _ = classify(buf);

    let _ = rtp::header_len(buf);
    if let Ok(p) = RtpPacket::parse(buf) {
        assert!(p.header_len() + p.payload().len() + usize::from(p.padding_len()) == buf.len());
        let _ = (p.ssrc(), p.csrcs().count(), p.extension());
        for e in p.extensions() {
            let _ = e;
        }
    }
    for id in [1, 3, 14, 15, 200] {
        let _ = rtp::find_extension(buf, id);
    }
    let mut copy = buf.to_vec();
    if let Ok(mut h) = RtpHeaderMut::new(&mut copy) {
        h.set_ssrc(1);
        h.set_sequence_number(2);
        h.set_timestamp(3);
        h.set_marker(true);
        h.set_payload_type(111);
        if let Some(v) = h.extension_mut(1) {
            v.fill(0);
        }
    }

    for p in RtcpIter::new(buf).flatten() {
        let _ = (p.sender_ssrc(), p.media_ssrc());
        match p.typed() {
            Ok(Rtcp::SenderReport(sr)) => assert!(sr.report_blocks.count() <= 31),
            Ok(Rtcp::ReceiverReport(rr)) => assert!(rr.report_blocks.count() <= 31),
            Ok(Rtcp::SourceDescription(sdes)) => {
                for c in sdes.chunks() {
                    let _ = (c.items().count(), c.cname());
                }
            }
            Ok(Rtcp::Bye(bye)) => {
                let _ = bye.ssrcs().count();
            }
            Ok(Rtcp::Nack(n)) => {
                let _ = (n.pairs().count(), n.lost().count());
            }
            Ok(Rtcp::Fir(f)) => {
                let _ = f.entries().count();
            }
            Ok(Rtcp::Remb(r)) => {
                let _ = (r.bitrate, r.ssrcs().count());
            }
            _ => {}
        }
    }

    if let Ok(m) = StunMessage::parse(buf) {
        for a in m.attributes() {
            let _ = a;
        }
        let _ = (
            m.username(),
            m.priority(),
            m.use_candidate(),
            m.xor_mapped_address(),
        );
        let _ = (
            m.error_code(),
            m.ice_controlled(),
            m.ice_controlling(),
            m.software(),
        );
        let _ = (m.verify_integrity(STUN_PASSWORD), m.verify_fingerprint());
    }
}

/// Every single-byte replacement of `sample`, checked by `check` after `exercise`.
fn for_each_corruption(sample: &[u8], mut check: impl FnMut(usize, &[u8])) {
    let mut buf = sample.to_vec();
    for i in 0..sample.len() {
        for v in 0..=255u8 {
            if v == sample[i] {
                continue;
            }
            buf[i] = v;
            exercise(&buf);
            check(i, &buf);
        }
        buf[i] = sample[i];
    }
}

#[test]
fn samples_are_valid_to_start_with() {
    for s in rtp_samples() {
        assert_eq!(classify(&s), PacketKind::Rtp);
        let p = RtpPacket::parse(&s).expect("valid RTP sample");
        assert!(p.extensions().all(|e| e.is_ok()));
        assert_eq!(p.payload(), b"opus frame bytes");
    }
    for (s, _) in rtcp_samples() {
        assert_eq!(classify(&s), PacketKind::Rtcp);
        for p in RtcpIter::new(&s) {
            let p = p.expect("valid RTCP sample");
            assert!(
                !matches!(p.typed(), Err(_) | Ok(Rtcp::Other(_))),
                "{:?}",
                p.header()
            );
        }
    }
    for s in stun_samples() {
        assert_eq!(classify(&s), PacketKind::Stun);
        let m = StunMessage::parse(&s).expect("valid STUN sample");
        assert!(m.verify_integrity(STUN_PASSWORD) && m.verify_fingerprint());
    }
}

#[test]
fn truncated_rtp_is_rejected_below_its_header() {
    for s in rtp_samples() {
        let hlen = rtp::header_len(&s).expect("valid");
        for n in 0..s.len() {
            exercise(&s[..n]);
            if n < hlen {
                assert!(RtpPacket::parse(&s[..n]).is_err(), "len {n}");
                assert!(rtp::header_len(&s[..n]).is_err(), "len {n}");
            }
        }
    }
}

#[test]
fn truncated_rtcp_yields_an_error_unless_cut_on_a_boundary() {
    for (s, boundaries) in rtcp_samples() {
        for n in 0..s.len() {
            exercise(&s[..n]);
            let errors = RtcpIter::new(&s[..n]).filter(|p| p.is_err()).count();
            if n == 0 || boundaries.contains(&n) {
                assert_eq!(errors, 0, "len {n}");
            } else {
                assert_eq!(errors, 1, "len {n}");
            }
        }
    }
}

#[test]
fn truncated_stun_is_rejected() {
    for s in stun_samples() {
        for n in 0..s.len() {
            exercise(&s[..n]);
            assert!(StunMessage::parse(&s[..n]).is_err(), "len {n}");
        }
    }
}

#[test]
fn corrupted_rtp_and_rtcp_do_not_panic() {
    for s in rtp_samples() {
        for_each_corruption(&s, |_, _| {});
    }
    for (s, _) in rtcp_samples() {
        for_each_corruption(&s, |_, _| {});
    }
}

#[test]
fn corrupted_stun_never_verifies() {
    for s in stun_samples() {
        // MESSAGE-INTEGRITY ends 8 bytes before the end (FINGERPRINT follows it).
        let integrity_end = s.len() - 8;
        for_each_corruption(&s, |i, buf| {
            if let Ok(m) = StunMessage::parse(buf) {
                assert!(!m.verify_fingerprint(), "byte {i} still fingerprints");
                if i < integrity_end {
                    assert!(
                        !m.verify_integrity(STUN_PASSWORD),
                        "byte {i} still authenticates"
                    );
                }
            }
        });
    }
}

proptest! {
    #[test]
    fn random_short_bytes(buf in prop::collection::vec(any::<u8>(), 0..=64)) {
        exercise(&buf);
    }

    #[test]
    fn random_datagram_sized_bytes(buf in prop::collection::vec(any::<u8>(), 0..=1500)) {
        exercise(&buf);
    }

    #[test]
    fn random_bytes_behind_plausible_headers(
        first in prop::sample::select(vec![0x00u8, 0x01, 0x80, 0x90, 0xa0, 0xb3, 0x81, 0x8f]),
        second in any::<u8>(),
        tail in prop::collection::vec(any::<u8>(), 0..=256),
    ) {
        let mut buf = vec![first, second];
        buf.extend_from_slice(&tail);
        exercise(&buf);
        // Also behind a valid STUN header whose length matches.
        let mut stun = hex("00 01 00 00 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00");
        let len = (tail.len() & !3) as u16;
        stun[2..4].copy_from_slice(&len.to_be_bytes());
        stun.extend_from_slice(&tail[..usize::from(len)]);
        exercise(&stun);
    }
}
