//! Simulcast with real Chromium: a demo-page tab publishes its fake 640x480 camera as two
//! layers (RIDs h and l, the second at half size); the relay answers `a=simulcast:recv h;l`,
//! binds each layer's SSRCs by MID and RID, and installs each as its own track. One viewer
//! subscribes with `?layer=h` and decodes 640-wide frames, the other with `?layer=l` and decodes
//! 320-wide ones; neither ever sees the other layer.

mod browser_support;
mod metrics_support;

use browser_support::{page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_viewer_decodes_the_simulcast_layer_it_asked_for() {
    let running = start_relay().await;
    let publisher = page_url(&running, "simulcast", "alice", None) + "&simulcast=1";
    let h = page_url(&running, "simulcast", "bob", None) + "&layer=h";
    let l = page_url(&running, "simulcast", "carol", None) + "&layer=l";
    let out = run_script("simulcast.mjs", vec![publisher, h, l]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let result: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("simulcast.mjs printed no JSON ({e}): {line}"));
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    // The publisher really sent two layers, and the relay told them apart.
    assert!(
        result["sent"]["h"].is_u64() && result["sent"]["l"].is_u64(),
        "{result}"
    );
    assert!(counters.ssrcs_learned >= 2, "{counters:?}");
    let (wh, wl) = (
        result["h"]["width"].as_u64().unwrap_or(0),
        result["l"]["width"].as_u64().unwrap_or(0),
    );
    // Chromium may scale both layers down on a busy machine; l stays half of h.
    assert!(wh >= 320, "viewer h decodes {wh}-wide frames: {result}");
    assert_eq!(wl * 2, wh, "viewer l decodes the half-size layer: {result}");
    running.stop().await;
}
