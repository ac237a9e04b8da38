//! No open URLs, and bad requests get the right status with a reason: missing, expired,
//! wrong-algorithm and wrong-room tokens → 401/403; garbage and oversized SDP → 400/413;
//! unknown streams → 404; a second publisher → 409; draining → 503 + Retry-After; the rate
//! limit → 429; a webhook that denies or times out → 403. No response ever contains the token.

mod webrtc_client;

use std::time::{Duration, SystemTime};

use base64::Engine;
use tern::control::auth::Claims;
use webrtc_client::{chromium_offer as offer, start_relay};

async fn post(
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: String,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_the_right_status_and_never_echo_the_token() {
    let running = start_relay(|_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let minter = running.minter.as_ref().unwrap();
    let good = minter.mint("r", None, true, true, "alice", Duration::from_secs(600));
    let expired = minter.sign(&Claims::new(
        "r",
        None,
        true,
        true,
        "alice",
        Duration::from_secs(60),
        SystemTime::now() - Duration::from_secs(7200),
    ));
    let other_room = minter.mint(
        "elsewhere",
        None,
        true,
        true,
        "alice",
        Duration::from_secs(600),
    );
    let subscribe_only = minter.mint("r", None, false, true, "alice", Duration::from_secs(600));
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        good.split('.').nth(1).unwrap()
    );
    let sdp = "application/sdp";
    let whip = format!("{base}/whip/r/cam");

    let cases: Vec<(&str, Option<&str>, &str, String, u16)> = vec![
        ("no token", None, sdp, offer(), 401),
        ("expired token", Some(&expired), sdp, offer(), 401),
        ("alg none", Some(&alg_none), sdp, offer(), 401),
        ("garbage token", Some("not.a.jwt"), sdp, offer(), 401),
        (
            "token for another room",
            Some(&other_room),
            sdp,
            offer(),
            403,
        ),
        (
            "subscribe-only token publishing",
            Some(&subscribe_only),
            sdp,
            offer(),
            403,
        ),
        (
            "garbage SDP",
            Some(&good),
            sdp,
            "v=0\r\nthis is not sdp\r\n".into(),
            400,
        ),
        ("not SDP at all", Some(&good), "text/plain", offer(), 415),
        (
            "oversized body",
            Some(&good),
            sdp,
            "a".repeat(70 * 1024),
            413,
        ),
    ];
    for (what, token, ct, body, want) in cases {
        let (status, text, headers) = post(&whip, token, ct, body).await;
        assert_eq!(status, want, "{what}: {text}");
        assert!(
            !text.trim().is_empty() || status == 413,
            "{what}: a reason is given"
        );
        for t in [&good, &expired, &other_room, &subscribe_only] {
            assert!(
                !text.contains(t.as_str()),
                "{what}: the token is never echoed"
            );
        }
        if status == 401 {
            assert!(headers.contains_key("www-authenticate"), "{what}");
        }
    }

    let (status, text, _) = post(&format!("{base}/whep/r/nobody"), Some(&good), sdp, offer()).await;
    assert_eq!(status, 404, "WHEP of an unknown stream: {text}");

    let (status, answer, headers) = post(&whip, Some(&good), sdp, offer()).await;
    assert_eq!(status, 201, "{answer}");
    assert!(headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("/session/"));
    assert!(headers.contains_key("etag"));
    assert!(answer.contains("a=ice-lite") && answer.contains("a=setup:passive"));
    let (status, text, _) = post(&whip, Some(&good), sdp, offer()).await;
    assert_eq!(status, 409, "second publisher of the same stream: {text}");

    running
        .relay
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, _, headers) =
        post(&format!("{base}/whip/r/other"), Some(&good), sdp, offer()).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(ready, 503, "not ready while draining");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_rate_limit_answers_429() {
    let running = start_relay(|c| c.limits.requests_per_minute = 5).await;
    let url = format!("http://{}/healthz", running.http_addr);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(reqwest::get(&url).await.unwrap().status().as_u16());
    }
    assert_eq!(&statuses[..5], &[200; 5]);
    assert!(statuses[5..].iter().all(|&s| s == 429), "{statuses:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_denies_or_times_out_means_403() {
    use axum::routing::post as route_post;
    for (path, want) in [("/deny", 403u16), ("/slow", 403), ("/allow", 201)] {
        let app = axum::Router::new()
            .route(
                "/deny",
                route_post(|| async { axum::http::StatusCode::FORBIDDEN }),
            )
            .route(
                "/slow",
                route_post(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/allow", route_post(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let running = start_relay(|c| {
            c.auth.webhook_url = Some(format!("http://{hook}{path}"));
            c.auth.webhook_timeout = Duration::from_millis(300);
        })
        .await;
        let token = running.minter.as_ref().unwrap().mint(
            "r",
            None,
            true,
            true,
            "carol",
            Duration::from_secs(600),
        );
        let started = std::time::Instant::now();
        let (status, text, _) = post(
            &format!("http://{}/whip/r/cam", running.http_addr),
            Some(&token),
            "application/sdp",
            offer(),
        )
        .await;
        assert_eq!(status, want, "webhook {path}: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the timeout bounds the wait"
        );
        running.stop().await;
    }
}
