//! Automatic layers for a subscriber without RTX: nothing to probe with, so the relay finds
//! room by a tentative upgrade. A webrtc-rs subscriber with transport-cc but no RTX, behind a
//! shaping proxy at 500 kbit/s, is moved to the low layer; with the limit lifted at once, the
//! relay tries the high layer after the quiet period (8 s after the move down) and keeps it:
//! on the high layer within 12 s of the move down, the change counted as `tentative`, and no
//! probe ever asked for.

mod auto_layer_support;
mod metrics_support;
mod webrtc_client;

use std::sync::atomic::Ordering;
use std::time::Duration;

use auto_layer_support::{layer_subscriber_with, simulcast_publisher, until_layer, Shaper};
use tokio::time::Instant;
use webrtc_client::{cam_tokens, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_rtx_a_tentative_upgrade_finds_the_room() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let publisher = simulcast_publisher(&base, &pub_token).await;
    let shaper = Shaper::start(500_000, 64_000).await;
    let via = |answer: &str| shaper.via(answer);
    let (subscriber, mut rx) =
        layer_subscriber_with(&base, &sub_token, (true, false), Some(&via)).await;
    let connected = Instant::now();
    let metrics = || async {
        let text = metrics_support::scrape(&base).await;
        let figure = |s: &str| metrics_support::sum(&text, s).unwrap_or(0.0) as u64;
        (
            figure("tern_layer_changes_total{reason=\"tentative\"}"),
            figure("tern_probes_requested_total"),
            text.clone(),
        )
    };

    let low_at = until_layer(&mut rx, b'l', connected + Duration::from_secs(5)).await;
    assert!(
        low_at.is_some(),
        "not on the low layer 5 s after connecting\n{}",
        metrics().await.2
    );
    // The link widens at once; the relay cannot know it before it tries.
    shaper.rate_bps.store(100_000_000, Ordering::Relaxed);
    let down = low_at.unwrap();
    let high_at = until_layer(&mut rx, b'h', down + Duration::from_secs(12)).await;
    let (tentative, probes, text) = metrics().await;
    assert!(
        high_at.is_some(),
        "not back on the high layer 12 s after the move down\n{text}"
    );
    println!(
        "high layer {:?} after the move down",
        high_at.unwrap() - down
    );
    assert!(
        high_at.unwrap() - down >= Duration::from_secs(7),
        "the upgrade waited for the quiet period"
    );
    assert_eq!(tentative, 1, "one tentative upgrade\n{text}");
    assert_eq!(probes, 0, "no probe without RTX\n{text}");
    // And it stays: the tentative layer fits.
    let back_down = until_layer(&mut rx, b'l', Instant::now() + Duration::from_secs(2)).await;
    assert!(
        back_down.is_none(),
        "the high layer held\n{}",
        metrics().await.2
    );

    publisher.sending.abort();
    let _ = publisher.pc.close().await;
    let _ = subscriber.close().await;
    running.stop().await;
}
