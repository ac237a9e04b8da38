//! `io = "xdp"` end to end: `tern serve` with AF_XDP on one end of a veth pair (native XDP, two
//! queues, two workers), a webrtc-rs publisher and five subscribers on the other end over
//! WHIP/WHEP. Every subscriber gets every payload byte for byte and in order, over IPv4 and
//! over IPv6, and the relay reports `tern_io_mode` xdp.

mod metrics_support;
mod serve_support;
mod webrtc_client;
mod xdp_support;

use std::time::Duration;

use tern::control::auth::TokenMinter;
use webrtc_client::{check_payload, publish_cam, subscribe_cam, Edits};
use xdp_support::{require_root, serve_xdp, VethPair};

const SECRET: &str = "xdp-fanout-secret";
const SUBSCRIBERS: usize = 5;
/// Consecutive payloads each subscriber must receive.
const RUN: u32 = 150;

fn fanout(v6: bool) {
    require_root();
    let pair = VethPair::new(2, v6);
    let served = serve_xdp(&pair, 2, SECRET, "");
    let base = served.base.clone();
    let minter = TokenMinter::hs256(SECRET.as_bytes().to_vec()).unwrap();
    let ttl = Duration::from_secs(600);
    let pub_token = minter.mint("room1", Some("cam"), true, false, "alice", ttl);
    let sub_token = minter.mint("room1", None, false, true, "bob", ttl);
    let metrics = pair.client.block_on(async move {
        let (publisher, sending) = publish_cam(&base, &pub_token, None, &Edits::default()).await;
        let mut subs = Vec::new();
        for _ in 0..SUBSCRIBERS {
            subs.push(subscribe_cam(&base, &sub_token, None).await);
        }
        let mut readers = Vec::new();
        for (n, (pc, mut rx)) in subs.into_iter().enumerate() {
            readers.push(tokio::spawn(async move {
                let mut got: Vec<u32> = Vec::new();
                while got.len() < RUN as usize {
                    let p = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                        .await
                        .unwrap_or_else(|_| panic!("subscriber {n}: media stopped after {got:?}"))
                        .expect("subscriber channel open");
                    got.push(check_payload(&p));
                }
                let _ = pc.close().await;
                got
            }));
        }
        for (n, r) in readers.into_iter().enumerate() {
            let got = r.await.unwrap();
            for w in got.windows(2) {
                assert_eq!(
                    w[1],
                    w[0] + 1,
                    "subscriber {n}: in order, none lost: {got:?}"
                );
            }
        }
        sending.abort();
        let _ = publisher.close().await;
        reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    for w in 0..2 {
        let line = format!("tern_io_mode{{worker=\"{w}\",mode=\"xdp\"}} 1");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let media_out = metrics_support::sum(&metrics, "tern_media_out_total")
        .expect("tern_media_out_total") as u64;
    assert!(
        media_out >= u64::from(RUN) * SUBSCRIBERS as u64,
        "{media_out} media packets out"
    );
    drop(served);
}

#[test]
fn five_subscribers_over_ipv4() {
    fanout(false);
}

#[test]
fn five_subscribers_over_ipv6() {
    fanout(true);
}
