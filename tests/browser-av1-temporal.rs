//! AV1 temporal layers from real Chromium, read from the dependency descriptor: a publisher
//! sends one AV1 stream with three temporal layers (L1T3, `&svc=L1T3&codec=AV1`); a Chromium
//! viewer limited to the base layer (`POST /session/{id}/layer {"temporal": 0}`) goes on
//! decoding, at about a quarter of the frame rate, on the same RTP stream and without a freeze
//! while on it (the step down itself, where the gap between frames quadruples, may count one);
//! lifting the limit brings the full rate back. AV1 has no payload descriptor with layers: only
//! the publisher's dependency descriptor tells the relay which frames it may leave out.

mod browser_support;
mod metrics_support;

use browser_support::{page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_decodes_the_base_temporal_layer_of_an_av1_stream() {
    let running = start_relay().await;
    let publisher = page_url(&running, "av1", "alice", None) + "&svc=L1T3&codec=AV1";
    let viewer = page_url(&running, "av1", "bob", None);
    let out = run_script("av1-temporal.mjs", vec![publisher, viewer]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let steps: Vec<serde_json::Value> = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("av1-temporal.mjs printed no JSON ({e}): {line}"));
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert_eq!(steps.len(), 4, "{line}");
    for s in &steps {
        assert_eq!(s["codec"], "video/AV1", "{line}");
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
    let freezes: Vec<u64> = steps
        .iter()
        .map(|s| s["freezes"].as_u64().unwrap_or(u64::MAX))
        .collect();
    // Chromium counts a freeze when a frame comes max(3 × mean, mean + 150 ms) after the last:
    // the first 200 ms gap after 20 fps (mean 50 ms) is right on that line.
    assert!(
        freezes[1] <= freezes[0] + 1,
        "at most one going down: {line}"
    );
    assert_eq!(freezes[2], freezes[1], "none on the base layer: {line}");
    assert!(counters.layer_dropped > 0, "{counters:?}");
    running.stop().await;
}
