#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern::wire::rtcp::RtcpIter::new(data)
        .flatten()
        .for_each(|p| {
            let _ = p.typed();
        });
});
