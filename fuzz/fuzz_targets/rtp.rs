#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tern::wire::rtp::RtpPacket::parse(data).map(|p| p.extensions().count());
});
