//! Simulcast through a cascade: an edge pulls every layer of a simulcast publisher's stream,
//! so its viewer picks a layer and switches it (asked through a third node: the session URL
//! names the edge), packets lost on a lossy origin→edge link are NACKed upstream and recovered
//! gap-free, and 100 viewers joining on two edges cost the publisher at most two keyframe
//! requests per second.

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cluster_support::{
    lossy_relay, metric, parse_layer_payload, publish_simulcast, token, until_nodes, view,
    ClusterSpec, Etcd,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edges_carry_every_layer_recover_losses_and_spare_the_publisher_keyframes() {
    let spec = ClusterSpec::new(Etcd::shared());
    // The origin tells other nodes to reach its media at 127.0.0.9, where a relay dropping
    // every 20th RTP packet towards the edges stands in for a lossy link. (Its id sorts after
    // the edges', so the edges open the links, to that address.)
    let n1 = spec.node("origin", "127.0.0.1", "advertise_media = \"127.0.0.9\"");
    let origin_media = n1
        .served
        .log
        .iter()
        .find_map(|l| l.split(" media=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        .expect("the serving line names the media address");
    let front = std::net::SocketAddr::new([127, 0, 0, 9].into(), origin_media.port());
    let dropped = lossy_relay(front, origin_media, 20).await;
    let n2 = spec.node("edge-a", "127.0.0.2", "");
    let n3 = spec.node("edge-b", "127.0.0.3", "");
    until_nodes(&[&n1.base, &n2.base, &n3.base], 3.0).await;

    let publisher = publish_simulcast(
        &n1.base,
        ("gala", "cam"),
        &token("gala", true, false, "cam"),
    )
    .await;
    let viewer_token = token("gala", false, true, "guest");

    // Layer h (the default) on edge n2: every packet, in order, despite the lossy link.
    let mut viewer = view(&n2.base, ("gala", "cam"), &viewer_token).await;
    let got: Vec<(u8, u32)> = viewer
        .receive_raw(200, Duration::from_secs(10))
        .await
        .iter()
        .map(|p| parse_layer_payload(p))
        .collect();
    assert!(got.len() >= 200, "only {} packets", got.len());
    assert!(got.iter().all(|(l, _)| *l == b'h'), "{got:?}");
    // Recovered packets come an RTT late, out of order; none is missing (the last few may
    // still be on their way).
    let mut seen: Vec<u32> = got.iter().map(|(_, i)| *i).collect();
    seen.sort_unstable();
    seen.dedup();
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    let missing: Vec<u32> = (first..last.saturating_sub(10))
        .filter(|i| seen.binary_search(i).is_err())
        .collect();
    assert!(missing.is_empty(), "never arrived: {missing:?}");
    assert!(
        dropped.load(Ordering::Relaxed) >= 5,
        "the link lost nothing"
    );
    let recovered = metric(&n2.base, "tern_upstream_recovered_total")
        .await
        .unwrap();
    assert!(recovered >= 5.0, "edge recovered {recovered} packets");

    // Switch to l, asked of n3: the Location names n2, so n3 passes it on.
    let resp = reqwest::Client::new()
        .post(format!("{}{}/layer", n3.base, viewer.location))
        .header("Authorization", format!("Bearer {viewer_token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"layer": "l"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let p = viewer.receive_raw(1, Duration::from_secs(1)).await;
        if p.first().is_some_and(|p| parse_layer_payload(p).0 == b'l') {
            break;
        }
        assert!(Instant::now() < deadline, "still not on layer l");
    }
    viewer.close().await;

    // 100 viewers join on the edges: the publisher hears at most two keyframe requests a second.
    let joined_from = Instant::now();
    let mut viewers = Vec::new();
    for batch in 0..10 {
        let mut joins = Vec::new();
        for i in 0..10 {
            let base = if (batch * 10 + i) % 2 == 0 {
                &n2.base
            } else {
                &n3.base
            };
            joins.push(view(base, ("gala", "cam"), &viewer_token));
        }
        viewers.extend(futures_util::future::join_all(joins).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let plis: Vec<Instant> = publisher
        .plis
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= joined_from)
        .collect();
    let busiest = plis
        .iter()
        .map(|t| {
            plis.iter()
                .filter(|u| **u >= *t && **u < *t + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= 2,
        "{busiest} keyframe requests within one second ({} over {:?})",
        plis.len(),
        joined_from.elapsed()
    );
    assert!(!plis.is_empty(), "new viewers asked for no keyframe at all");
    for v in viewers {
        v.close().await;
    }
    publisher.close().await;
}
