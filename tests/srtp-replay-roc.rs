//! Replay protection and rollover-counter tracking through loss, reordering, duplicates, large
//! jumps and the 16-bit sequence wrap; forged packets never move the window.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tern::srtp::{Profile, SrtpContext, SrtpError, REPLAY_WINDOW};

fn pair(p: Profile) -> (SrtpContext, SrtpContext) {
    let key = vec![9u8; p.key_len()];
    let salt = vec![3u8; p.salt_len()];
    (
        SrtpContext::new(p, &key, &salt).unwrap(),
        SrtpContext::new(p, &key, &salt).unwrap(),
    )
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x10, 0]);
    p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    p.extend_from_slice(format!("payload of packet {seq}").as_bytes());
    p
}

fn protect(tx: &mut SrtpContext, seq: u16) -> Vec<u8> {
    let plain = rtp(seq);
    let mut buf = plain.clone();
    buf.resize(plain.len() + tx.profile().rtp_overhead(), 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn unprotect(rx: &mut SrtpContext, srtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = srtp.to_vec();
    let n = rx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn a_duplicate_is_refused_every_profile() {
    for p in Profile::ALL {
        let (mut tx, mut rx) = pair(p);
        let a = protect(&mut tx, 100);
        assert_eq!(unprotect(&mut rx, &a).unwrap(), rtp(100));
        assert_eq!(unprotect(&mut rx, &a), Err(SrtpError::Replayed), "{p}");
    }
}

#[test]
fn packets_older_than_the_window_are_refused_younger_unseen_accepted() {
    let (mut tx, mut rx) = pair(Profile::Aes128CmHmacSha1_80);
    let held: Vec<Vec<u8>> = (0..=1200u16).map(|s| protect(&mut tx, s)).collect();
    // Deliver all but 100 and 1100.
    for (s, pkt) in held.iter().enumerate() {
        if s != 100 && s != 1100 {
            unprotect(&mut rx, pkt).unwrap();
        }
    }
    assert!(1200 - 100 >= REPLAY_WINDOW as usize);
    assert_eq!(
        unprotect(&mut rx, &held[100]),
        Err(SrtpError::Replayed),
        "behind the window"
    );
    assert_eq!(
        unprotect(&mut rx, &held[1100]).unwrap(),
        rtp(1100),
        "late but inside the window"
    );
    assert_eq!(unprotect(&mut rx, &held[1100]), Err(SrtpError::Replayed));
}

#[test]
fn wrap_with_loss_and_reordering_decrypts_every_delivered_packet() {
    for p in Profile::ALL {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut tx, mut rx) = pair(p);
        // 65000 → 65535 → 0 → … → 2000 (ROC 0 then 1), three wraps' worth at the end.
        let seqs: Vec<u16> = (0..(536 + 2001 + 65536 * 2))
            .map(|i| 65000u16.wrapping_add(i as u16))
            .collect();
        let mut packets: Vec<(u16, Vec<u8>)> =
            seqs.iter().map(|&s| (s, protect(&mut tx, s))).collect();
        // 5% loss, then shuffle within windows of 16 packets (reordering across the wrap).
        packets.retain(|_| rng.gen_bool(0.95));
        for chunk in packets.chunks_mut(16) {
            chunk.shuffle(&mut rng);
        }
        for (s, pkt) in &packets {
            assert_eq!(unprotect(&mut rx, pkt).unwrap(), rtp(*s), "{p}: seq {s}");
        }
        for (s, pkt) in packets.iter().rev().take(50) {
            assert_eq!(
                unprotect(&mut rx, pkt),
                Err(SrtpError::Replayed),
                "{p}: replay of {s}"
            );
        }
    }
}

#[test]
fn a_large_forward_jump_is_followed() {
    let (mut tx, mut rx) = pair(Profile::AeadAes128Gcm);
    let early = protect(&mut tx, 5);
    let before = protect(&mut tx, 10);
    unprotect(&mut rx, &early).unwrap();
    let far = protect(&mut tx, 30_000);
    assert_eq!(unprotect(&mut rx, &far).unwrap(), rtp(30_000));
    let next = protect(&mut tx, 30_001);
    assert_eq!(unprotect(&mut rx, &next).unwrap(), rtp(30_001));
    assert_eq!(
        unprotect(&mut rx, &before),
        Err(SrtpError::Replayed),
        "now far behind"
    );
}

#[test]
fn a_late_packet_from_before_the_wrap_is_protected_and_unprotected_with_the_old_roc() {
    let (mut tx, mut rx) = pair(Profile::Aes128CmHmacSha1_32);
    for s in [65533u16, 65534, 65535, 0, 1, 2, 3] {
        let pkt = protect(&mut tx, s);
        unprotect(&mut rx, &pkt).unwrap();
    }
    // A relay forwards a late 65532 after 3: the sender must use ROC 0 for it.
    let late = protect(&mut tx, 65532);
    assert_eq!(unprotect(&mut rx, &late).unwrap(), rtp(65532));
}

#[test]
fn a_forged_packet_with_a_fresh_sequence_number_does_not_move_the_window() {
    // (first seq, forged seqs): far ahead in the same ROC, and just past the wrap (ROC + 1).
    let cases: [(u16, [u16; 2]); 2] = [
        (1000, [1099 + 2000, 1099 + 30_000]),
        (65_400, [1000, 20_000]),
    ];
    for p in Profile::ALL {
        for (first, forged_seqs) in cases {
            let (mut tx, mut rx) = pair(p);
            let held_seq = first.wrapping_add(90);
            let mut held = Vec::new();
            for i in 0..100u16 {
                let s = first.wrapping_add(i);
                let pkt = protect(&mut tx, s);
                if s == held_seq {
                    held = pkt; // held back: unseen, inside the window
                } else {
                    unprotect(&mut rx, &pkt).unwrap();
                }
            }
            // Each forgery, had it been accepted, would push `held` out of the window.
            for forged_seq in forged_seqs {
                let mut forged = protect(&mut pair(p).0, forged_seq);
                let last = forged.len() - 1;
                forged[last] ^= 0x55;
                assert_eq!(
                    unprotect(&mut rx, &forged),
                    Err(SrtpError::AuthFailed),
                    "{p} {forged_seq}"
                );
            }
            // A packet under another key is a forgery too.
            let mut stranger =
                SrtpContext::new(p, &vec![1u8; p.key_len()], &vec![3u8; p.salt_len()]).unwrap();
            let foreign = protect(&mut stranger, first.wrapping_add(3000));
            assert_eq!(unprotect(&mut rx, &foreign), Err(SrtpError::AuthFailed));

            assert_eq!(
                unprotect(&mut rx, &held).unwrap(),
                rtp(held_seq),
                "{p}: window did not move"
            );
            let next_seq = first.wrapping_add(100);
            let next = protect(&mut tx, next_seq);
            assert_eq!(
                unprotect(&mut rx, &next).unwrap(),
                rtp(next_seq),
                "{p}: ROC did not move"
            );
        }
    }
}
