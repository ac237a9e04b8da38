//! `Relay`: the slow path's state and the operations behind the HTTP API — publish, subscribe,
//! end a session — driving the datapath with commands and finishing each session's DTLS
//! handshake before any key reaches a worker.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::mpsc;

use super::auth::{
    self, Action, AuthError, Grant, Revocations, TokenVerifier, Webhook, WebhookRequest,
};
use super::autolayer::AutoLayers;
use super::cluster::{ClaimError, Cluster};
use super::dtls::{self, DtlsIdentity};
use super::dtls::{DtlsStats, Fingerprint, FingerprintAlgorithm};
use super::rooms::{Feed, PublishedTrack, Registry, RoomEvent, SessionInfo, SessionRole};
use crate::datapath::{
    Command, Datapath, EgressExtensions, Event, LayerLimit, SessionId, SubscriptionParams, TrackId,
    TrackRef,
};
use crate::ice::IceCredentials;
use crate::wire::keyframe::VideoCodec;
use crate::wire::sdp::{self, AnswerParams, Role};

pub(crate) mod cascade;

/// Why a signalling request failed: an HTTP status and a reason safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub reason: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }
}

impl ApiError {
    /// 503 with Retry-After while the node cannot reach etcd.
    pub fn cluster_unavailable(why: &str) -> Self {
        Self {
            status: 503,
            reason: format!("cluster unavailable: {why}"),
            retry_after: Some(2),
        }
    }

    /// 503 with Retry-After while the relay drains.
    pub fn draining() -> Self {
        Self {
            status: 503,
            reason: "draining: try another relay".into(),
            retry_after: Some(5),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        // AuthError's Display never contains the token.
        ApiError::new(e.status(), e.to_string())
    }
}

/// Settings of the slow path fixed at start (`Policy` holds what a reload may change).
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// How long a DTLS handshake may take.
    pub dtls_timeout: Duration,
    /// Address put in candidates instead of the bound one (NAT).
    pub advertised: Option<IpAddr>,
    /// How often the webhook is asked again about live sessions (None: never).
    pub webhook_recheck: Option<Duration>,
    /// This node's part in a cluster (`[cluster]`), if any.
    pub cluster: Option<Arc<Cluster>>,
    /// Automatic layers pause a subscriber's video below the lowest layer
    /// (`media.below_lowest_layer = "pause"`) rather than keep that layer.
    pub pause_below_lowest: bool,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            dtls_timeout: Duration::from_secs(10),
            advertised: None,
            webhook_recheck: Some(Duration::from_secs(30)),
            cluster: None,
            pause_below_lowest: false,
        }
    }
}

/// Who may publish and subscribe, and the slow path's limits: what a reload (SIGHUP) replaces
/// while sessions keep flowing. Sessions admitted under the old policy are not re-checked
/// against the new keys; they live until their token expires, they are revoked, or the
/// webhook (if any) refuses them on its next re-check.
pub struct Policy {
    pub verifier: TokenVerifier,
    pub webhook: Option<Webhook>,
    pub admin_token: Option<String>,
    /// Sessions one client address may hold.
    pub sessions_per_ip: usize,
    /// Subscribers one stream may have.
    pub max_subscribers_per_stream: usize,
    /// HTTP requests per minute per client address.
    pub requests_per_minute: u32,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the admin token or key material.
        f.debug_struct("Policy")
            .field("algorithm", &self.verifier.algorithm())
            .field("webhook", &self.webhook.is_some())
            .field("admin_api", &self.admin_token.is_some())
            .field("sessions_per_ip", &self.sessions_per_ip)
            .field(
                "max_subscribers_per_stream",
                &self.max_subscribers_per_stream,
            )
            .field("requests_per_minute", &self.requests_per_minute)
            .finish()
    }
}

impl Policy {
    /// A policy with the default limits.
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            verifier,
            webhook: None,
            admin_token: None,
            sessions_per_ip: 20,
            max_subscribers_per_stream: 500,
            requests_per_minute: 120,
        }
    }
}

/// A created session, as the HTTP layer answers it.
#[derive(Debug, Clone)]
pub struct Created {
    pub session: SessionId,
    pub answer: String,
    pub etag: String,
}

