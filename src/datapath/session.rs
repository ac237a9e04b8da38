//! What a worker knows of a session, a track and a subscription.

use std::net::SocketAddr;
use std::time::Instant;

use super::arrivals::TransportArrivals;
use super::egress::{EgressExtensions, SendHistory, Stamp, SubscriberCc};
use super::svc::{LayerLimit, LayerSelect, PictureState, Rewrite, SeqMap};
use super::upstream::LossTracker;
use super::{SessionId, TrackId};
use crate::ice::{Consent, IceCredentials};
use crate::srtp::SrtpContext;
use crate::wire::rtp;

pub use crate::wire::MediaKind;

/// Keyframe requests to a publisher: at most one per this interval and track.
pub const KEYFRAME_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Keyframe requests to the origin of a pulled stream: at most one a second per track.
pub const PULLED_KEYFRAME_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One peer connection (a WHIP publisher or a WHEP subscriber) on this worker.
#[derive(Debug)]
pub struct Session {
    pub id: SessionId,
    pub ice: IceCredentials,
    pub consent: Consent,
    /// The 5-tuple that proved it knows our ice-pwd; nothing is sent anywhere else.
    pub addr: Option<SocketAddr>,
    /// Unprotects what the peer sends.
    pub srtp_rx: Option<SrtpContext>,
    /// Protects what we send the peer.
    pub srtp_tx: Option<SrtpContext>,
    /// Incoming SSRC → track, for a publisher.
    pub inbound: Vec<(u32, TrackId)>,
    /// Incoming RTX SSRC → (track, primary payload type), for a publisher that negotiated RTX.
    pub inbound_rtx: Vec<(u32, TrackId, u8)>,
    /// Published tracks whose SSRCs the offer did not list, found by their MID.
    pub by_mid: Vec<(TrackId, MidBinding)>,
    /// For a publisher that negotiated transport-cc: arrivals to report.
    pub transport_cc: Option<TransportArrivals>,
    /// Tracks this session subscribes to.
    pub subscribed: Vec<TrackId>,
    /// Layer switches under way: where the stream the subscriber sees under each SSRC stands.
    pub handoffs: Vec<Handoff>,
    /// For a subscriber that negotiated transport-cc or abs-send-time: its own numbering of
    /// what it is sent, and the send history its feedback is matched against.
    pub egress: Option<SendHistory>,
    /// For a subscriber: its bandwidth estimate and probing (boxed: publishers have none).
    pub cc: Option<Box<SubscriberCc>>,
    /// A session this relay opened towards another node: the address it checks and the
    /// controlling ICE agent. `addr` is set only once a check there is answered.
    pub upstream: Option<(SocketAddr, crate::ice::Checker)>,
}

/// One subscriber stream (its SSRC) moving to another simulcast layer: the last sequence number
/// and timestamp the old layer's copies carried, so the new layer continues from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    pub ssrc: u32,
    pub last_seq: u16,
    pub last_ts: u32,
    /// The PictureID / TL0PICIDX the old layer's copies carried last (VP8, VP9).
    pub picture: Option<PictureState>,
    /// The new layer has started (at a keyframe); the old one sends no more.
    pub started: bool,
}

