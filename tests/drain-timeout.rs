//! A drain ends at `lifecycle.drain_timeout` even if sessions are still live: the process exits
//! 0 then, not before and not much later.

mod serve_support;
mod webrtc_client;

use std::time::{Duration, Instant};

use serve_support::{config_dir, Served};
use tern::control::auth::TokenMinter;
use webrtc_client::media_flow;

const SECRET: &str = "drain-timeout-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_with_live_sessions_exits_zero_at_the_timeout() {
    let dir = config_dir(
        "drain-timeout",
        SECRET,
        "[lifecycle]\ndrain_timeout = \"2s\"\n",
    );
    let served = tokio::task::spawn_blocking(move || Served::start(dir, &[]))
        .await
        .unwrap();
    let minter = TokenMinter::hs256(SECRET.as_bytes().to_vec()).unwrap();
    let ttl = Duration::from_secs(600);
    let pub_token = minter.mint("room1", Some("cam"), true, false, "alice", ttl);
    let sub_token = minter.mint("room1", None, false, true, "bob", ttl);
    let mut flow = media_flow(&served.base, &pub_token, &sub_token, None).await;
    tokio::time::timeout(Duration::from_secs(10), flow.rx.recv())
        .await
        .expect("media flows")
        .unwrap();

    let sent = Instant::now();
    served.kill("TERM");
    let mut served = served;
    let status = tokio::task::spawn_blocking(move || served.wait_exit(Duration::from_secs(8)))
        .await
        .unwrap()
        .expect("exits after the drain timeout");
    let took = sent.elapsed();
    assert!(status.success(), "exit 0: {status:?}");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "exits at the 2 s drain timeout, took {took:?}"
    );
    flow.close().await;
}