/// The slow path.
pub struct Relay {
    pub dp: Arc<Datapath>,
    pub identity: Arc<DtlsIdentity>,
    policy: RwLock<Arc<Policy>>,
    pub revocations: Revocations,
    pub settings: RelaySettings,
    pub registry: Mutex<Registry>,
    dtls_inboxes: Mutex<HashMap<SessionId, dtls::DtlsInbox>>,
    next_session: AtomicU64,
    next_track: AtomicU32,
    pub draining: AtomicBool,
    /// DTLS counters of every session's handshake (resent final flights, drops, …).
    pub dtls_stats: Arc<DtlsStats>,
    /// Layer rates and subscribers' allocations for automatic layers.
    pub auto_layers: AutoLayers,
    /// Cluster: the link with each other node, by its id (one per pair, opened by either).
    links: Mutex<HashMap<String, cascade::Link>>,
    /// Cluster: one pull is set up at a time, and one link.
    pull_setup: tokio::sync::Mutex<()>,
    link_setup: tokio::sync::Mutex<()>,
    /// The slow path's runtime, for tasks started from the event thread.
    runtime: tokio::runtime::Handle,
    /// This relay, for tasks it starts from `&self`.
    me: std::sync::Weak<Relay>,
    /// Set when the relay stops: long-lived responses (room feeds) end, so that the HTTP
    /// server's graceful shutdown does not wait for them.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Sessions waiting for their first authenticated address (pulls wait before DTLS).
    bound_waiters: Mutex<HashMap<SessionId, tokio::sync::oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

fn random_string(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The offer's certificate fingerprint to check the DTLS client against: SHA-256 if offered,
/// else the first algorithm we support.
fn expected_fingerprint(offered: &[sdp::Fingerprint]) -> Option<Fingerprint> {
    let usable =
        |f: &&sdp::Fingerprint| FingerprintAlgorithm::from_sdp_name(&f.algorithm).is_some();
    let chosen = offered
        .iter()
        .find(|f| f.algorithm == "sha-256")
        .or_else(|| offered.iter().find(usable))?;
    Some(Fingerprint {
        algorithm: FingerprintAlgorithm::from_sdp_name(&chosen.algorithm)?,
        value: chosen.value.clone(),
    })
}

impl SessionInfo {
    /// A new, not yet connected session of `grant`'s holder, with a fresh ETag.
    fn new(
        id: SessionId,
        role: SessionRole,
        (room, stream): (&str, &str),
        worker: usize,
        grant: &Grant,
        client_ip: IpAddr,
        offer: &sdp::Offer,
    ) -> Self {
        SessionInfo {
            id,
            role,
            room: room.to_string(),
            stream: stream.to_string(),
            worker,
            identity: grant.identity.clone(),
            grant: grant.clone(),
            client_ip,
            etag: format!("\"{}\"", random_string(12)),
            remote_ufrag: offer.ice_ufrag.clone(),
            mids: offer.media.iter().map(|m| m.mid.clone()).collect(),
            connected: false,
            feeds: Vec::new(),
            peer_node: None,
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Relay {
    /// A subscriber's (or a link's) DTLS is up: its keys to its worker, then its feeds as they
    /// are now (a layer may have stopped meanwhile), installed under the registry's lock so that
    /// no layer change is sent before them.
    pub(super) fn start_feeds(
        &self,
        id: SessionId,
        worker: usize,
        keys: crate::datapath::SessionKeys,
    ) -> Option<()> {
        self.dp
            .send(worker, Command::SetKeys { session: id, keys })
            .ok()?;
        let mut reg = lock(&self.registry);
        let s = reg.sessions.get_mut(&id)?;
        s.connected = true;
        for feed in &s.feeds {
            let params = SubscriptionParams {
                limit: feed.limit(),
                ..feed.params.clone()
            };
            self.dp.subscribe(worker, id, feed.track, params).ok()?;
        }
        Some(())
    }

    /// A relay over a started datapath. Call from within the slow path's tokio runtime.
    pub fn new(
        dp: Arc<Datapath>,
        identity: Arc<DtlsIdentity>,
        policy: Policy,
        settings: RelaySettings,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            stopping: tokio::sync::watch::channel(false).0,
            dp,
            identity,
            policy: RwLock::new(Arc::new(policy)),
            revocations: Revocations::new(),
            settings,
            registry: Mutex::new(Registry::default()),
            dtls_inboxes: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            next_track: AtomicU32::new(1),
            draining: AtomicBool::new(false),
            dtls_stats: Arc::new(DtlsStats::default()),
            auto_layers: AutoLayers::default(),
            links: Mutex::new(HashMap::new()),
            pull_setup: tokio::sync::Mutex::new(()),
            link_setup: tokio::sync::Mutex::new(()),
            runtime: tokio::runtime::Handle::current(),
            bound_waiters: Mutex::new(HashMap::new()),
        })
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the policy (a reload); live sessions are untouched.
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
    }

    /// Checks a bearer token for `action` on `room`/`stream`, then the webhook if configured.
    pub async fn authorize(
        &self,
        bearer: Option<&str>,
        action: Action,
        room: &str,
        stream: &str,
        client_ip: IpAddr,
    ) -> Result<Grant, ApiError> {
        let token = bearer.ok_or(AuthError::Missing)?;
        let policy = self.policy();
        let grant = policy.verifier.verify(token, SystemTime::now())?;
        if self.revocations.is_revoked(&grant) {
            return Err(AuthError::Revoked.into());
        }
        auth::authorize(&grant, action, room, stream)?;
        if let Some(webhook) = &policy.webhook {
            let req = WebhookRequest {
                action,
                room: room.to_string(),
                stream: stream.to_string(),
                identity: grant.identity.clone(),
                client_ip,
            };
            webhook.check(&req).await?;
        }
        Ok(grant)
    }

    /// A new session from `client_ip` with `offer_sdp`: refused while draining or over the
    /// per-address limit, else the parsed offer.
    fn admit(&self, client_ip: IpAddr, offer_sdp: &str) -> Result<sdp::Offer, ApiError> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(ApiError::draining());
        }
        if lock(&self.registry).sessions_from(client_ip) >= self.policy().sessions_per_ip {
            return Err(ApiError::new(429, "too many sessions from this address"));
        }
        sdp::parse_offer(offer_sdp).map_err(|e| ApiError::new(400, format!("bad offer: {e}")))
    }

    /// Tells every room feed's listeners to connect again (to another node): this one drains.
    pub fn announce_reconnect(&self) {
        for room in lock(&self.registry).rooms.values() {
            let _ = room.events.send(RoomEvent::Reconnect);
        }
    }

    /// Whether this node takes a new client session itself: not while draining, nor (in a
    /// cluster) beyond `cluster.max_sessions`.
    pub fn takes_sessions(&self) -> bool {
        if self.draining.load(Ordering::Relaxed) {
            return false;
        }
        let max = self
            .settings
            .cluster
            .as_ref()
            .map_or(0, |c| c.config.max_sessions as usize);
        max == 0 || lock(&self.registry).client_sessions() < max
    }

    fn pick_worker(&self) -> usize {
        let counts = lock(&self.registry).sessions_per_worker(self.dp.worker_count());
        counts
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| **c)
            .map(|(i, _)| i)
            .unwrap_or(0)
    }

