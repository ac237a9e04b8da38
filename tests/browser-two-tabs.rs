//! Two tabs of a real Chromium (Debian's, headless, driven by playwright-core) open the demo page
//! served by an in-process Tern: each publishes its fake camera with WHIP, learns of the other's
//! stream from the room's event feed, subscribes with WHEP and decodes its video. Real ICE-lite,
//! DTLS (Chromium offers 1.3, Tern answers 1.2), SRTP and fan-out, checked from both ends: the
//! pages' decoded-frame counts and the relay's own counters. Chromium lists
//! AES_CM_128_HMAC_SHA1_80 first in use_srtp; every session still gets AEAD_AES_128_GCM, Tern's
//! choice.

mod browser_support;
mod metrics_support;

use browser_support::{metric, page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chromium_tabs_decode_each_others_video() {
    let running = start_relay().await;
    let a = page_url(&running, "two-tabs", "alice", None);
    let b = page_url(&running, "two-tabs", "bob", None);
    let out = run_script("two-tabs.mjs", vec![a, b]).await;
    println!("{} ({:?})", out.stdout.trim(), out.elapsed);

    // The relay saw it too: both peers passed ICE, and every frame they decoded went through
    // the fan-out (30+ frames each way; a 640x480 frame is one or more packets).
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert!(counters.stun_answered >= 2, "{counters:?}");
    assert!(counters.media_out >= 60, "{counters:?}");
    assert_eq!(counters.auth_failures, 0, "{counters:?}");
    assert!(metric(&running, "tern_media_out_total").await >= 60);
    // Two publishers and two subscribers, all on Tern's preferred profile.
    assert!(
        metric(
            &running,
            r#"tern_srtp_sessions_total{profile="AEAD_AES_128_GCM"}"#
        )
        .await
            >= 4
    );
    for other in [
        "AEAD_AES_256_GCM",
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
    ] {
        let series = format!(r#"tern_srtp_sessions_total{{profile="{other}"}}"#);
        assert_eq!(metric(&running, &series).await, 0, "{series}");
    }
    running.stop().await;
}
