//! An independent WebRTC implementation (webrtc-rs) publishes with WHIP and another subscribes
//! with WHEP through a Tern started in-process: real HTTP, real ICE, real DTLS, real SRTP. The
//! subscriber receives the publisher's RTP payloads byte for byte — once with the default
//! profile (AEAD_AES_128_GCM) and once with AES_CM_128_HMAC_SHA1_80 forced on both clients.

mod metrics_support;
mod webrtc_client;

use std::time::Duration;

use webrtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use webrtc_client::{check_payload, media_pair};

async fn relay_media(profile: Option<SrtpProtectionProfile>) {
    let mut pair = media_pair(profile).await;
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received < 50 {
        let Ok(Some(p)) = tokio::time::timeout_at(deadline, pair.rx.recv()).await else {
            break;
        };
        check_payload(&p);
        received += 1;
    }
    assert!(
        received >= 50,
        "only {received} payloads reached the subscriber"
    );
    let counters = pair.running.relay.dp.total_counters();
    assert!(counters.media_out >= 50, "{counters:?}");
    // The same figures reach Prometheus, with relay latency and DTLS counters.
    let metrics = reqwest::get(format!("http://{}/metrics", pair.running.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let media_out = metrics_support::sum(&metrics, "tern_media_out_total")
        .expect("tern_media_out_total in /metrics");
    assert!(media_out >= 50.0, "{metrics}");
    let latency = metrics_support::sum(&metrics, "tern_relay_latency_seconds_count")
        .expect("the latency histogram in /metrics");
    assert!(latency >= 1.0, "{metrics}");
    assert!(
        metrics.contains("tern_dtls_final_flight_resends_total"),
        "{metrics}"
    );
    pair.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webrtc_rs_publishes_and_subscribes_with_gcm() {
    relay_media(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webrtc_rs_publishes_and_subscribes_with_aes_cm_hmac_sha1_80() {
    relay_media(Some(SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80)).await;
}