    /// A worker (the least loaded), a session id and fresh ICE credentials for a new session.
    fn allocate(&self, offer: &sdp::Offer) -> (usize, SessionId, IceCredentials) {
        let worker = self.pick_worker();
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let ice = IceCredentials {
            local_ufrag: random_string(8),
            local_pwd: random_string(24),
            remote_ufrag: offer.ice_ufrag.clone(),
        };
        (worker, id, ice)
    }

    fn candidate(&self, worker: usize) -> SocketAddr {
        let local = self.dp.local_addr(worker);
        match self.settings.advertised {
            Some(ip) => SocketAddr::new(ip, local.port()),
            None => local,
        }
    }

    /// The worker's passive ICE-TCP candidate, at the same (advertised) address.
    fn tcp_candidate(&self, worker: usize) -> Option<SocketAddr> {
        let port = self.dp.tcp_addr(worker)?.port();
        Some(SocketAddr::new(self.candidate(worker).ip(), port))
    }

    /// WHIP: publish `stream` in `room` with an SDP offer.
    pub async fn publish(
        self: &Arc<Self>,
        grant: Grant,
        room: &str,
        stream: &str,
        offer_sdp: &str,
        client_ip: IpAddr,
    ) -> Result<Created, ApiError> {
        let offer = self.admit(client_ip, offer_sdp)?;
        {
            let mut reg = lock(&self.registry);
            let r = reg.room(room);
            let local = |s: &super::rooms::Stream| s.publisher.is_some() && s.pulled_from.is_none();
            if r.streams.get(stream).is_some_and(local) {
                return Err(ApiError::new(
                    409,
                    format!("stream '{stream}' is already published in this room"),
                ));
            }
        }
        let (worker, id, ice) = self.allocate(&offer);
        let params = AnswerParams {
            ice_ufrag: &ice.local_ufrag,
            ice_pwd: &ice.local_pwd,
            fingerprint_sha256: self.identity.fingerprint_sha256(),
            candidate: self.candidate(worker),
            tcp_candidate: self.tcp_candidate(worker),
            role: Role::Publish,
            session_id: id,
        };
        let answer = sdp::answer(&offer, &params)
            .map_err(|e| ApiError::new(400, format!("unsupported offer: {e}")))?;
        let mut tracks = Vec::new();
        for m in &answer.media {
            let Some(kind) = m.kind.track_kind() else {
                continue;
            };
            let mut next_id = || self.next_track.fetch_add(1, Ordering::Relaxed);
            let layers: Vec<(String, TrackId)> =
                m.rids.iter().map(|rid| (rid.clone(), next_id())).collect();
            let track = PublishedTrack {
                id: layers.first().map_or_else(&mut next_id, |(_, id)| *id),
                kind,
                ssrc: m.ssrc,
                media: m.clone(),
                layers,
            };
            if track.ssrc.is_none() && track.by_mid().is_none() {
                return Err(ApiError::new(
                    400,
                    format!(
                        "media section '{}' signals neither its SSRC (a=ssrc) nor the MID \
                         header extension (a=extmap:<id> urn:ietf:params:rtp-hdrext:sdes:mid), \
                         so its packets could not be told apart",
                        m.mid
                    ),
                ));
            }
            tracks.push(track);
        }
        let info = SessionInfo::new(
            id,
            SessionRole::Publisher,
            (room, stream),
            worker,
            &grant,
            client_ip,
            &offer,
        );
        let etag = info.etag.clone();
        if let Some(cluster) = &self.settings.cluster {
            // One origin per stream, cluster-wide (the same identity takes its stream over).
            match cluster.claim((room, stream), &grant.identity, id).await {
                Ok(()) => self.unpull(room, stream),
                Err(ClaimError::Taken { node }) => {
                    return Err(ApiError::new(
                        409,
                        format!(
                            "stream '{stream}' is already published in this room (node {node})"
                        ),
                    ))
                }
                Err(ClaimError::Unavailable(why)) => {
                    return Err(ApiError::cluster_unavailable(&why))
                }
            }
        }
        let taken = {
            let mut reg = lock(&self.registry);
            let s = reg
                .room(room)
                .streams
                .entry(stream.to_string())
                .or_default();
            let taken = s.publisher.is_some();
            if !taken {
                s.publisher = Some(id);
                s.publisher_worker = worker;
                reg.sessions.insert(id, info);
            }
            taken
        };
        if taken {
            if let Some(cluster) = &self.settings.cluster {
                cluster.release((room, stream), &grant.identity, id).await;
            }
            return Err(ApiError::new(
                409,
                format!("stream '{stream}' is already published in this room"),
            ));
        }
        if let Err(e) = self.dp.send(worker, Command::AddSession { id, ice }) {
            self.forget(id);
            return Err(ApiError::new(503, format!("relay busy: {e}")));
        }
        self.log_admitted(id);
        let expected = offer.fingerprints.clone();
        let relay = Arc::clone(self);
        let (room_s, stream_s) = (room.to_string(), stream.to_string());
        self.spawn_dtls(id, worker, expected, move |keys| {
            relay
                .dp
                .send(worker, Command::SetKeys { session: id, keys })
                .ok()?;
            for c in tracks.iter().flat_map(|t| t.publish_commands(id)) {
                relay.dp.send(worker, c).ok()?;
            }
            let mut reg = lock(&relay.registry);
            if let Some(s) = reg.sessions.get_mut(&id) {
                s.connected = true;
            }
            let identity = reg
                .sessions
                .get(&id)
                .map(|s| s.identity.clone())
                .unwrap_or_default();
            let r = reg.room(&room_s);
            if let Some(s) = r.streams.get_mut(&stream_s) {
                s.tracks = tracks;
                s.stalled.clear();
            }
            let _ = r.events.send(RoomEvent::Published {
                stream: stream_s.clone(),
                identity: identity.clone(),
            });
            if let Some(cluster) = relay.settings.cluster.clone() {
                relay.runtime.spawn(async move {
                    cluster
                        .mark_ready((&room_s, &stream_s), &identity, id)
                        .await;
                });
            }
            Some(())
        });
        Ok(Created {
            session: id,
            answer: answer.sdp,
            etag,
        })
    }

