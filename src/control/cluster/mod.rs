//! Tern as one node of a cluster: membership, stream origins and revocations in etcd, and the
//! node-to-node tokens and HTTP client that signalling forwards and cascades use.
//!
//! A node holds one etcd lease and renews it every third of its TTL. Its node record and the
//! streams it originates hang on that lease, so they vanish together when it dies. One watch on
//! the whole prefix, resumed from the last revision it saw, keeps a local view of every node and
//! stream and carries revocations; nothing is missed across a reconnect. Media never goes
//! through etcd. While the lease cannot be renewed the node is unhealthy: sessions already
//! flowing keep flowing, new ones get 503 with the reason, and it recovers by itself.
//!
//! Writes in steady state: one keep-alive per `lease_ttl / 3`, and the node record at most every
//! `RECORD_EVERY` when its session count changed.

pub mod etcd;
pub mod records;
pub mod token;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::config::ClusterConfig;
use etcd::{Compare, Etcd, EtcdError, KeyValue, Op, WatchEvent};
use records::{Key, Keys, NodeRecord, RevocationRecord, StreamRecord};
use token::{NodeClaims, NodeTokenError, Purpose};

/// The node record is written again at most this often when only its session count changed.
pub const RECORD_EVERY: Duration = Duration::from_secs(5);

/// How long an admin revocation stays in etcd (longer than any token should live).
pub const REVOCATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Header carrying a node token on node-to-node requests.
pub const NODE_TOKEN_HEADER: &str = "x-tern-node-token";

/// Header carrying the client's address on a forwarded request (trusted only with a valid node
/// token).
pub const CLIENT_HEADER: &str = "x-tern-client";

/// Why a stream could not be claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    /// Another identity publishes it, from `node`.
    Taken { node: String },
    /// etcd could not be asked.
    Unavailable(String),
}

/// A stream as the view knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub record: StreamRecord,
    pub mod_revision: i64,
}

/// The local copy of what etcd holds.
#[derive(Debug, Default)]
struct View {
    nodes: HashMap<String, NodeRecord>,
    streams: HashMap<(String, String), StreamEntry>,
    /// The last revision applied.
    revision: i64,
}

/// What changed in the view, for the relay to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A stream got an origin, or another one (`before` is the previous, if any).
    Stream {
        room: String,
        stream: String,
        before: Option<StreamRecord>,
        now: Option<StreamRecord>,
    },
    /// A node's record vanished (it stopped, or its lease expired).
    NodeGone(String),
    /// An admin revocation, from any node.
    Revocation(RevocationRecord),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Writes this node made to etcd's key space (puts, transactions, grants, revokes).
    pub etcd_writes: AtomicU64,
    /// Lease keep-alives sent (one per `lease_ttl / 3`; etcd's leader answers them without a
    /// write to its log).
    pub lease_renewals: AtomicU64,
    /// Watch events applied.
    pub watch_events: AtomicU64,
    /// Times the lease was lost or could not be renewed.
    pub lease_failures: AtomicU64,
    /// Requests forwarded to another node (offers and session requests).
    pub forwarded: AtomicU64,
}

