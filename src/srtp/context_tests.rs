//! Unit tests for `SrtpContext`: RFC 7714 vectors, round trips, replay and key lifetime.

use super::*;
use crate::srtp::hex;

fn rtp_packet(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtp_overhead(), 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn unprotect(ctx: &mut SrtpContext, srtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = srtp.to_vec();
    let n = ctx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn pair(profile: Profile) -> (SrtpContext, SrtpContext) {
    let key = vec![0x42; profile.key_len()];
    let salt = vec![0x17; profile.salt_len()];
    (
        SrtpContext::new(profile, &key, &salt).unwrap(),
        SrtpContext::new(profile, &key, &salt).unwrap(),
    )
}

/// RFC 7714 §16 and §17: AEAD_AES_128_GCM and AEAD_AES_256_GCM over SRTP and SRTCP, stated in
/// session keys.
mod rfc7714 {
    use super::*;

    const KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
    const KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const SALT: &str = "517569642070726f2071756f";
    const RTP: &str = "8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";
    /// §16.1.1
    const SRTP_128: &str = "8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833 899d7f27beb16a9152cf765ee4390cce";
    /// §16.2.1
    const SRTP_256: &str = "8040f17b8041f8d35501a0b2 32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13";
    /// The RTCP packet §17.1-17.4 protect (SSRC "Mars").
    const RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
    /// §17.1
    const SRTCP_128: &str = "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4";
    /// §17.2
    const SRTCP_256: &str = "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4";
    /// §17.3: authenticated, not encrypted (E = 0).
    const SRTCP_128_NO_ENC: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef841dd9683dd78ec92ae58790125f62b3000005d4";
    const SRTCP_INDEX: u32 = 0x5d4;

    fn ctx(profile: Profile, key: &str) -> SrtpContext {
        let keys = SessionKeys::from_session(profile, &hex(key), &hex(SALT), &[]).unwrap();
        SrtpContext::from_session_keys(&keys, SrtpConfig::default()).unwrap()
    }

    fn check_rtp(profile: Profile, key: &str, expected: &str) {
        let plain = hex(RTP);
        assert_eq!(
            protect(&mut ctx(profile, key), &plain),
            hex(expected),
            "{profile} protect"
        );
        assert_eq!(
            unprotect(&mut ctx(profile, key), &hex(expected)).unwrap(),
            plain,
            "{profile} unprotect"
        );
        let mut forged = hex(expected);
        forged[20] ^= 0x01;
        assert_eq!(
            unprotect(&mut ctx(profile, key), &forged),
            Err(SrtpError::AuthFailed)
        );
    }

    fn check_rtcp(profile: Profile, key: &str, expected: &str) {
        let plain = hex(RTCP);
        let mut buf = hex(expected);
        let n = ctx(profile, key).unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..], "{profile} unprotect");

        let mut sender = ctx(profile, key);
        for _ in 0..SRTCP_INDEX {
            let mut scratch = plain.clone();
            scratch.resize(plain.len() + profile.rtcp_overhead(), 0);
            sender.protect_rtcp(&mut scratch, plain.len()).unwrap();
        }
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtcp_overhead(), 0);
        let n = sender.protect_rtcp(&mut buf, plain.len()).unwrap();
        assert_eq!(buf[..n], hex(expected)[..], "{profile} protect");
    }

    #[test]
    fn srtp_aes_128_gcm_16_1() {
        check_rtp(Profile::AeadAes128Gcm, KEY_128, SRTP_128);
    }

    #[test]
    fn srtp_aes_256_gcm_16_2() {
        check_rtp(Profile::AeadAes256Gcm, KEY_256, SRTP_256);
    }

    #[test]
    fn srtcp_aes_128_gcm_17_1() {
        check_rtcp(Profile::AeadAes128Gcm, KEY_128, SRTCP_128);
    }

    #[test]
    fn srtcp_aes_256_gcm_17_2() {
        check_rtcp(Profile::AeadAes256Gcm, KEY_256, SRTCP_256);
    }

    #[test]
    fn srtcp_aes_128_gcm_without_encryption_17_3() {
        let mut buf = hex(SRTCP_128_NO_ENC);
        let n = ctx(Profile::AeadAes128Gcm, KEY_128)
            .unprotect_rtcp(&mut buf)
            .unwrap();
        assert_eq!(buf[..n], hex(RTCP)[..]);

        // A flipped bit in the (unencrypted) body fails, and the packet is left as it came.
        let mut forged = hex(SRTCP_128_NO_ENC);
        forged[12] ^= 0x80;
        let before = forged.clone();
        let err = ctx(Profile::AeadAes128Gcm, KEY_128).unprotect_rtcp(&mut forged);
        assert_eq!(err, Err(SrtpError::AuthFailed));
        assert_eq!(forged, before);
    }
}

