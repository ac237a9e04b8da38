//! Below the lowest layer, where configured (`media.below_lowest_layer = "pause"`): a simulcast
//! publisher (layers of 1.2 Mbit/s and 150 kbit/s, 50 kbit/s audio) and a webrtc-rs subscriber
//! with transport-cc behind a shaping proxy at 120 kbit/s, where not even the low layer fits
//! beside the audio. The subscriber's video stops (after the low layer, within 10 s), its audio
//! goes on through the pause, and the dropped packets are counted; with the link widened, the
//! relay resumes the video after the quiet period (8 s after the pause) at a keyframe, as a
//! tentative change, and it stays. The same for a stream without simulcast (one VP8 stream of
//! 150 kbit/s): it is its own lowest layer.

mod auto_layer_support;
mod metrics_support;
mod webrtc_client;

use std::sync::atomic::Ordering;
use std::time::Duration;

use auto_layer_support::{layer_subscriber, publisher, until_layer, Layered, Shaper};
use tern::config::BelowLowestLayer;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use webrtc_client::{cam_tokens, start_relay};

/// Reads video packets until one is followed by `gap` without any, or `deadline` passes; the
/// arrival of that last packet (when the gap began).
async fn gap_starts(
    rx: &mut UnboundedReceiver<Layered>,
    gap: Duration,
    deadline: Instant,
) -> Option<Instant> {
    let mut last = Instant::now();
    while last < deadline {
        match tokio::time::timeout(gap, rx.recv()).await {
            Ok(Some((at, _))) => last = at,
            Ok(None) => return None,
            Err(_) => return Some(last),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_too_narrow_for_the_lowest_layer_pauses_the_video_and_keeps_the_audio() {
    pauses_and_resumes(true).await;
}

/// A stream without simulcast (one VP8 stream at the low layer's rate) is its own lowest layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_too_narrow_for_a_single_stream_pauses_its_video_too() {
    pauses_and_resumes(false).await;
}

async fn pauses_and_resumes(simulcast: bool) {
    let running = start_relay(|c| c.media.below_lowest_layer = BelowLowestLayer::Pause).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let publisher = publisher(&base, &pub_token, simulcast).await;
    let shaper = Shaper::start(120_000, 16_000).await;
    let via = |answer: &str| shaper.via(answer);
    let (subscriber, mut rx) = layer_subscriber(&base, &sub_token, true, Some(&via)).await;
    let connected = Instant::now();
    let metrics = || async {
        let text = metrics_support::scrape(&base).await;
        let figure = |s: &str| metrics_support::sum(&text, s).unwrap_or(0.0) as u64;
        (
            figure("tern_paused_dropped_total"),
            figure("tern_layer_changes_total{reason=\"tentative\"}"),
            text.clone(),
        )
    };

    // The low layer first (the switch down waits for its keyframe, which a full queue may
    // drop: not asserted), then no video at all.
    let low = until_layer(&mut rx, b'l', connected + Duration::from_secs(6)).await;
    println!(
        "low layer {:?} after connecting",
        low.map(|t| t - connected)
    );
    let gap = Duration::from_secs(2);
    let Some(paused) = gap_starts(&mut rx, gap, connected + Duration::from_secs(10)).await else {
        panic!("the video never stopped\n{}", metrics().await.2);
    };
    println!("paused {:?} after connecting", paused - connected);
    // Through the pause: no video, the audio (50 packets a second) goes on.
    let (sent_before, _) = shaper.counted(&shaper.ssrcs());
    let window = Instant::now();
    let video = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
    let (sent_after, _) = shaper.counted(&shaper.ssrcs());
    let (dropped, _, text) = metrics().await;
    assert!(video.is_err(), "video during the pause: {video:?}\n{text}");
    let per_second = (sent_after - sent_before) as f64 / window.elapsed().as_secs_f64();
    println!("{per_second:.0} packets/s through the shaper while paused");
    assert!(
        (35.0..80.0).contains(&per_second),
        "audio alone goes on while paused: {per_second:.0} packets/s\n{text}"
    );
    assert!(dropped > 50, "paused packets counted: {dropped}\n{text}");
    let congestion = metrics_support::sum(&text, "tern_layer_changes_total{reason=\"congestion\"}");
    let changes = if simulcast { 2.0 } else { 1.0 };
    assert!(
        congestion >= Some(changes),
        "(down to the low layer, then) paused: {congestion:?} changes\n{text}"
    );
    assert!(
        text.contains("tern_paused_subscribers 1"),
        "one paused subscriber\n{text}"
    );

    // Room again: the video comes back after the quiet period, as a tentative change.
    shaper.rate_bps.store(100_000_000, Ordering::Relaxed);
    let back = until_layer(&mut rx, b'l', paused + Duration::from_secs(14)).await;
    let (_, tentative, text) = metrics().await;
    let back = back.unwrap_or_else(|| panic!("no video 14 s after the pause\n{text}"));
    println!("video back {:?} after the pause", back - paused);
    assert!(
        // 8 s after the decision; the last video packet may have sat up to 1 s in the queue.
        back - paused >= Duration::from_secs(6),
        "the resume waited for the quiet period\n{text}"
    );
    assert!(tentative >= 1, "the resume is a tentative change\n{text}");
    assert!(
        text.contains("tern_paused_subscribers 0"),
        "resumed\n{text}"
    );
    // And it stays: video keeps arriving.
    let stopped = gap_starts(
        &mut rx,
        Duration::from_secs(1),
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert!(
        stopped.is_none(),
        "the video stopped again\n{}",
        metrics().await.2
    );

    publisher.sending.abort();
    let _ = publisher.pc.close().await;
    let _ = subscriber.close().await;
    running.stop().await;
}
