//! End-to-end encryption in a real Chromium: two demo-page tabs with the same passphrase seal
//! every frame with AES-GCM (encoded transforms) before it reaches Tern and still decode each
//! other's video; a third tab with another passphrase receives the same forwarded media and
//! decodes none of it, because its decryptor cannot open a single frame.

mod browser_support;
mod metrics_support;

use browser_support::{metric, page_url, run_script, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_passphrase_decodes_wrong_passphrase_does_not() {
    let running = start_relay().await;
    let a = page_url(&running, "e2ee", "alice", Some("secret"));
    let b = page_url(&running, "e2ee", "bob", Some("secret"));
    let wrong = page_url(&running, "e2ee", "mallory", Some("not-the-secret"));
    let out = run_script("e2ee.mjs", vec![a, b, wrong]).await;
    println!("{} ({:?})", out.stdout.trim(), out.elapsed);

    // The relay forwarded sealed frames to all three: SRTP was sound, only the payload was opaque.
    let counters = running.relay.dp.total_counters();
    assert!(counters.media_out >= 60, "{counters:?}");
    assert_eq!(counters.auth_failures, 0, "{counters:?}");
    assert!(metric(&running, "tern_media_out_total").await >= 60);
    running.stop().await;
}