impl Session {
    /// The track an incoming SSRC belongs to.
    pub fn track_for(&self, ssrc: u32) -> Option<TrackId> {
        self.inbound
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, t)| *t)
    }

    /// The track and primary payload type of an incoming RTX SSRC.
    pub fn rtx_track_for(&self, ssrc: u32) -> Option<(TrackId, u8)> {
        self.inbound_rtx
            .iter()
            .find(|(s, _, _)| *s == ssrc)
            .map(|(_, t, apt)| (*t, *apt))
    }

    /// Binds an SSRC no track claims yet, from an authenticated `packet` whose MID header
    /// extension (and, for a simulcast layer, RID) names a track in `by_mid`: as its primary
    /// stream if the payload type is the track's codec, as its RTX stream if it is the RTX type
    /// (a layer's RTX names the layer in the repaired-RID extension). Each stream binds once; a
    /// second SSRC for a stream already bound (a hostile publisher) stays unknown.
    pub fn bind_by_mid(&mut self, packet: &[u8], ssrc: u32) -> Option<Inbound> {
        if self.by_mid.is_empty() {
            return None;
        }
        let pt = packet.get(1)? & 0x7f;
        let has = |id: u8, value: &[u8]| rtp::find_extension(packet, id) == Some(value);
        let bound = self.by_mid.iter().find_map(|(track, b)| {
            if !has(b.ext_id, &b.mid) {
                return None;
            }
            let track = *track;
            if pt == b.payload_type
                && b.rid.as_ref().is_none_or(|r| has(r.ext_id, &r.rid))
                && !self.inbound.iter().any(|(_, t)| *t == track)
            {
                Some(Inbound::Primary(track))
            } else if Some(pt) == b.rtx_payload_type
                && b.rid
                    .as_ref()
                    .is_none_or(|r| r.repaired_ext_id.is_some_and(|id| has(id, &r.rid)))
                && !self.inbound_rtx.iter().any(|(_, t, _)| *t == track)
            {
                Some(Inbound::Rtx(track, b.payload_type))
            } else {
                None
            }
        })?;
        match bound {
            Inbound::Primary(track) => self.inbound.push((ssrc, track)),
            Inbound::Rtx(track, apt) => self.inbound_rtx.push((ssrc, track, apt)),
        }
        Some(bound)
    }
}

/// How a publisher's packets are found when its offer listed no SSRCs (RFC 8843 §9.2): by the
/// MID header extension, which the publisher sends at least until the relay's receiver reports
/// acknowledge the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidBinding {
    /// The MID extension's id in the publisher's numbering.
    pub ext_id: u8,
    /// The section's `a=mid` value.
    pub mid: Vec<u8>,
    /// The negotiated codec's payload type: packets of it bind the primary stream.
    pub payload_type: u8,
    /// The RTX payload type, when RTX was negotiated: packets of it bind the RTX stream.
    pub rtx_payload_type: Option<u8>,
    /// For one simulcast layer: its RID, which its packets must carry as well.
    pub rid: Option<RidBinding>,
}

/// A simulcast layer's RID (RFC 8852), as its packets carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RidBinding {
    /// The RID extension's id in the publisher's numbering.
    pub ext_id: u8,
    /// The repaired-RID extension's id, which RTX packets carry the layer's RID in.
    pub repaired_ext_id: Option<u8>,
    /// The layer's `a=rid` value.
    pub rid: Vec<u8>,
}

/// What a newly bound SSRC carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// The track's primary stream.
    Primary(TrackId),
    /// The track's RTX stream, and the primary payload type.
    Rtx(TrackId, u8),
}

/// How a subscriber sees a track: its own SSRC, payload types, sequence and timestamp space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionParams {
    /// SSRC the subscriber's answer announced for this track.
    pub ssrc: u32,
    /// Publisher payload type → subscriber payload type; types not listed pass unchanged.
    pub payload_types: Vec<(u8, u8)>,
    /// Added to every sequence number (mod 2^16) until packets are left out (a layer dropped)
    /// or a simulcast switch moves it: see [`Subscription::seq`].
    pub seq_offset: u16,
    /// Added to every timestamp (mod 2^32).
    pub ts_offset: u32,
    /// RFC 4588 retransmission stream `(ssrc, payload type)` the subscriber negotiated; NACKed
    /// packets are resent on it (none: resent as they were, same SSRC and sequence number).
    pub rtx: Option<(u32, u8)>,
    /// How the publisher's header extensions become the subscriber's (none: passed unchanged).
    pub extensions: Option<ExtensionRewrite>,
    /// The subscriber's ids of the extensions the relay writes itself on every packet: the
    /// session's transport-wide sequence number and abs-send-time (the publisher's are never
    /// passed on).
    pub egress: EgressExtensions,
    /// The video codec, whose payload descriptor (VP8, VP9) says which layer a packet is of.
    pub codec: Option<crate::wire::keyframe::VideoCodec>,
    /// The highest spatial and temporal layer inside the stream the subscriber gets.
    pub limit: LayerLimit,
    /// The publisher's dependency descriptor extension id: where the layers of a codec
    /// without a payload descriptor of its own (AV1, H.264) are read.
    pub dependency_descriptor: Option<u8>,
}

