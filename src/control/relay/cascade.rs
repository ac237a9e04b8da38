//! Cascades: how a node with viewers of a stream it does not originate gets it from the origin.
//!
//! Between two nodes there is one link, whichever of them needs it first: a session that the
//! node whose id sorts first opens to the other (ICE-controlling and DTLS client; the other is
//! ICE-lite and DTLS server, as for every client). One 5-tuple carries one DTLS association, so
//! every stream either node pulls from the other shares the link, one RTP stream per simulcast
//! layer with its RTX, in both directions. A node that needs a link it does not open asks the
//! other to open it (`POST /cluster/dial`). The node that pulls treats each pulled stream as a
//! local publisher's: its own fan-out, NACKs answered from its cache (and asked of the origin),
//! layer switching and stall detection, keyframe requests upstream at most once a second per
//! track. It keeps a stream `cluster.pull_linger` after its last viewer left.
//!
//! Signalling goes over the cluster's HTTP with node tokens: `POST /cluster/link` (the opener's
//! ufrag and session; the token binds its DTLS fingerprint), then `POST` / `DELETE
//! /cluster/link/{session}/streams/{room}/{stream}` to the stream's origin.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{lock, random_string, ApiError, Relay};
use crate::control::auth::Grant;
use crate::control::cluster::records::NodeRecord;
use crate::control::cluster::token::Purpose;
use crate::control::cluster::{Change, Cluster, NODE_TOKEN_HEADER};
use crate::control::dtls::{Fingerprint, FingerprintAlgorithm};
use crate::control::rooms::{Feed, PublishedTrack, RoomEvent, SessionInfo, SessionRole};
use crate::datapath::{Command, PublisherRtx, SessionId, SubscriptionParams, TrackId, TrackRef};
use crate::ice::IceCredentials;
use crate::wire::keyframe::VideoCodec;
use crate::wire::sdp::NegotiatedMedia;

/// How long an edge waits for the origin to answer its first ICE check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The link with another node, as this node holds it.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// This node's session (role `Link`).
    pub session: SessionId,
    /// The other node's session for it.
    pub peer_session: u64,
    pub worker: usize,
    /// The other node's HTTP API.
    pub http: String,
}

/// `POST /cluster/link`: the opener's side of a new link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRequest {
    pub ice_ufrag: String,
    /// The opener's session for the link.
    pub session: u64,
}

/// The answer: the other side of the link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkAnswer {
    pub session: u64,
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// The origin worker's media address.
    pub candidate: SocketAddr,
    /// SHA-256 of the origin's DTLS certificate, hex.
    pub fingerprint: String,
}

/// `POST /cluster/link/{session}/streams/{room}/{stream}`: what the link now carries of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PulledStream {
    /// The publisher's identity.
    pub identity: String,
    pub tracks: Vec<PulledTrack>,
}

/// One published track as the link carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PulledTrack {
    /// What the publisher negotiated (payload types, extensions, MID, RIDs): the link carries
    /// its packets unchanged.
    pub media: NegotiatedMedia,
    /// Each layer (one for a track without simulcast): its RID and the link's SSRCs for it.
    pub layers: Vec<PulledLayer>,
}

