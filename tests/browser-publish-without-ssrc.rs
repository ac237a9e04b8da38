//! Two real Chromium tabs whose WHIP offers reach the relay with every `a=ssrc` and
//! `a=ssrc-group` line cut out (as WHIP clients may send them): the relay binds each
//! publisher's audio, video and RTX streams by the MID header extension of their first packets,
//! and each tab decodes the other's video. Before, such an offer was refused with 400.

mod browser_support;
mod metrics_support;

use browser_support::{page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishers_without_ssrcs_in_their_offers_reach_each_other() {
    let running = start_relay().await;
    let a = page_url(&running, "no-ssrc", "alice", None);
    let b = page_url(&running, "no-ssrc", "bob", None);
    let out = run_script("publish-without-ssrc.mjs", vec![a, b]).await;
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let result: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("publish-without-ssrc.mjs printed no JSON ({e}): {line}"));
    for cut in result["ssrc_lines_cut"].as_array().expect("ssrc_lines_cut") {
        assert!(
            cut.as_u64().unwrap_or(0) > 0,
            "an offer went out with its SSRCs: {result}"
        );
    }
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    // Audio and video of each of the two publishers at least (RTX binds when Chromium first
    // sends on it).
    assert!(counters.ssrcs_learned >= 4, "{counters:?}");
    // Every stream was told apart: Chromium sends the MID on its RTX packets too (padding
    // probes included) until the relay's receiver reports acknowledge them.
    assert_eq!(counters.unknown_ssrc, 0, "{counters:?}");
    assert!(counters.media_out >= 60, "{counters:?}");
    running.stop().await;
}