#[test]
fn every_profile_round_trips_rtp_and_rtcp() {
    for profile in Profile::ALL {
        let (mut tx, mut rx) = pair(profile);
        for seq in [65530u16, 65535, 0, 1, 2] {
            let plain = rtp_packet(0xdead_beef, seq, b"hello tern");
            let srtp = protect(&mut tx, &plain);
            assert_ne!(srtp[12..22], plain[12..], "{profile}: payload is encrypted");
            assert_eq!(
                unprotect(&mut rx, &srtp).unwrap(),
                plain,
                "{profile} seq {seq}"
            );
        }
        let rtcp = hex("80c900010000002a");
        let mut buf = rtcp.clone();
        buf.resize(rtcp.len() + profile.rtcp_overhead(), 0);
        let n = tx.protect_rtcp(&mut buf, rtcp.len()).unwrap();
        assert_eq!(n, rtcp.len() + profile.rtcp_overhead());
        let mut wire = buf[..n].to_vec();
        let m = rx.unprotect_rtcp(&mut wire).unwrap();
        assert_eq!(wire[..m], rtcp[..], "{profile} rtcp");
        let mut again = buf[..n].to_vec();
        assert_eq!(
            rx.unprotect_rtcp(&mut again),
            Err(SrtpError::Replayed),
            "{profile} rtcp replay"
        );
    }
}

#[test]
fn a_short_buffer_is_refused_not_overrun() {
    let (mut tx, _) = pair(Profile::Aes128CmHmacSha1_80);
    let plain = rtp_packet(1, 1, b"x");
    let mut buf = plain.clone();
    buf.resize(plain.len() + 9, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain.len()),
        Err(SrtpError::BufferTooSmall)
    );
    let too_long = buf.len() + 1;
    assert_eq!(
        tx.protect_rtp(&mut buf, too_long),
        Err(SrtpError::BufferTooSmall)
    );
}

#[test]
fn the_srtp_key_lifetime_is_enforced() {
    let (mut tx, mut rx) = pair(Profile::AeadAes128Gcm);
    let first = protect(&mut tx, &rtp_packet(1, 1, b"a"));
    tx.rtp_packets = SRTP_MAX_PACKETS - 1;
    let plain = rtp_packet(1, 2, b"b");
    let last = protect(&mut tx, &plain);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain.len()),
        Err(SrtpError::KeyExpired)
    );

    unprotect(&mut rx, &first).unwrap();
    rx.rtp_packets = SRTP_MAX_PACKETS;
    assert_eq!(unprotect(&mut rx, &last), Err(SrtpError::KeyExpired));
}

#[test]
fn the_srtcp_index_is_limited_to_31_bits() {
    let (mut tx, _) = pair(Profile::Aes128CmHmacSha1_80);
    let rtcp = hex("80c900010000002a");
    let mut buf = rtcp.clone();
    buf.resize(rtcp.len() + 14, 0);
    tx.protect_rtcp(&mut buf, rtcp.len()).unwrap();
    tx.tx_rtcp.entries[0].1 = (SRTCP_MAX_PACKETS - 1) as u32;
    tx.protect_rtcp(&mut buf, rtcp.len()).unwrap();
    assert_eq!(
        tx.protect_rtcp(&mut buf, rtcp.len()),
        Err(SrtpError::KeyExpired)
    );
}

#[test]
fn the_roc_stops_at_48_bits() {
    let (mut tx, _) = pair(Profile::Aes128CmHmacSha1_80);
    tx.tx_rtp.entries.push((7, Some(SRTP_MAX_PACKETS - 1)));
    let plain = rtp_packet(7, 0, b"x");
    let mut buf = plain.clone();
    buf.resize(plain.len() + 10, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain.len()),
        Err(SrtpError::KeyExpired)
    );
}

#[test]
fn new_ssrcs_beyond_the_limit_are_refused_after_known_ones_work() {
    let config = SrtpConfig {
        max_ssrcs: 2,
        ..SrtpConfig::default()
    };
    let p = Profile::AeadAes128Gcm;
    let mut tx = SrtpContext::new(p, &[1; 16], &[2; 12]).unwrap();
    let mut rx = SrtpContext::with_config(p, &[1; 16], &[2; 12], config).unwrap();
    for ssrc in [10, 11] {
        let s = protect(&mut tx, &rtp_packet(ssrc, 5, b"ok"));
        assert!(unprotect(&mut rx, &s).is_ok());
    }
    let third = protect(&mut tx, &rtp_packet(12, 5, b"no"));
    assert_eq!(unprotect(&mut rx, &third), Err(SrtpError::UnknownSsrc));
    let known = protect(&mut tx, &rtp_packet(10, 6, b"ok"));
    assert!(unprotect(&mut rx, &known).is_ok());
}
