//! A session lives no longer than its token: revoking the subscriber's identity (as the admin
//! API does) stops its media within a second, while the publisher keeps sending.

mod webrtc_client;

use std::time::{Duration, SystemTime};

use webrtc_client::{check_payload, media_pair};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_the_subscriber_stops_its_media_within_a_second() {
    let mut pair = media_pair(None).await;
    let first = tokio::time::timeout(Duration::from_secs(10), pair.rx.recv())
        .await
        .expect("media flows")
        .expect("open");
    check_payload(&first);

    pair.running
        .relay
        .revocations
        .revoke_identity(Some("room1"), "bob", SystemTime::now());
    // Within a second the session is gone and media stops: drain what was in flight...
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while pair.rx.try_recv().is_ok() {}
    // ...then nothing more arrives while the publisher keeps sending.
    let more = tokio::time::timeout(Duration::from_millis(1000), pair.rx.recv()).await;
    assert!(
        matches!(more, Err(_) | Ok(None)),
        "media still reaches a revoked subscriber"
    );
    assert!(pair
        .running
        .relay
        .registry
        .lock()
        .unwrap()
        .sessions
        .values()
        .all(|s| s.identity != "bob"));
    pair.close().await;
}
