//! Multi-buffer SHA-1: 16 independent messages hashed in the 16 lanes of AVX-512 registers,
//! timed against the single-buffer SHA-NI compression the `sha1` crate (and Tern) uses.
//!
//! The message is 20 SHA-1 blocks: what HMAC-SHA1 hashes for one 1200-byte SRTP packet (inner
//! hash from the precomputed ipad state over packet + ROC + padding = 19 blocks, outer hash from
//! the opad state = 1 block). Two ways of getting the message words into lanes:
//! - `gather`: a gather per word from 16 blocks laid out one after another (what a relay batch
//!   would do, give or take the addressing);
//! - `ideal`: words already interleaved in memory, one plain load per word: a lower bound.
//! Both are checked against `sha1::compress` lane by lane before timing.
//!
//! This is an experiment kept beside the report that cites it (perf-reports/2026-11-27-*):
//! it uses `unsafe` `std::arch`, which Tern's house rules keep out of the relay.

use std::arch::x86_64::*;
use std::time::Instant;

const K: [u32; 4] = [0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6];
const IV: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
const BLOCKS: usize = 20;

/// One SHA-1 compression in each of 16 lanes. `blocks` holds 16 × 64 bytes: lane-major
/// (lane i's block at i·64) unless `IDEAL`, where word j of lane i sits at (j·16 + i)·4.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW; `blocks` must be at least 1024 bytes.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn compress16<const IDEAL: bool>(state: &mut [__m512i; 5], blocks: &[u8]) {
    assert!(blocks.len() >= 1024);
    let base = blocks.as_ptr() as *const i32;
    let idx = _mm512_setr_epi32(
        0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
    );
    let bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    let mut w = [_mm512_setzero_si512(); 16];
    for (j, wj) in w.iter_mut().enumerate() {
        // SAFETY: every address read is inside `blocks` (checked length 1024 above).
        let v = unsafe {
            if IDEAL {
                _mm512_loadu_si512(base.add(j * 16) as *const _)
            } else {
                _mm512_i32gather_epi32::<4>(idx, base.add(j))
            }
        };
        *wj = _mm512_shuffle_epi8(v, bswap);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    macro_rules! round {
        ($t:expr, $f:expr, $k:expr) => {{
            let t = $t;
            if t >= 16 {
                let x = _mm512_ternarylogic_epi32::<0x96>(
                    w[(t + 13) & 15],
                    w[(t + 8) & 15],
                    w[(t + 2) & 15],
                );
                w[t & 15] = _mm512_rol_epi32::<1>(_mm512_xor_si512(x, w[t & 15]));
            }
            let f = _mm512_ternarylogic_epi32::<$f>(b, c, d);
            let tmp = _mm512_add_epi32(
                _mm512_add_epi32(_mm512_rol_epi32::<5>(a), f),
                _mm512_add_epi32(e, _mm512_add_epi32(w[t & 15], _mm512_set1_epi32($k as i32))),
            );
            e = d;
            d = c;
            c = _mm512_rol_epi32::<30>(b);
            b = a;
            a = tmp;
        }};
    }
    // Ternary-logic immediates: Ch = 0xCA, Parity = 0x96, Maj = 0xE8.
    for t in 0..20 {
        round!(t, 0xCA, K[0]);
    }
    for t in 20..40 {
        round!(t, 0x96, K[1]);
    }
    for t in 40..60 {
        round!(t, 0xE8, K[2]);
    }
    for t in 60..80 {
        round!(t, 0x96, K[3]);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = _mm512_add_epi32(*s, v);
    }
}

fn lanes(v: __m512i) -> [u32; 16] {
    let mut out = [0u32; 16];
    // SAFETY: `out` is 64 bytes; unaligned store.
    unsafe { _mm512_storeu_si512(out.as_mut_ptr() as *mut _, v) };
    out
}

fn run<const IDEAL: bool>(layout: &[u8], state: &mut [__m512i; 5]) {
    for blk in layout.chunks_exact(1024) {
        // SAFETY: AVX-512F/BW checked in main; every chunk is 1024 bytes.
        unsafe { compress16::<IDEAL>(state, std::hint::black_box(blk)) };
    }
}

fn main() {
    assert!(
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw"),
        "needs AVX-512F and AVX-512BW"
    );
    let msgs: Vec<Vec<u8>> = (0..16)
        .map(|i| (0..64 * BLOCKS).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    let mut lane_major = vec![0u8; 16 * 64 * BLOCKS];
    let mut interleaved = vec![0u8; 16 * 64 * BLOCKS];
    for blk in 0..BLOCKS {
        for lane in 0..16 {
            let src = &msgs[lane][blk * 64..blk * 64 + 64];
            lane_major[blk * 1024 + lane * 64..][..64].copy_from_slice(src);
            for word in 0..16 {
                interleaved[blk * 1024 + (word * 16 + lane) * 4..][..4]
                    .copy_from_slice(&src[word * 4..word * 4 + 4]);
            }
        }
    }
    // SAFETY: AVX-512F checked above.
    let fresh =
        || -> [__m512i; 5] { std::array::from_fn(|i| unsafe { _mm512_set1_epi32(IV[i] as i32) }) };
    let mut gather_state = fresh();
    run::<false>(&lane_major, &mut gather_state);
    let mut ideal_state = fresh();
    run::<true>(&interleaved, &mut ideal_state);
    for (lane, msg) in msgs.iter().enumerate() {
        let mut s = IV;
        for blk in msg.chunks_exact(64) {
            sha1::compress(
                &mut s,
                &[*sha1::digest::generic_array::GenericArray::from_slice(blk)],
            );
        }
        for k in 0..5 {
            assert_eq!(
                lanes(gather_state[k])[lane],
                s[k],
                "gather lane {lane} word {k}"
            );
            assert_eq!(
                lanes(ideal_state[k])[lane],
                s[k],
                "ideal lane {lane} word {k}"
            );
        }
    }
    let blocks: Vec<_> = msgs[0]
        .chunks_exact(64)
        .map(|c| *sha1::digest::generic_array::GenericArray::from_slice(c))
        .collect();
    let iters = 20_000;
    let (mut gather, mut ideal, mut sha_ni) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..9 {
        let t = Instant::now();
        for _ in 0..iters {
            run::<false>(&lane_major, &mut gather_state);
        }
        gather = gather.min(t.elapsed().as_nanos() as f64 / (iters * 16) as f64);
        let t = Instant::now();
        for _ in 0..iters {
            run::<true>(&interleaved, &mut ideal_state);
        }
        ideal = ideal.min(t.elapsed().as_nanos() as f64 / (iters * 16) as f64);
        let mut s = IV;
        let t = Instant::now();
        for _ in 0..iters {
            sha1::compress(&mut s, std::hint::black_box(&blocks));
        }
        sha_ni = sha_ni.min(t.elapsed().as_nanos() as f64 / iters as f64);
        std::hint::black_box(s);
    }
    std::hint::black_box((&gather_state, &ideal_state));
    println!("SHA-1, {BLOCKS} blocks per message (HMAC of a 1200-byte SRTP packet), best of 9:");
    println!("  sha1 crate, SHA-NI, one message   {sha_ni:7.1} ns/message");
    println!(
        "  AVX-512 16 lanes, gather          {gather:7.1} ns/message  ({:.3}x)",
        gather / sha_ni
    );
    println!(
        "  AVX-512 16 lanes, pre-interleaved {ideal:7.1} ns/message  ({:.3}x)",
        ideal / sha_ni
    );
}
