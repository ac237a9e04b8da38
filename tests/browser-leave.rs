//! Leaving the demo page ends its sessions on the relay. Two Chromium tabs see each other; when
//! one presses Leave, the other drops its tile on the room's `unpublished` event and ends its
//! own subscription to the stream that left, so no session of or on the leaver remains; when
//! the other tab is then closed, its page ends its sessions as it unloads. The script watches
//! the relay through the admin API while the browser is still running.

mod browser_support;
mod metrics_support;

use std::time::{Duration, Instant};

use browser_support::{page_url, run_script, start_relay_with};

const ADMIN_TOKEN: &str = "browser-leave-admin-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_and_closing_the_tab_end_every_session() {
    let admin = tempfile::NamedTempFile::new().expect("admin token file");
    std::fs::write(admin.path(), ADMIN_TOKEN).expect("write the admin token");
    let running = start_relay_with(|c| c.auth.admin_token_file = Some(admin.path().into())).await;
    let a = page_url(&running, "leave", "alice", None);
    let b = page_url(&running, "leave", "bob", None);
    let out = run_script("leave.mjs", vec![a, b, ADMIN_TOKEN.to_string()]).await;
    println!("{} ({:?})", out.stdout.trim(), out.elapsed);

    let sessions = running.relay.registry.lock().unwrap().sessions.len();
    assert_eq!(sessions, 0, "sessions left on the relay");
    // The workers forgot them too (their counters are published every few milliseconds).
    let deadline = Instant::now() + Duration::from_secs(2);
    while running.relay.dp.total_counters().sessions > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(running.relay.dp.total_counters().sessions, 0);
    running.stop().await;
}
