//! Losing a node (`kill -9`): a viewer whose node died asks another node and has media again
//! within 5 s; when the origin dies, the publisher republishing with the same identity on
//! another node takes its stream over at once (no wait for the dead node's lease), and viewers
//! have media from the new origin within 3 s of the kill.

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::time::{Duration, Instant};

use cluster_support::{
    metric, publish, token, until, until_nodes, view, view_until_media, ClusterSpec, Etcd,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_of_a_dead_node_reconnects_elsewhere_within_5_s() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    let n3 = spec.node("n3", "127.0.0.3", "");
    until_nodes(&[&n1.base, &n2.base, &n3.base], 3.0).await;
    let publisher = publish(
        &n1.base,
        ("live", "feed"),
        &token("live", true, false, "studio"),
    )
    .await
    .expect("WHIP");
    let viewer_token = token("live", false, true, "viewer");
    let mut viewer = view(&n2.base, ("live", "feed"), &viewer_token).await;
    assert!(viewer.receive(20, Duration::from_secs(5)).await.len() >= 20);

    n2.served.kill("KILL");
    let killed = Instant::now();
    // The client notices its media stopped, and posts its offer to another node.
    while !viewer
        .receive(1, Duration::from_millis(300))
        .await
        .is_empty()
    {}
    viewer.close().await;
    let again = view_until_media(
        &n3.base,
        ("live", "feed"),
        &viewer_token,
        Duration::from_secs(5),
    )
    .await;
    let back = killed.elapsed();
    assert!(back < Duration::from_secs(5), "media back after {back:?}");
    // The origin lets go of the dead edge's link once its lease is gone.
    assert!(
        until(Duration::from_secs(6), || async {
            metric(&n1.base, "tern_cluster_links").await == Some(1.0)
        })
        .await,
        "n1 still serves the dead node"
    );
    again.close().await;
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_publisher_takes_its_stream_over_on_another_node_within_3_s() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    let n3 = spec.node("n3", "127.0.0.3", "");
    until_nodes(&[&n1.base, &n2.base, &n3.base], 3.0).await;
    let publisher_token = token("live", true, false, "studio");
    let publisher = publish(&n1.base, ("live", "feed"), &publisher_token)
        .await
        .expect("WHIP");
    let viewer_token = token("live", false, true, "viewer");
    let mut viewer = view(&n3.base, ("live", "feed"), &viewer_token).await;
    assert!(viewer.receive(20, Duration::from_secs(5)).await.len() >= 20);

    n1.served.kill("KILL");
    let killed = Instant::now();
    publisher.close().await;
    // The publisher republishes on n2 at once: the same identity takes the stream over although
    // n1's record lives until its lease runs out.
    let publisher = publish(&n2.base, ("live", "feed"), &publisher_token)
        .await
        .expect("the same identity takes its stream over");
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "republished after {:?}",
        killed.elapsed()
    );
    // The viewer's node moved its pull to the new origin; the viewer, told its stream was
    // published again, subscribes again.
    viewer.close().await;
    let again = view_until_media(
        &n3.base,
        ("live", "feed"),
        &viewer_token,
        Duration::from_secs(3),
    )
    .await;
    let back = killed.elapsed();
    assert!(back < Duration::from_secs(3), "media back after {back:?}");
    assert_eq!(
        metric(&n3.base, "tern_cluster_pulled_streams").await,
        Some(1.0)
    );
    again.close().await;
    publisher.close().await;
}
