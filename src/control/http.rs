//! The HTTP API (axum): WHIP and WHEP (RFC 9725), session PATCH/DELETE, room events (SSE),
//! health, readiness, Prometheus metrics, the admin API and the demo page.
//!
//! Every error is a status and a one-line reason; tokens never appear in a response or a log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::auth::{self, Action};
use super::metrics;
use super::relay::{ApiError, Created, Relay};

mod cluster;

/// Per-address request budget (token bucket).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one request from `ip`'s budget of `per_minute` requests per minute, with a burst of
    /// the same size (the rate is an argument so a reload changes it at once).
    pub fn allow(&self, ip: IpAddr, per_minute: u32) -> bool {
        let per_minute = f64::from(per_minute.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(120));
        }
        let (tokens, last) = buckets.entry(ip).or_insert((per_minute, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * per_minute / 60.0).min(per_minute);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone)]
struct App {
    relay: Arc<Relay>,
    limiter: Arc<RateLimiter>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, format!("{}\n", self.reason)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// The router, ready for `axum::serve` with connect info.
pub fn router(relay: Arc<Relay>, max_body: usize) -> Router {
    let app = App {
        relay,
        limiter: Arc::new(RateLimiter::default()),
    };
    Router::new()
        .route("/", get(demo))
        .route("/whip/{room}/{stream}", post(whip))
        .route("/whep/{room}/{stream}", post(whep))
        .route("/session/{id}", delete(end_session).patch(patch_session))
        .route("/session/{id}/layer", post(switch_layer))
        .route("/rooms/{room}/events", get(room_events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/admin/sessions", get(admin_sessions))
        .route("/admin/sessions/{id}", delete(admin_end_session))
        .route("/admin/revoke", post(admin_revoke))
        .route(
            "/nodes/{node}/session/{id}",
            delete(cluster::node_session_delete).patch(cluster::node_session_patch),
        )
        .route(
            "/nodes/{node}/session/{id}/layer",
            post(cluster::node_session_layer),
        )
        .route("/cluster/link", post(cluster::open_link))
        .route("/cluster/dial", post(cluster::dial))
        .route(
            "/cluster/link/{id}/streams/{room}/{stream}",
            post(cluster::link_stream).delete(cluster::unlink_stream),
        )
        .route(
            "/cluster/forward/{kind}/{room}/{stream}",
            post(cluster::forwarded_offer),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// CORS (so a page on another origin can call WHIP/WHEP) and the per-address rate limit.
async fn guard(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut response = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else if !cluster::from_node(&app, req.headers())
        && !app
            .limiter
            .allow(peer.ip(), app.relay.policy().requests_per_minute)
    {
        let mut r = ApiError::new(429, "too many requests from this address").into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Retry-After"),
    );
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
}

/// 415 with `reason` unless the request's Content-Type is `media_type` (any case, parameters
/// allowed).
fn require_content_type(
    headers: &HeaderMap,
    media_type: &str,
    reason: &'static str,
) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.to_ascii_lowercase().starts_with(media_type) {
        Ok(())
    } else {
        Err(ApiError::new(415, reason))
    }
}

fn sdp_body(headers: &HeaderMap, body: &Bytes) -> Result<String, ApiError> {
    require_content_type(
        headers,
        "application/sdp",
        "the body must be application/sdp",
    )?;
    String::from_utf8(body.to_vec()).map_err(|_| ApiError::new(400, "the offer is not UTF-8"))
}

fn created_response(app: &App, c: Created) -> Response {
    let mut r = (StatusCode::CREATED, c.answer).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    // In a cluster the URL names the node, so that PATCH and DELETE reach it from any node.
    let location = match &app.relay.settings.cluster {
        Some(cluster) => format!("/nodes/{}/session/{}", cluster.node_id(), c.session),
        None => format!("/session/{}", c.session),
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&c.etag) {
        h.insert(header::ETAG, v);
    }
    r
}

async fn whip(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((room, stream)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    offer_answer(
        app,
        peer,
        (Action::Publish, None),
        room,
        stream,
        headers,
        body,
    )
    .await
}

#[derive(serde::Deserialize)]
struct LayerRequestQuery {
    /// The simulcast layer (RID) to receive; the publisher's first by default.
    layer: Option<String>,
}

async fn whep(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((room, stream)): Path<(String, String)>,
    Query(q): Query<LayerRequestQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let action = (Action::Subscribe, q.layer);
    offer_answer(app, peer, action, room, stream, headers, body).await
}

/// WHIP and WHEP alike: drain check, auth, then the offer/answer exchange.
async fn offer_answer(
    app: App,
    peer: SocketAddr,
    (action, layer): (Action, Option<String>),
    room: String,
    stream: String,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, forwarded) = cluster::client_ip(&app, &headers, peer);
    if let Some(c) = &app.relay.settings.cluster {
        c.health()
            .map_err(|why| ApiError::cluster_unavailable(&why))?;
        if !forwarded && !app.relay.takes_sessions() {
            // Placed on another node; nobody without a valid token gets forwarded.
            app.relay
                .authorize(bearer(&headers), action, &room, &stream, client)
                .await?;
            let kind = (action, layer.as_deref());
            return cluster::forward_offer(&app, kind, (&room, &stream), &headers, body, client)
                .await;
        }
    }
    if app.relay.draining.load(Ordering::Relaxed) {
        return Err(ApiError::draining());
    }
    let grant = app
        .relay
        .authorize(bearer(&headers), action, &room, &stream, client)
        .await?;
    let offer = sdp_body(&headers, &body)?;
    let created = match action {
        Action::Publish => {
            app.relay
                .publish(grant, &room, &stream, &offer, client)
                .await?
        }
        Action::Subscribe => {
            app.relay.ensure_stream(&room, &stream).await?;
            app.relay
                .subscribe(grant, (&room, &stream), layer.as_deref(), &offer, client)
                .await?
        }
    };
    Ok(created_response(&app, created))
}

/// The session's room/stream/role, after checking that the token may act on it.
async fn owned_session(
    app: &App,
    headers: &HeaderMap,
    client: IpAddr,
    id: u64,
) -> Result<super::rooms::SessionInfo, ApiError> {
    let info = app
        .relay
        .registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .sessions
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::new(404, "no such session"))?;
    let action = match info.role {
        super::rooms::SessionRole::Publisher => Action::Publish,
        super::rooms::SessionRole::Subscriber => Action::Subscribe,
        // Links between nodes are ended by the nodes, never by a client's token.
        super::rooms::SessionRole::Link => return Err(ApiError::new(404, "no such session")),
    };
    app.relay
        .authorize(bearer(headers), action, &info.room, &info.stream, client)
        .await?;
    Ok(info)
}

#[derive(serde::Deserialize)]
struct LayerRequest {
    /// The RID of the simulcast layer to receive. `encodingId` is the WHEP layer extension's
    /// name for it.
    #[serde(alias = "encodingId")]
    layer: Option<String>,
    /// The highest spatial layer (VP9 SVC) to receive.
    spatial: Option<u8>,
    /// The highest temporal layer (VP8, VP9) to receive.
    temporal: Option<u8>,
}

/// A WHEP subscriber moves to another simulcast layer, `{"layer": "<rid>"}`, and/or sets the
/// highest spatial and temporal layer it gets inside the stream, `{"temporal": 1}`.
async fn switch_layer(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (client, _) = cluster::client_ip(&app, &headers, peer);
    switch_layer_of(&app, client, id, &headers, &body).await
}

async fn switch_layer_of(
    app: &App,
    client: IpAddr,
    id: u64,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<StatusCode, ApiError> {
    let headers = headers.clone();
    owned_session(app, &headers, client, id).await?;
    require_content_type(
        &headers,
        "application/json",
        "the body must be application/json",
    )?;
    const EXPECTED: &str =
        r#"expected {"layer": "<rid>"} and/or {"spatial": <n>, "temporal": <n>}"#;
    let request: LayerRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::new(400, format!("{EXPECTED}: {e}")))?;
    let limit = request.spatial.is_some() || request.temporal.is_some();
    if request.layer.is_none() && !limit {
        return Err(ApiError::new(400, EXPECTED));
    }
    if limit {
        app.relay
            .limit_layers(id, request.spatial, request.temporal)?;
    }
    if let Some(layer) = &request.layer {
        app.relay.switch_layer(id, layer)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn end_session(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (client, _) = cluster::client_ip(&app, &headers, peer);
    end_session_of(&app, client, id, &headers).await
}

async fn end_session_of(
    app: &App,
    client: IpAddr,
    id: u64,
    headers: &HeaderMap,
) -> Result<StatusCode, ApiError> {
    owned_session(app, headers, client, id).await?;
    app.relay.end_session(id);
    Ok(StatusCode::OK)
}

async fn patch_session(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, _) = cluster::client_ip(&app, &headers, peer);
    patch_session_of(&app, client, id, &headers, &body).await
}

async fn patch_session_of(
    app: &App,
    client: IpAddr,
    id: u64,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let info = owned_session(app, headers, client, id).await?;
    require_content_type(
        headers,
        "application/trickle-ice-sdpfrag",
        "PATCH takes application/trickle-ice-sdpfrag",
    )?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::new(400, "not UTF-8"))?;
    let fragment = crate::wire::sdp::parse_trickle_fragment(&text)
        .map_err(|e| ApiError::new(400, format!("bad fragment: {e}")))?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    if let Some(tag) = if_match.filter(|t| t.trim() != "*") {
        if tag.trim() != info.etag {
            return Err(ApiError::new(
                412,
                "If-Match does not name the session's current ETag (ICE restarted?)",
            ));
        }
    }
    if fragment.is_ice_restart(&info.remote_ufrag) {
        let (answer, etag) = app.relay.restart_ice(id, &fragment)?;
        let mut r = (StatusCode::OK, answer).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/trickle-ice-sdpfrag"),
        );
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        return Ok(r);
    }
    // ICE-lite: the relay's single host candidate never changes and remote candidates are learnt
    // from authenticated checks, so trickled candidates need nothing (RFC 9725 §4.3.1).
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn room_events(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(room): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // EventSource cannot set headers, so the token may come as ?token= (never logged).
    let token = bearer(&headers).map(str::to_string).or(q.token);
    app.relay
        .authorize(token.as_deref(), Action::Subscribe, &room, "*", peer.ip())
        .await?;
    let (mut now, rx) = {
        let mut reg = app.relay.registry.lock().unwrap_or_else(|p| p.into_inner());
        let now = reg.published(&room);
        (now, reg.room(&room).events.subscribe())
    };
    if let Some(cluster) = &app.relay.settings.cluster {
        // Streams other nodes originate, as every node's feed lists them.
        for (stream, identity) in cluster.remote_streams(&room) {
            now.push(super::rooms::RoomEvent::Published { stream, identity });
        }
        if app.relay.draining.load(Ordering::Relaxed) {
            now.push(super::rooms::RoomEvent::Reconnect);
        }
    }
    let initial = stream::iter(now);
    let live = BroadcastStream::new(rx).filter_map(|e| async move { e.ok() });
    let mut stopping = app.relay.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let events = initial.chain(live).take_until(stopped).map(|e| {
        let json = serde_json::to_string(&e).unwrap_or_default();
        Ok(SseEvent::default().data(json))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn readyz(State(app): State<App>) -> Response {
    let cluster = app.relay.settings.cluster.as_ref().map(|c| c.health());
    if app.relay.draining.load(Ordering::Relaxed) || !app.relay.dp.dead_workers().is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if let Some(Err(why)) = cluster {
        // A node without its etcd lease takes no new sessions: say so to load balancers.
        (StatusCode::SERVICE_UNAVAILABLE, format!("cluster: {why}\n")).into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let mut text = metrics::render(&app.relay);
    app.relay.auto_layers.render(&mut text);
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

fn admin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let policy = app.relay.policy();
    let Some(expected) = &policy.admin_token else {
        return Err(ApiError::new(
            404,
            "the admin API is off (no admin_token_file)",
        ));
    };
    let given = bearer(headers).ok_or_else(|| ApiError::new(401, "admin token required"))?;
    if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into() {
        Ok(())
    } else {
        Err(ApiError::new(401, "bad admin token"))
    }
}

async fn admin_sessions(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&app, &headers)?;
    let reg = app.relay.registry.lock().unwrap_or_else(|p| p.into_inner());
    let list: Vec<serde_json::Value> = reg
        .sessions
        .values()
        .map(|s| {
            serde_json::json!({
                "id": s.id, "role": s.role, "room": s.room, "stream": s.stream,
                "identity": s.identity, "worker": s.worker, "connected": s.connected,
            })
        })
        .collect();
    Ok(
        axum::Json(serde_json::json!({ "sessions": list, "rooms": reg.rooms.len() }))
            .into_response(),
    )
}

async fn admin_end_session(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    admin(&app, &headers)?;
    if app.relay.end_session(id) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(404, "no such session"))
    }
}

#[derive(serde::Deserialize)]
struct RevokeBody {
    identity: String,
    room: Option<String>,
}

async fn admin_revoke(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin(&app, &headers)?;
    let req: RevokeBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::new(400, format!("bad JSON: {e}")))?;
    app.relay.revocations.revoke_identity(
        req.room.as_deref(),
        &req.identity,
        std::time::SystemTime::now(),
    );
    let ended = app.relay.expire_sessions(std::time::SystemTime::now());
    if let Some(cluster) = &app.relay.settings.cluster {
        // Every other node applies it from the watch (within a second).
        cluster
            .revoke(&req.identity, req.room.as_deref())
            .await
            .map_err(|e| ApiError::cluster_unavailable(&format!("revoked here only: {e}")))?;
    }
    Ok(axum::Json(serde_json::json!({ "ended": ended })).into_response())
}

async fn demo() -> Html<&'static str> {
    Html(include_str!("demo.html"))
}