    /// WHEP: subscribe to `stream` in `room` with an SDP offer, receiving simulcast layer
    /// `layer` (a RID) of a simulcast stream, its first layer if `None`.
    pub async fn subscribe(
        self: &Arc<Self>,
        grant: Grant,
        (room, stream): (&str, &str),
        layer: Option<&str>,
        offer_sdp: &str,
        client_ip: IpAddr,
    ) -> Result<Created, ApiError> {
        let offer = self.admit(client_ip, offer_sdp)?;
        let (tracks, pub_worker, stalled) = {
            let reg = lock(&self.registry);
            let s = reg.rooms.get(room).and_then(|r| r.streams.get(stream));
            match s {
                Some(s) if !s.tracks.is_empty() => {
                    if s.subscribers.len() >= self.policy().max_subscribers_per_stream {
                        return Err(ApiError::new(
                            429,
                            "this stream has as many subscribers as it may",
                        ));
                    }
                    (s.tracks.clone(), s.publisher_worker, s.stalled.clone())
                }
                _ => {
                    return Err(ApiError::new(
                        404,
                        format!("no stream '{stream}' is published in room '{room}'"),
                    ))
                }
            }
        };
        // Each track's datapath track: the chosen layer's, for a simulcast track.
        let track_ids = tracks
            .iter()
            .map(|t| t.layer(layer))
            .collect::<Result<Vec<TrackId>, String>>()
            .map_err(|e| ApiError::new(400, e))?;
        let (worker, id, ice) = self.allocate(&offer);
        let mut rng = rand::thread_rng();
        let ssrcs: Vec<(u32, Option<u32>)> = tracks
            .iter()
            .map(|t| {
                (
                    rng.gen::<u32>() | 1,
                    t.media.codec.rtx.map(|_| rng.gen::<u32>() | 1),
                )
            })
            .collect();
        let published: Vec<sdp::NegotiatedMedia> = tracks.iter().map(|t| t.media.clone()).collect();
        let cname = random_string(16);
        let params = AnswerParams {
            ice_ufrag: &ice.local_ufrag,
            ice_pwd: &ice.local_pwd,
            fingerprint_sha256: self.identity.fingerprint_sha256(),
            candidate: self.candidate(worker),
            tcp_candidate: self.tcp_candidate(worker),
            role: Role::Subscribe {
                tracks: &published,
                ssrcs: &ssrcs,
                cname: &cname,
            },
            session_id: id,
        };
        let answer = sdp::answer(&offer, &params)
            .map_err(|e| ApiError::new(400, format!("unsupported offer: {e}")))?;
        // Which publisher track each answered section carries, with the subscriber's numbering.
        let mut subscriptions = Vec::new();
        for m in &answer.media {
            let Some(ssrc) = m.ssrc else { continue };
            let Some(i) = ssrcs.iter().position(|(s, _)| *s == ssrc) else {
                continue;
            };
            let t = &tracks[i];
            let params = SubscriptionParams {
                ssrc,
                payload_types: sdp::payload_type_map(&t.media, m),
                seq_offset: 0,
                ts_offset: 0,
                rtx: m.rtx_ssrc.zip(m.codec.rtx),
                extensions: t.extension_rewrite(m),
                egress: EgressExtensions {
                    transport_cc: m.extension_id(sdp::TRANSPORT_WIDE_CC),
                    abs_send_time: m.extension_id(sdp::ABS_SEND_TIME),
                },
                codec: VideoCodec::from_name(&t.media.codec.name),
                limit: LayerLimit::default(),
                dependency_descriptor: t.media.extension_id(crate::wire::dd::URI),
            };
            subscriptions.push(Feed {
                published: t.id,
                track: TrackRef {
                    id: t.serving(track_ids[i], &stalled),
                    worker: pub_worker,
                    kind: t.kind,
                },
                params,
                wanted: track_ids[i],
                auto: None,
                auto_temporal: None,
            });
        }
        if subscriptions.is_empty() {
            return Err(ApiError::new(
                400,
                "the offer accepts none of the stream's tracks",
            ));
        }
        let info = SessionInfo::new(
            id,
            SessionRole::Subscriber,
            (room, stream),
            worker,
            &grant,
            client_ip,
            &offer,
        );
        let etag = info.etag.clone();
        {
            let mut reg = lock(&self.registry);
            reg.sessions.insert(
                id,
                SessionInfo {
                    feeds: subscriptions,
                    ..info
                },
            );
            if let Some(s) = reg.room(room).streams.get_mut(stream) {
                s.subscribers.push(id);
            }
        }
        if let Err(e) = self.dp.send(worker, Command::AddSession { id, ice }) {
            self.forget(id);
            return Err(ApiError::new(503, format!("relay busy: {e}")));
        }
        self.log_admitted(id);
        let relay = Arc::clone(self);
        self.spawn_dtls(id, worker, offer.fingerprints.clone(), move |keys| {
            relay.start_feeds(id, worker, keys)
        });
        Ok(Created {
            session: id,
            answer: answer.sdp,
            etag,
        })
    }

