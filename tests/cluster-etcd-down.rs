//! etcd down (its quorum lost): sessions already flowing keep flowing, new sessions get 503
//! with Retry-After and the reason, and the nodes take new sessions again once etcd is back.

mod cluster_support;
mod metrics_support;
mod serve_support;
mod webrtc_client;

use std::time::Duration;

use cluster_support::{metric, publish, token, until, until_nodes, view, ClusterSpec, Etcd};

async fn post_offer(url: &str, token: &str) -> (u16, Option<String>, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/sdp")
        .body(webrtc_client::chromium_offer())
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), retry, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flowing_sessions_survive_etcd_loss_and_new_ones_wait_for_its_return() {
    // Its own etcd: this test kills it.
    let mut etcd = Etcd::start();
    let spec = ClusterSpec::new(&etcd);
    let n1 = spec.node("n1", "127.0.0.1", "");
    let n2 = spec.node("n2", "127.0.0.2", "");
    until_nodes(&[&n1.base, &n2.base], 2.0).await;
    let publisher = publish(&n1.base, ("ops", "cam"), &token("ops", true, false, "cam"))
        .await
        .expect("WHIP");
    let viewer_token = token("ops", false, true, "watcher");
    let mut viewer = view(&n2.base, ("ops", "cam"), &viewer_token).await;
    assert!(viewer.receive(20, Duration::from_secs(5)).await.len() >= 20);

    etcd.kill();
    for base in [&n1.base, &n2.base] {
        assert!(
            until(Duration::from_secs(5), || async move {
                metric(base, "tern_cluster_healthy").await == Some(0.0)
            })
            .await,
            "{base} never noticed etcd was gone"
        );
    }
    // Media keeps flowing, across the cascade too, with no gap.
    let got = viewer.receive(300, Duration::from_secs(6)).await;
    assert!(
        got.len() >= 300,
        "only {} payloads while etcd was down",
        got.len()
    );
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
    // New sessions: 503, Retry-After, and why.
    for url in [
        format!("{}/whep/ops/cam", n2.base),
        format!("{}/whip/ops/other", n1.base),
    ] {
        let tok = token("ops", true, true, "late");
        let (status, retry, body) = post_offer(&url, &tok).await;
        assert_eq!(status, 503, "{url}: {body}");
        assert!(retry.is_some(), "{url}: no Retry-After");
        assert!(body.contains("etcd"), "{url}: {body}");
    }
    // Load balancers hear it too, with the reason.
    let ready = reqwest::get(format!("{}/readyz", n1.base)).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let why = ready.text().await.unwrap();
    assert!(why.starts_with("cluster:") && why.contains("etcd"), "{why}");

    etcd.restart();
    until_nodes(&[&n1.base, &n2.base], 2.0).await;
    let ready = reqwest::get(format!("{}/readyz", n1.base)).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200, "readyz after etcd returned");
    let mut late = view(&n2.base, ("ops", "cam"), &token("ops", false, true, "late")).await;
    assert!(late.receive(20, Duration::from_secs(5)).await.len() >= 20);
    let second = publish(
        &n1.base,
        ("ops", "other"),
        &token("ops", true, false, "cam2"),
    )
    .await
    .expect("WHIP after etcd returned");
    second.close().await;
    late.close().await;
    viewer.close().await;
    publisher.close().await;
}
