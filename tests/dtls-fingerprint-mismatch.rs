//! A client whose certificate is not the one the offer's `a=fingerprint` names: `accept` ends
//! with `FingerprintMismatch` and no keys, and the client is refused too (the check runs before
//! the server's Finished, so the client never believes it is connected).

mod dtls_support;

use std::time::{Duration, Instant};

use dtls_support::{no_loss, run, ClientOptions};
use tern::control::dtls::DtlsError;

#[tokio::test]
async fn wrong_certificate_gets_no_keys() {
    let started = Instant::now();
    let options = ClientOptions {
        wrong_fingerprint: true,
        ..ClientOptions::default()
    };
    let r = run(options, no_loss(), Duration::from_secs(10)).await;
    match r.server {
        Err(DtlsError::FingerprintMismatch) => {}
        Err(other) => panic!("expected FingerprintMismatch, got {other}"),
        Ok(outcome) => panic!("keys handed out for {:?}", outcome.profile),
    }
    assert!(r.client.is_err(), "the client must not complete either");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused promptly, not by timeout"
    );
}