    /// Moves subscriber session `id` to simulcast layer `layer` of each simulcast track it
    /// receives (or, while the publisher has that layer stopped, to one it still sends, and
    /// back when it resumes). The relay keeps sending the old layer until the new one reaches
    /// a keyframe (it asks the publisher for one), then continues the same RTP stream with it.
    pub fn switch_layer(&self, id: SessionId, layer: &str) -> Result<(), ApiError> {
        let mut reg = lock(&self.registry);
        let info = reg
            .sessions
            .get(&id)
            .ok_or_else(|| ApiError::new(404, "no such session"))?;
        if info.role != SessionRole::Subscriber {
            return Err(ApiError::new(
                400,
                "only a WHEP subscriber session chooses a layer",
            ));
        }
        let stream = reg
            .rooms
            .get(&info.room)
            .and_then(|r| r.streams.get(&info.stream));
        let tracks = stream.map(|s| s.tracks.clone()).unwrap_or_default();
        let mut feeds = info.feeds.clone();
        let mut simulcast = false;
        for feed in &mut feeds {
            let Some(t) = tracks.iter().find(|t| t.id == feed.published) else {
                continue;
            };
            if t.layers.is_empty() {
                continue;
            }
            simulcast = true;
            feed.wanted = t.layer(Some(layer)).map_err(|e| ApiError::new(400, e))?;
            feed.auto = None; // a new ceiling: the estimate moves it down again if need be
            if VideoCodec::from_name(&t.media.codec.name).is_none() {
                return Err(ApiError::new(
                    400,
                    format!(
                        "switching layers needs VP8, VP9, H264 or AV1; the stream sends {}",
                        t.media.codec.name
                    ),
                ));
            }
        }
        if !simulcast {
            return Err(ApiError::new(400, "the stream has no simulcast layers"));
        }
        if !info.connected {
            return Err(ApiError::new(409, "the session is not connected yet"));
        }
        let stalled = stream.map(|s| s.stalled.clone()).unwrap_or_default();
        if let Some(info) = reg.sessions.get_mut(&id) {
            info.feeds = feeds;
        }
        self.reserve(&mut reg, id, &tracks, &stalled)
            .map_err(|e| ApiError::new(503, format!("relay busy: {e}")))
    }

    /// Sets the highest spatial and temporal layer subscriber session `id` gets inside each
    /// VP8/VP9 stream it receives (and each whose publisher sends the dependency descriptor) (`None`: that one unchanged), from the stream's next switching
    /// point on (a keyframe for a higher spatial layer, which the worker asks for).
    pub fn limit_layers(
        &self,
        id: SessionId,
        spatial: Option<u8>,
        temporal: Option<u8>,
    ) -> Result<(), ApiError> {
        let mut reg = lock(&self.registry);
        let info = reg
            .sessions
            .get_mut(&id)
            .ok_or_else(|| ApiError::new(404, "no such session"))?;
        if info.role != SessionRole::Subscriber {
            return Err(ApiError::new(
                400,
                "only a WHEP subscriber session chooses a layer",
            ));
        }
        let (worker, connected) = (info.worker, info.connected);
        let mut layered = false;
        for feed in &mut info.feeds {
            let described = matches!(feed.params.codec, Some(VideoCodec::Vp8 | VideoCodec::Vp9))
                || feed.params.dependency_descriptor.is_some();
            if !described {
                continue;
            }
            layered = true;
            let limit = &mut feed.params.limit;
            limit.spatial = spatial.unwrap_or(limit.spatial);
            limit.temporal = temporal.unwrap_or(limit.temporal);
            feed.auto_temporal = None; // a new ceiling: the estimate lowers it again if need be
            if connected {
                let command = Command::SetLayerLimit {
                    session: id,
                    ssrc: feed.params.ssrc,
                    limit: feed.limit(),
                };
                self.dp
                    .send(worker, command)
                    .map_err(|e| ApiError::new(503, format!("relay busy: {e}")))?;
            }
        }
        if !layered {
            return Err(ApiError::new(
                400,
                "spatial and temporal layers need a VP8 or VP9 stream, or one whose publisher sends the dependency descriptor",
            ));
        }
        Ok(())
    }