/// The publisher's and the subscriber's header extension numbering differ (each chose its own
/// `a=extmap` ids, and its own MID values): a Firefox publisher's MID id may be a Chromium
/// subscriber's transport-cc id, and a MID the subscriber does not know makes it drop the
/// packet. Forwarded packets carry only the extensions both sides negotiated, renumbered, and
/// the subscriber's own MID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionRewrite {
    /// `(publisher id, subscriber id)` of the extensions both negotiated; the rest are dropped.
    pub ids: Vec<(u8, u8)>,
    /// The publisher's MID extension id, the subscriber's, and the subscriber's MID value.
    pub mid: Option<(u8, u8, Vec<u8>)>,
}

impl SubscriptionParams {
    /// Keeps the publisher's numbering under a new SSRC.
    pub fn with_ssrc(ssrc: u32) -> Self {
        Self {
            ssrc,
            payload_types: Vec::new(),
            seq_offset: 0,
            ts_offset: 0,
            rtx: None,
            extensions: None,
            egress: EgressExtensions::default(),
            codec: None,
            limit: LayerLimit::default(),
            dependency_descriptor: None,
        }
    }
}

/// A subscription of a local session to a track.
#[derive(Debug)]
pub struct Subscription {
    /// Slot of the subscribing session in the worker's table.
    pub session: usize,
    pub params: SubscriptionParams,
    pub packets: u64,
    pub octets: u64,
    pub last_rtp_ts: u32,
    /// The sequence number of the last copy sent (subscriber numbering).
    pub last_seq: u16,
    /// Next sequence number on the RTX stream.
    pub rtx_seq: u16,
    /// Where this subscription stands in a simulcast layer switch; `None` for most.
    pub switch: Option<Switch>,
    /// The running sequence-number offset (publisher → subscriber) and its way back for NACKs.
    pub seq: SeqMap,
    /// Which packets of a layered VP8/VP9 stream go out, and their PictureID renumbering.
    pub select: LayerSelect,
    /// Paused by automatic layers (the path carries not even the lowest layer), or waiting
    /// for a keyframe to start again.
    pub pause: Pause,
}

/// A subscription's pause (see `Command::PauseVideo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pause {
    #[default]
    Off,
    /// Nothing goes out.
    Paused,
    /// Nothing goes out until a packet starts a keyframe of the stream's codec.
    Resuming(crate::wire::keyframe::VideoCodec),
}

/// A subscription's part in a layer switch (the session's [`Handoff`] joins the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// The new layer: sends nothing until a packet starts a keyframe of `codec`.
    Waiting(crate::wire::keyframe::VideoCodec),
    /// The new layer, started with the publisher's sequence number `start`: earlier packets
    /// (late, reordered) and NACKs for them are not this subscription's.
    Started { start: u16 },
    /// The old layer: sends until the new one starts, then is removed.
    Replaced,
}

impl Subscription {
    /// Session `slot`'s subscription with `params`, nothing sent yet.
    pub fn new(session: usize, params: SubscriptionParams, switch: Option<Switch>) -> Self {
        // RTX numbering starts at a value derived from the (random) RTX SSRC.
        let rtx_seq = params.rtx.map_or(0, |(ssrc, _)| (ssrc >> 8) as u16);
        Self {
            session,
            seq: SeqMap::new(params.seq_offset),
            select: LayerSelect::new(params.codec, params.limit)
                .with_dependency_descriptor(params.dependency_descriptor),
            params,
            packets: 0,
            octets: 0,
            last_rtp_ts: 0,
            last_seq: 0,
            rtx_seq,
            switch,
            pause: Pause::Off,
        }
    }

