#![no_main]
//! SRTP and SRTCP unprotect under every profile: the first byte picks the profile.

use libfuzzer_sys::fuzz_target;
use tern::srtp::{Profile, SrtpContext};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, packet)) = data.split_first() else { return };
    let p = Profile::ALL[usize::from(pick) % Profile::ALL.len()];
    let mut ctx = SrtpContext::new(p, &[7; 32][..p.key_len()], &[9; 14][..p.salt_len()]).unwrap();
    let _ = ctx.unprotect_rtp(&mut packet.to_vec());
    let _ = ctx.unprotect_rtcp(&mut packet.to_vec());
});
