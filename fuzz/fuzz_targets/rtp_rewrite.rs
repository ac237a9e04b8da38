#![no_main]
//! The fan-out's per-subscriber copy (header extensions renumbered, some replaced by longer
//! values, some dropped), the transport-cc feedback builder, and the keyframe finders that
//! start a simulcast layer switch, on arbitrary bytes.
use libfuzzer_sys::fuzz_target;
use tern::wire::keyframe::VideoCodec;
use tern::wire::{rtp, twcc};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, packet)) = data.split_first() else {
        return;
    };
    let long = [0x42u8; 40];
    let mut out = vec![0u8; usize::from(mode) * 8];
    let _ = rtp::copy_translating_extensions(packet, &mut out, |id, d| match (id ^ mode) % 4 {
        0 => None,
        1 => Some((id, d)),
        2 => Some((id.wrapping_mul(7).max(1), d)),
        _ => Some((id, &long[..usize::from(mode % 41)])),
    });
    // Arrival times from the same bytes: a lost packet for 0, else a step in 250 µs units.
    let mut t = i64::from(mode) * 1_000_000;
    let arrivals: Vec<Option<i64>> = packet
        .iter()
        .map(|&b| {
            t += (i64::from(b) - 64) * 250 * i64::from(mode % 5);
            (b != 0).then_some(t)
        })
        .collect();
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1] {
        let _ = codec.starts_keyframe(packet);
    }
    let mut buf = vec![0u8; 1 + usize::from(mode) * 6];
    let _ = twcc::write_transport_feedback(&mut buf, 1, 2, u16::from(mode), mode, &arrivals);
});
