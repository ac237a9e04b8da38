//! A broadcast across three nodes: WHIP on node 1 (the origin), WHEP viewers on nodes 2 and 3
//! (edges). Every viewer receives the publisher's payloads byte for byte and in order, and each
//! edge pulls exactly one copy of the stream from the origin, however many viewers it has.

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::time::Duration;

use cluster_support::{metric, publish, token, until, until_nodes, view, ClusterSpec, Etcd};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edges_pull_one_copy_and_every_viewer_gets_every_payload() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    let n3 = spec.node("n3", "127.0.0.3", "");
    until_nodes(&[&n1.base, &n2.base, &n3.base], 3.0).await;

    let publisher = publish(
        &n1.base,
        ("show", "main"),
        &token("show", true, false, "host"),
    )
    .await
    .expect("WHIP on the origin");
    assert!(
        publisher.location.starts_with("/nodes/n1/session/"),
        "Location names the node: {}",
        publisher.location
    );
    let viewer_token = token("show", false, true, "audience");
    let mut viewers = Vec::new();
    for base in [&n2.base, &n2.base, &n3.base, &n3.base] {
        viewers.push(view(base, ("show", "main"), &viewer_token).await);
    }
    for (i, v) in viewers.iter_mut().enumerate() {
        let got = v.receive(150, Duration::from_secs(10)).await;
        assert!(got.len() >= 150, "viewer {i} got {} payloads", got.len());
        // In order and without a gap (losses are NACKed across both hops).
        for pair in got.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "viewer {i}: {got:?}");
        }
    }
    // One inbound copy per edge; the origin sends two, one to each edge.
    for edge in [&n2.base, &n3.base] {
        assert_eq!(metric(edge, "tern_cluster_pulled_streams").await, Some(1.0));
        assert_eq!(metric(edge, "tern_cluster_links").await, Some(1.0));
    }
    assert_eq!(
        metric(&n1.base, "tern_cluster_edge_copies").await,
        Some(2.0)
    );
    assert_eq!(metric(&n1.base, "tern_cluster_links").await, Some(2.0));
    // The viewers' sessions are on the edges: the origin holds the publisher and two links.
    let sessions = |base: String| async move { metric(&base, "tern_worker_sessions").await };
    assert_eq!(sessions(n1.base.clone()).await, Some(3.0));

    // The publisher leaves: the stream is gone everywhere, and the edges let go of it.
    publisher.close().await;
    for edge in [&n2.base, &n3.base] {
        assert!(
            until(Duration::from_secs(5), || async move {
                metric(edge, "tern_cluster_pulled_streams").await == Some(0.0)
            })
            .await,
            "{edge} still pulls"
        );
    }
    for v in viewers {
        v.close().await;
    }
}
