//! A viewer whose Chromium has no camera and was granted nothing offers only mDNS host
//! candidates (`<uuid>.local`), which Tern neither resolves nor needs: as an ICE-lite agent it
//! answers the viewer's authenticated checks at their source address (peer-reflexive), binds
//! the session there, and the viewer decodes a demo-page tab's camera.

mod browser_support;
mod metrics_support;

use browser_support::{page_url, run_script, start_relay, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_with_mdns_candidates_decodes_a_published_camera() {
    let running = start_relay().await;
    let publisher = page_url(&running, "mdns", "cam", None);
    let viewer = token(&running, "mdns", Some("cam"), false, true, "viewer");
    let out = run_script("mdns-viewer.mjs", vec![publisher, viewer]).await;
    println!("{} ({:?})", out.stdout.trim(), out.elapsed);

    let counters = running.relay.dp.total_counters();
    assert!(counters.stun_answered >= 2, "{counters:?}");
    assert!(counters.media_out >= 30, "{counters:?}");
    running.stop().await;
}
