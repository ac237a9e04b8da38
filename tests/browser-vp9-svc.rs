//! VP9 SVC from real Chromium: a publisher sends one VP9 stream with three spatial and three
//! temporal layers (L3T3_KEY); a Chromium viewer limited to the lowest spatial and temporal
//! layer (`POST /session/{id}/layer {"spatial": 0, "temporal": 0}`) goes on decoding, at the
//! smaller size, on the same RTP stream, without a freeze while on it (the step down itself,
//! where the frame rate falls from 30 to 7.5 fps and the decoder changes size, may count one on
//! a loaded machine); lifting the limit brings full-size frames back (at the keyframe the relay
//! asks for).

mod browser_support;
mod metrics_support;

use browser_support::{assert_no_freeze_while_limited, page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_decodes_the_lowest_layers_of_a_vp9_svc_stream() {
    let running = start_relay().await;
    let publisher = page_url(&running, "svc", "alice", None) + "&svc=L3T3_KEY";
    let viewer = page_url(&running, "svc", "bob", None);
    let out = run_script("vp9-svc.mjs", vec![publisher, viewer]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let steps: Vec<serde_json::Value> = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("vp9-svc.mjs printed no JSON ({e}): {line}"));
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert_eq!(steps.len(), 4, "{line}");
    let widths: Vec<u64> = steps
        .iter()
        .map(|s| s["width"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(widths[0], 640, "{line}");
    assert!(widths[1] < 640 && widths[2] == widths[1], "{line}");
    assert_eq!(widths[3], 640, "{line}");
    for s in &steps {
        assert_eq!(s["videoStreams"], 1, "{line}");
        assert_eq!(s["ssrc"], steps[0]["ssrc"], "{line}");
    }
    assert_no_freeze_while_limited(&steps, line);
    assert!(counters.layer_dropped > 0, "{counters:?}");
    running.stop().await;
}
