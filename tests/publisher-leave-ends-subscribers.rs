//! When a publisher leaves, its stream's subscribers end with it: their subscriptions name
//! tracks that no longer exist, and they must not hold the stream's subscriber slots (or
//! linger until consent expires).

mod webrtc_client;

use std::time::Duration;

use webrtc_client::{check_payload, media_pair};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscriber_session_ends_with_the_publisher() {
    let mut pair = media_pair(None).await;
    let first = tokio::time::timeout(Duration::from_secs(10), pair.rx.recv())
        .await
        .expect("media flows")
        .expect("open");
    check_payload(&first);
    let sessions = || pair.running.relay.registry.lock().unwrap().sessions.len();
    assert_eq!(sessions(), 2);

    pair.sending.abort();
    let _ = pair.publisher.close().await; // DTLS close_notify
    let mut left = sessions();
    for _ in 0..40 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = sessions();
    }
    assert_eq!(
        left, 0,
        "the subscriber's session ended with the publisher's"
    );
    assert!(pair
        .running
        .relay
        .registry
        .lock()
        .unwrap()
        .rooms
        .get("room1")
        .is_none_or(|r| r.streams.is_empty()));
    pair.close().await;
}
