//! A peer that never speaks (and one that stops after its first ClientHello): `accept` returns
//! `Timeout` at the configured time, not before and not much later. And a session whose DTLS
//! queue closes ends the handshake at once with `Closed`.

mod dtls_support;

use std::time::{Duration, Instant};

use dtls_support::{has_handshake, run, ClientOptions, Dir};
use tern::control::dtls::{accept, datagram_queue, DtlsError, DtlsIdentity, DtlsStats};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_millis(800);

#[tokio::test]
async fn silent_peer_times_out() {
    let identity = DtlsIdentity::generate().unwrap();
    let (_inbox, incoming) = datagram_queue(Default::default());
    let (outgoing, mut sent) = mpsc::channel(64);
    let started = Instant::now();
    let r = accept(&identity, incoming, outgoing, identity.fingerprint(), LIMIT).await;
    let took = started.elapsed();
    assert!(matches!(r, Err(DtlsError::Timeout)), "{r:?}");
    assert!(
        took >= LIMIT && took < LIMIT + Duration::from_millis(500),
        "{took:?}"
    );
    assert!(sent.try_recv().is_err(), "a server never speaks first");
}

#[tokio::test]
async fn peer_that_goes_quiet_mid_handshake_times_out() {
    // Only the first ClientHello gets through; nothing after it.
    let mut seen_hello = false;
    let filter = Box::new(move |dir: Dir, d: &[u8]| {
        if dir == Dir::ToServer && has_handshake(d, &[1]) && !seen_hello {
            seen_hello = true;
            return true;
        }
        dir == Dir::ToClient
    });
    let started = Instant::now();
    let r = run(ClientOptions::default(), filter, LIMIT).await;
    let took = started.elapsed();
    assert!(
        matches!(r.server, Err(DtlsError::Timeout)),
        "{:?}",
        r.server.err()
    );
    assert!(took >= LIMIT, "{took:?}");
}

#[tokio::test]
async fn closed_queue_ends_the_handshake() {
    let identity = DtlsIdentity::generate().unwrap();
    let (inbox, incoming) = datagram_queue(std::sync::Arc::new(DtlsStats::default()));
    let (outgoing, _sent) = mpsc::channel(64);
    drop(inbox);
    let started = Instant::now();
    let r = accept(
        &identity,
        incoming,
        outgoing,
        identity.fingerprint(),
        Duration::from_secs(10),
    )
    .await;
    assert!(matches!(r, Err(DtlsError::Closed)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}
