//! SRTP/SRTCP unprotect fed every truncation and single-byte corruption of valid packets and
//! random bytes of lengths 0–64 (SRTCP 3–64): always an error, never a panic, and a context that
//! still works afterwards.

use proptest::prelude::*;
use tern::srtp::{Profile, SrtpContext};

fn contexts(p: Profile) -> (SrtpContext, SrtpContext) {
    let key = vec![0x21u8; p.key_len()];
    let salt = vec![0x43u8; p.salt_len()];
    (
        SrtpContext::new(p, &key, &salt).unwrap(),
        SrtpContext::new(p, &key, &salt).unwrap(),
    )
}

fn valid_srtp(tx: &mut SrtpContext, seq: u16) -> Vec<u8> {
    // Header with a CSRC, a one-byte extension and padding.
    let mut p = vec![0xb1, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 9]);
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
    p.extend_from_slice(b"payload!");
    p.extend_from_slice(&[0, 0, 0, 4]);
    let len = p.len();
    p.resize(len + tx.profile().rtp_overhead(), 0);
    let n = tx.protect_rtp(&mut p, len).unwrap();
    p.truncate(n);
    p
}

fn valid_srtcp(tx: &mut SrtpContext) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6, 0xca, 0xfe, 0xba, 0xbe];
    p.extend_from_slice(&[7u8; 20]);
    p.extend_from_slice(&[0x81, 202, 0, 1, 0xca, 0xfe, 0xba, 0xbe]);
    let len = p.len();
    p.resize(len + tx.profile().rtcp_overhead(), 0);
    let n = tx.protect_rtcp(&mut p, len).unwrap();
    p.truncate(n);
    p
}

#[test]
fn every_truncation_and_corruption_is_refused() {
    for p in Profile::ALL {
        let (mut tx, mut rx) = contexts(p);
        let srtp = valid_srtp(&mut tx, 1);
        let srtcp = valid_srtcp(&mut tx);
        for cut in 0..srtp.len() {
            let mut b = srtp[..cut].to_vec();
            assert!(rx.unprotect_rtp(&mut b).is_err(), "{p}: srtp cut at {cut}");
        }
        for cut in 0..srtcp.len() {
            let mut b = srtcp[..cut].to_vec();
            assert!(
                rx.unprotect_rtcp(&mut b).is_err(),
                "{p}: srtcp cut at {cut}"
            );
        }
        for i in 0..srtp.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = srtp.clone();
                b[i] ^= flip;
                assert!(
                    rx.unprotect_rtp(&mut b).is_err(),
                    "{p}: srtp byte {i} ^ {flip:#x}"
                );
            }
        }
        for i in 0..srtcp.len() {
            let mut b = srtcp.clone();
            b[i] ^= 0x04;
            assert!(rx.unprotect_rtcp(&mut b).is_err(), "{p}: srtcp byte {i}");
        }
        // After all that garbage the real packets still go through.
        let mut b = srtp.clone();
        assert!(rx.unprotect_rtp(&mut b).is_ok(), "{p}");
        let mut b = srtcp.clone();
        assert!(rx.unprotect_rtcp(&mut b).is_ok(), "{p}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=64), pi in 0usize..4, rtpish in any::<bool>()) {
        let p = Profile::ALL[pi];
        let (_, mut rx) = contexts(p);
        let mut b = bytes.clone();
        if rtpish && !b.is_empty() {
            b[0] = 0x80 | (b[0] & 0x3f); // version 2, so the parse goes deeper
        }
        prop_assert!(rx.unprotect_rtp(&mut b.clone()).is_err());
        if b.len() >= 3 {
            prop_assert!(rx.unprotect_rtcp(&mut b).is_err());
        }
    }

    #[test]
    fn protect_refuses_garbage_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..=64), spare in 0usize..24, pi in 0usize..4) {
        let p = Profile::ALL[pi];
        let (mut tx, _) = contexts(p);
        let len = bytes.len();
        let mut b = bytes.clone();
        b.resize(len + spare, 0);
        let _ = tx.protect_rtp(&mut b.clone(), len);
        let _ = tx.protect_rtcp(&mut b, len);
    }
}
