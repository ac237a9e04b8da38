//! AV1 and H.264 temporal layers from real Chromium, read from the dependency descriptor: a
//! publisher sends one stream with three temporal layers (L1T3, `&svc=L1T3&codec=AV1` or
//! `H264`); a Chromium viewer limited to the base layer (`POST /session/{id}/layer
//! {"temporal": 0}`) goes on decoding, at about a quarter of the frame rate, on the same RTP
//! stream and without a freeze while on it (the step down itself, where the gap between frames
//! quadruples, may count one); lifting the limit brings the full rate back. Neither codec has
//! a payload descriptor with layers: only the publisher's dependency descriptor tells the relay
//! which frames it may leave out.

mod browser_support;
mod metrics_support;

use browser_support::{assert_no_freeze_while_limited, page_url, run_script, start_relay};

/// One browser pair at a time: two encoders at once would starve a small CI machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_decodes_the_base_temporal_layer_of_an_av1_stream() {
    base_layer_decodes("AV1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_decodes_the_base_temporal_layer_of_an_h264_stream() {
    base_layer_decodes("H264").await;
}

async fn base_layer_decodes(codec: &str) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let running = start_relay().await;
    let room = codec.to_lowercase();
    let publisher = page_url(&running, &room, "alice", None) + "&svc=L1T3&codec=" + codec;
    let viewer = page_url(&running, &room, "bob", None);
    let out = run_script("dd-temporal.mjs", vec![publisher, viewer]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let steps: Vec<serde_json::Value> = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("dd-temporal.mjs printed no JSON ({e}): {line}"));
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert_eq!(steps.len(), 4, "{line}");
    for s in &steps {
        assert_eq!(s["codec"], format!("video/{codec}"), "{line}");
        assert_eq!(s["videoStreams"], 1, "{line}");
        assert_eq!(s["ssrc"], steps[0]["ssrc"], "{line}");
        assert_eq!(s["width"], 640, "temporal layers keep the size: {line}");
    }
    let fps: Vec<f64> = steps.iter().map(|s| s["fps"].as_f64().unwrap()).collect();
    // L1T3 sends T0 T2 T1 T2: the base layer is a quarter of the frames.
    assert!(fps[0] >= 10.0, "the whole stream decodes: {line}");
    for limited in &fps[1..3] {
        assert!(
            *limited > 0.0 && *limited <= fps[0] * 0.4,
            "the base layer alone, still decoding: {line}"
        );
    }
    assert!(fps[3] >= fps[0] * 0.7, "the full rate back: {line}");
    // From 20 fps (mean gap 50 ms) the first 200 ms gap is right on Chromium's freeze line.
    assert_no_freeze_while_limited(&steps, line);
    assert!(counters.layer_dropped > 0, "{counters:?}");
    running.stop().await;
}