    /// Copies a cached packet the subscriber was sent before (a retransmission, a probe) into
    /// `out` as [`Self::copy_rewritten`] did the first time, descriptor fields included; `None`
    /// if this subscription never sent it or `out` is too small.
    pub fn copy_resent(
        &self,
        packet: &[u8],
        out: &mut [u8],
        stamp: Option<Stamp>,
    ) -> Option<usize> {
        let rewrite = if self.select.active() {
            self.select.replay_packet(packet)?
        } else {
            Rewrite::default()
        };
        let n = self.copy_rewritten(packet, out, stamp)?;
        super::svc::apply(&mut out[..n], self.params.codec, rewrite);
        Some(n)
    }

    /// Copies the publisher's plaintext `packet` into `out` in the subscriber's numbering and
    /// header extensions, stamped with the session's `stamp` (transport-wide sequence number,
    /// abs-send-time) where the subscriber negotiated them; the length written, or `None` if it
    /// is malformed or `out` too small.
    pub fn copy_rewritten(
        &self,
        packet: &[u8],
        out: &mut [u8],
        stamp: Option<Stamp>,
    ) -> Option<usize> {
        let (seq, abs);
        let mut added: [(u8, &[u8]); 2] = [(0, &[]); 2];
        let mut n_added = 0;
        if let Some(s) = stamp {
            seq = s.transport_seq.to_be_bytes();
            abs = s.abs_send_time.to_be_bytes();
            if let Some(id) = self.params.egress.transport_cc {
                added[n_added] = (id, &seq[..]);
                n_added += 1;
            }
            if let Some(id) = self.params.egress.abs_send_time {
                added[n_added] = (id, &abs[1..]);
                n_added += 1;
            }
        }
        let added = &added[..n_added];
        let ours = |id: u8| added.iter().any(|(a, _)| *a == id);
        let n = match &self.params.extensions {
            None => {
                out.get_mut(..packet.len())?.copy_from_slice(packet);
                // Same numbering on both sides: the stamps overwrite the publisher's values in
                // place when it sent them, same size; otherwise the block is rebuilt.
                let in_place = added.iter().all(|(id, value)| {
                    match rtp::find_extension_range(&out[..packet.len()], *id) {
                        Some(r) if r.len() == value.len() => {
                            out[r].copy_from_slice(value);
                            true
                        }
                        _ => false,
                    }
                });
                if in_place {
                    packet.len()
                } else {
                    rtp::copy_translating_extensions_adding(
                        packet,
                        out,
                        |id, data| (!ours(id)).then_some((id, data)),
                        added,
                    )
                    .ok()?
                }
            }
            Some(x) => rtp::copy_translating_extensions_adding(
                packet,
                out,
                |id, data| {
                    let (to, data) = match &x.mid {
                        Some((from, to, mid)) if *from == id => (*to, mid.as_slice()),
                        _ => x
                            .ids
                            .iter()
                            .find(|(from, _)| *from == id)
                            .map(|&(_, to)| (to, data))?,
                    };
                    (!ours(to)).then_some((to, data))
                },
                added,
            )
            .ok()?,
        };
        if n < rtp::FIXED_HEADER_LEN || !self.rewrite(&mut out[..n]) {
            return None;
        }
        Some(n)
    }

