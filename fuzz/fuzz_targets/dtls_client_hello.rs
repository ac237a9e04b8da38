#![no_main]
use libfuzzer_sys::fuzz_target;
use tern::control::dtls::client_hello::{offered_profiles, ClientHelloReader};

fuzz_target!(|data: &[u8]| {
    let _ = (ClientHelloReader::new().push(data), offered_profiles(data));
});
