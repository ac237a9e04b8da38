//! The HTTP API between the nodes of a cluster, and what a node does with a client request that
//! belongs to another node.
//!
//! - A WHIP/WHEP offer this node does not take (draining, or full) goes, after the client's
//!   token was checked here, to a node that has room (for WHEP, the stream's origin first) as
//!   `POST /cluster/forward/{whip|whep}/{room}/{stream}`: the same body and `Authorization`, plus
//!   a node token and the client's address. The client gets that node's answer and a `Location`
//!   naming it, so it never follows a redirect (browsers drop `Authorization` on one).
//! - `/nodes/{node}/session/{id}` (DELETE, PATCH) and `/…/layer` (POST) are served here when
//!   `node` is this node, else passed to that node as they came.
//! - `/cluster/link…` are the cascade's signalling (see `relay::cascade`).
//!
//! Every node-to-node request carries a node token (`x-tern-node-token`, HMAC under the cluster
//! secret); without one, these routes answer 401 and `x-tern-client` is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{
    end_session_of, offer_answer, patch_session_of, switch_layer_of, App, LayerRequestQuery,
};
use crate::control::auth::Action;
use crate::control::cluster::token::{NodeClaims, Purpose};
use crate::control::cluster::{Cluster, CLIENT_HEADER, NODE_TOKEN_HEADER};
use crate::control::relay::cascade::{unhex, LinkAnswer, LinkRequest, PulledStream};
use crate::control::relay::ApiError;

/// Headers a forwarded request keeps.
const PASSED_ON: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_MATCH,
];

/// Headers a forwarded answer keeps.
const PASSED_BACK: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::ETAG,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
];

fn cluster_of(app: &App) -> Result<&std::sync::Arc<Cluster>, ApiError> {
    app.relay
        .settings
        .cluster
        .as_ref()
        .ok_or_else(|| ApiError::new(404, "this relay is not part of a cluster"))
}

fn node_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(NODE_TOKEN_HEADER).and_then(|v| v.to_str().ok())
}

/// The claims of the request's node token for `purpose`, or 401.
fn node_claims(app: &App, headers: &HeaderMap, purpose: Purpose) -> Result<NodeClaims, ApiError> {
    let cluster = cluster_of(app)?;
    let token =
        node_token(headers).ok_or_else(|| ApiError::new(401, "a node token is required"))?;
    cluster
        .verify(token, purpose)
        .map_err(|e| ApiError::new(401, e.to_string()))
}

/// Whether the request comes from a node of this cluster (a valid node token of any kind).
pub(super) fn from_node(app: &App, headers: &HeaderMap) -> bool {
    let (Some(cluster), Some(token)) = (&app.relay.settings.cluster, node_token(headers)) else {
        return false;
    };
    [Purpose::Forward, Purpose::Pull]
        .into_iter()
        .any(|p| cluster.verify(token, p).is_ok())
}

/// The client's address: the peer's, or, on a request another node forwarded (valid forward
/// token), the address that node saw. The flag says whether it was forwarded.
pub(super) fn client_ip(app: &App, headers: &HeaderMap, peer: SocketAddr) -> (IpAddr, bool) {
    let forwarded = headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<IpAddr>().ok())
        .filter(|_| node_claims(app, headers, Purpose::Forward).is_ok());
    match forwarded {
        Some(ip) => (ip, true),
        None => (peer.ip(), false),
    }
}