    /// Rewrites a plaintext copy of the publisher's packet into the subscriber's numbering;
    /// false if it has none there.
    fn rewrite(&self, packet: &mut [u8]) -> bool {
        if packet.len() < rtp::FIXED_HEADER_LEN {
            return false;
        }
        let p = &self.params;
        let pt = packet[1] & 0x7f;
        let Some(seq) = self.seq.lookup(u16::from_be_bytes([packet[2], packet[3]])) else {
            return false; // left out: it has no number of the subscriber's
        };
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]])
            .wrapping_add(p.ts_offset);
        let Ok(mut h) = rtp::RtpHeaderMut::new(packet) else {
            return false;
        };
        h.set_ssrc(p.ssrc);
        h.set_sequence_number(seq);
        h.set_timestamp(ts);
        if let Some(&(_, to)) = p.payload_types.iter().find(|(from, _)| *from == pt) {
            h.set_payload_type(to);
        }
        true
    }

    /// Turns the rewritten plaintext packet `buf[..len]` into an RFC 4588 retransmission in
    /// place: RTX SSRC and payload type, the next RTX sequence number, the original sequence
    /// number (OSN) in front of the payload, the original padding dropped. Returns the new
    /// length, or `None` when there is no RTX stream, the packet is malformed or `buf` has no
    /// room for the two extra bytes.
    pub fn rewrite_as_rtx(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let (ssrc, pt) = self.params.rtx?;
        let parsed = rtp::RtpPacket::parse(buf.get(..len)?).ok()?;
        let (h, pad) = (parsed.header_len(), usize::from(parsed.padding_len()));
        let osn = parsed.sequence_number();
        let end = len.checked_sub(pad)?;
        if end < h || end + 2 > buf.len() {
            return None;
        }
        buf.copy_within(h..end, h + 2);
        buf[h..h + 2].copy_from_slice(&osn.to_be_bytes());
        buf[0] &= !0x20; // no padding
        let seq = self.rtx_seq;
        self.rtx_seq = seq.wrapping_add(1);
        let mut hdr = rtp::RtpHeaderMut::new(&mut buf[..end + 2]).ok()?;
        hdr.set_ssrc(ssrc);
        hdr.set_payload_type(pt);
        hdr.set_sequence_number(seq);
        Some(end + 2)
    }

    /// The publisher's sequence number for one the subscriber names (in a NACK); `None` if
    /// this subscription sent no packet under it.
    pub fn publisher_seq(&self, subscriber_seq: u16) -> Option<u16> {
        self.seq.backward(subscriber_seq)
    }
}

/// Where a track's publisher is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Published by the session in this slot of this worker.
    Local(usize),
    /// Published on another worker; packets arrive on the ring from it.
    Remote(usize),
}

/// The last packets of a track, by sequence number, for answering NACKs.
#[derive(Debug)]
pub struct RetransmitCache {
    slots: Vec<(u16, u16, [u8; 1500])>,
}

impl RetransmitCache {
    /// Room for `n` packets (allocated now).
    pub fn new(n: usize) -> Self {
        Self {
            slots: vec![(0, 0, [0; 1500]); n.max(1)],
        }
    }

    /// Stores a plaintext packet (too large ones are not cached).
    pub fn store(&mut self, seq: u16, packet: &[u8]) {
        let n = self.slots.len();
        let slot = &mut self.slots[usize::from(seq) % n];
        if packet.len() <= slot.2.len() {
            slot.0 = seq;
            slot.1 = packet.len() as u16;
            slot.2[..packet.len()].copy_from_slice(packet);
        }
    }

    /// The cached packet with `seq`, if still there.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        let slot = &self.slots[usize::from(seq) % self.slots.len()];
        (slot.1 > 0 && slot.0 == seq).then(|| &slot.2[..usize::from(slot.1)])
    }
}

