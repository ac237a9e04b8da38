//! `io = "xdp"` with two queues and two workers: a frame lands on the queue the NIC (here the
//! veth's sender) picks, not necessarily that of the worker owning its session. The test steers
//! every client frame onto queue 0, then onto queue 1; sessions owned by either worker keep
//! working, the worker on the other queue hands their datagrams over, and the hand-over
//! counters show which queue carried them.

mod metrics_support;
mod serve_support;
mod webrtc_client;
mod xdp_support;

use std::time::Duration;

use tern::control::auth::TokenMinter;
use tokio::sync::mpsc;
use webrtc_client::{check_payload, publish_cam, subscribe_cam, Edits};
use xdp_support::{require_root, serve_xdp, VethPair};

const SECRET: &str = "xdp-cross-queue-secret";

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Takes `n` payloads from each subscriber; each run must be consecutive.
async fn receive(subs: &mut [mpsc::Receiver<Vec<u8>>], n: usize) {
    for (i, rx) in subs.iter_mut().enumerate() {
        let mut last = None;
        for _ in 0..n {
            let p = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("subscriber {i}: media stopped"))
                .unwrap();
            let seq = check_payload(&p);
            if let Some(prev) = last {
                assert_eq!(seq, prev + 1, "subscriber {i}: in order, none lost");
            }
            last = Some(seq);
        }
    }
}

#[test]
fn sessions_of_either_worker_work_on_either_queue() {
    require_root();
    let pair = VethPair::new(2, false);
    pair.force_queue(0, 2);
    let served = serve_xdp(&pair, 2, SECRET, "");
    let base = served.base.clone();
    let minter = TokenMinter::hs256(SECRET.as_bytes().to_vec()).unwrap();
    let ttl = Duration::from_secs(600);
    let pub_token = minter.mint("room1", Some("cam"), true, false, "alice", ttl);
    let sub_token = minter.mint("room1", None, false, true, "bob", ttl);
    let pair = &pair;
    pair.client.block_on(async move {
        let (publisher, sending) = publish_cam(&base, &pub_token, None, &Edits::default()).await;
        let mut peers = Vec::new();
        let mut subs = Vec::new();
        for _ in 0..3 {
            let (pc, rx) = subscribe_cam(&base, &sub_token, None).await;
            peers.push(pc);
            subs.push(rx);
        }
        let m = metrics(&base).await;
        // The relay places sessions on the least loaded worker: both own some.
        for w in 0..2 {
            assert!(
                metrics_support::require(&m, &format!("tern_worker_sessions{{worker=\"{w}\"}}"))
                    >= 1,
                "worker {w} owns a session:\n{m}"
            );
        }
        receive(&mut subs, 100).await;
        let m = metrics(&base).await;
        let (a0, a1) = (
            metrics_support::require(&m, "tern_xdp_handed_over_total{worker=\"0\"}"),
            metrics_support::require(&m, "tern_xdp_handed_over_total{worker=\"1\"}"),
        );
        assert!(a0 > 0, "queue 0 carried worker 1's sessions: {a0}");
        assert_eq!(a1, 0, "nothing arrived on queue 1");

        pair.force_queue(1, 2);
        // Drain what queued up under the old steering, then check a fresh run.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for rx in subs.iter_mut() {
            while rx.try_recv().is_ok() {}
        }
        receive(&mut subs, 100).await;
        let m = metrics(&base).await;
        let b1 = metrics_support::require(&m, "tern_xdp_handed_over_total{worker=\"1\"}");
        assert!(b1 > 0, "queue 1 carried worker 0's sessions: {b1}");
        assert_eq!(
            metrics_support::require(&m, "tern_xdp_handover_dropped_total"),
            0
        );
        sending.abort();
        for pc in peers {
            let _ = pc.close().await;
        }
        let _ = publisher.close().await;
    });
    drop(served);
}