/// One RTP stream of the link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PulledLayer {
    pub rid: Option<String>,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex, `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Percent-encodes a path segment (room and stream names).
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The grant a link holds: it lives as long as the link, and no client identity is revoked
/// with it.
fn link_grant(node: &str) -> Grant {
    Grant {
        room: String::new(),
        streams: Vec::new(),
        publish: false,
        subscribe: false,
        identity: format!("node:{node}"),
        expires_at: UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
        issued_at: None,
        jti: None,
    }
}

fn link_info(
    id: SessionId,
    role: SessionRole,
    worker: usize,
    node: &str,
    ip: IpAddr,
) -> SessionInfo {
    SessionInfo {
        id,
        role,
        room: String::new(),
        stream: String::new(),
        worker,
        identity: format!("node:{node}"),
        grant: link_grant(node),
        client_ip: ip,
        etag: String::new(),
        remote_ufrag: String::new(),
        mids: Vec::new(),
        connected: false,
        feeds: Vec::new(),
        peer_node: Some(node.to_string()),
    }
}

fn upstream_error(origin: &str, what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: 502,
        reason: format!("cluster: origin node {origin}: {what}: {e}"),
        retry_after: Some(2),
    }
}

impl Relay {
    /// Whether `room`/`stream` has tracks here (published here, or pulled and connected).
    fn has_stream(&self, room: &str, stream: &str) -> bool {
        lock(&self.registry)
            .rooms
            .get(room)
            .and_then(|r| r.streams.get(stream))
            .is_some_and(|s| !s.tracks.is_empty())
    }

    /// In a cluster: makes sure a stream another node originates is here, pulled over the link
    /// to that node (set up first if there is none). Nothing to do for a stream published here,
    /// or one the cluster does not know (the caller's 404 follows).
    pub(crate) async fn ensure_stream(
        self: &Arc<Self>,
        room: &str,
        stream: &str,
    ) -> Result<(), ApiError> {
        let Some(cluster) = self.settings.cluster.clone() else {
            return Ok(());
        };
        if self.has_stream(room, stream) {
            return Ok(());
        }
        let _setup = self.pull_setup.lock().await;
        if self.has_stream(room, stream) {
            return Ok(());
        }
        let Some(entry) = cluster.stream(room, stream) else {
            return Ok(());
        };
        if entry.record.node == cluster.node_id() || !entry.record.ready {
            return Ok(());
        }
        let origin = cluster.node(&entry.record.node).ok_or_else(|| {
            ApiError::cluster_unavailable(&format!(
                "the stream's origin node {} is not up",
                entry.record.node
            ))
        })?;
        let link = self.link_with(&cluster, &origin).await?;
        self.pull_over(&cluster, &link, &origin, (room, stream))
            .await
    }

    /// The link with `peer` if it is up.
    fn live_link(&self, peer: &str) -> Option<Link> {
        let link = lock(&self.links).get(peer).cloned()?;
        let up = lock(&self.registry)
            .sessions
            .get(&link.session)
            .is_some_and(|s| s.connected);
        up.then_some(link)
    }

    /// The link with `peer`, set up if there is none: opened from here if this node's id sorts
    /// first, else by `peer` at this node's request (so that two nodes never open two links).
    pub(crate) async fn link_with(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        peer: &NodeRecord,
    ) -> Result<Link, ApiError> {
        if let Some(link) = self.live_link(&peer.id) {
            return Ok(link);
        }
        let _setup = self.link_setup.lock().await;
        if let Some(link) = self.live_link(&peer.id) {
            return Ok(link);
        }
        if cluster.node_id() < peer.id.as_str() {
            return self.dial(cluster, peer).await;
        }
        let resp = cluster
            .http
            .post(format!("{}/cluster/dial", peer.http))
            .header(NODE_TOKEN_HEADER, cluster.sign(Purpose::Pull, None, None))
            .send()
            .await
            .map_err(|e| upstream_error(&peer.id, "unreachable", e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(upstream_error(
                &peer.id,
                "did not open the link",
                status.as_str().to_owned() + " " + text.trim(),
            ));
        }
        // It answers once its side is up; this side follows within moments.
        let deadline = tokio::time::Instant::now() + self.settings.dtls_timeout;
        loop {
            if let Some(link) = self.live_link(&peer.id) {
                return Ok(link);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(upstream_error(
                    &peer.id,
                    "link",
                    "opened there, not up here",
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens the link to `peer` from this side (ICE-controlling, DTLS client).
    async fn dial(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        peer: &NodeRecord,
    ) -> Result<Link, ApiError> {
        let origin = peer;
        let worker = self.pick_worker();
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (local_ufrag, local_pwd) = (random_string(8), random_string(24));
        let fingerprint = hex(&self.identity.fingerprint_sha256());
        let token = cluster.sign(Purpose::Pull, None, Some(&fingerprint));
        let answer: LinkAnswer = async {
            let resp = cluster
                .http
                .post(format!("{}/cluster/link", origin.http))
                .header(NODE_TOKEN_HEADER, token)
                .json(&LinkRequest {
                    ice_ufrag: local_ufrag.clone(),
                    session: id,
                })
                .send()
                .await
                .map_err(|e| upstream_error(&origin.id, "unreachable", e))?;
            let status = resp.status();
            if !status.is_success() {
                let text = resp.text().await.unwrap_or_default();
                return Err(upstream_error(
                    &origin.id,
                    "refused the link",
                    status.as_str().to_owned() + " " + text.trim(),
                ));
            }
            resp.json()
                .await
                .map_err(|e| upstream_error(&origin.id, "bad link answer", e))
        }
        .await?;
        let expected = Fingerprint {
            algorithm: FingerprintAlgorithm::Sha256,
            value: unhex(&answer.fingerprint).ok_or_else(|| {
                upstream_error(&origin.id, "bad fingerprint", &answer.fingerprint)
            })?,
        };
        let ice = IceCredentials {
            local_ufrag,
            local_pwd,
            remote_ufrag: answer.ice_ufrag.clone(),
        };
        let mut info = link_info(
            id,
            SessionRole::Link,
            worker,
            &origin.id,
            answer.candidate.ip(),
        );
        info.remote_ufrag = answer.ice_ufrag.clone();
        lock(&self.registry).sessions.insert(id, info);
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        lock(&self.bound_waiters).insert(id, bound_tx);
        let add = Command::AddUpstream {
            id,
            ice,
            remote_pwd: answer.ice_pwd.clone(),
            remote: answer.candidate,
            seed: rand::thread_rng().gen::<u64>() | 1,
        };
        if let Err(e) = self.dp.send(worker, add) {
            self.forget(id);
            return Err(ApiError::new(503, format!("relay busy: {e}")));
        }
        if !matches!(
            tokio::time::timeout(CHECK_TIMEOUT, bound_rx).await,
            Ok(Ok(()))
        ) {
            lock(&self.bound_waiters).remove(&id);
            self.end_session_because(id, "cluster: link ICE timeout");
            return Err(upstream_error(
                &origin.id,
                "ICE",
                "no answer to the link's checks",
            ));
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let relay = Arc::clone(self);
        self.spawn_dtls_as(id, worker, expected, true, move |keys| {
            relay
                .dp
                .send(worker, Command::SetKeys { session: id, keys })
                .ok()?;
            lock(&relay.registry).sessions.get_mut(&id)?.connected = true;
            let _ = done_tx.send(());
            Some(())
        });
        let timeout = self.settings.dtls_timeout + Duration::from_secs(1);
        if !matches!(tokio::time::timeout(timeout, done_rx).await, Ok(Ok(()))) {
            self.end_session_because(id, "cluster: link DTLS timeout");
            return Err(upstream_error(
                &origin.id,
                "DTLS",
                "the link's handshake failed",
            ));
        }
        let link = Link {
            session: id,
            peer_session: answer.session,
            worker,
            http: origin.http.clone(),
        };
        lock(&self.links).insert(origin.id.clone(), link.clone());
        tracing::info!(
            session = id,
            worker,
            node = %origin.id,
            "cluster: linked to node"
        );
        Ok(link)
    }

    /// Asks the origin to carry `room`/`stream` over `link`, and publishes it here.
    async fn pull_over(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        link: &Link,
        origin: &NodeRecord,
        (room, stream): (&str, &str),
    ) -> Result<(), ApiError> {
        let token = cluster.sign(Purpose::Pull, Some((room, stream)), None);
        let url = format!(
            "{}/cluster/link/{}/streams/{}/{}",
            link.http,
            link.peer_session,
            path_segment(room),
            path_segment(stream)
        );
        let resp = cluster
            .http
            .post(url)
            .header(NODE_TOKEN_HEADER, token)
            .send()
            .await
            .map_err(|e| upstream_error(&origin.id, "unreachable", e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(()); // gone meanwhile: the caller's 404
        }
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(upstream_error(
                &origin.id,
                "refused the pull",
                status.as_str().to_owned() + " " + text.trim(),
            ));
        }
        let pulled: PulledStream = resp
            .json()
            .await
            .map_err(|e| upstream_error(&origin.id, "bad pull answer", e))?;
        let mut tracks = Vec::new();
        let mut commands = Vec::new();
        for t in pulled.tracks {
            let Some(kind) = t.media.kind.track_kind() else {
                continue;
            };
            if t.layers.is_empty() {
                continue;
            }
            let ids: Vec<TrackId> = t
                .layers
                .iter()
                .map(|_| self.next_track.fetch_add(1, Ordering::Relaxed))
                .collect();
            let codec = &t.media.codec;
            for (layer, &track) in t.layers.iter().zip(&ids) {
                commands.push(Command::Publish {
                    session: link.session,
                    track,
                    ssrc: Some(layer.ssrc),
                    by_mid: None,
                    kind,
                    nack: true,
                    rtx: layer
                        .rtx_ssrc
                        .filter(|_| codec.rtx.is_some())
                        .map(|ssrc| PublisherRtx {
                            ssrc,
                            apt: codec.payload_type,
                        }),
                    transport_cc: None,
                    codec: VideoCodec::from_name(&codec.name),
                    // The origin forwards as to any subscriber: without the descriptor.
                    dependency_descriptor: None,
                });
                commands.push(Command::PulledTrack {
                    track,
                    layer: layer.rid.is_some(),
                });
            }
            let layers = t
                .layers
                .iter()
                .zip(&ids)
                .filter_map(|(l, id)| Some((l.rid.clone()?, *id)))
                .collect();
            tracks.push(PublishedTrack {
                id: ids[0],
                kind,
                ssrc: Some(t.layers[0].ssrc),
                media: t.media,
                layers,
            });
        }
        for c in commands {
            self.dp
                .send(link.worker, c)
                .map_err(|e| ApiError::new(503, format!("relay busy: {e}")))?;
        }
        let mut reg = lock(&self.registry);
        if !reg.sessions.contains_key(&link.session) {
            return Err(upstream_error(&origin.id, "link", "ended while pulling"));
        }
        let s = reg
            .room(room)
            .streams
            .entry(stream.to_string())
            .or_default();
        if s.publisher.is_some() {
            return Ok(()); // published here meanwhile
        }
        s.publisher = Some(link.session);
        s.publisher_worker = link.worker;
        s.tracks = tracks;
        s.stalled.clear();
        s.pulled_from = Some(origin.id.clone());
        tracing::info!(
            room,
            stream,
            node = %origin.id,
            tracks = s.tracks.len(),
            identity = %pulled.identity,
            "cluster: pulling stream from its origin"
        );
        Ok(())
    }

    /// Stops pulling `room`/`stream` here (its viewers end; they hear of the stream again if it
    /// lives on), and tells the origin to stop sending it.
    pub(super) fn unpull(&self, room: &str, stream: &str) {
        let taken = {
            let mut reg = lock(&self.registry);
            let Some(r) = reg.rooms.get_mut(room) else {
                return;
            };
            let Some(s) = r.streams.get(stream) else {
                return;
            };
            let (Some(node), Some(link)) = (s.pulled_from.clone(), s.publisher) else {
                return;
            };
            let Some(s) = r.streams.remove(stream) else {
                return;
            };
            let tracks: Vec<TrackId> = s
                .tracks
                .iter()
                .flat_map(|t| {
                    let layers: Vec<TrackId> = t.layers.iter().map(|(_, id)| *id).collect();
                    if layers.is_empty() {
                        vec![t.id]
                    } else {
                        layers
                    }
                })
                .collect();
            (node, link, tracks, s.subscribers)
        };
        let (node, link_session, tracks, viewers) = taken;
        for v in viewers {
            self.end_session_because(v, "cluster: pulled stream ended");
        }
        let link = lock(&self.links).get(&node).cloned();
        let Some(link) = link.filter(|l| l.session == link_session) else {
            return;
        };
        for track in tracks {
            let _ = self.dp.send(
                link.worker,
                Command::Unpublish {
                    session: link.session,
                    track,
                },
            );
        }
        let Some(cluster) = self.settings.cluster.clone() else {
            return;
        };
        let url = format!(
            "{}/cluster/link/{}/streams/{}/{}",
            link.http,
            link.peer_session,
            path_segment(room),
            path_segment(stream)
        );
        let token = cluster.sign(Purpose::Pull, Some((room, stream)), None);
        self.runtime.spawn(async move {
            let _ = cluster
                .http
                .delete(url)
                .header(NODE_TOKEN_HEADER, token)
                .send()
                .await;
        });
    }

    /// The last viewer of a pulled stream left: it is pulled on for `pull_linger`, then let go
    /// unless someone watches it again.
    pub(super) fn linger(&self, room: String, stream: String, link: Option<SessionId>) {
        let (Some(cluster), Some(me)) = (self.settings.cluster.clone(), self.me.upgrade()) else {
            return;
        };
        let linger = cluster.config.pull_linger;
        self.runtime.spawn(async move {
            tokio::time::sleep(linger).await;
            let idle = lock(&me.registry)
                .rooms
                .get(&room)
                .and_then(|r| r.streams.get(&stream))
                .is_some_and(|s| s.subscribers.is_empty() && s.publisher == link);
            if idle {
                me.unpull(&room, &stream);
            }
        });
    }

    /// Another node opens the link with this one. `edge_fingerprint` (from its node token) is
    /// the only certificate the link's DTLS accepts.
    pub(crate) fn open_link(
        self: &Arc<Self>,
        edge: &NodeRecord,
        edge_fingerprint: Vec<u8>,
        request: LinkRequest,
    ) -> Result<LinkAnswer, ApiError> {
        let worker = self.pick_worker();
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let ice = IceCredentials {
            local_ufrag: random_string(8),
            local_pwd: random_string(24),
            remote_ufrag: request.ice_ufrag.clone(),
        };
        let mut info = link_info(id, SessionRole::Link, worker, &edge.id, edge.media);
        info.remote_ufrag = request.ice_ufrag;
        lock(&self.registry).sessions.insert(id, info);
        // A link the other node opened again replaces the old one (it lost it, say).
        let old = lock(&self.links).insert(
            edge.id.clone(),
            Link {
                session: id,
                peer_session: request.session,
                worker,
                http: edge.http.clone(),
            },
        );
        if let Some(old) = old {
            self.end_session(old.session);
        }
        let answer = LinkAnswer {
            session: id,
            ice_ufrag: ice.local_ufrag.clone(),
            ice_pwd: ice.local_pwd.clone(),
            candidate: self.link_candidate(worker),
            fingerprint: hex(&self.identity.fingerprint_sha256()),
        };
        if let Err(e) = self.dp.send(worker, Command::AddSession { id, ice }) {
            self.forget(id);
            return Err(ApiError::new(503, format!("relay busy: {e}")));
        }
        let expected = Fingerprint {
            algorithm: FingerprintAlgorithm::Sha256,
            value: edge_fingerprint,
        };
        let relay = Arc::clone(self);
        self.spawn_dtls_as(id, worker, expected, false, move |keys| {
            relay.start_feeds(id, worker, keys)
        });
        Ok(answer)
    }

    /// The address other nodes reach worker `worker` at.
    fn link_candidate(&self, worker: usize) -> SocketAddr {
        let local = self.dp.local_addr(worker);
        match &self.settings.cluster {
            Some(c) => SocketAddr::new(c.me().media, local.port()),
            None => self.candidate(worker),
        }
    }

    /// Origin side: link `link` (of node `edge`) carries `room`/`stream` from now on, every
    /// layer of every track, or already does (then the same description again).
    pub(crate) fn link_stream(
        &self,
        link: SessionId,
        edge: &str,
        (room, stream): (&str, &str),
    ) -> Result<PulledStream, ApiError> {
        let mut reg = lock(&self.registry);
        let ok = reg
            .sessions
            .get(&link)
            .is_some_and(|s| s.role == SessionRole::Link && s.peer_node.as_deref() == Some(edge));
        if !ok {
            return Err(ApiError::new(404, "no such link from this node"));
        }
        let found = reg
            .rooms
            .get(room)
            .and_then(|r| r.streams.get(stream))
            .filter(|s| !s.tracks.is_empty() && s.pulled_from.is_none());
        let Some(s) = found else {
            return Err(ApiError::new(
                404,
                format!("stream '{stream}' of room '{room}' is not published on this node"),
            ));
        };
        let (tracks, pub_worker) = (s.tracks.clone(), s.publisher_worker);
        let identity = s
            .publisher
            .and_then(|p| reg.sessions.get(&p))
            .map(|p| p.identity.clone())
            .unwrap_or_default();
        let Some(info) = reg.sessions.get_mut(&link) else {
            return Err(ApiError::new(404, "no such link from this node"));
        };
        let published: Vec<TrackId> = tracks.iter().map(|t| t.id).collect();
        let already = info.feeds.iter().any(|f| published.contains(&f.published));
        let mut new_feeds = Vec::new();
        if !already {
            let mut rng = rand::thread_rng();
            for t in &tracks {
                let layers: Vec<TrackId> = if t.layers.is_empty() {
                    vec![t.id]
                } else {
                    t.layers.iter().map(|(_, id)| *id).collect()
                };
                for layer in layers {
                    let ssrc = rng.gen::<u32>() | 1;
                    let rtx = t.media.codec.rtx.map(|pt| (rng.gen::<u32>() | 1, pt));
                    new_feeds.push(Feed {
                        published: t.id,
                        track: TrackRef {
                            id: layer,
                            worker: pub_worker,
                            kind: t.kind,
                        },
                        params: SubscriptionParams {
                            rtx,
                            ..SubscriptionParams::with_ssrc(ssrc)
                        },
                        wanted: layer,
                        auto: None,
                        auto_temporal: None,
                    });
                }
            }
            if info.connected {
                for f in &new_feeds {
                    let _ = self
                        .dp
                        .subscribe(info.worker, link, f.track, f.params.clone());
                }
            }
            info.feeds.extend(new_feeds);
        }
        let feeds = info.feeds.clone();
        if !already {
            if let Some(s) = reg.room(room).streams.get_mut(stream) {
                s.subscribers.push(link);
            }
        }
        let pulled = tracks
            .iter()
            .map(|t| PulledTrack {
                media: t.media.clone(),
                layers: feeds
                    .iter()
                    .filter(|f| f.published == t.id)
                    .map(|f| PulledLayer {
                        rid: t
                            .layers
                            .iter()
                            .find(|(_, id)| *id == f.track.id)
                            .map(|(rid, _)| rid.clone()),
                        ssrc: f.params.ssrc,
                        rtx_ssrc: f.params.rtx.map(|(ssrc, _)| ssrc),
                    })
                    .collect(),
            })
            .collect();
        Ok(PulledStream {
            identity,
            tracks: pulled,
        })
    }

    /// Origin side: link `link` no longer carries `room`/`stream`.
    pub(crate) fn unlink_stream(&self, link: SessionId, edge: &str, (room, stream): (&str, &str)) {
        let mut reg = lock(&self.registry);
        let Some(published) = reg
            .rooms
            .get_mut(room)
            .and_then(|r| r.streams.get_mut(stream))
            .map(|s| {
                s.subscribers.retain(|x| *x != link);
                s.tracks.iter().map(|t| t.id).collect::<Vec<TrackId>>()
            })
        else {
            return;
        };
        let Some(info) = reg.sessions.get_mut(&link) else {
            return;
        };
        if info.role != SessionRole::Link || info.peer_node.as_deref() != Some(edge) {
            return;
        }
        let (gone, kept): (Vec<Feed>, Vec<Feed>) = std::mem::take(&mut info.feeds)
            .into_iter()
            .partition(|f| published.contains(&f.published));
        info.feeds = kept;
        for f in gone {
            let _ = self.dp.send(
                info.worker,
                Command::Unsubscribe {
                    session: link,
                    track: f.track.id,
                },
            );
        }
    }

    /// Acts on a change the cluster's watch saw: room events for streams of other nodes, pulls
    /// from a node that is no longer a stream's origin, a stream taken over by its publisher on
    /// another node, links to a node that went away, revocations made on any node.
    pub(crate) fn on_cluster_change(&self, change: Change) {
        let Some(cluster) = self.settings.cluster.clone() else {
            return;
        };
        let me = cluster.node_id().to_string();
        match change {
            Change::Stream {
                room,
                stream,
                before,
                now,
            } => {
                let origin = now.as_ref().filter(|n| n.ready).map(|n| n.node.clone());
                let pulled_from = lock(&self.registry)
                    .rooms
                    .get(&room)
                    .and_then(|r| r.streams.get(&stream))
                    .and_then(|s| s.pulled_from.clone());
                if pulled_from.is_some() && pulled_from != origin {
                    self.unpull(&room, &stream);
                }
                if let Some(b) = &before {
                    let elsewhere = now.as_ref().is_some_and(|n| n.node != me);
                    if b.node == me && elsewhere {
                        // Taken over by the same publisher on another node.
                        let ours = lock(&self.registry)
                            .sessions
                            .get(&b.session)
                            .is_some_and(|s| s.role == SessionRole::Publisher && s.room == room);
                        if ours {
                            self.end_session_because(
                                b.session,
                                "cluster: stream taken over on another node",
                            );
                        }
                    }
                }
                let was = before
                    .as_ref()
                    .filter(|b| b.ready && b.node != me)
                    .map(|b| (&b.node, b.session));
                let is = now
                    .as_ref()
                    .filter(|n| n.ready && n.node != me)
                    .map(|n| (&n.node, n.session));
                if was == is {
                    return;
                }
                let mut reg = lock(&self.registry);
                let events = &reg.room(&room).events;
                if let Some(n) = now.as_ref().filter(|n| n.ready && n.node != me) {
                    let _ = events.send(RoomEvent::Published {
                        stream,
                        identity: n.identity.clone(),
                    });
                } else if was.is_some() {
                    let _ = events.send(RoomEvent::Unpublished { stream });
                }
            }
            Change::NodeGone(node) if node != me => {
                let doomed: Vec<SessionId> = lock(&self.registry)
                    .sessions
                    .values()
                    .filter(|s| s.role.is_link() && s.peer_node.as_deref() == Some(&node))
                    .map(|s| s.id)
                    .collect();
                for id in doomed {
                    self.end_session_because(id, "cluster: peer node gone");
                }
            }
            Change::NodeGone(_) => {}
            Change::Revocation(r) => {
                let at = UNIX_EPOCH + Duration::from_secs(r.at);
                self.revocations
                    .revoke_identity(r.room.as_deref(), &r.identity, at);
                self.expire_sessions(SystemTime::now());
            }
        }
    }

    /// The cluster's part of `/metrics` (empty outside a cluster): health, etcd traffic, links
    /// and what they carry.
    pub fn cluster_metrics(&self) -> String {
        let Some(cluster) = &self.settings.cluster else {
            return String::new();
        };
        let reg = lock(&self.registry);
        let links = reg
            .sessions
            .values()
            .filter(|s| s.role == SessionRole::Link)
            .count();
        let pulled = reg
            .rooms
            .values()
            .flat_map(|r| r.streams.values())
            .filter(|s| s.pulled_from.is_some())
            .count();
        let to_edges: usize = reg
            .rooms
            .values()
            .flat_map(|r| r.streams.values())
            .filter(|s| s.pulled_from.is_none())
            .map(|s| {
                s.subscribers
                    .iter()
                    .filter(|id| {
                        reg.sessions
                            .get(id)
                            .is_some_and(|x| x.role == SessionRole::Link)
                    })
                    .count()
            })
            .sum();
        let stats = &cluster.stats;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let draining = cluster.nodes().iter().filter(|n| n.draining).count();
        let rows: [(&str, &str, &str, String); 10] = [
            (
                "tern_cluster_healthy",
                "gauge",
                "1 while this node holds its etcd lease",
                u8::from(cluster.health().is_ok()).to_string(),
            ),
            (
                "tern_cluster_nodes",
                "gauge",
                "nodes up in the cluster, this one included",
                cluster.nodes().len().to_string(),
            ),
            (
                "tern_cluster_draining_nodes",
                "gauge",
                "nodes up that drain (no new sessions are placed there)",
                draining.to_string(),
            ),
            (
                "tern_cluster_links",
                "gauge",
                "links with other nodes (one per pair, carrying streams either way)",
                links.to_string(),
            ),
            (
                "tern_cluster_pulled_streams",
                "gauge",
                "streams this node pulls from their origin (one inbound copy each)",
                pulled.to_string(),
            ),
            (
                "tern_cluster_edge_copies",
                "gauge",
                "copies of streams originated here sent to edge nodes (one per stream and edge)",
                to_edges.to_string(),
            ),
            (
                "tern_cluster_etcd_writes_total",
                "counter",
                "writes to etcd's key space (records, transactions, grants, revokes)",
                get(&stats.etcd_writes).to_string(),
            ),
            (
                "tern_cluster_lease_renewals_total",
                "counter",
                "lease keep-alives sent to etcd",
                get(&stats.lease_renewals).to_string(),
            ),
            (
                "tern_cluster_lease_failures_total",
                "counter",
                "etcd lease renewals that failed",
                get(&stats.lease_failures).to_string(),
            ),
            (
                "tern_cluster_forwarded_total",
                "counter",
                "client requests passed on to another node",
                get(&stats.forwarded).to_string(),
            ),
        ];
        let mut out = String::new();
        for (series, kind, help, value) in rows {
            let name = series.split('{').next().unwrap_or(series);
            if !kind.is_empty() {
                out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            }
            out.push_str(&format!("{series} {value}\n"));
        }
        out
    }

    /// Every stream this node originates: (room, stream, identity, publisher session), for a
    /// new lease.
    pub(crate) fn originated(&self) -> Vec<(String, String, String, u64)> {
        let reg = lock(&self.registry);
        reg.rooms
            .iter()
            .flat_map(|(room, r)| {
                r.streams.iter().filter_map(|(name, s)| {
                    let p = reg.sessions.get(&s.publisher?)?;
                    (p.role == SessionRole::Publisher)
                        .then(|| (room.clone(), name.clone(), p.identity.clone(), p.id))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_non_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
    }

    #[test]
    fn path_segments_escape_what_a_path_would_split_on() {
        assert_eq!(path_segment("room-1.a_b~"), "room-1.a_b~");
        assert_eq!(path_segment("a/b c%"), "a%2Fb%20c%25");
    }
}
