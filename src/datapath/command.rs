//! What the slow path tells a worker (`Command`) and what workers tell the slow path (`Event`).
//! Both travel through bounded queues; commands may allocate (they are not per packet).

use std::net::SocketAddr;

use super::session::{MediaKind, MidBinding, SubscriptionParams};
use super::upstream::PublisherRtx;
use super::{SessionId, TrackId};
use crate::cc::allocate::EstimateReport;
use crate::ice::IceCredentials;
use crate::srtp::Profile;
use crate::wire::keyframe::VideoCodec;

/// SRTP master keys for one session, as DTLS-SRTP exported them.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// The negotiated profile.
    pub profile: Profile,
    /// Key and salt we protect with (our write key).
    pub local_key: Vec<u8>,
    pub local_salt: Vec<u8>,
    /// Key and salt the peer protects with (its write key).
    pub remote_key: Vec<u8>,
    pub remote_salt: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// An instruction to one worker.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Install a session; it answers STUN for `ice` from now on.
    AddSession { id: SessionId, ice: IceCredentials },
    /// Install a session this relay opens towards another node (a pull from a stream's
    /// origin). This side is ICE-controlling: it checks `remote` (signalled by the origin over
    /// the cluster's authenticated HTTP) until a Binding response verifies with `remote_pwd`, and
    /// only then takes `remote` as the session's address. `seed` (random) makes the
    /// tie-breaker and transaction ids.
    AddUpstream {
        id: SessionId,
        ice: IceCredentials,
        remote_pwd: String,
        remote: SocketAddr,
        seed: u64,
    },
    /// A track published here by an upstream session (a stream pulled from its origin):
    /// keyframe requests go upstream at most once a second, and with `layer` it is a simulcast
    /// layer whose stops and restarts are reported, as for a simulcast publisher.
    PulledTrack { track: TrackId, layer: bool },
    /// ICE restart: the session answers checks for `ice` from now on, and no longer for its old
    /// credentials; its validated address, keys and media stay until a nominated check moves it.
    RestartIce {
        session: SessionId,
        ice: IceCredentials,
    },
    /// Forget a session, its tracks and subscriptions.
    RemoveSession { id: SessionId },
    /// SRTP keys: until these arrive, media from and to the session is dropped.
    SetKeys {
        session: SessionId,
        keys: SessionKeys,
    },
    /// The session publishes `track` with SSRC `ssrc`, or, when its offer listed none, with the
    /// SSRCs of its first packets that carry the MID in `by_mid`. With `nack`, the relay NACKs
    /// the packets it never received; with `rtx`, it takes the retransmissions from that RTX
    /// stream; with `transport_cc` (the header extension id), it sends transport-cc feedback.
    Publish {
        session: SessionId,
        track: TrackId,
        ssrc: Option<u32>,
        by_mid: Option<MidBinding>,
        kind: MediaKind,
        nack: bool,
        rtx: Option<PublisherRtx>,
        transport_cc: Option<u8>,
        /// The video codec: for VP8/VP9 the worker measures each temporal layer's rate.
        codec: Option<VideoCodec>,
        /// The dependency descriptor's extension id, if negotiated: the temporal layers of
        /// other codecs (AV1, H.264) are measured from it.
        dependency_descriptor: Option<u8>,
    },
    /// The session subscribes to `track`, published on worker `origin_worker`. With `switch`,
    /// the track is another simulcast layer of what the session already receives under
    /// `params.ssrc`: the old layer keeps flowing until the new one reaches a keyframe of that
    /// codec, and the new one continues its sequence numbers and timestamps.
    Subscribe {
        session: SessionId,
        track: TrackId,
        origin_worker: usize,
        kind: MediaKind,
        params: SubscriptionParams,
        switch: Option<VideoCodec>,
    },
    /// The session no longer publishes `track` (a stream an edge stopped pulling): its SSRCs
    /// and the track go.
    Unpublish { session: SessionId, track: TrackId },
    /// The session no longer receives `track`.
    Unsubscribe { session: SessionId, track: TrackId },
    /// The stream the session receives under its SSRC `ssrc` gets at most these spatial and
    /// temporal layers (VP8 temporal layers, VP9 SVC), from the next switching point on.
    SetLayerLimit {
        session: SessionId,
        ssrc: u32,
        limit: crate::datapath::LayerLimit,
    },
    /// The stream the session receives under its SSRC `ssrc` stops (`paused`), its path too
    /// narrow for even its lowest layer, or starts again: at the next keyframe, which is asked
    /// for, numbered on from the last packet sent before the pause.
    PauseVideo {
        session: SessionId,
        ssrc: u32,
        paused: bool,
    },
    /// On the publisher's worker: worker `worker` does (or no longer does) have subscribers.
    SetRemoteWorker {
        track: TrackId,
        worker: usize,
        subscribed: bool,
    },
    /// Ask the track's publisher for a keyframe (rate-limited).
    RequestKeyframe { track: TrackId },
    /// Probe subscriber `session`'s path at `target_bps`: a few recent video packets re-sent on
    /// its RTX stream, paced at that rate; the estimate reports what the path carried.
    Probe { session: SessionId, target_bps: u64 },
    /// A DTLS datagram from the slow path to the session's validated address.
    SendDtls { session: SessionId, data: Vec<u8> },
}

/// Something a worker reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A DTLS datagram from a session's validated address.
    Dtls {
        session: SessionId,
        worker: usize,
        data: Vec<u8>,
    },
    /// The session's validated address (first, or moved by a nominated check).
    Bound {
        session: SessionId,
        addr: SocketAddr,
    },
    /// No authenticated Binding request within the consent timeout: the session was removed.
    ConsentExpired { session: SessionId },
    /// A simulcast layer published on this worker stopped (no packet for `LAYER_STALL`, or none
    /// yet that long after it was published) or started again.
    LayerActive { track: TrackId, active: bool },
    /// A subscriber's bandwidth estimate: once a second, and at once after a decrease.
    Estimate {
        session: SessionId,
        report: EstimateReport,
    },
    /// A simulcast layer (or a stream with temporal layers) published on this worker: what it
    /// carried over the last second, in all and (VP8/VP9) per temporal layer, TID 0 to 3.
    LayerRate {
        track: TrackId,
        bps: u64,
        temporal: [u64; 4],
    },
    /// A command could not be carried out.
    Error {
        session: SessionId,
        reason: &'static str,
    },
}