/// A track known to this worker: published here, or subscribed here from another worker.
#[derive(Debug)]
pub struct Track {
    pub kind: MediaKind,
    pub origin: Origin,
    /// The publisher's SSRC for this track, once known here (from its offer, or from its first
    /// packet for an offer without SSRCs; never on a worker that only subscribes).
    pub publisher_ssrc: Option<u32>,
    pub subscribers: Vec<Subscription>,
    /// Workers (bit i = worker i) that have subscribers and get each packet on a ring.
    pub remote_workers: u64,
    pub cache: RetransmitCache,
    pub last_keyframe_request: Option<Instant>,
    /// At most one keyframe request per this interval goes to the publisher.
    pub keyframe_interval: std::time::Duration,
    /// Highest extended sequence number seen, and packets received (for receiver reports).
    pub highest_seq: Option<u64>,
    pub received: u64,
    /// For a track published here whose publisher takes NACKs: what it still owes us.
    pub loss: Option<LossTracker>,
    /// A simulcast layer published here: since when it is (when its last packet came), and
    /// whether it was reported stopped.
    pub layer: Option<LayerState>,
    /// Bytes received since the last rate report (simulcast layers: their measured rate).
    pub octets: u64,
    /// The video codec, where the publisher's worker knows it (set by `Publish`).
    pub codec: Option<crate::wire::keyframe::VideoCodec>,
    /// Of `octets`, those of each temporal layer (VP8/VP9 descriptors' TID 0..=3, or the
    /// dependency descriptor's).
    pub temporal_octets: [u64; 4],
    /// The publisher's dependency descriptors (set by `Publish` when negotiated).
    pub dd: Option<super::svc::DdState>,
}

/// Whether a simulcast layer is being sent: a publisher stops layers its bandwidth or CPU
/// cannot carry, and the slow path moves their subscribers to another layer meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerState {
    /// The last packet's arrival, or the time the layer was installed.
    pub last: Instant,
    pub stalled: bool,
}

impl Track {
    /// Session `slot`'s subscription to this track under its SSRC `ssrc`.
    pub fn subscription(&self, slot: usize, ssrc: u32) -> Option<&Subscription> {
        let mut subs = self.subscribers.iter();
        subs.find(|s| s.session == slot && s.params.ssrc == ssrc)
    }

    /// [`Self::subscription`], to change.
    pub fn subscription_mut(&mut self, slot: usize, ssrc: u32) -> Option<&mut Subscription> {
        let mut subs = self.subscribers.iter_mut();
        subs.find(|s| s.session == slot && s.params.ssrc == ssrc)
    }

