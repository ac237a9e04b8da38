//! An admin revocation on one node reaches every node: a revoked identity's sessions end on
//! each node within a second, and its old token is refused everywhere afterwards; others'
//! sessions keep flowing.

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::time::{Duration, Instant};

use cluster_support::{
    metric, offer_once, publish, token, until_nodes, view, ClusterSpec, Etcd, ADMIN_TOKEN,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_ends_the_identitys_sessions_on_every_node_within_a_second() {
    let spec = ClusterSpec::new(Etcd::shared());
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    let n3 = spec.node("n3", "127.0.0.3", "");
    until_nodes(&[&n1.base, &n2.base, &n3.base], 3.0).await;

    let publisher = publish(
        &n1.base,
        ("hall", "stage"),
        &token("hall", true, false, "host"),
    )
    .await
    .expect("WHIP");
    let mallory = token("hall", false, true, "mallory");
    let trent = token("hall", false, true, "trent");
    let mut kept = view(&n2.base, ("hall", "stage"), &trent).await;
    let mut doomed = Vec::new();
    for base in [&n1.base, &n2.base, &n3.base] {
        doomed.push(view(base, ("hall", "stage"), &mallory).await);
    }
    for v in &mut doomed {
        assert!(v.receive(10, Duration::from_secs(5)).await.len() >= 10);
    }
    // Sessions per node before: n1 publisher + mallory (+ links), n2 trent + mallory, n3 mallory.
    let before = [
        metric(&n1.base, "tern_worker_sessions").await.unwrap(),
        metric(&n2.base, "tern_worker_sessions").await.unwrap(),
        metric(&n3.base, "tern_worker_sessions").await.unwrap(),
    ];

    let revoked_at = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/admin/revoke", n1.base))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(r#"{"identity": "mallory"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    // Each node drops exactly one session (mallory's), within a second of the revocation.
    for (i, base) in [&n1.base, &n2.base, &n3.base].into_iter().enumerate() {
        loop {
            let now = metric(base, "tern_worker_sessions").await.unwrap();
            if now == before[i] - 1.0 {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "node {} still has {now} sessions (had {}) after {:?}",
                i + 1,
                before[i],
                revoked_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The old token is refused on every node; another identity's viewer keeps receiving.
    for base in [&n1.base, &n2.base, &n3.base] {
        let (status, body) = offer_once(base, "/whep/hall/stage", &mallory).await;
        assert_eq!(status, 401, "{base}: {body}");
        assert!(body.contains("revoked"), "{body}");
    }
    assert!(kept.receive(30, Duration::from_secs(5)).await.len() >= 30);
    kept.close().await;
    for v in doomed {
        v.close().await;
    }
    publisher.close().await;
}
