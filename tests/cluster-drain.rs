//! Draining a clustered node (SIGTERM): it is marked draining in etcd, its room-event clients
//! get a `reconnect` event, a new offer sent to it is placed on another node (the client still
//! gets 201, with a Location naming that node), and it exits once its sessions are over or the
//! drain timeout passed, leaving the cluster at once.

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::time::Duration;

use cluster_support::{
    metric, publish, signal_located, token, until, until_nodes, view, ClusterSpec, Etcd,
};
use webrtc_client::subscriber_peer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_node_sends_reconnect_and_places_new_sessions_elsewhere() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let mut n2 = spec.node("n2", "127.0.0.2", "\n[lifecycle]\ndrain_timeout = \"3s\"\n");
    until_nodes(&[&n1.base, &n2.base], 2.0).await;

    let publisher = publish(
        &n1.base,
        ("town", "news"),
        &token("town", true, false, "anchor"),
    )
    .await
    .expect("WHIP");
    let viewer_token = token("town", false, true, "viewer");
    let mut viewer = view(&n2.base, ("town", "news"), &viewer_token).await;
    assert!(viewer.receive(10, Duration::from_secs(5)).await.len() >= 10);

    // A room-event listener on the node that will drain.
    let mut events = reqwest::get(format!(
        "{}/rooms/town/events?token={viewer_token}",
        n2.base
    ))
    .await
    .unwrap();
    assert_eq!(events.status(), 200);

    n2.served.kill("TERM");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("\"event\":\"reconnect\"") {
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no reconnect event (saw {seen:?}): {other:?}"),
        }
    }
    assert!(
        until(Duration::from_secs(3), || async {
            metric(&n1.base, "tern_cluster_draining_nodes").await == Some(1.0)
        })
        .await,
        "n1 never saw n2 draining"
    );
    // A new viewer who asks the draining node is placed on n1.
    let (pc, mut rx) = subscriber_peer(None).await;
    let (status, body, location) =
        signal_located(&pc, &format!("{}/whep/town/news", n2.base), &viewer_token).await;
    assert_eq!(status, 201, "{body}");
    assert!(location.starts_with("/nodes/n1/session/"), "{location}");
    webrtc_client::wait_connected(&pc, "placed viewer").await;
    assert!(tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .is_ok_and(|p| p.is_some()));
    // The old viewer stays until the drain timeout; then n2 exits and leaves the cluster.
    let status = n2
        .served
        .wait_exit(Duration::from_secs(10))
        .expect("n2 exits");
    assert!(status.success(), "{status:?}");
    assert!(
        until(Duration::from_secs(2), || async {
            metric(&n1.base, "tern_cluster_nodes").await == Some(1.0)
        })
        .await,
        "n2's record outlived it"
    );
    let _ = pc.close().await;
    viewer.close().await;
    publisher.close().await;
}
