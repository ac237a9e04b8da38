#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tern::wire::sdp::parse_offer(&String::from_utf8_lossy(data));
});