    /// A simulcast layer stopped or resumed (the publisher's worker saw its packets stop or
    /// come back): every subscriber of its stream gets the layer it wants if sent, else another.
    fn layer_changed(&self, track: TrackId, active: bool) {
        let mut reg = lock(&self.registry);
        let Some(stream) = reg.rooms.values_mut().find_map(|r| {
            r.streams.values_mut().find(|s| {
                s.tracks
                    .iter()
                    .any(|t| t.layers.iter().any(|(_, l)| *l == track))
            })
        }) else {
            return;
        };
        stream.stalled.retain(|t| *t != track);
        if !active {
            stream.stalled.push(track);
        }
        let (tracks, stalled) = (stream.tracks.clone(), stream.stalled.clone());
        for id in stream.subscribers.clone() {
            if let Err(e) = self.reserve(&mut reg, id, &tracks, &stalled) {
                tracing::warn!(session = id, "layer change not sent: {e}");
            }
        }
    }

    /// Sends connected subscriber `id` the layer each of its feeds should have now, switching
    /// those that differ. Called with the registry locked, so that switches reach the worker in
    /// the order the registry records them.
    pub(super) fn reserve(
        &self,
        reg: &mut Registry,
        id: SessionId,
        tracks: &[PublishedTrack],
        stalled: &[TrackId],
    ) -> Result<(), crate::datapath::DatapathError> {
        let Some(info) = reg.sessions.get_mut(&id) else {
            return Ok(());
        };
        // A link carries every layer as it is, whatever the publisher stops.
        if info.role.is_link() {
            return Ok(());
        }
        if !info.connected {
            return Ok(()); // installed from `feeds` when it connects
        }
        for feed in &mut info.feeds {
            let Some(t) = tracks.iter().find(|t| t.id == feed.published) else {
                continue;
            };
            let (serving, codec) = (
                t.serving(feed.auto.unwrap_or(feed.wanted), stalled),
                VideoCodec::from_name(&t.media.codec.name),
            );
            let Some(codec) = codec.filter(|_| serving != feed.track.id) else {
                continue;
            };
            feed.track.id = serving;
            self.auto_layers.resumed(id); // a new subscription starts unpaused
            let params = SubscriptionParams {
                limit: feed.limit(),
                ..feed.params.clone()
            };
            self.dp
                .subscribe_switching(info.worker, id, feed.track, params, Some(codec))?;
        }
        Ok(())
    }

    /// Runs the session's DTLS handshake; on success hands the keys to `connected`, otherwise
    /// ends the session without keys.
    fn spawn_dtls(
        self: &Arc<Self>,
        id: SessionId,
        worker: usize,
        offered: Vec<sdp::Fingerprint>,
        connected: impl FnOnce(crate::datapath::SessionKeys) -> Option<()> + Send + 'static,
    ) {
        let Some(expected) = expected_fingerprint(&offered) else {
            // parse_offer guarantees a fingerprint; one we cannot check is as good as none.
            self.end_session_because(id, "no usable a=fingerprint");
            return;
        };
        self.spawn_dtls_as(id, worker, expected, false, connected);
    }

