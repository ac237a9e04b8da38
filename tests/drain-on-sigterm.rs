//! SIGTERM drains: `/readyz` turns 503, a new WHIP/WHEP gets 503 with Retry-After, a live
//! session's media keeps flowing, and once its peers leave the process exits 0 well before the
//! drain timeout.

mod serve_support;
mod webrtc_client;

use std::time::{Duration, Instant};

use serve_support::{config_dir, Served};
use tern::control::auth::TokenMinter;
use webrtc_client::{check_payload, media_flow};

const SECRET: &str = "drain-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_refuses_new_sessions_and_keeps_old_ones_until_they_end() {
    let dir = config_dir("drain", SECRET, "[lifecycle]\ndrain_timeout = \"30s\"\n");
    let mut served = tokio::task::spawn_blocking(move || Served::start(dir, &[]))
        .await
        .unwrap();
    let minter = TokenMinter::hs256(SECRET.as_bytes().to_vec()).unwrap();
    let ttl = Duration::from_secs(600);
    let pub_token = minter.mint("room1", Some("cam"), true, false, "alice", ttl);
    let sub_token = minter.mint("room1", None, false, true, "bob", ttl);
    let mut flow = media_flow(&served.base, &pub_token, &sub_token, None).await;
    let first = tokio::time::timeout(Duration::from_secs(10), flow.rx.recv())
        .await
        .expect("media flows before SIGTERM")
        .unwrap();
    check_payload(&first);

    served.kill("TERM");
    let base = served.base.clone();
    let mut served = tokio::task::spawn_blocking(move || {
        assert!(
            served
                .wait_line("draining", Duration::from_secs(5))
                .is_some(),
            "logs the drain: {:?}",
            served.log
        );
        served
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz is false while draining");
    let refused = http
        .post(format!("{base}/whep/room1/cam"))
        .bearer_auth(&sub_token)
        .header("Content-Type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503, "new sessions are refused");
    assert!(
        refused.headers().contains_key("retry-after"),
        "503 says when to retry"
    );

    // The old session's media continues: 100 packets/s, so well over 50 in the next second.
    while flow.rx.try_recv().is_ok() {}
    let mut during = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(Some(p)) = tokio::time::timeout_at(until, flow.rx.recv()).await {
        check_payload(&p);
        during += 1;
    }
    assert!(
        during >= 50,
        "media keeps flowing while draining: {during} packets in 1 s"
    );
    assert!(served.wait_exit(Duration::ZERO).is_none(), "still serving");

    // The peers leave (DTLS close_notify): the drain ends with the last session.
    let left = Instant::now();
    flow.close().await;
    let status = tokio::task::spawn_blocking(move || served.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap()
        .expect("exits once the sessions end, before the 30 s drain timeout");
    assert!(status.success(), "exit 0: {status:?}");
    assert!(left.elapsed() < Duration::from_secs(15));
}