/// Sends `method path` with `body` and the client's headers to `base` (another node) as a
/// forwarded request, and returns its answer as this node's.
async fn pass_on(
    app: &App,
    (method, base, path): (reqwest::Method, &str, &str),
    headers: &HeaderMap,
    body: Bytes,
    client: IpAddr,
) -> Result<Response, ApiError> {
    let cluster = cluster_of(app)?;
    let mut req = cluster
        .http
        .request(method, format!("{base}{path}"))
        .header(
            NODE_TOKEN_HEADER,
            cluster.sign(Purpose::Forward, None, None),
        )
        .header(CLIENT_HEADER, client.to_string())
        .body(body.to_vec());
    for name in PASSED_ON {
        if let Some(v) = headers.get(&name) {
            req = req.header(name, v.as_bytes());
        }
    }
    cluster
        .stats
        .forwarded
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let resp = req.send().await.map_err(|e| ApiError {
        status: 502,
        reason: format!("cluster: node at {base} unreachable: {e}"),
        retry_after: Some(2),
    })?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut back = HeaderMap::new();
    for name in PASSED_BACK {
        if let Some(v) = resp.headers().get(name.as_str()) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                back.insert(name, v);
            }
        }
    }
    let bytes = resp.bytes().await.map_err(|e| ApiError {
        status: 502,
        reason: format!("cluster: node at {base}: {e}"),
        retry_after: Some(2),
    })?;
    let mut r = (status, bytes.to_vec()).into_response();
    r.headers_mut().extend(back);
    Ok(r)
}

/// An offer this node does not take: to the node with room that suits it best (for WHEP, the
/// stream's origin if it has room, else the least loaded).
pub(super) async fn forward_offer(
    app: &App,
    (action, layer): (Action, Option<&str>),
    (room, stream): (&str, &str),
    headers: &HeaderMap,
    body: Bytes,
    client: IpAddr,
) -> Result<Response, ApiError> {
    let cluster = cluster_of(app)?;
    let me = cluster.node_id();
    let nodes: Vec<_> = cluster
        .nodes()
        .into_iter()
        .filter(|n| n.id != me && n.has_room())
        .collect();
    let origin = match action {
        Action::Subscribe => cluster.stream(room, stream).map(|e| e.record.node),
        Action::Publish => None,
    };
    let target = origin
        .and_then(|o| nodes.iter().find(|n| n.id == o))
        .or_else(|| nodes.iter().min_by_key(|n| n.sessions))
        .ok_or_else(|| ApiError {
            status: 503,
            reason: "cluster: no node has room for a new session".into(),
            retry_after: Some(5),
        })?;
    let kind = match action {
        Action::Publish => "whip",
        Action::Subscribe => "whep",
    };
    let mut path = format!(
        "/cluster/forward/{kind}/{}/{}",
        crate::control::relay::cascade::path_segment(room),
        crate::control::relay::cascade::path_segment(stream)
    );
    if let Some(layer) = layer {
        path.push_str(&format!(
            "?layer={}",
            crate::control::relay::cascade::path_segment(layer)
        ));
    }
    let base = target.http.clone();
    pass_on(
        app,
        (reqwest::Method::POST, &base, &path),
        headers,
        body,
        client,
    )
    .await
}

/// `POST /cluster/forward/{whip|whep}/{room}/{stream}`: an offer another node placed here.
pub(super) async fn forwarded_offer(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((kind, room, stream)): Path<(String, String, String)>,
    Query(q): Query<LayerRequestQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    node_claims(&app, &headers, Purpose::Forward)?;
    let action = match kind.as_str() {
        "whip" => Action::Publish,
        "whep" => Action::Subscribe,
        _ => return Err(ApiError::new(404, "forward whip or whep")),
    };
    offer_answer(app, peer, (action, q.layer), room, stream, headers, body).await
}

/// The node a `/nodes/{node}/…` URL names: `None` for this one, else its HTTP base URL.
fn elsewhere(app: &App, node: &str) -> Result<Option<String>, ApiError> {
    let cluster = cluster_of(app)?;
    if node == cluster.node_id() {
        return Ok(None);
    }
    cluster
        .node(node)
        .map(|n| Some(n.http))
        .ok_or_else(|| ApiError::new(404, format!("no node '{node}' is up in this cluster")))
}

