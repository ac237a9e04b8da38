//! The round-trip auth webhook against a real HTTP server on 127.0.0.1: allow on 2xx, deny on
//! non-2xx, timeout and connection failure, and answers cached for the TTL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use tern::control::auth::{Action, AuthError, Webhook, WebhookRequest};

#[derive(Clone, Default)]
struct Recorder {
    hits: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Recorder {
    fn record(&self, body: Value) {
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.bodies.lock().unwrap().push(body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn allow(State(r): State<Recorder>, Json(body): Json<Value>) -> StatusCode {
    r.record(body);
    StatusCode::OK
}

async fn deny(State(r): State<Recorder>, Json(body): Json<Value>) -> StatusCode {
    r.record(body);
    StatusCode::FORBIDDEN
}

async fn slow(State(r): State<Recorder>, Json(body): Json<Value>) -> StatusCode {
    r.record(body);
    tokio::time::sleep(Duration::from_secs(5)).await;
    StatusCode::OK
}

async fn server() -> (SocketAddr, Recorder) {
    let recorder = Recorder::default();
    let app = Router::new()
        .route("/allow", post(allow))
        .route("/deny", post(deny))
        .route("/slow", post(slow))
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, recorder)
}

fn request(stream: &str) -> WebhookRequest {
    WebhookRequest {
        action: Action::Subscribe,
        room: "lobby".into(),
        stream: stream.into(),
        identity: "alice".into(),
        client_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)),
    }
}

fn hook(addr: SocketAddr, path: &str, timeout: Duration) -> Webhook {
    Webhook::new(&format!("http://{addr}{path}"), timeout).unwrap()
}

#[tokio::test]
async fn two_hundred_allows_and_the_body_describes_the_request() {
    let (addr, recorder) = server().await;
    let webhook = hook(addr, "/allow", Duration::from_secs(2));
    assert_eq!(webhook.check(&request("cam")).await, Ok(()));
    assert_eq!(recorder.hits(), 1);
    let body = recorder.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["action"], "subscribe");
    assert_eq!(body["room"], "lobby");
    assert_eq!(body["stream"], "cam");
    assert_eq!(body["identity"], "alice");
    assert_eq!(body["client_ip"], "127.0.0.7");
    assert_eq!(body.as_object().unwrap().len(), 5, "{body}");
}

#[tokio::test]
async fn forbidden_denies_with_403() {
    let (addr, recorder) = server().await;
    let webhook = hook(addr, "/deny", Duration::from_secs(2));
    let err = webhook.check(&request("cam")).await.unwrap_err();
    assert_eq!(err, AuthError::WebhookDenied { status: 403 });
    assert_eq!(err.status(), 403);
    assert_eq!(recorder.hits(), 1);
    // A path the server does not have (404) denies too.
    let missing = hook(addr, "/nope", Duration::from_secs(2));
    assert_eq!(
        missing.check(&request("cam")).await,
        Err(AuthError::WebhookDenied { status: 404 })
    );
}

#[tokio::test]
async fn slow_webhook_is_denied_within_the_timeout() {
    let (addr, recorder) = server().await;
    let timeout = Duration::from_millis(300);
    let webhook = hook(addr, "/slow", timeout);
    let start = Instant::now();
    let err = webhook.check(&request("cam")).await.unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(err, AuthError::WebhookUnavailable);
    assert_eq!(err.status(), 403);
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(700),
        "{elapsed:?}"
    );
    assert_eq!(recorder.hits(), 1, "the request did reach the server");
}

#[tokio::test]
async fn server_down_is_denied() {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let webhook = hook(closed, "/allow", Duration::from_secs(2));
    let start = Instant::now();
    let err = webhook.check(&request("cam")).await.unwrap_err();
    assert_eq!(err, AuthError::WebhookUnavailable);
    assert_eq!(err.status(), 403);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn answers_are_cached_for_the_ttl() {
    let (addr, recorder) = server().await;
    let webhook = hook(addr, "/allow", Duration::from_secs(2));
    assert_eq!(webhook.check(&request("cam")).await, Ok(()));
    assert_eq!(webhook.check(&request("cam")).await, Ok(()));
    assert_eq!(
        recorder.hits(),
        1,
        "second identical call served from cache"
    );
    assert_eq!(webhook.check(&request("screen")).await, Ok(()));
    assert_eq!(recorder.hits(), 2, "a different request is asked");

    // Denials are cached as well.
    let denying = hook(addr, "/deny", Duration::from_secs(2));
    for _ in 0..3 {
        assert!(denying.check(&request("cam")).await.is_err());
    }
    assert_eq!(recorder.hits(), 3);

    // After the TTL the webhook is asked again; a zero TTL never caches.
    let short =
        hook(addr, "/allow", Duration::from_secs(2)).with_cache_ttl(Duration::from_millis(150));
    short.check(&request("cam")).await.unwrap();
    short.check(&request("cam")).await.unwrap();
    assert_eq!(recorder.hits(), 4);
    tokio::time::sleep(Duration::from_millis(200)).await;
    short.check(&request("cam")).await.unwrap();
    assert_eq!(recorder.hits(), 5);
    let uncached = hook(addr, "/allow", Duration::from_secs(2)).with_cache_ttl(Duration::ZERO);
    uncached.check(&request("cam")).await.unwrap();
    uncached.check(&request("cam")).await.unwrap();
    assert_eq!(recorder.hits(), 7);
}
