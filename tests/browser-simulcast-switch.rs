//! A WHEP subscriber moves between simulcast layers mid-session (`POST /session/{id}/layer`),
//! watched in real Chromium: the viewer starts on layer h (640 wide), moves to l (320) and back.
//! The relay keeps the viewer's one RTP stream (same SSRC, sequence numbers and timestamps
//! continued) and starts the new layer at a keyframe, so the viewer's decoder goes on decoding
//! without a new track. A layer the publisher does not send is refused with 400.

mod browser_support;
mod metrics_support;

use browser_support::{page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_moves_between_simulcast_layers_on_one_stream() {
    let running = start_relay().await;
    let publisher = page_url(&running, "switch", "alice", None) + "&simulcast=1";
    let viewer = page_url(&running, "switch", "bob", None) + "&layer=h";
    let out = run_script("simulcast-switch.mjs", vec![publisher, viewer]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let steps: Vec<serde_json::Value> = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("simulcast-switch.mjs printed no JSON ({e}): {line}"));
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert_eq!(steps.len(), 4, "{line}");
    let widths: Vec<u64> = steps
        .iter()
        .map(|s| s["width"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(widths, [640, 320, 640, 640], "{line}");
    // One video stream from the viewer's point of view, under one SSRC, all along.
    for s in &steps {
        assert_eq!(s["videoStreams"], 1, "{line}");
        assert_eq!(s["ssrc"], steps[0]["ssrc"], "{line}");
    }
    assert!(counters.layer_switches >= 2, "{counters:?}");
    running.stop().await;
}
