//! Tern's SRTP against an independent implementation (webrtc-srtp): random keys, headers with
//! CSRCs, extensions and padding, payload sizes and sequence runs across the 16-bit wrap; Tern
//! protect → oracle unprotect, and oracle protect → Tern unprotect, for RTP and RTCP, in every
//! profile both libraries have.

mod common;

use common::{oracle_profile, profile, rtp_shape};
use proptest::prelude::*;
use tern::srtp::{Profile, SrtpContext};
use webrtc_srtp::context::Context as Oracle;

fn keys(p: Profile, key: &[u8], salt: &[u8]) -> (SrtpContext, Oracle) {
    let key = &key[..p.key_len()];
    let salt = &salt[..p.salt_len()];
    let tern = SrtpContext::new(p, key, salt).unwrap();
    let oracle = Oracle::new(key, salt, oracle_profile(p), None, None).unwrap();
    (tern, oracle)
}

fn tern_protect_rtp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtp_overhead(), 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn tern_protect_rtcp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtcp_overhead(), 0);
    let n = ctx.protect_rtcp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

/// A plausible RTCP compound packet: a receiver report header then `words` random words.
fn rtcp_packet(ssrc: u32, words: &[u32]) -> Vec<u8> {
    let mut p = vec![0x80, 201];
    p.extend_from_slice(&(words.len() as u16 + 1).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for w in words {
        p.extend_from_slice(&w.to_be_bytes());
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tern_protects_what_the_oracle_unprotects(
        p in profile(),
        key in prop::collection::vec(any::<u8>(), 32),
        salt in prop::collection::vec(any::<u8>(), 14),
        shape in rtp_shape(1200),
        seq0 in prop_oneof![any::<u16>(), 65500u16..=65535],
        count in 1usize..40,
    ) {
        let (mut tern, mut oracle) = keys(p, &key, &salt);
        for i in 0..count {
            let plain = shape.build(seq0.wrapping_add(i as u16));
            let srtp = tern_protect_rtp(&mut tern, &plain);
            prop_assert_eq!(srtp.len(), plain.len() + p.rtp_overhead());
            let back = oracle.decrypt_rtp(&srtp).map_err(|e| TestCaseError::fail(format!("{p}: oracle refused packet {i}: {e}")))?;
            prop_assert_eq!(&back[..], &plain[..], "{} packet {}", p, i);
        }
    }

    #[test]
    fn the_oracle_protects_what_tern_unprotects(
        p in profile(),
        key in prop::collection::vec(any::<u8>(), 32),
        salt in prop::collection::vec(any::<u8>(), 14),
        shape in rtp_shape(1200),
        seq0 in prop_oneof![any::<u16>(), 65500u16..=65535],
        count in 1usize..40,
    ) {
        let (mut tern, mut oracle) = keys(p, &key, &salt);
        for i in 0..count {
            let plain = shape.build(seq0.wrapping_add(i as u16));
            let srtp = oracle.encrypt_rtp(&plain).unwrap();
            let mut buf = srtp.to_vec();
            let n = tern.unprotect_rtp(&mut buf).map_err(|e| TestCaseError::fail(format!("{p}: tern refused packet {i}: {e}")))?;
            prop_assert_eq!(&buf[..n], &plain[..], "{} packet {}", p, i);
        }
    }

    #[test]
    fn srtcp_agrees_both_ways(
        p in profile(),
        key in prop::collection::vec(any::<u8>(), 32),
        salt in prop::collection::vec(any::<u8>(), 14),
        ssrc in any::<u32>(),
        words in prop::collection::vec(any::<u32>(), 0..64),
        count in 1usize..8,
    ) {
        let (mut tern_tx, mut oracle_rx) = keys(p, &key, &salt);
        let (mut tern_rx, mut oracle_tx) = keys(p, &key, &salt);
        let plain = rtcp_packet(ssrc, &words);
        for i in 0..count {
            let srtcp = tern_protect_rtcp(&mut tern_tx, &plain);
            prop_assert_eq!(srtcp.len(), plain.len() + p.rtcp_overhead());
            let back = oracle_rx.decrypt_rtcp(&srtcp).map_err(|e| TestCaseError::fail(format!("{p}: oracle refused rtcp {i}: {e}")))?;
            prop_assert_eq!(&back[..], &plain[..]);

            let srtcp = oracle_tx.encrypt_rtcp(&plain).unwrap();
            let mut buf = srtcp.to_vec();
            let n = tern_rx.unprotect_rtcp(&mut buf).map_err(|e| TestCaseError::fail(format!("{p}: tern refused rtcp {i}: {e}")))?;
            prop_assert_eq!(&buf[..n], &plain[..]);
        }
    }
}
