//! Automatic layers over a narrow link, with real transport-cc: a simulcast publisher (layers
//! of 1.2 Mbit/s and 150 kbit/s, 50 kbit/s audio) and a webrtc-rs subscriber (its own
//! transport-cc feedback) behind a shaping proxy. At 500 kbit/s with a 64 kB queue the
//! subscriber is on the low layer within 5 s and then loses under 2 % (audio under 1 %) over
//! 10 s; with the limit lifted it is back on the high layer within 15 s; at 1.1 Mbit/s (the
//! high layer plus audio does not fit) it tries the high layer at most once in 30 s.
//!
//! With `TERN_CC_TRACE=<file>` the test also writes its timeline there as CSV (every 250 ms:
//! seconds, link rate, the relay's estimate, the layer received, packets sent and dropped by
//! the shaper), for the convergence plots in perf-reports.

mod auto_layer_support;
mod webrtc_client;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auto_layer_support::{layer_subscriber, simulcast_publisher, until_layer, Layered, Shaper};
use tern::control::rooms::SessionRole;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::Instant;
use webrtc_client::{cam_tokens, start_relay};

/// The layers received until `deadline`, in order, with consecutive repeats folded.
async fn layers_until(rx: &mut UnboundedReceiver<Layered>, deadline: Instant) -> Vec<u8> {
    let mut seen = Vec::new();
    while let Ok(Some((_, tag))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if seen.last() != Some(&tag) {
            seen.push(tag);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_narrow_link_gets_the_low_layer_and_the_high_one_back_when_it_widens() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let publisher = simulcast_publisher(&base, &pub_token).await;
    let shaper = Shaper::start(500_000, 64_000).await;
    let via = |answer: &str| shaper.via(answer);
    let (subscriber, mut raw) = layer_subscriber(&base, &sub_token, true, Some(&via)).await;
    let connected = Instant::now();
    // The layer received now, for the timeline, and every packet's layer for the assertions.
    let current = Arc::new(AtomicU8::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c = Arc::clone(&current);
    tokio::spawn(async move {
        while let Some(l) = raw.recv().await {
            c.store(l.1, Ordering::Relaxed);
            let _ = tx.send(l);
        }
    });
    let session = running
        .relay
        .registry
        .lock()
        .unwrap()
        .sessions
        .values()
        .find(|s| s.role == SessionRole::Subscriber)
        .map(|s| s.id)
        .unwrap();
    let timeline = Arc::new(Mutex::new(String::from(
        "seconds,link_bps,estimate_bps,layer,sent,dropped\n",
    )));
    let sampler = {
        let (relay, timeline, current) = (
            Arc::clone(&running.relay),
            Arc::clone(&timeline),
            Arc::clone(&current),
        );
        let (rate, counts) = (Arc::clone(&shaper.rate_bps), Arc::clone(&shaper.counts));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (sent, dropped) = counts
                    .lock()
                    .unwrap()
                    .values()
                    .fold((0, 0), |(f, d), (f2, d2)| (f + f2 + d2, d + d2));
                let line = format!(
                    "{:.2},{},{},{},{sent},{dropped}\n",
                    connected.elapsed().as_secs_f64(),
                    rate.load(Ordering::Relaxed),
                    relay.auto_layers.estimate(session).unwrap_or(0),
                    current.load(Ordering::Relaxed) as char,
                );
                timeline.lock().unwrap().push_str(&line);
            }
        })
    };

    // 500 kbit/s: the low layer within 5 s, and it stays.
    let low_at = until_layer(&mut rx, b'l', connected + Duration::from_secs(5)).await;
    let metrics = || async {
        reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(
        low_at.is_some(),
        "not on the low layer 5 s after connecting; relay: {:?}\n{}",
        running.relay.dp.total_counters(),
        metrics().await
    );
    let settled = Instant::now() + Duration::from_millis(500);
    let _ = layers_until(&mut rx, settled).await;
    let ssrcs = shaper.ssrcs();
    let before: Vec<(u32, (u64, u64))> = ssrcs.iter().map(|&s| (s, shaper.counted(&[s]))).collect();
    let layers = layers_until(&mut rx, settled + Duration::from_secs(10)).await;
    assert_eq!(
        layers,
        [b'l'],
        "stays on the low layer at 500 kbit/s\n{}",
        metrics().await
    );
    // Loss per stream over those 10 s: the audio stream is the one with ~50 packets/s.
    let mut video = (0u64, 0u64);
    let mut audio = (0u64, 0u64);
    for (s, (f0, d0)) in before {
        let (f, d) = shaper.counted(&[s]);
        let (sent, dropped) = (f - f0 + d - d0, d - d0);
        if (400..=600).contains(&sent) {
            audio = (sent, dropped);
        } else {
            video = (video.0 + sent, video.1 + dropped);
        }
    }
    assert!(audio.0 > 0, "audio found among {ssrcs:x?}");
    assert!(video.1 * 50 < video.0, "video loss under 2 %: {video:?}");
    assert!(audio.1 * 100 < audio.0, "audio loss under 1 %: {audio:?}");

    // The limit lifted: the high layer within 15 s.
    shaper.rate_bps.store(100_000_000, Ordering::Relaxed);
    let lifted = Instant::now();
    let high_at = until_layer(&mut rx, b'h', lifted + Duration::from_secs(15)).await;
    assert!(
        high_at.is_some(),
        "not back on the high layer 15 s after the limit was lifted\n{}",
        metrics().await
    );

    // 1.1 Mbit/s: down again, and at most one try of the high layer in 30 s.
    shaper.rate_bps.store(1_100_000, Ordering::Relaxed);
    let capped = Instant::now();
    assert!(
        until_layer(&mut rx, b'l', capped + Duration::from_secs(5))
            .await
            .is_some(),
        "down to the low layer at 1.1 Mbit/s\n{}",
        metrics().await
    );
    let layers = layers_until(&mut rx, Instant::now() + Duration::from_secs(30)).await;
    let tries = layers.iter().filter(|&&l| l == b'h').count();
    assert!(
        tries <= 1,
        "{tries} tries of the high layer in 30 s: {layers:?}\n{}",
        metrics().await
    );

    sampler.abort();
    if let Some(path) = std::env::var_os("TERN_CC_TRACE") {
        std::fs::write(path, timeline.lock().unwrap().as_bytes()).unwrap();
    }
    publisher.sending.abort();
    let _ = publisher.pc.close().await;
    let _ = subscriber.close().await;
    running.stop().await;
}
