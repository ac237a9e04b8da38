//! Automatic temporal layers: a webrtc-rs publisher sends one VP8 stream (no simulcast) with
//! L1T3 descriptors, 1.2 Mbit/s in all (TID 0: 480 kbit/s, TID 1: 240, TID 2: 480). The relay
//! measures each temporal layer's rate; a REMB-only subscriber gets every layer until it sends
//! REMBs of 600 kbit/s, then, within 2 s, only TID 0 (the step that fits 600 kbit/s less the
//! margin). The viewer's ceiling (`POST /session/{id}/layer {"temporal": 1}`) is honoured too.

mod auto_layer_support;
mod webrtc_client;

use std::sync::Arc;
use std::time::Duration;

use auto_layer_support::{layer_subscriber, peer, vp8};
use bytes::Bytes;
use tern::control::rooms::SessionRole;
use tokio::time::Instant;
use webrtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};
use webrtc_client::{cam_tokens, signal, start_relay, wait_connected};

/// Bytes per frame of each TID at 30 fps in the pattern 0 2 1 2 (7.5, 15 and 7.5 frames/s).
fn frame_bytes(tid: u8) -> usize {
    match tid {
        0 => 480_000 / 8 * 4 / 30,
        1 => 240_000 / 8 * 4 / 30,
        _ => 480_000 / 8 * 2 / 30,
    }
}

/// Publishes `room1/cam`, one VP8 stream; each packet's payload: a descriptor with L and T
/// (TL0PICIDX, TID, Y), then the TID as an ASCII digit at byte 4 (what `layer_subscriber`
/// reports), keyframes every two seconds.
async fn l1t3_publisher(
    base: &str,
    token: &str,
) -> (
    Arc<webrtc::peer_connection::RTCPeerConnection>,
    tokio::task::JoinHandle<()>,
) {
    let pc = peer(false, false).await;
    let track = vp8(None);
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    tokio::spawn(async move { while sender.read_rtcp().await.is_ok() {} });
    let (status, body) = signal(&pc, &format!("{base}/whip/room1/cam"), token).await;
    assert_eq!(status, 201, "WHIP: {body}");
    wait_connected(&pc, "publisher").await;
    let sending = tokio::spawn(async move {
        let start = Instant::now();
        let mut seq = 0u16;
        for frame in 0u32.. {
            let tid = [0u8, 2, 1, 2][(frame % 4) as usize];
            let key = frame % 60 == 0;
            let tl0 = (frame / 4) as u8;
            let mut left = frame_bytes(tid);
            let mut first = true;
            while left > 0 {
                let size = left.min(1100);
                left -= size;
                let mut payload = vec![0u8; size.max(8)];
                let sync = u8::from(frame % 4 == 1) << 5;
                payload[..7].copy_from_slice(&[
                    if first { 0x90 } else { 0x80 },
                    0x60, // L, T
                    tl0,
                    (tid << 6) | sync,
                    b'0' + tid,
                    if key { 0x10 } else { 0x11 },
                    0x02,
                ]);
                first = false;
                let packet = webrtc::rtp::packet::Packet {
                    header: webrtc::rtp::header::Header {
                        version: 2,
                        marker: left == 0,
                        payload_type: 96,
                        sequence_number: seq,
                        timestamp: frame * 3000,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                seq = seq.wrapping_add(1);
                let _ = track.write_rtp(&packet).await;
            }
            tokio::time::sleep_until(start + Duration::from_micros(33_333 * u64::from(frame + 1)))
                .await;
        }
    });
    (pc, sending)
}

/// The TIDs received until `until`.
async fn tids_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<auto_layer_support::Layered>,
    until: Instant,
) -> Vec<u8> {
    let mut tids = Vec::new();
    while let Ok(Some((_, tag))) = tokio::time::timeout_at(until, rx.recv()).await {
        tids.push(tag.wrapping_sub(b'0'));
    }
    tids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_remb_leaves_the_subscriber_the_base_temporal_layer() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let (publisher, sending) = l1t3_publisher(&base, &pub_token).await;
    let (subscriber, mut rx) = layer_subscriber(&base, &sub_token, false, None).await;

    // Every temporal layer before any REMB (after the first base frame).
    let tids = tids_until(&mut rx, Instant::now() + Duration::from_secs(3)).await;
    assert!(
        tids.contains(&2) && tids.contains(&1),
        "all layers at first: {tids:?}"
    );

    // The viewer's ceiling: TID 1 at most, from the next base frame.
    let session = {
        let reg = running.relay.registry.lock().unwrap();
        let s = reg
            .sessions
            .values()
            .find(|s| s.role == SessionRole::Subscriber);
        s.expect("the subscriber's session").id
    };
    let status = reqwest::Client::new()
        .post(format!("{base}/session/{session}/layer"))
        .bearer_auth(&sub_token)
        .header("content-type", "application/json")
        .body(r#"{"temporal": 1}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    tids_until(&mut rx, Instant::now() + Duration::from_millis(300)).await;
    let tids = tids_until(&mut rx, Instant::now() + Duration::from_secs(1)).await;
    assert!(
        !tids.is_empty() && tids.iter().all(|&t| t <= 1),
        "ceiling TID 1: {tids:?}"
    );
    assert!(tids.contains(&1));

    // REMBs of 600 kbit/s, five a second: TID 0 alone fits (480 kbit/s).
    let pc = Arc::clone(&subscriber);
    let remb = tokio::spawn(async move {
        loop {
            let packet = ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 1,
                bitrate: 600_000.0,
                ssrcs: vec![],
            };
            let _ = pc.write_rtcp(&[Box::new(packet)]).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let sent = Instant::now();
    let mut base_only_at = None;
    while base_only_at.is_none() && sent.elapsed() < Duration::from_secs(2) {
        let window = tids_until(&mut rx, Instant::now() + Duration::from_millis(400)).await;
        if !window.is_empty() && window.iter().all(|&t| t == 0) {
            base_only_at = Some(sent.elapsed());
        }
    }
    assert!(
        base_only_at.is_some(),
        "not on TID 0 within 2 s of the first REMB (REMBs read: {})",
        running.relay.dp.total_counters().remb_in
    );
    let tids = tids_until(&mut rx, Instant::now() + Duration::from_secs(1)).await;
    assert!(
        !tids.is_empty() && tids.iter().all(|&t| t == 0),
        "stays on TID 0: {tids:?}"
    );
    assert!(running.relay.dp.total_counters().layer_dropped > 0);

    remb.abort();
    sending.abort();
    let _ = publisher.close().await;
    let _ = subscriber.close().await;
    running.stop().await;
}
