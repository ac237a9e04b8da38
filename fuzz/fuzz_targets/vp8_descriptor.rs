#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tern::wire::vp8::Vp8Descriptor::parse(data);
});
