//! One origin per stream, cluster-wide: two publishers (different identities) race for one
//! stream on two nodes at once; etcd's transaction lets exactly one in (201) and the other gets
//! 409 naming the node that has it. The same identity publishing again from another node takes
//! the stream over instead (a publisher that moved).

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::time::Duration;

use cluster_support::{metric, publish, token, until, until_nodes, view, ClusterSpec, Etcd};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_publishers_racing_for_one_stream_get_one_201_and_one_409() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    until_nodes(&[&n1.base, &n2.base], 2.0).await;

    for round in 0..3 {
        let stream = format!("race{round}");
        let (alice, bob) = (
            token("arena", true, false, "alice"),
            token("arena", true, false, "bob"),
        );
        let (a, b) = tokio::join!(
            publish(&n1.base, ("arena", &stream), &alice),
            publish(&n2.base, ("arena", &stream), &bob),
        );
        let (winner, (status, reason)) = match (a, b) {
            (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
            (Ok(_), Ok(_)) => panic!("round {round}: both publishers got 201"),
            (Err(a), Err(b)) => panic!("round {round}: both refused: {a:?} {b:?}"),
        };
        assert_eq!(status, 409, "round {round}: {reason}");
        assert!(reason.contains("already published"), "{reason}");
        winner.close().await;
    }

    // The same identity from another node takes its stream over at once.
    let first = publish(
        &n1.base,
        ("arena", "moving"),
        &token("arena", true, false, "carol"),
    )
    .await
    .expect("first publish");
    let viewer_token = token("arena", false, true, "fan");
    let mut viewer = view(&n1.base, ("arena", "moving"), &viewer_token).await;
    assert!(viewer.receive(20, Duration::from_secs(5)).await.len() >= 20);
    let second = publish(
        &n2.base,
        ("arena", "moving"),
        &token("arena", true, false, "carol"),
    )
    .await
    .expect("the same identity takes the stream over");
    assert!(
        second.location.starts_with("/nodes/n2/"),
        "{}",
        second.location
    );
    // The old origin ends its publisher session; a new viewer anywhere gets the new origin's.
    assert!(
        until(Duration::from_secs(3), || async {
            metric(&n1.base, "tern_worker_sessions").await == Some(0.0)
        })
        .await,
        "n1 still holds sessions after the takeover"
    );
    viewer.close().await;
    let mut viewer = view(&n1.base, ("arena", "moving"), &viewer_token).await;
    assert!(viewer.receive(20, Duration::from_secs(5)).await.len() >= 20);
    assert_eq!(
        metric(&n1.base, "tern_cluster_pulled_streams").await,
        Some(1.0)
    );
    viewer.close().await;
    first.close().await;
    second.close().await;
}
