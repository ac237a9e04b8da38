//! A simulcast publisher stops sending the layer a viewer watches (Chromium's
//! `setParameters` with the layer inactive, as under congestion): the relay's worker reports
//! the layer stopped after a second of silence, and the viewer, without asking, gets the layer
//! still sent (320 wide) on its same RTP stream; when the publisher sends its layer again, the
//! viewer goes back to it (640 wide).

mod browser_support;
mod metrics_support;

use browser_support::{page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_falls_back_to_a_layer_still_sent_and_returns() {
    let running = start_relay().await;
    let publisher = page_url(&running, "fallback", "alice", None) + "&simulcast=1";
    let viewer = page_url(&running, "fallback", "bob", None) + "&layer=h";
    let out = run_script("simulcast-fallback.mjs", vec![publisher, viewer]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let steps: Vec<serde_json::Value> = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("simulcast-fallback.mjs printed no JSON ({e}): {line}"));
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    let widths: Vec<u64> = steps
        .iter()
        .map(|s| s["width"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(widths, [640, 320, 640], "{line}");
    for s in &steps {
        assert_eq!(s["ssrc"], steps[0]["ssrc"], "one inbound stream: {line}");
    }
    assert!(counters.layer_switches >= 2, "{counters:?}");
    running.stop().await;
}
