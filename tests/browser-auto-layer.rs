//! Automatic layers in real Chromium: a simulcast Chromium publisher (640 and 320 wide) and a
//! Chromium viewer whose media path goes through a shaping proxy at 500 kbit/s (a 64 kB
//! drop-tail queue). The viewer's WHEP answer is rewritten to one UDP host candidate at the
//! proxy, so the relay sees the proxy and the viewer's own transport-cc feedback drives its
//! estimate. The viewer joins once Chromium sends layer h above the cap (its rate ramps up
//! first). It decodes 320-wide frames within 8 s of its WHEP answer, then loses under
//! 3 % of its video packets with at most one freeze in 15 s (the bound is ≤ 2 freezes
//! per 30 s; the window is halved, and the bound with it, to keep CI short). Within 20 s of the
//! cap being lifted the relay moves it back up, layer h's rate reaches it and it decodes
//! 640-wide frames again. (Chromium sends each simulcast layer as L1T3: the relay gives a
//! viewer short of room the lower layer at its full frame rate, not h without its upper
//! temporal layers, see `cc::allocate::steps`.)

mod auto_layer_support;
mod browser_support;
mod metrics_support;
mod webrtc_client;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auto_layer_support::Shaper;
use browser_support::{metric, page_url, run_script_with_flags, start_relay};
use tern::control::rooms::SessionRole;
use tern::control::server::RunningServer;
use tokio::net::UdpSocket;

/// The fake camera at 15 frames/s: two tabs encoding and decoding on a small CI machine keep
/// their frame times regular (a starved encoder's irregular frames count as freezes).
const FAKE_CAMERA: &str = "--use-fake-device-for-media-stream=fps=15";

/// Obeys the script's control lines: `relay <ip:port>` points the proxy at the relay,
/// `rate <bps>` changes its rate.
fn control(shaper: &Shaper, socket: UdpSocket) -> tokio::task::JoinHandle<()> {
    let (relay, rate) = (Arc::clone(&shaper.relay), Arc::clone(&shaper.rate_bps));
    tokio::spawn(async move {
        let mut buf = [0u8; 256];
        while let Ok(n) = socket.recv(&mut buf).await {
            let line = String::from_utf8_lossy(&buf[..n]).to_string();
            match line.split_once(' ') {
                Some(("relay", addr)) => {
                    let addr: SocketAddr = addr.parse().expect("relay address");
                    *relay.lock().unwrap() = Some(addr);
                }
                Some(("rate", bps)) => rate.store(bps.parse().expect("rate"), Ordering::Relaxed),
                _ => panic!("unknown control line {line:?}"),
            }
        }
    })
}

/// Prints, every 500 ms, the relay's estimate for the viewer's subscription to alice and what
/// the proxy forwarded and dropped (shown when the test fails).
fn trace(running: &RunningServer, shaper: &Shaper) -> tokio::task::JoinHandle<()> {
    let (relay, counts) = (Arc::clone(&running.relay), Arc::clone(&shaper.counts));
    let started = Instant::now();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let session = relay
                .registry
                .lock()
                .unwrap()
                .sessions
                .values()
                .find(|s| s.role == SessionRole::Subscriber && s.stream == "alice")
                .map(|s| s.id);
            let estimate = session.and_then(|s| relay.auto_layers.estimate(s));
            let (sent, dropped) = counts
                .lock()
                .unwrap()
                .values()
                .fold((0, 0), |(f, d), (f2, d2)| (f + f2 + d2, d + d2));
            println!(
                "{:5.1} s: estimate {estimate:?} bit/s, proxy sent {sent} dropped {dropped}",
                started.elapsed().as_secs_f64()
            );
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_viewer_on_a_narrow_link_gets_the_low_layer_then_full_width() {
    // The relay's layer changes (why, at what estimate, to which step) go with the output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("tern::control::autolayer=info")
        .with_test_writer()
        .with_ansi(false)
        .try_init();
    let running = start_relay().await;
    let shaper = Shaper::start(500_000, 64_000).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let control_port = socket.local_addr().unwrap().port();
    let obeying = control(&shaper, socket);
    let tracing = trace(&running, &shaper);
    let publisher = page_url(&running, "auto", "alice", None) + "&simulcast=1";
    let viewer = page_url(&running, "auto", "bob", None);
    let args = vec![
        publisher,
        viewer,
        shaper.front.port().to_string(),
        control_port.to_string(),
    ];
    let script = tokio::spawn(run_script_with_flags("auto-layer.mjs", args, FAKE_CAMERA)).await;
    let out = match script {
        Ok(out) => out,
        Err(e) => {
            // The script failed (its output is in the panic): say what the relay did.
            let text = reqwest::get(format!("http://{}/metrics", running.http_addr))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let auto: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("tern_layer_") || l.starts_with("tern_probes_"))
                .collect();
            println!(
                "relay: {:?}\n{}",
                running.relay.dp.total_counters(),
                auto.join("\n")
            );
            std::panic::resume_unwind(e.into_panic());
        }
    };
    let line = out.stdout.trim();
    println!("{line} ({:?})", out.elapsed);
    let r: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("auto-layer.mjs printed no JSON ({e}): {line}"));
    let changes = metric(&running, "tern_layer_changes_total").await;
    println!(
        "layer changes: {changes}; shaper: {:?}",
        shaper.counts.lock().unwrap()
    );
    let low_ms = r["lowMs"].as_u64().unwrap();
    assert!(low_ms <= 8_000, "{line}");
    let (received, lost) = (r["received"].as_u64().unwrap(), r["lost"].as_u64().unwrap());
    assert!(received > 100, "video flowed in the window: {line}");
    assert!(
        lost * 100 < 3 * (received + lost),
        "video loss under 3 %: {line}"
    );
    assert!(
        r["freezes"].as_u64().unwrap() <= 1,
        "at most one freeze in 15 s: {line}"
    );
    // The cap lifted: within 20 s the relay moves the viewer back up (a counted change), what
    // arrives is layer h's rate (l is ~200 kbit/s) and Chromium decodes 640-wide frames.
    let ups = metric(&running, "tern_layer_changes_total{reason=\"probe\"}").await
        + metric(&running, "tern_layer_changes_total{reason=\"quiet\"}").await;
    assert!(ups >= 1, "moved back up after the cap was lifted: {line}");
    assert!(changes >= 2, "down and up again: {changes} layer changes");
    let kbps = r["kbpsAfter"].as_u64().unwrap();
    assert!(
        kbps > 320,
        "layer h's rate reaches the viewer: {kbps} kbit/s; {line}"
    );
    assert!(
        r["highMs"].as_u64().is_some_and(|ms| ms <= 20_000),
        "640-wide frames within 20 s of lifting the cap: {line}"
    );
    obeying.abort();
    tracing.abort();
    running.stop().await;
}
