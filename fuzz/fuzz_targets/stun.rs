#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tern::wire::stun::StunMessage::parse(data).map(|m| {
        (
            m.attributes().count(),
            m.verify_integrity(b"pw"),
            m.verify_fingerprint(),
        )
    });
});