/// This node's part in the cluster.
pub struct Cluster {
    pub config: ClusterConfig,
    /// This node's record as written (draining and sessions change).
    me: Mutex<NodeRecord>,
    keys: Keys,
    etcd: Etcd,
    secret: Vec<u8>,
    lease: AtomicI64,
    healthy: AtomicBool,
    /// Why the node is unhealthy (shown in 503s and logs).
    why: Mutex<String>,
    view: Mutex<View>,
    /// Node-to-node HTTP (forwards, pulls).
    pub http: reqwest::Client,
    pub stats: ClusterStats,
    /// Sessions held here, as last written to the record.
    written_sessions: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Cluster")
            .field("node", &self.config.node_id)
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Cluster {
    /// The cluster part of a node whose HTTP API listens on `http_addr` and whose media binds
    /// `media_ip`. Reads the cluster secret; does not talk to etcd yet (see [`run`]).
    pub fn new(
        config: &ClusterConfig,
        http_addr: SocketAddr,
        media_ip: IpAddr,
    ) -> Result<Arc<Self>, String> {
        let secret = std::fs::read(&config.cluster_secret_file)
            .map_err(|e| {
                format!(
                    "cluster.cluster_secret_file {}: {e}",
                    config.cluster_secret_file.display()
                )
            })?
            .trim_ascii()
            .to_vec();
        let etcd = Etcd::new(&config.etcd, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cluster HTTP client: {e}"))?;
        let me = NodeRecord {
            id: config.node_id.clone(),
            http: config
                .advertise_http
                .clone()
                .unwrap_or_else(|| format!("http://{http_addr}"))
                .trim_end_matches('/')
                .to_string(),
            media: config.advertise_media.unwrap_or(media_ip),
            draining: false,
            sessions: 0,
            max_sessions: config.max_sessions,
        };
        Ok(Arc::new(Self {
            config: config.clone(),
            me: Mutex::new(me),
            keys: Keys::new(&config.prefix),
            etcd,
            secret,
            lease: AtomicI64::new(0),
            healthy: AtomicBool::new(false),
            why: Mutex::new("not yet registered in etcd".into()),
            view: Mutex::new(View::default()),
            http,
            stats: ClusterStats::default(),
            written_sessions: AtomicU64::new(0),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// This node's record.
    pub fn me(&self) -> NodeRecord {
        lock(&self.me).clone()
    }

    /// `Ok` while the lease is held; else why new sessions are refused.
    pub fn health(&self) -> Result<(), String> {
        if self.healthy.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(lock(&self.why).clone())
        }
    }

    fn set_unhealthy(&self, why: String) {
        let was = self.healthy.swap(false, Ordering::Relaxed);
        let mut w = lock(&self.why);
        if was || *w != why {
            tracing::warn!(
                node = %self.config.node_id,
                "cluster: not taking new sessions: {why}"
            );
        }
        *w = why;
    }

    fn set_healthy(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!(
                node = %self.config.node_id,
                lease_ttl_s = self.config.lease_ttl.as_secs(),
                "cluster: node registered in etcd"
            );
        }
    }

    fn wrote(&self) {
        self.stats.etcd_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Another node's record, if it is up.
    pub fn node(&self, id: &str) -> Option<NodeRecord> {
        lock(&self.view).nodes.get(id).cloned()
    }

    /// Every node that is up, this one included.
    pub fn nodes(&self) -> Vec<NodeRecord> {
        let mut v: Vec<NodeRecord> = lock(&self.view).nodes.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The origin of a stream, as the view knows it.
    pub fn stream(&self, room: &str, stream: &str) -> Option<StreamEntry> {
        lock(&self.view)
            .streams
            .get(&(room.to_string(), stream.to_string()))
            .cloned()
    }

    /// The streams of `room` whose origin is another node and whose publisher is connected,
    /// with their publishers' identities.
    pub fn remote_streams(&self, room: &str) -> Vec<(String, String)> {
        let me = self.node_id();
        lock(&self.view)
            .streams
            .iter()
            .filter(|((r, _), e)| r == room && e.record.node != me && e.record.ready)
            .map(|((_, s), e)| (s.clone(), e.record.identity.clone()))
            .collect()
    }

    /// Signs a node token.
    pub fn sign(&self, purpose: Purpose, stream: Option<(&str, &str)>, fp: Option<&str>) -> String {
        let claims = NodeClaims {
            node: self.config.node_id.clone(),
            purpose,
            room: stream.map(|(r, _)| r.to_string()),
            stream: stream.map(|(_, s)| s.to_string()),
            fingerprint: fp.map(str::to_string),
            exp: 0,
        };
        token::sign(&self.secret, claims, SystemTime::now())
    }

    /// Verifies a node token from another node of this cluster.
    pub fn verify(&self, token: &str, purpose: Purpose) -> Result<NodeClaims, NodeTokenError> {
        token::verify(&self.secret, token, purpose, SystemTime::now())
    }

    /// Makes this node the origin of `room`/`stream` for `identity`'s session `session`: if no
    /// node is, or if the same identity publishes it from another node (a publisher that
    /// reconnected elsewhere takes its stream over at once, without waiting for a dead node's
    /// lease).
    pub async fn claim(
        &self,
        (room, stream): (&str, &str),
        identity: &str,
        session: u64,
    ) -> Result<(), ClaimError> {
        let lease = self.lease.load(Ordering::Relaxed);
        if lease == 0 {
            return Err(ClaimError::Unavailable(lock(&self.why).clone()));
        }
        let key = self.keys.stream(room, stream);
        let value = self.stream_value(identity, session, false);
        let put = Op::Put {
            key: key.clone(),
            value: value.clone(),
            lease,
        };
        let unavailable = |e: EtcdError| ClaimError::Unavailable(e.to_string());
        self.wrote();
        let first = self
            .etcd
            .txn(
                &[Compare::Absent(key.clone())],
                std::slice::from_ref(&put),
                &[Op::Get(key.clone())],
            )
            .await
            .map_err(unavailable)?;
        if first.succeeded {
            return Ok(());
        }
        let Some(held) = first.found.first() else {
            return Err(ClaimError::Unavailable(
                "the stream's record vanished while claiming it; try again".into(),
            ));
        };
        let holder: Option<StreamRecord> = serde_json::from_slice(&held.value).ok();
        match holder {
            Some(h) if h.identity == identity => {
                // The same publisher, from elsewhere: take it over, unless it changed meanwhile.
                self.wrote();
                let over = self
                    .etcd
                    .txn(
                        &[Compare::ModRevision(key.clone(), held.mod_revision)],
                        &[put],
                        &[],
                    )
                    .await
                    .map_err(unavailable)?;
                if over.succeeded {
                    Ok(())
                } else {
                    Err(ClaimError::Unavailable(
                        "the stream changed hands while taking it over; try again".into(),
                    ))
                }
            }
            Some(h) => Err(ClaimError::Taken { node: h.node }),
            None => Err(ClaimError::Taken {
                node: "another node".into(),
            }),
        }
    }

    /// The value of this node's record for `identity`'s session `session`.
    fn stream_value(&self, identity: &str, session: u64, ready: bool) -> Vec<u8> {
        let record = StreamRecord {
            node: self.config.node_id.clone(),
            identity: identity.to_string(),
            session,
            ready,
        };
        serde_json::to_vec(&record).unwrap_or_default()
    }

    /// Marks the stream this node claimed for `identity`'s session `session` ready (its
    /// publisher connected), if the record is still that claim.
    pub async fn mark_ready(&self, (room, stream): (&str, &str), identity: &str, session: u64) {
        let key = self.keys.stream(room, stream);
        let lease = self.lease.load(Ordering::Relaxed);
        let claimed = self.stream_value(identity, session, false);
        let ready = self.stream_value(identity, session, true);
        self.wrote();
        let _ = self
            .etcd
            .txn(
                &[Compare::Value(key.clone(), claimed)],
                &[Op::Put {
                    key,
                    value: ready,
                    lease,
                }],
                &[],
            )
            .await;
    }

    /// Deletes the stream's record if it still names this node's session `session` of
    /// `identity` (compared on the exact values this node writes, claimed or ready).
    pub async fn release(&self, (room, stream): (&str, &str), identity: &str, session: u64) {
        let key = self.keys.stream(room, stream);
        for ready in [true, false] {
            let value = self.stream_value(identity, session, ready);
            self.wrote();
            let done = self
                .etcd
                .txn(
                    &[Compare::Value(key.clone(), value)],
                    &[Op::Delete(key.clone())],
                    &[],
                )
                .await;
            if done.is_ok_and(|t| t.succeeded) {
                return;
            }
        }
    }

    /// Publishes an admin revocation to every node.
    pub async fn revoke(&self, identity: &str, room: Option<&str>) -> Result<(), EtcdError> {
        let record = RevocationRecord {
            identity: identity.to_string(),
            room: room.map(str::to_string),
            at: unix_now(),
        };
        self.wrote();
        let lease = self.etcd.grant(REVOCATION_TTL).await?;
        let id = format!("{}-{}", self.config.node_id, rand::random::<u64>());
        self.wrote();
        self.etcd
            .put(
                &self.keys.revocation(&id),
                &serde_json::to_vec(&record).unwrap_or_default(),
                lease,
            )
            .await
    }

    /// Marks this node draining in etcd: no new sessions are placed here.
    pub async fn set_draining(&self) {
        lock(&self.me).draining = true;
        let _ = self.write_record().await;
    }

    async fn write_record(&self) -> Result<(), EtcdError> {
        let lease = self.lease.load(Ordering::Relaxed);
        if lease == 0 {
            return Err(EtcdError::Unreachable("no lease".into()));
        }
        let me = self.me();
        self.written_sessions
            .store(u64::from(me.sessions), Ordering::Relaxed);
        self.wrote();
        self.etcd
            .put(
                &self.keys.node(&me.id),
                &serde_json::to_vec(&me).unwrap_or_default(),
                lease,
            )
            .await
    }

    /// Ends the lease: this node's record and streams vanish at once (a clean stop).
    pub async fn leave(&self) {
        let lease = self.lease.swap(0, Ordering::Relaxed);
        if lease != 0 {
            self.wrote();
            let _ = self.etcd.revoke(lease).await;
        }
    }

    /// Applies a batch of watch events to the view; returns what changed.
    fn apply(&self, events: &[WatchEvent], revision: i64) -> Vec<Change> {
        let mut view = lock(&self.view);
        let mut changes = Vec::new();
        for event in events {
            let (kv, deleted) = match event {
                WatchEvent::Put(kv) => (kv, false),
                WatchEvent::Delete(kv) => (kv, true),
            };
            self.stats.watch_events.fetch_add(1, Ordering::Relaxed);
            view.revision = view.revision.max(kv.mod_revision);
            apply_one(&self.keys, &mut view, kv, deleted, &mut changes);
        }
        view.revision = view.revision.max(revision);
        changes
    }

    /// Replaces the view with a full read of the prefix; returns what differs from before.
    fn reload(&self, kvs: &[KeyValue], revision: i64) -> Vec<Change> {
        let mut view = lock(&self.view);
        let mut changes = Vec::new();
        let mut fresh = View {
            revision,
            ..View::default()
        };
        for kv in kvs {
            apply_one(&self.keys, &mut fresh, kv, false, &mut Vec::new());
        }
        for ((room, stream), old) in &view.streams {
            let now = fresh.streams.get(&(room.clone(), stream.clone()));
            if now.map(|e| &e.record) != Some(&old.record) {
                changes.push(Change::Stream {
                    room: room.clone(),
                    stream: stream.clone(),
                    before: Some(old.record.clone()),
                    now: now.map(|e| e.record.clone()),
                });
            }
        }
        for ((room, stream), e) in &fresh.streams {
            if !view.streams.contains_key(&(room.clone(), stream.clone())) {
                changes.push(Change::Stream {
                    room: room.clone(),
                    stream: stream.clone(),
                    before: None,
                    now: Some(e.record.clone()),
                });
            }
        }
        for id in view.nodes.keys() {
            if !fresh.nodes.contains_key(id) {
                changes.push(Change::NodeGone(id.clone()));
            }
        }
        // Revocations are applied again: applying one twice changes nothing.
        for kv in kvs {
            if let (Some(Key::Revocation(_)), Ok(r)) = (
                self.keys.parse(&kv.key),
                serde_json::from_slice::<RevocationRecord>(&kv.value),
            ) {
                changes.push(Change::Revocation(r));
            }
        }
        *view = fresh;
        changes
    }
}

fn apply_one(keys: &Keys, view: &mut View, kv: &KeyValue, deleted: bool, out: &mut Vec<Change>) {
    match keys.parse(&kv.key) {
        Some(Key::Node(id)) => {
            if deleted {
                if view.nodes.remove(&id).is_some() {
                    out.push(Change::NodeGone(id));
                }
            } else if let Ok(n) = serde_json::from_slice::<NodeRecord>(&kv.value) {
                view.nodes.insert(id, n);
            }
        }
        Some(Key::Stream { room, stream }) => {
            let k = (room.clone(), stream.clone());
            let before = view.streams.get(&k).map(|e| e.record.clone());
            let now = if deleted {
                view.streams.remove(&k);
                None
            } else {
                let Ok(record) = serde_json::from_slice::<StreamRecord>(&kv.value) else {
                    return;
                };
                view.streams.insert(
                    k,
                    StreamEntry {
                        record: record.clone(),
                        mod_revision: kv.mod_revision,
                    },
                );
                Some(record)
            };
            if before != now {
                out.push(Change::Stream {
                    room,
                    stream,
                    before,
                    now,
                });
            }
        }
        Some(Key::Revocation(_)) if !deleted => {
            if let Ok(r) = serde_json::from_slice::<RevocationRecord>(&kv.value) {
                out.push(Change::Revocation(r));
            }
        }
        _ => {}
    }
}

/// Runs the node's part until `stop`: registers and renews the lease (re-registering after a
/// loss), keeps the record's session count fresh, and follows the watch, handing every change to
/// `on_change`. `sessions` counts the sessions this node holds; `reclaim` lists the streams this
/// node originates `(room, stream, identity, session)`, written again under a new lease.
pub async fn run(
    cluster: Arc<Cluster>,
    sessions: impl Fn() -> u32 + Send + Sync + 'static,
    reclaim: impl Fn() -> Vec<(String, String, String, u64)> + Send + Sync + 'static,
    on_change: impl Fn(Change) + Send + Sync + 'static,
    stop: watch::Receiver<bool>,
) {
    let on_change = Arc::new(on_change);
    let lease_task = tokio::spawn(keep_lease(
        Arc::clone(&cluster),
        sessions,
        reclaim,
        Arc::clone(&on_change),
        stop.clone(),
    ));
    follow(cluster, on_change, stop).await;
    let _ = lease_task.await;
}

async fn keep_lease(
    cluster: Arc<Cluster>,
    sessions: impl Fn() -> u32 + Send + Sync,
    reclaim: impl Fn() -> Vec<(String, String, String, u64)> + Send + Sync,
    on_change: Arc<impl Fn(Change) + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) {
    let ttl = cluster.config.lease_ttl;
    let every = ttl / 3;
    let mut last_record = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        if cluster.lease.load(Ordering::Relaxed) == 0 {
            cluster.wrote();
            match cluster.etcd.grant(ttl).await {
                Ok(lease) => {
                    cluster.lease.store(lease, Ordering::Relaxed);
                    lock(&cluster.me).sessions = sessions();
                    match cluster.write_record().await {
                        Ok(()) => {
                            // Streams this node still originates, under the new lease.
                            for (room, stream, identity, session) in reclaim() {
                                if let Err(ClaimError::Taken { node }) =
                                    cluster.claim((&room, &stream), &identity, session).await
                                {
                                    tracing::info!(
                                        room = %room,
                                        stream = %stream,
                                        node = %node,
                                        "cluster: stream now published from another node"
                                    );
                                }
                            }
                            cluster.set_healthy();
                            last_record = tokio::time::Instant::now();
                        }
                        Err(e) => cluster.set_unhealthy(format!("cannot register in etcd: {e}")),
                    }
                }
                Err(e) => {
                    cluster.stats.lease_failures.fetch_add(1, Ordering::Relaxed);
                    cluster.set_unhealthy(format!("cannot get an etcd lease: {e}"));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let lease = cluster.lease.load(Ordering::Relaxed);
        if lease == 0 {
            continue;
        }
        cluster.stats.lease_renewals.fetch_add(1, Ordering::Relaxed);
        match cluster.etcd.keep_alive(lease).await {
            Ok(ttl_left) if ttl_left > 0 => {
                cluster.set_healthy();
                let now_sessions = sessions();
                let changed =
                    u64::from(now_sessions) != cluster.written_sessions.load(Ordering::Relaxed);
                if changed && last_record.elapsed() >= RECORD_EVERY {
                    lock(&cluster.me).sessions = now_sessions;
                    if cluster.write_record().await.is_ok() {
                        last_record = tokio::time::Instant::now();
                    }
                }
            }
            Ok(_) => {
                // etcd forgot the lease (we were away longer than its TTL): our records are gone.
                cluster.stats.lease_failures.fetch_add(1, Ordering::Relaxed);
                cluster.lease.store(0, Ordering::Relaxed);
                cluster.set_unhealthy("the etcd lease expired; registering again".into());
                on_change(Change::NodeGone(cluster.config.node_id.clone()));
            }
            Err(e) => {
                cluster.stats.lease_failures.fetch_add(1, Ordering::Relaxed);
                cluster.set_unhealthy(format!("cannot renew the etcd lease: {e}"));
            }
        }
    }
}

/// Follows every change under the prefix, in order: a full read first (and again whenever etcd
/// compacted past what was seen), then a watch from the next revision, resumed after each drop.
async fn follow(
    cluster: Arc<Cluster>,
    on_change: Arc<impl Fn(Change) + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) {
    let prefix = cluster.keys.all();
    let mut loaded = false;
    loop {
        if *stop.borrow() {
            return;
        }
        if !loaded {
            match cluster.etcd.get_prefix(&prefix).await {
                Ok((kvs, revision)) => {
                    for c in cluster.reload(&kvs, revision) {
                        on_change(c);
                    }
                    loaded = true;
                }
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            }
        }
        let from = lock(&cluster.view).revision + 1;
        let mut watch = match cluster.etcd.watch(&prefix, from).await {
            Ok(w) => w,
            Err(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            let next = tokio::select! {
                n = watch.next() => n,
                _ = stop.changed() => return,
            };
            match next {
                Ok(Some(batch)) if batch.compacted => {
                    loaded = false;
                    break;
                }
                Ok(Some(batch)) => {
                    // A batch without events (the watch's creation, progress) moves nothing:
                    // events at or below its header revision may still be on their way.
                    let revision = if batch.events.is_empty() {
                        0
                    } else {
                        batch.revision
                    };
                    for c in cluster.apply(&batch.events, revision) {
                        on_change(c);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &[u8], value: &[u8], rev: i64) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            value: value.to_vec(),
            create_revision: rev,
            mod_revision: rev,
            lease: 0,
        }
    }

    fn cluster() -> Arc<Cluster> {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef0123").unwrap();
        let config = ClusterConfig {
            etcd: vec!["http://127.0.0.1:1".into()],
            node_id: "n1".into(),
            advertise_http: None,
            advertise_media: None,
            lease_ttl: Duration::from_secs(3),
            cluster_secret_file: secret,
            prefix: "/t".into(),
            pull_linger: Duration::from_secs(10),
            max_sessions: 0,
        };
        // The secret is read at once; the directory may go.
        Cluster::new(
            &config,
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap()
    }

    fn stream_json(node: &str, identity: &str) -> Vec<u8> {
        serde_json::to_vec(&StreamRecord {
            node: node.into(),
            identity: identity.into(),
            session: 1,
            ready: true,
        })
        .unwrap()
    }

    #[test]
    fn watch_events_keep_the_view_and_report_what_changed() {
        let c = cluster();
        assert_eq!(c.me().http, "http://127.0.0.1:8080");
        let node = serde_json::to_vec(&NodeRecord {
            id: "n2".into(),
            http: "http://h2".into(),
            media: "127.0.0.2".parse().unwrap(),
            draining: false,
            sessions: 0,
            max_sessions: 0,
        })
        .unwrap();
        let changes = c.apply(
            &[
                WatchEvent::Put(kv(b"/t/nodes/n2", &node, 5)),
                WatchEvent::Put(kv(b"/t/streams/r/s", &stream_json("n2", "alice"), 6)),
            ],
            6,
        );
        assert_eq!(c.node("n2").unwrap().http, "http://h2");
        assert_eq!(c.stream("r", "s").unwrap().mod_revision, 6);
        assert_eq!(c.remote_streams("r"), vec![("s".into(), "alice".into())]);
        assert!(
            matches!(&changes[..], [Change::Stream { before: None, now: Some(n), .. }] if n.node == "n2")
        );
        // The same record again changes nothing; a takeover and a node's end do.
        assert!(c
            .apply(
                &[WatchEvent::Put(kv(
                    b"/t/streams/r/s",
                    &stream_json("n2", "alice"),
                    7
                ))],
                7
            )
            .is_empty());
        let changes = c.apply(
            &[
                WatchEvent::Put(kv(b"/t/streams/r/s", &stream_json("n3", "alice"), 8)),
                WatchEvent::Delete(kv(b"/t/nodes/n2", b"", 9)),
                WatchEvent::Put(kv(b"/t/garbage", b"x", 10)),
                WatchEvent::Put(kv(b"/t/streams/r/bad", b"not json", 11)),
            ],
            11,
        );
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(matches!(&changes[1], Change::NodeGone(n) if n == "n2"));
        assert_eq!(lock(&c.view).revision, 11);
        // A full reload reports the stream that vanished meanwhile.
        let changes = c.reload(&[], 20);
        assert!(matches!(&changes[..], [Change::Stream { now: None, .. }]));
        assert!(c.stream("r", "s").is_none());
    }

    #[test]
    fn node_tokens_verify_only_with_this_clusters_secret() {
        let c = cluster();
        let t = c.sign(Purpose::Pull, Some(("r", "s")), Some("ab"));
        let claims = c.verify(&t, Purpose::Pull).unwrap();
        assert_eq!(
            (claims.node.as_str(), claims.room.as_deref()),
            ("n1", Some("r"))
        );
        assert!(c.verify(&t, Purpose::Forward).is_err());
        assert!(c.verify("forged.token", Purpose::Pull).is_err());
    }
}