pub(super) async fn node_session_delete(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((node, id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (client, _) = client_ip(&app, &headers, peer);
    match elsewhere(&app, &node)? {
        None => Ok(end_session_of(&app, client, id, &headers)
            .await?
            .into_response()),
        Some(base) => {
            let path = format!("/nodes/{node}/session/{id}");
            let target = (reqwest::Method::DELETE, base.as_str(), path.as_str());
            pass_on(&app, target, &headers, Bytes::new(), client).await
        }
    }
}

pub(super) async fn node_session_patch(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((node, id)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, _) = client_ip(&app, &headers, peer);
    match elsewhere(&app, &node)? {
        None => patch_session_of(&app, client, id, &headers, &body).await,
        Some(base) => {
            let path = format!("/nodes/{node}/session/{id}");
            let target = (reqwest::Method::PATCH, base.as_str(), path.as_str());
            pass_on(&app, target, &headers, body, client).await
        }
    }
}

pub(super) async fn node_session_layer(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((node, id)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, _) = client_ip(&app, &headers, peer);
    match elsewhere(&app, &node)? {
        None => Ok(switch_layer_of(&app, client, id, &headers, &body)
            .await?
            .into_response()),
        Some(base) => {
            let path = format!("/nodes/{node}/session/{id}/layer");
            let target = (reqwest::Method::POST, base.as_str(), path.as_str());
            pass_on(&app, target, &headers, body, client).await
        }
    }
}

/// `POST /cluster/dial`: another node needs the link with this one, which this node opens (its
/// id sorts first). Answers once the link is up on this side.
pub(super) async fn dial(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let claims = node_claims(&app, &headers, Purpose::Pull)?;
    let cluster = std::sync::Arc::clone(cluster_of(&app)?);
    if cluster.node_id() >= claims.node.as_str() {
        return Err(ApiError::new(
            409,
            "the node whose id sorts first opens the link: that is the caller",
        ));
    }
    let peer = cluster
        .node(&claims.node)
        .ok_or_else(|| ApiError::new(403, format!("node '{}' is not up", claims.node)))?;
    app.relay.link_with(&cluster, &peer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /cluster/link`: another node opens the link with this one.
pub(super) async fn open_link(
    State(app): State<App>,
    headers: HeaderMap,
    Json(request): Json<LinkRequest>,
) -> Result<(StatusCode, Json<LinkAnswer>), ApiError> {
    let claims = node_claims(&app, &headers, Purpose::Pull)?;
    let cluster = cluster_of(&app)?;
    let fingerprint = claims
        .fingerprint
        .as_deref()
        .and_then(unhex)
        .filter(|f| f.len() == 32)
        .ok_or_else(|| ApiError::new(400, "the node token names no SHA-256 fingerprint"))?;
    let edge = cluster
        .node(&claims.node)
        .ok_or_else(|| ApiError::new(403, format!("node '{}' is not up", claims.node)))?;
    let answer = app.relay.open_link(&edge, fingerprint, request)?;
    Ok((StatusCode::CREATED, Json(answer)))
}

fn stream_claims(
    app: &App,
    headers: &HeaderMap,
    (room, stream): (&str, &str),
) -> Result<NodeClaims, ApiError> {
    let claims = node_claims(app, headers, Purpose::Pull)?;
    if claims.room.as_deref() != Some(room) || claims.stream.as_deref() != Some(stream) {
        return Err(ApiError::new(403, "the node token is for another stream"));
    }
    Ok(claims)
}

/// `POST /cluster/link/{id}/streams/{room}/{stream}`: the link carries that stream from now on.
pub(super) async fn link_stream(
    State(app): State<App>,
    Path((id, room, stream)): Path<(u64, String, String)>,
    headers: HeaderMap,
) -> Result<Json<PulledStream>, ApiError> {
    let claims = stream_claims(&app, &headers, (&room, &stream))?;
    app.relay
        .link_stream(id, &claims.node, (&room, &stream))
        .map(Json)
}

/// `DELETE /cluster/link/{id}/streams/{room}/{stream}`: it no longer does.
pub(super) async fn unlink_stream(
    State(app): State<App>,
    Path((id, room, stream)): Path<(u64, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let claims = stream_claims(&app, &headers, (&room, &stream))?;
    app.relay.unlink_stream(id, &claims.node, (&room, &stream));
    Ok(StatusCode::NO_CONTENT)
}
