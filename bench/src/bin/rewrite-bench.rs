//! `rewrite-bench`: what renumbering header extensions costs per subscriber copy. A 1200-byte
//! Chromium-like video packet (abs-send-time, transport-wide sequence number and MID in a
//! one-byte block) is copied as the fan-out copies it for a subscriber that numbers alike
//! (`copy`, the baseline) and for one that does not (`renumber`: ids mapped, MID replaced,
//! transport-wide number dropped, as for a Firefox publisher and a Chromium subscriber).
//!
//! `cargo run --release -p tern-bench --bin rewrite-bench` prints median ns per copy and the
//! difference.

use std::hint::black_box;

use tern::wire::rtp::copy_translating_extensions;
use tern_bench::median_ns_per_item;

const ITERS: usize = 1024;

fn main() {
    let mut packet = vec![
        0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0xab, 0xcd, 0xbe, 0xde, 0, 3,
    ];
    packet.extend_from_slice(&[0x22, 1, 2, 3, 0x31, 0, 9, 0x40, b'1', 0, 0, 0]);
    packet.resize(1200, 0x5a);
    let mid = b"video-0".to_vec();
    let ids = [(2u8, 5u8)];
    let mut out = vec![0u8; 1500];
    let copy = median_ns_per_item(
        300,
        ITERS,
        &mut out,
        |_| {},
        |out| {
            for _ in 0..ITERS {
                let p = black_box(&packet[..]);
                out[..p.len()].copy_from_slice(p);
                black_box(&mut *out);
            }
        },
    );
    let renumber = median_ns_per_item(
        300,
        ITERS,
        &mut out,
        |_| {},
        |out| {
            for _ in 0..ITERS {
                let p = black_box(&packet[..]);
                let n = copy_translating_extensions(p, out, |id, data| match id {
                    4 => Some((3, mid.as_slice())),
                    _ => ids.iter().find(|(f, _)| *f == id).map(|&(_, t)| (t, data)),
                })
                .expect("valid packet");
                black_box((&mut *out, n));
            }
        },
    );
    println!("copy      {copy:7.1} ns per 1200-byte packet");
    println!(
        "renumber  {renumber:7.1} ns per 1200-byte packet (+{:.1} ns)",
        renumber - copy
    );
}
