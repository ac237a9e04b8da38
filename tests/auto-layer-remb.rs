//! Automatic layers for a subscriber without transport-cc: its REMB is the estimate. A
//! webrtc-rs subscriber that negotiates no transport-cc receives the simulcast publisher's
//! high layer (1.2 Mbit/s) until it sends REMBs of 300 kbit/s; then it is on the low layer
//! within 2 s.

mod auto_layer_support;
mod webrtc_client;

use std::time::Duration;

use auto_layer_support::{layer_subscriber, simulcast_publisher};
use tokio::time::Instant;
use webrtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use webrtc_client::{cam_tokens, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_remb_moves_the_subscriber_down() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let publisher = simulcast_publisher(&base, &pub_token).await;
    let (subscriber, mut rx) = layer_subscriber(&base, &sub_token, false, None).await;

    // On the high layer (its ceiling, the default), and still there after 3 s without REMB.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = None;
    while let Ok(Some((_, tag))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        last = Some(tag);
    }
    assert_eq!(last, Some(b'h'), "on the high layer before any REMB");

    // REMBs of 300 kbit/s, five a second, as a receive-side estimator sends them.
    let pc = std::sync::Arc::clone(&subscriber);
    let remb = tokio::spawn(async move {
        loop {
            let packet = ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 1,
                bitrate: 300_000.0,
                ssrcs: vec![],
            };
            let _ = pc.write_rtcp(&[Box::new(packet)]).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let sent = Instant::now();
    let mut low_at = None;
    while let Ok(Some((at, tag))) =
        tokio::time::timeout_at(sent + Duration::from_secs(2), rx.recv()).await
    {
        if tag == b'l' {
            low_at = Some(at);
            break;
        }
    }
    let c = running.relay.dp.total_counters();
    assert!(
        low_at.is_some(),
        "not on the low layer 2 s after the first REMB (REMBs read: {}, feedbacks: {})",
        c.remb_in,
        c.feedback_in
    );
    assert_eq!(c.feedback_in, 0, "no transport-cc: REMB alone decided");

    remb.abort();
    publisher.sending.abort();
    let _ = publisher.pc.close().await;
    let _ = subscriber.close().await;
    running.stop().await;
}
