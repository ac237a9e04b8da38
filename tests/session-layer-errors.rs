//! `POST /session/{id}/layer` refuses what it cannot do with the right status and a reason:
//! an unknown session (404), no token (401), a body that is not JSON (415) or not
//! `{"layer": ...}` / `{"temporal": ...}` (400), a publisher's session (400), and a subscriber
//! of a stream without simulcast layers (400; a temporal limit on its VP8 stream is taken).
//! Real relay, real webrtc-rs peers for the connected sessions.

mod webrtc_client;

use std::time::Duration;

use tern::control::rooms::SessionRole;
use webrtc_client::{cam_tokens, media_flow, start_relay};

async fn post(url: &str, token: Option<&str>, ct: &str, body: &str) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", ct)
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_layer_requests_get_the_right_status_and_a_reason() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let (pub_token, sub_token) = cam_tokens(&running);
    let flow = media_flow(&base, &pub_token, &sub_token, None).await;
    let session = |role: SessionRole| {
        let reg = running.relay.registry.lock().unwrap();
        let s = reg.sessions.values().find(|s| s.role == role).unwrap();
        (s.id, s.connected)
    };
    // The subscriber is connected once media flows.
    let mut sub = session(SessionRole::Subscriber);
    for _ in 0..50 {
        if sub.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        sub = session(SessionRole::Subscriber);
    }
    assert!(sub.1, "the subscriber connected");
    let (publisher, _) = session(SessionRole::Publisher);
    let url = |id: u64| format!("{base}/session/{id}/layer");
    let json = "application/json";
    let layer = r#"{"layer": "l"}"#;

    let (status, reason) = post(&url(987_654), Some(&sub_token), json, layer).await;
    assert_eq!((status, reason.trim()), (404, "no such session"));
    let (status, _) = post(&url(sub.0), None, json, layer).await;
    assert_eq!(status, 401);
    let (status, reason) = post(&url(sub.0), Some(&sub_token), "text/plain", layer).await;
    assert_eq!(status, 415, "{reason}");
    assert!(reason.contains("application/json"), "{reason}");
    let (status, reason) = post(&url(sub.0), Some(&sub_token), json, r#"{"rid": 1}"#).await;
    assert_eq!(status, 400, "{reason}");
    assert!(
        reason.contains(r#"expected {"layer": "<rid>"}"#),
        "{reason}"
    );
    let (status, reason) = post(&url(publisher), Some(&pub_token), json, layer).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("only a WHEP subscriber"), "{reason}");
    let (status, reason) = post(&url(sub.0), Some(&sub_token), json, layer).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("no simulcast layers"), "{reason}");
    // The WHEP layer extension's name for the field is taken too.
    let (status, reason) = post(
        &url(sub.0),
        Some(&sub_token),
        json,
        r#"{"encodingId": "l"}"#,
    )
    .await;
    assert_eq!(
        (status, reason.contains("no simulcast layers")),
        (400, true),
        "{reason}"
    );

    // Spatial and temporal limits: bounds checked, subscribers only, fine on a VP8 stream
    // without simulcast.
    let temporal = r#"{"temporal": 1}"#;
    let (status, reason) = post(&url(sub.0), Some(&sub_token), json, r#"{"temporal": 300}"#).await;
    assert_eq!(status, 400, "{reason}");
    assert!(
        reason.contains(r#"{"spatial": <n>, "temporal": <n>}"#),
        "{reason}"
    );
    let (status, reason) = post(&url(publisher), Some(&pub_token), json, temporal).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("only a WHEP subscriber"), "{reason}");
    let (status, reason) = post(&url(sub.0), Some(&sub_token), json, temporal).await;
    assert_eq!(status, 204, "{reason}");

    flow.close().await;
    running.stop().await;
}
