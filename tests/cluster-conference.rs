//! A conference across nodes in real browsers: two tabs of Debian's Chromium join one room, the
//! page of each served by node 1 but told (`&nodes=`) to use a different node, n1 and n2. Each
//! publishes to its node, hears of the other's stream through its own node's room feed (a
//! stream of the other node, carried by etcd), subscribes there, and the node pulls it over
//! the cascade: both tabs decode more than 30 frames of the other's video.

mod browser_support;
mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use browser_support::run_script;
use cluster_support::{metric, token, until_nodes, ClusterSpec, Etcd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_tabs_on_two_nodes_decode_each_other() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    until_nodes(&[&n1.base, &n2.base], 2.0).await;
    let url = |name: &str, node: &str| {
        format!(
            "{}/?room=conf&name={name}&token={}&autojoin=1&nodes={node}",
            n1.base,
            token("conf", true, true, name)
        )
    };
    let out = run_script(
        "two-tabs.mjs",
        vec![url("alice", &n1.base), url("bob", &n2.base)],
    )
    .await;
    println!("{} ({:?})", out.stdout.trim(), out.elapsed);
    // Each node holds its tab's publisher and subscriber, and pulls the other node's stream.
    for base in [&n1.base, &n2.base] {
        assert_eq!(
            metric(base, "tern_cluster_pulled_streams").await,
            Some(1.0),
            "{base}"
        );
        assert!(
            metric(base, "tern_media_out_total").await.unwrap() >= 30.0,
            "{base}"
        );
    }
}