    /// [`Self::spawn_dtls`] with the peer's certificate fingerprint known, as the DTLS server
    /// (`client` false: every client session) or the client (a pull from another node).
    fn spawn_dtls_as(
        self: &Arc<Self>,
        id: SessionId,
        worker: usize,
        expected: Fingerprint,
        client: bool,
        connected: impl FnOnce(crate::datapath::SessionKeys) -> Option<()> + Send + 'static,
    ) {
        let stats = Arc::clone(&self.dtls_stats);
        let (inbox, in_rx) = dtls::datagram_queue(Arc::clone(&stats));
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
        lock(&self.dtls_inboxes).insert(id, inbox);
        let relay = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(datagram) = out_rx.recv().await {
                if relay
                    .dp
                    .send(
                        worker,
                        Command::SendDtls {
                            session: id,
                            data: datagram,
                        },
                    )
                    .is_err()
                {
                    break;
                }
            }
        });
        let relay = Arc::clone(self);
        tokio::spawn(async move {
            let (identity, timeout) = (&relay.identity, relay.settings.dtls_timeout);
            let result = if client {
                dtls::connect(identity, in_rx, out_tx, expected, timeout, stats).await
            } else {
                dtls::accept_with_stats(identity, in_rx, out_tx, expected, timeout, stats).await
            };
            match result {
                Ok(outcome) => {
                    tracing::info!(session = id, worker, "DTLS connected; media keys installed");
                    if connected(outcome.keys).is_none() {
                        relay.end_session_because(id, "worker refused the keys");
                    }
                    // Keep the association (it answers retransmitted flights) while the session
                    // lives; the peer's close_notify (authenticated) ends the session at once.
                    let association = outcome.association;
                    while lock(&relay.registry).sessions.contains_key(&id) {
                        tokio::select! {
                            _ = association.closed() => {
                                relay.end_session_because(id, "DTLS close_notify");
                                break;
                            }
                            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        }
                    }
                    let _ = association.close().await;
                }
                Err(e) => {
                    relay.end_session_because(id, &format!("DTLS failed: {e}"));
                }
            }
        });
    }

    /// Routes datapath events: DTLS datagrams to their handshake, expiries to `end_session`.
    pub fn on_event(&self, event: Event) {
        match event {
            Event::Dtls { session, data, .. } => {
                let inbox = lock(&self.dtls_inboxes).get(&session).cloned();
                if let Some(inbox) = inbox {
                    inbox.push(data);
                }
            }
            Event::ConsentExpired { session } => {
                self.end_session_because(session, "consent expired");
            }
            Event::LayerActive { track, active } => self.layer_changed(track, active),
            Event::LayerRate {
                track,
                bps,
                temporal,
            } => self.auto_layers.layer_rate(track, bps, temporal),
            Event::Estimate { session, report } => self.on_estimate(session, report),
            Event::Bound { session, .. } => {
                if let Some(waiter) = lock(&self.bound_waiters).remove(&session) {
                    let _ = waiter.send(());
                }
            }
            _ => {}
        }
    }

    /// Removes a session from the registry. When it was a stream's publisher, the stream's
    /// subscribers end too: their subscriptions name tracks that no longer exist, and a new
    /// publisher gets new ones (the client subscribes again on the `published` event). Links
    /// to other nodes are not ended with a stream: an edge's link loses that stream's feeds. A
    /// link to an origin takes every stream pulled over it along.
    fn forget(&self, id: SessionId) {
        lock(&self.dtls_inboxes).remove(&id);
        self.auto_layers.forget(id);
        let mut released = None;
        let mut linger = None;
        let orphans = {
            let mut reg = lock(&self.registry);
            let Some(info) = reg.sessions.remove(&id) else {
                return;
            };
            let mut orphans = Vec::new();
            if info.role == SessionRole::Link {
                if let Some(node) = &info.peer_node {
                    lock(&self.links).retain(|n, l| !(n == node && l.session == id));
                }
                for room in reg.rooms.values_mut() {
                    // Streams pulled over the link go, with their viewers; streams it carried
                    // to the other node lose it as a subscriber.
                    room.streams.retain(|_, s| {
                        s.subscribers.retain(|x| *x != id);
                        if s.publisher != Some(id) {
                            return true;
                        }
                        orphans.append(&mut s.subscribers);
                        false
                    });
                }
            }
            let mut dropped_feeds = Vec::new();
            let mut unpublished = false;
            let room_name = if info.role.is_link() {
                None
            } else {
                Some(info.room.as_str())
            };
            let stream = room_name
                .and_then(|r| reg.rooms.get_mut(r))
                .and_then(|r| r.streams.get_mut(&info.stream));
            if let Some(s) = stream {
                s.subscribers.retain(|x| *x != id);
                if s.publisher == Some(id) {
                    s.publisher = None;
                    unpublished = !s.tracks.is_empty();
                    let published: Vec<TrackId> = s.tracks.iter().map(|t| t.id).collect();
                    let layers = s.tracks.iter().flat_map(|t| t.layers.iter().map(|l| l.1));
                    let measured: Vec<TrackId> = published.iter().copied().chain(layers).collect();
                    self.auto_layers.forget_tracks(&measured);
                    s.tracks.clear();
                    s.stalled.clear();
                    orphans = std::mem::take(&mut s.subscribers);
                    dropped_feeds.push(published);
                    if info.role == SessionRole::Publisher {
                        released = Some((info.room.clone(), info.stream.clone(), info.identity));
                    }
                }
                if s.pulled_from.is_some() && s.subscribers.is_empty() && s.publisher.is_some() {
                    linger = Some((info.room.clone(), info.stream.clone(), s.publisher));
                }
                let unused = s.publisher.is_none() && s.subscribers.is_empty();
                let room = reg.room(&info.room);
                if unused {
                    room.streams.remove(&info.stream);
                }
                if unpublished {
                    let _ = room.events.send(RoomEvent::Unpublished {
                        stream: info.stream.clone(),
                    });
                }
            }
            // Links among the orphans keep going without this stream's feeds.
            let mut clients = Vec::new();
            for sub in orphans {
                match reg.sessions.get_mut(&sub) {
                    Some(link) if link.role == SessionRole::Link => {
                        let published = dropped_feeds.first().cloned().unwrap_or_default();
                        let (gone, kept) = std::mem::take(&mut link.feeds)
                            .into_iter()
                            .partition(|f| published.contains(&f.published));
                        link.feeds = kept;
                        let gone: Vec<super::rooms::Feed> = gone;
                        for f in gone {
                            let _ = self.dp.send(
                                link.worker,
                                Command::Unsubscribe {
                                    session: sub,
                                    track: f.track.id,
                                },
                            );
                        }
                    }
                    _ => clients.push(sub),
                }
            }
            clients
        };
        for sub in orphans {
            self.end_session_because(sub, "publisher left");
        }
        if let (Some(cluster), Some((room, stream, identity))) = (&self.settings.cluster, released)
        {
            let cluster = Arc::clone(cluster);
            self.runtime.spawn(async move {
                cluster.release((&room, &stream), &identity, id).await;
            });
        }
        if let Some((room, stream, link)) = linger {
            self.linger(room, stream, link);
        }
    }

    /// The info line for a session the relay took on (its offer answered, DTLS still to come).
    fn log_admitted(&self, id: SessionId) {
        let reg = lock(&self.registry);
        let Some(s) = reg.sessions.get(&id) else {
            return;
        };
        let kind = match s.role {
            SessionRole::Publisher => "publisher",
            SessionRole::Subscriber => "subscriber",
            SessionRole::Link => "link",
        };
        tracing::info!(
            session = id, kind, room = %s.room, stream = %s.stream, identity = %s.identity,
            worker = s.worker, remote = %s.client_ip, "session admitted"
        );
    }

    /// Ends a session at its client's or an admin's request (`DELETE`).
    pub fn end_session(&self, id: SessionId) -> bool {
        self.end_session_because(id, "deleted")
    }

    /// Ends a session: the worker forgets it (media stops at once) and the registry too; the
    /// log line says why.
    pub fn end_session_because(&self, id: SessionId, reason: &str) -> bool {
        let worker = lock(&self.registry).sessions.get(&id).map(|s| {
            tracing::info!(
                session = id, room = %s.room, stream = %s.stream, identity = %s.identity,
                worker = s.worker, remote = %s.client_ip, reason, "session ended"
            );
            s.worker
        });
        let Some(worker) = worker else { return false };
        let _ = self.dp.send(worker, Command::RemoveSession { id });
        self.forget(id);
        true
    }

    /// Ends every session whose token has expired or been revoked.
    pub fn expire_sessions(&self, now: SystemTime) -> usize {
        let doomed: Vec<SessionId> = lock(&self.registry)
            .sessions
            .values()
            .filter(|s| s.grant.expires_at <= now || self.revocations.is_revoked(&s.grant))
            .map(|s| s.id)
            .collect();
        for id in &doomed {
            self.end_session_because(*id, "token expired or revoked");
        }
        doomed.len()
    }

    /// ICE restart (RFC 9725 §4.3.2): the client's fragment brings a new ufrag; the session gets
    /// fresh relay credentials at once (checks with the old ones are no longer answered) and
    /// keeps its DTLS association and keys. Returns the answer fragment and the new ETag.
    pub fn restart_ice(
        &self,
        id: SessionId,
        fragment: &sdp::TrickleFragment,
    ) -> Result<(String, String), ApiError> {
        let (Some(remote_ufrag), Some(_)) = (&fragment.ice_ufrag, &fragment.ice_pwd) else {
            return Err(ApiError::new(
                400,
                "an ICE restart needs a=ice-ufrag and a=ice-pwd",
            ));
        };
        let ice = IceCredentials {
            local_ufrag: random_string(8),
            local_pwd: random_string(24),
            remote_ufrag: remote_ufrag.clone(),
        };
        let etag = format!("\"{}\"", random_string(12));
        let (worker, mids) = {
            let mut reg = lock(&self.registry);
            let info = reg
                .sessions
                .get_mut(&id)
                .ok_or_else(|| ApiError::new(404, "no such session"))?;
            info.remote_ufrag = remote_ufrag.clone();
            info.etag = etag.clone();
            (info.worker, info.mids.clone())
        };
        self.dp
            .send(
                worker,
                Command::RestartIce {
                    session: id,
                    ice: ice.clone(),
                },
            )
            .map_err(|_| ApiError::new(503, "the session's worker is not accepting commands"))?;
        let candidate = self.candidate(worker);
        let mut frag = format!(
            "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            ice.local_ufrag, ice.local_pwd
        );
        if !mids.is_empty() {
            frag.push_str(&format!("a=group:BUNDLE {}\r\n", mids.join(" ")));
        }
        let first = mids.first().map_or("0", String::as_str);
        frag.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{first}\r\n{}",
            sdp::candidate_lines(candidate, self.tcp_candidate(worker))
        ));
        Ok((frag, etag))
    }

    /// Asks the webhook again about every live session; ends the ones it now refuses.
    pub async fn recheck_webhook(&self) {
        let policy = self.policy();
        let Some(webhook) = &policy.webhook else {
            return;
        };
        let live: Vec<SessionInfo> = lock(&self.registry).sessions.values().cloned().collect();
        for s in live {
            let action = match s.role {
                SessionRole::Publisher => Action::Publish,
                SessionRole::Subscriber => Action::Subscribe,
                SessionRole::Link => continue,
            };
            let req = WebhookRequest {
                action,
                room: s.room.clone(),
                stream: s.stream.clone(),
                identity: s.identity.clone(),
                client_ip: s.client_ip,
            };
            if webhook.check(&req).await.is_err() {
                self.end_session_because(s.id, "webhook refused on recheck");
            }
        }
    }
}
