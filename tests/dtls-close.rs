//! After the handshake the association stays alive: application data the peer sends (Tern
//! carries no data channel) is drained and counted rather than stalling the crate's reader; the
//! peer's close_notify resolves `closed()`; and our `close()` reaches the peer.

mod dtls_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use dtls_support::{no_loss, run, ClientOptions};

const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn peer_data_is_drained_and_peer_close_is_seen() {
    let r = run(ClientOptions::default(), no_loss(), LIMIT).await;
    let client = r.client.unwrap();
    let outcome = r.server.unwrap();
    for _ in 0..5 {
        client.write(b"not for the relay", None).await.unwrap();
    }
    client.close().await.unwrap();
    tokio::time::timeout(LIMIT, outcome.association.closed())
        .await
        .expect("the peer's close_notify is seen");
    assert_eq!(r.stats.application_data_dropped.load(Ordering::Relaxed), 5);
}

#[tokio::test]
async fn our_close_reaches_the_peer() {
    let r = run(ClientOptions::default(), no_loss(), LIMIT).await;
    let client = r.client.unwrap();
    let outcome = r.server.unwrap();
    outcome.association.close().await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(LIMIT, client.read(&mut buf, None))
        .await
        .expect("the client's read ends");
    assert!(read.is_err(), "close_notify ends the client's reads");
}
