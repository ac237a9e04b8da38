//! `backend-bench`: candidate crypto backends for each SRTP primitive, on the same bytes, in one
//! run — the measurement behind the choice in perf-reports/ (AES-GCM, AES-CTR, HMAC-SHA1).
//!
//! Prints `primitive size backend ns_per_op` rows (median); `--json` prints one object per line.

use std::hint::black_box;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::KeyInit;
use aws_lc_rs::{aead, cipher, hmac as lc_hmac};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::Mac;
use tern_bench::median_ns_per_item;

const ITERS: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let samples = if args.iter().any(|a| a == "--quick") {
        40
    } else {
        300
    };
    let key16 = [0x11u8; 16];
    let mut rows: Vec<(&str, usize, &str, f64)> = Vec::new();
    for size in [160usize, 1200] {
        let mut buf = vec![0x5au8; size + 16];

        // AES-128-GCM seal, header of 12 bytes as AAD.
        let lc = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key16).unwrap());
        let mut n = 0u64;
        let ns = median_ns_per_item(
            samples,
            ITERS,
            &mut buf,
            |_| {},
            |b| {
                for _ in 0..ITERS {
                    n += 1;
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&n.to_be_bytes());
                    let (h, rest) = b.split_at_mut(12);
                    let tag = lc
                        .seal_in_place_separate_tag(
                            aead::Nonce::assume_unique_for_key(nonce),
                            aead::Aad::from(&*h),
                            &mut rest[..size - 12],
                        )
                        .unwrap();
                    let _ = black_box(tag);
                }
            },
        );
        rows.push(("aes128gcm-seal", size, "aws-lc-rs", ns));

        let rc = aes_gcm::Aes128Gcm::new_from_slice(&key16).unwrap();
        let ns = median_ns_per_item(
            samples,
            ITERS,
            &mut buf,
            |_| {},
            |b| {
                for _ in 0..ITERS {
                    n += 1;
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&n.to_be_bytes());
                    let (h, rest) = b.split_at_mut(12);
                    let tag = rc
                        .encrypt_in_place_detached((&nonce).into(), h, &mut rest[..size - 12])
                        .unwrap();
                    let _ = black_box(tag);
                }
            },
        );
        rows.push(("aes128gcm-seal", size, "rustcrypto-aes-gcm-0.10", ns));

        // AES-128-CTR over the payload.
        let lc_ctr = cipher::EncryptingKey::ctr(
            cipher::UnboundCipherKey::new(&cipher::AES_128, &key16).unwrap(),
        )
        .unwrap();
        let ns = median_ns_per_item(
            samples,
            ITERS,
            &mut buf,
            |_| {},
            |b| {
                for _ in 0..ITERS {
                    n += 1;
                    let mut iv = [0u8; 16];
                    iv[4..12].copy_from_slice(&n.to_be_bytes());
                    lc_ctr
                        .less_safe_encrypt(
                            &mut b[12..size],
                            cipher::EncryptionContext::Iv128(iv.into()),
                        )
                        .unwrap();
                }
            },
        );
        rows.push(("aes128ctr", size, "aws-lc-rs", ns));

        type Ctr = ctr::Ctr128BE<aes::Aes128>;
        let ns = median_ns_per_item(
            samples,
            ITERS,
            &mut buf,
            |_| {},
            |b| {
                for _ in 0..ITERS {
                    n += 1;
                    let mut iv = [0u8; 16];
                    iv[4..12].copy_from_slice(&n.to_be_bytes());
                    let mut c = Ctr::new((&key16).into(), (&iv).into());
                    c.apply_keystream(&mut b[12..size]);
                }
            },
        );
        rows.push(("aes128ctr", size, "rustcrypto-ctr-0.9", ns));

        // HMAC-SHA1 over the packet plus 4 ROC bytes, key schedule precomputed.
        let auth = [0x22u8; 20];
        let keyed = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&auth).unwrap();
        let ns = median_ns_per_item(
            samples,
            ITERS,
            &mut buf,
            |_| {},
            |b| {
                for _ in 0..ITERS {
                    let mut m = keyed.clone();
                    m.update(&b[..size]);
                    m.update(&[0, 0, 0, 1]);
                    black_box(m.finalize().into_bytes());
                }
            },
        );
        rows.push(("hmac-sha1", size, "rustcrypto-hmac-0.12+sha1-0.10", ns));

        let lc_key = lc_hmac::Key::new(lc_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth);
        let ns = median_ns_per_item(
            samples,
            ITERS,
            &mut buf,
            |_| {},
            |b| {
                for _ in 0..ITERS {
                    let mut m = lc_hmac::Context::with_key(&lc_key);
                    m.update(&b[..size]);
                    m.update(&[0, 0, 0, 1]);
                    black_box(m.sign());
                }
            },
        );
        rows.push(("hmac-sha1", size, "aws-lc-rs", ns));
    }
    for (prim, size, backend, ns) in rows {
        if json {
            println!("{{\"primitive\": \"{prim}\", \"size\": {size}, \"backend\": \"{backend}\", \"ns_per_op\": {ns:.1}}}");
        } else {
            println!("{prim:<16} {size:>5} {backend:<32} {ns:>9.1}");
        }
    }
}
