//! Firefox and Chromium in one room: Debian's Firefox ESR (WebDriver BiDi, puppeteer-core) and
//! Debian's Chromium (playwright-core) open the demo page, publish their fake cameras and
//! decode each other's video through an in-process Tern. Two independent WebRTC stacks that
//! number their header extensions differently: before Tern renumbered extensions per
//! subscriber, Chromium dropped Firefox's packets (Firefox's abs-send-time id is Chromium's MID)
//! and decoded 7 frames in 30 s.
//!
//! Firefox gathers no loopback candidates, so here the relay's media sockets bind the host's
//! own address (the one a route to the outside would use). A machine without one fails this
//! test, loudly.

mod browser_support;
mod metrics_support;

use std::net::{IpAddr, UdpSocket};
use std::path::Path;

use browser_support::{metric, page_url, run_script, start_relay_with};

/// The address this host would send from to the outside (no packet is sent).
fn host_address() -> IpAddr {
    let s = UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    s.connect("203.0.113.1:9")
        .expect("a route off this host: Firefox needs a non-loopback address to reach the relay");
    let ip = s.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no host address: {ip}"
    );
    ip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_and_chromium_decode_each_others_video() {
    let firefox = std::env::var("TERN_FIREFOX").unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
    assert!(
        Path::new(&firefox).exists(),
        "{firefox} is missing: `apt-get install firefox-esr` (scripts/test-all.sh does it)"
    );
    let ip = host_address();
    let running = start_relay_with(|c| c.media.bind = ip).await;
    let fox = page_url(&running, "interop", "firefox", None);
    let chrome = page_url(&running, "interop", "chromium", None);
    let out = run_script("firefox-chromium.mjs", vec![fox, chrome]).await;
    println!("{} ({:?})", out.stdout.trim(), out.elapsed);
    let counters = running.relay.dp.total_counters();
    println!("relay: {counters:?}");
    assert!(counters.media_out >= 60, "{counters:?}");
    assert_eq!(counters.auth_failures, 0, "{counters:?}");
    // Firefox's two sessions and Chromium's two, all on Tern's first choice.
    let gcm = r#"tern_srtp_sessions_total{profile="AEAD_AES_128_GCM"}"#;
    assert!(metric(&running, gcm).await >= 4, "{gcm}");
    for other in ["AEAD_AES_256_GCM", "AES_CM_128_HMAC_SHA1_80"] {
        let series = format!(r#"tern_srtp_sessions_total{{profile="{other}"}}"#);
        assert_eq!(metric(&running, &series).await, 0, "{series}");
    }
    running.stop().await;
}