    /// A track with no subscribers yet and an empty retransmission cache of `nack_cache` packets.
    pub fn new(kind: MediaKind, origin: Origin, nack_cache: usize) -> Self {
        Self {
            kind,
            origin,
            publisher_ssrc: None,
            subscribers: Vec::new(),
            remote_workers: 0,
            cache: RetransmitCache::new(nack_cache),
            last_keyframe_request: None,
            keyframe_interval: KEYFRAME_MIN_INTERVAL,
            highest_seq: None,
            received: 0,
            loss: None,
            layer: None,
            octets: 0,
            codec: None,
            temporal_octets: [0; 4],
            dd: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(rtx: Option<(u32, u8)>) -> Subscription {
        let params = SubscriptionParams {
            rtx,
            ..SubscriptionParams::with_ssrc(0x5555)
        };
        Subscription {
            rtx_seq: 40,
            ..Subscription::new(0, params, None)
        }
    }

    /// An RTP packet with a CSRC, a one-byte extension, payload `body` and 3 padding bytes.
    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = vec![0xb1, 0xe0, 0x03, 0xe8, 0, 0, 0x10, 0, 0, 0, 0x55, 0x55];
        p.extend_from_slice(&7u32.to_be_bytes()); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // extension, 1 word
        p.extend_from_slice(body);
        p.extend_from_slice(&[0, 0, 3]); // padding
        p
    }

    fn publisher(by_mid: Vec<(TrackId, MidBinding)>) -> Session {
        Session {
            id: 1,
            ice: IceCredentials {
                local_ufrag: "relay".into(),
                local_pwd: "relay-password-relay-password".into(),
                remote_ufrag: "peer".into(),
            },
            consent: Consent::new(Instant::now(), std::time::Duration::from_secs(30)),
            addr: None,
            srtp_rx: None,
            srtp_tx: None,
            inbound: Vec::new(),
            inbound_rtx: Vec::new(),
            by_mid,
            transport_cc: None,
            subscribed: Vec::new(),
            handoffs: Vec::new(),
            egress: None,
            cc: None,
            upstream: None,
        }
    }

    /// An RTP packet of SSRC `ssrc` and payload type `pt` whose one-byte extension `id` holds
    /// `mid`.
    fn with_mid(ssrc: u32, pt: u8, id: u8, mid: &[u8]) -> Vec<u8> {
        with_extensions(ssrc, pt, &[(id, mid)])
    }

    /// An RTP packet with one-byte header extensions `(id, value)`.
    fn with_extensions(ssrc: u32, pt: u8, extensions: &[(u8, &[u8])]) -> Vec<u8> {
        let mut p = vec![0u8; 128];
        let n = rtp::RtpBuilder {
            payload_type: pt,
            sequence_number: 1,
            ssrc,
            extensions,
            ..Default::default()
        }
        .write(&mut p, b"payload")
        .unwrap();
        p.truncate(n);
        p
    }

    fn binding(mid: &[u8], rtx: Option<u8>) -> MidBinding {
        MidBinding {
            ext_id: 4,
            mid: mid.to_vec(),
            payload_type: 96,
            rtx_payload_type: rtx,
            rid: None,
        }
    }

    #[test]
    fn ssrcs_bind_by_mid_once_per_stream() {
        let mut s = publisher(vec![
            (10, binding(b"0", None)),
            (11, binding(b"1", Some(97))),
        ]);
        // Unknown MID, wrong extension id, no extension: nothing binds.
        assert_eq!(s.bind_by_mid(&with_mid(0xa, 96, 4, b"7"), 0xa), None);
        assert_eq!(s.bind_by_mid(&with_mid(0xa, 96, 5, b"1"), 0xa), None);
        assert_eq!(s.bind_by_mid(&packet(b"x"), 0x5555), None);
        // A payload type that is neither the codec nor its RTX binds nothing.
        assert_eq!(s.bind_by_mid(&with_mid(0xa, 100, 4, b"1"), 0xa), None);
        assert_eq!(
            s.bind_by_mid(&with_mid(0xa, 96, 4, b"1"), 0xa),
            Some(Inbound::Primary(11))
        );
        assert_eq!(s.track_for(0xa), Some(11));
        assert_eq!(
            s.bind_by_mid(&with_mid(0xb, 97, 4, b"1"), 0xb),
            Some(Inbound::Rtx(11, 96))
        );
        assert_eq!(s.rtx_track_for(0xb), Some((11, 96)));
        // A second SSRC for a stream already bound (simulcast, or hostile) stays unknown.
        assert_eq!(s.bind_by_mid(&with_mid(0xc, 96, 4, b"1"), 0xc), None);
        assert_eq!(s.bind_by_mid(&with_mid(0xc, 97, 4, b"1"), 0xc), None);
        // No RTX negotiated for MID 0: its RTX type binds nothing; a longer MID is another one.
        assert_eq!(s.bind_by_mid(&with_mid(0xd, 97, 4, b"0"), 0xd), None);
        assert_eq!(s.bind_by_mid(&with_mid(0xd, 96, 4, b"00"), 0xd), None);
        assert_eq!(
            s.bind_by_mid(&with_mid(0xd, 96, 4, b"0"), 0xd),
            Some(Inbound::Primary(10))
        );
        assert_eq!(s.inbound, vec![(0xa, 11), (0xd, 10)]);
    }

    #[test]
    fn simulcast_layers_bind_by_rid_and_their_rtx_by_repaired_rid() {
        let layer = |rid: &[u8]| MidBinding {
            rid: Some(RidBinding {
                ext_id: 10,
                repaired_ext_id: Some(11),
                rid: rid.to_vec(),
            }),
            ..binding(b"1", Some(97))
        };
        let mut s = publisher(vec![(7, layer(b"q")), (8, layer(b"f"))]);
        let mid: (u8, &[u8]) = (4, b"1");
        // The MID alone, or the RID in the wrong extension, names no layer.
        assert_eq!(s.bind_by_mid(&with_mid(0xa, 96, 4, b"1"), 0xa), None);
        let wrong = with_extensions(0xa, 96, &[mid, (11, b"f")]);
        assert_eq!(s.bind_by_mid(&wrong, 0xa), None);
        let f = with_extensions(0xa, 96, &[mid, (10, b"f")]);
        assert_eq!(s.bind_by_mid(&f, 0xa), Some(Inbound::Primary(8)));
        let q = with_extensions(0xb, 96, &[(10, b"q"), mid]);
        assert_eq!(s.bind_by_mid(&q, 0xb), Some(Inbound::Primary(7)));
        // RTX names its layer in the repaired-RID extension, not the RID one.
        let rtx_rid = with_extensions(0xc, 97, &[mid, (10, b"q")]);
        assert_eq!(s.bind_by_mid(&rtx_rid, 0xc), None);
        let rtx_q = with_extensions(0xc, 97, &[mid, (11, b"q")]);
        assert_eq!(s.bind_by_mid(&rtx_q, 0xc), Some(Inbound::Rtx(7, 96)));
        // A layer bound once stays bound.
        let again = with_extensions(0xd, 96, &[mid, (10, b"f")]);
        assert_eq!(s.bind_by_mid(&again, 0xd), None);
        assert_eq!(s.inbound, vec![(0xa, 8), (0xb, 7)]);
    }

    #[test]
    fn nothing_binds_without_mid_bindings_or_on_truncated_packets() {
        let mut s = publisher(Vec::new());
        assert_eq!(s.bind_by_mid(&with_mid(0xa, 96, 4, b"0"), 0xa), None);
        let mut s = publisher(vec![(10, binding(b"0", None))]);
        let p = with_mid(0xa, 96, 4, b"0");
        for n in 0..20 {
            assert_eq!(s.bind_by_mid(&p[..n], 0xa), None, "{n} bytes");
        }
        assert!(s.inbound.is_empty());
    }

    #[test]
    fn rtx_keeps_header_and_extensions_adds_osn_and_drops_padding() {
        let mut sub = subscription(Some((0x7777, 97)));
        let original = packet(b"payload");
        let mut buf = original.clone();
        buf.resize(original.len() + 16, 0);
        let n = sub.rewrite_as_rtx(&mut buf, original.len()).unwrap();
        let p = rtp::RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.ssrc(), 0x7777);
        assert_eq!(p.payload_type(), 97);
        assert!(p.marker(), "marker kept");
        assert!(!p.padding());
        assert_eq!(p.sequence_number(), 40);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7]);
        assert_eq!(p.timestamp(), 0x1000);
        assert_eq!(
            p.payload(),
            b"\x03\xe8payload",
            "OSN 1000, then the payload"
        );
        assert_eq!(sub.rtx_seq, 41);
    }

    #[test]
    fn rtx_refuses_without_room_or_stream() {
        let original = packet(b"x");
        let mut exact = original.clone();
        // Padding (3) frees more than the OSN (2) needs, so even an exact buffer fits...
        assert!(subscription(Some((1, 97)))
            .rewrite_as_rtx(&mut exact, original.len())
            .is_some());
        // ...but without padding it needs two more bytes.
        let mut no_pad = original[..original.len() - 3].to_vec();
        no_pad[0] &= !0x20;
        let len = no_pad.len();
        assert!(subscription(Some((1, 97)))
            .rewrite_as_rtx(&mut no_pad, len)
            .is_none());
        let mut buf = original.clone();
        assert!(subscription(None)
            .rewrite_as_rtx(&mut buf, original.len())
            .is_none());
        assert!(subscription(Some((1, 97)))
            .rewrite_as_rtx(&mut buf[..5], 5)
            .is_none());
    }
}
