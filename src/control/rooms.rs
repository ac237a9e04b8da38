//! Rooms, streams and sessions as the slow path knows them, and the room event feed.
//!
//! Plain data behind one `Mutex` in `Relay`: every change is a signalling request or a
//! housekeeping tick, never a media packet.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use tokio::sync::broadcast;

use super::auth::Grant;
use crate::datapath::{
    Command, ExtensionRewrite, MediaKind, MidBinding, PublisherRtx, RidBinding, SessionId,
    SubscriptionParams, TrackId, TrackRef,
};
use crate::wire::sdp::{
    NegotiatedMedia, MID_URI, REPAIRED_RTP_STREAM_ID, RTP_STREAM_ID, TRANSPORT_WIDE_CC,
};

/// What a session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionRole {
    /// A WHIP publisher.
    Publisher,
    /// A WHEP subscriber.
    Subscriber,
    /// The link between this node and another of its cluster (one per pair of nodes, either
    /// way): it carries every layer of each stream one node pulls from the other, and each
    /// stream pulled here is published by it, as if by a local publisher.
    Link,
}

impl SessionRole {
    /// Whether the session is a link between two nodes, not a client.
    pub fn is_link(self) -> bool {
        self == SessionRole::Link
    }
}

/// One published track.
#[derive(Debug, Clone)]
pub struct PublishedTrack {
    pub id: TrackId,
    pub kind: MediaKind,
    /// The publisher's SSRC, if its offer listed one (`a=ssrc`); if not, the worker learns it
    /// from the MID header extension of the first packets (`by_mid`).
    pub ssrc: Option<u32>,
    /// What the publisher negotiated: codec, payload types, extensions.
    pub media: NegotiatedMedia,
    /// Simulcast: each layer's RID and datapath track, in the offer's order (`id` is the
    /// first's). Empty when the section sends one stream.
    pub layers: Vec<(String, TrackId)>,
}

impl PublishedTrack {
    /// How this track's header extensions become those of `subscriber` (the subscriber's
    /// answered section): the extensions both negotiated, renumbered; the subscriber's own MID;
    /// never the publisher's transport-wide sequence number (it means nothing to the subscriber:
    /// the worker stamps the subscriber session's own, and a fresh abs-send-time, see
    /// `SubscriptionParams::egress`). `None` when both number alike and share the MID: packets
    /// are then copied as they are (a renumbered copy costs ~45 ns more per subscriber) and the
    /// worker overwrites those two values in place.
    pub fn extension_rewrite(&self, subscriber: &NegotiatedMedia) -> Option<ExtensionRewrite> {
        let alike = self.media.mid == subscriber.mid
            && self.media.extensions.iter().all(|e| {
                subscriber
                    .extensions
                    .iter()
                    .any(|s| s.uri == e.uri && s.id == e.id)
            });
        if alike {
            return None;
        }
        let ids = self
            .media
            .extensions
            .iter()
            .filter(|e| e.uri != MID_URI && e.uri != TRANSPORT_WIDE_CC)
            .filter_map(|e| Some((e.id, subscriber.extension_id(&e.uri)?)))
            .collect();
        let mid = (self.media.extension_id(MID_URI))
            .zip(subscriber.extension_id(MID_URI))
            .map(|(from, to)| (from, to, subscriber.mid.as_bytes().to_vec()));
        Some(ExtensionRewrite { ids, mid })
    }

    /// How the worker finds this track's packets when the offer listed no SSRC: by the MID
    /// header extension, if it was negotiated. `None` when the SSRC is known, or nothing would
    /// identify the packets (the offer is then refused). For a simulcast section, the first
    /// layer's binding; [`Self::layer_bindings`] has them all.
    pub fn by_mid(&self) -> Option<MidBinding> {
        self.layer_bindings().into_iter().next().map(|(_, b)| b)
    }

    /// Each datapath track of this section and how its packets are found by MID (and RID).
    fn layer_bindings(&self) -> Vec<(TrackId, MidBinding)> {
        if self.ssrc.is_some() {
            return Vec::new();
        }
        let ext_id = |uri: &str| self.media.extension_id(uri);
        let Some(mid_ext) = ext_id(MID_URI) else {
            return Vec::new();
        };
        let binding = |rid: Option<RidBinding>| MidBinding {
            ext_id: mid_ext,
            mid: self.media.mid.as_bytes().to_vec(),
            payload_type: self.media.codec.payload_type,
            rtx_payload_type: self.media.codec.rtx,
            rid,
        };
        if self.layers.is_empty() {
            return vec![(self.id, binding(None))];
        }
        let Some(rid_ext) = ext_id(RTP_STREAM_ID) else {
            return Vec::new();
        };
        let repaired_ext_id = ext_id(REPAIRED_RTP_STREAM_ID);
        self.layers
            .iter()
            .map(|(rid, track)| {
                let rid = RidBinding {
                    ext_id: rid_ext,
                    repaired_ext_id,
                    rid: rid.as_bytes().to_vec(),
                };
                (*track, binding(Some(rid)))
            })
            .collect()
    }

    /// The layer to send someone who wants layer `wanted`: that one, unless the publisher has it
    /// stopped (`stalled`); then the first of the others (in the offer's order) still sent; if
    /// none is, `wanted` all the same.
    pub fn serving(&self, wanted: TrackId, stalled: &[TrackId]) -> TrackId {
        if !stalled.contains(&wanted) {
            return wanted;
        }
        self.layers
            .iter()
            .map(|(_, t)| *t)
            .find(|t| !stalled.contains(t))
            .unwrap_or(wanted)
    }

    /// The datapath track a subscriber gets: with simulcast, the layer `rid` names (`None`: the
    /// first, the publisher's preferred), and an error naming the layers if there is no such
    /// layer. A section without simulcast has one stream, whatever `rid` asks for.
    pub fn layer(&self, rid: Option<&str>) -> Result<TrackId, String> {
        match rid {
            Some(rid) if !self.layers.is_empty() => self
                .layers
                .iter()
                .find(|(r, _)| r == rid)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    let names: Vec<&str> = self.layers.iter().map(|(r, _)| r.as_str()).collect();
                    format!(
                        "the stream's {} has no simulcast layer '{rid}' (it has {})",
                        self.media.mid,
                        names.join(", ")
                    )
                }),
            _ => Ok(self.id),
        }
    }

    /// The datapath commands that install this track on its publisher's worker, one per
    /// datapath track (a simulcast section has one per layer, each found by its RID): the relay
    /// NACKs the publisher's missing packets if it accepted `a=rtcp-fb:<pt> nack`, and takes
    /// retransmissions from its RTX stream if RTX was negotiated with an SSRC (or, with no
    /// SSRCs in the offer, finds both streams by MID), and sends transport-cc feedback if the
    /// transport-wide sequence number extension was negotiated.
    pub fn publish_commands(&self, session: SessionId) -> Vec<Command> {
        let bindings = self.layer_bindings();
        if bindings.is_empty() {
            return vec![self.install(session, self.id, None)];
        }
        bindings
            .into_iter()
            .map(|(track, binding)| self.install(session, track, Some(binding)))
            .collect()
    }

    fn install(&self, session: SessionId, track: TrackId, by_mid: Option<MidBinding>) -> Command {
        let codec = &self.media.codec;
        Command::Publish {
            session,
            track,
            ssrc: self.ssrc,
            by_mid,
            kind: self.kind,
            nack: codec.rtcp_fb.iter().any(|fb| fb == "nack"),
            rtx: self
                .media
                .rtx_ssrc
                .filter(|_| codec.rtx.is_some())
                .map(|ssrc| PublisherRtx {
                    ssrc,
                    apt: codec.payload_type,
                }),
            transport_cc: self.media.extension_id(TRANSPORT_WIDE_CC),
            codec: crate::wire::keyframe::VideoCodec::from_name(&codec.name),
            dependency_descriptor: self.media.extension_id(crate::wire::dd::URI),
        }
    }
}

/// A session the slow path has created.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub role: SessionRole,
    pub room: String,
    pub stream: String,
    pub worker: usize,
    pub identity: String,
    /// The token the session was created with (expiry and revocation apply for its lifetime).
    pub grant: Grant,
    pub client_ip: IpAddr,
    pub etag: String,
    /// The client's current `a=ice-ufrag` (an ICE restart replaces it).
    pub remote_ufrag: String,
    /// The offer's media `a=mid`s, in order (for the ICE restart answer fragment).
    pub mids: Vec<String>,
    /// Set once DTLS has completed and keys are installed.
    pub connected: bool,
    /// A subscriber: what it receives of each published track.
    pub feeds: Vec<Feed>,
    /// A link between nodes: the other node.
    pub peer_node: Option<String>,
}

/// What a subscriber session receives of one published track: the datapath track (for a
/// simulcast track, the layer it gets now) and the subscription in the subscriber's numbering.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The published track ([`PublishedTrack::id`]).
    pub published: TrackId,
    pub track: TrackRef,
    pub params: SubscriptionParams,
    /// For a simulcast track: the layer the subscriber asked for, its ceiling. It gets another
    /// while the publisher has that one stopped.
    pub wanted: TrackId,
    /// The layer its bandwidth estimate allows (`None`: the ceiling), see `autolayer`.
    pub auto: Option<TrackId>,
    /// The temporal layer its bandwidth estimate allows in that layer (`None`: every one).
    pub auto_temporal: Option<u8>,
}

impl Feed {
    /// The layers inside the stream it gets: the subscriber's ceiling, lowered by the estimate.
    pub fn limit(&self) -> crate::datapath::LayerLimit {
        let mut limit = self.params.limit;
        if let Some(t) = self.auto_temporal {
            limit.temporal = limit.temporal.min(t);
        }
        limit
    }
}

/// A published stream: its publisher, tracks and subscribers.
#[derive(Debug, Default)]
pub struct Stream {
    pub publisher: Option<SessionId>,
    pub publisher_worker: usize,
    pub tracks: Vec<PublishedTrack>,
    pub subscribers: Vec<SessionId>,
    /// Simulcast layers the publisher has stopped sending (as its worker reported).
    pub stalled: Vec<TrackId>,
    /// A stream this node pulls from its origin (the origin's node id); `publisher` is then the
    /// link to that node.
    pub pulled_from: Option<String>,
}

/// A room's streams and event feed.
#[derive(Debug)]
pub struct Room {
    pub streams: HashMap<String, Stream>,
    pub events: broadcast::Sender<RoomEvent>,
}

impl Room {
    fn new() -> Self {
        Self {
            streams: HashMap::new(),
            events: broadcast::channel(64).0,
        }
    }
}

/// What the room feed says (as JSON in Server-Sent Events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum RoomEvent {
    /// A stream can be subscribed to.
    Published { stream: String, identity: String },
    /// A stream is gone.
    Unpublished { stream: String },
    /// This node is draining: connect again (to another node) for new sessions.
    Reconnect,
}

/// Every room, stream and session.
#[derive(Debug, Default)]
pub struct Registry {
    pub rooms: HashMap<String, Room>,
    pub sessions: HashMap<SessionId, SessionInfo>,
}

impl Registry {
    /// The room, created on first use.
    pub fn room(&mut self, name: &str) -> &mut Room {
        self.rooms.entry(name.to_string()).or_insert_with(Room::new)
    }

    /// The streams published (with a connected publisher) in a room, for a new listener.
    pub fn published(&self, room: &str) -> Vec<RoomEvent> {
        let Some(r) = self.rooms.get(room) else {
            return Vec::new();
        };
        let mut v: Vec<RoomEvent> = r
            .streams
            .iter()
            .filter(|(_, s)| !s.tracks.is_empty() && s.pulled_from.is_none())
            .filter_map(|(name, s)| {
                let publisher = self.sessions.get(&s.publisher?)?;
                Some(RoomEvent::Published {
                    stream: name.clone(),
                    identity: publisher.identity.clone(),
                })
            })
            .collect();
        v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        v
    }

    /// Sessions per worker, to place a new session on the least loaded.
    pub fn sessions_per_worker(&self, workers: usize) -> Vec<usize> {
        let mut n = vec![0; workers];
        for s in self.sessions.values() {
            if let Some(c) = n.get_mut(s.worker) {
                *c += 1;
            }
        }
        n
    }

    /// Sessions from one client address.
    pub fn sessions_from(&self, ip: IpAddr) -> usize {
        self.sessions
            .values()
            .filter(|s| s.client_ip == ip && !s.role.is_link())
            .count()
    }

    /// Client sessions (links between nodes left out).
    pub fn client_sessions(&self) -> usize {
        self.sessions.values().filter(|s| !s.role.is_link()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sdp::Codec;

    fn track(rtcp_fb: &[&str], rtx: Option<u8>, rtx_ssrc: Option<u32>) -> PublishedTrack {
        PublishedTrack {
            id: 7,
            kind: MediaKind::Video,
            ssrc: Some(0x1111),
            layers: Vec::new(),
            media: NegotiatedMedia {
                mid: "0".into(),
                kind: crate::wire::sdp::MediaKind::Video,
                codec: Codec {
                    payload_type: 96,
                    name: "VP8".into(),
                    clock_rate: 90_000,
                    channels: None,
                    fmtp: None,
                    rtcp_fb: rtcp_fb.iter().map(|s| s.to_string()).collect(),
                    rtx,
                },
                extensions: Vec::new(),
                ssrc: Some(0x1111),
                rtx_ssrc,
                rids: Vec::new(),
            },
        }
    }

    fn recovery(t: &PublishedTrack) -> (bool, Option<PublisherRtx>) {
        match t.publish_commands(3).remove(0) {
            Command::Publish {
                session: 3,
                track: 7,
                ssrc: Some(0x1111),
                by_mid: None,
                nack,
                rtx,
                ..
            } => (nack, rtx),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn publish_takes_nack_and_rtx_from_the_negotiated_section() {
        let full = track(&["nack pli", "nack", "goog-remb"], Some(97), Some(0x2222));
        assert_eq!(
            recovery(&full),
            (
                true,
                Some(PublisherRtx {
                    ssrc: 0x2222,
                    apt: 96
                })
            )
        );
        assert_eq!(
            recovery(&track(&["nack pli"], Some(97), Some(0x2222))),
            (
                false,
                Some(PublisherRtx {
                    ssrc: 0x2222,
                    apt: 96
                })
            ),
            "PLI alone is not generic NACK"
        );
        assert_eq!(
            recovery(&track(&["nack"], None, Some(0x2222))),
            (true, None)
        );
        assert_eq!(recovery(&track(&["nack"], Some(97), None)), (true, None));
    }

    fn ext(id: u8, uri: &str) -> crate::wire::sdp::Extmap {
        crate::wire::sdp::Extmap {
            id,
            uri: uri.into(),
        }
    }

    #[test]
    fn each_simulcast_layer_is_a_track_found_by_mid_and_rid() {
        let mut t = track(&["nack"], Some(97), None);
        t.ssrc = None;
        t.media.mid = "1".into();
        t.media.extensions = vec![
            ext(4, MID_URI),
            ext(10, RTP_STREAM_ID),
            ext(11, REPAIRED_RTP_STREAM_ID),
        ];
        t.media.rids = vec!["q".into(), "f".into()];
        t.layers = vec![("q".into(), 7), ("f".into(), 8)];
        let commands = t.publish_commands(3);
        let found: Vec<(TrackId, Option<RidBinding>)> = commands
            .into_iter()
            .map(|c| match c {
                Command::Publish {
                    track,
                    ssrc: None,
                    by_mid: Some(b),
                    ..
                } => {
                    assert_eq!((b.ext_id, b.mid.as_slice()), (4, &b"1"[..]));
                    (track, b.rid)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let rid = |r: &[u8]| {
            Some(RidBinding {
                ext_id: 10,
                repaired_ext_id: Some(11),
                rid: r.to_vec(),
            })
        };
        assert_eq!(found, vec![(7, rid(b"q")), (8, rid(b"f"))]);

        assert_eq!(t.layer(None), Ok(7), "the offer's first layer by default");
        assert_eq!(t.layer(Some("f")), Ok(8));
        let err = t.layer(Some("h")).unwrap_err();
        assert!(
            err.contains("no simulcast layer 'h' (it has q, f)"),
            "{err}"
        );
        // Without simulcast there is one stream, whatever layer is asked for.
        let single = track(&[], None, None);
        assert_eq!(single.layer(Some("h")), Ok(7));
        // Layers with no RID extension to tell them apart cannot be installed.
        t.media.extensions.retain(|e| e.uri != RTP_STREAM_ID);
        assert_eq!(t.by_mid(), None);
    }

    #[test]
    fn without_an_ssrc_the_track_is_found_by_its_mid_and_payload_types() {
        let mut t = track(&["nack"], Some(97), None);
        assert_eq!(t.by_mid(), None, "the offer's SSRC is used when it has one");
        t.ssrc = None;
        t.media.ssrc = None;
        assert_eq!(t.by_mid(), None, "no MID extension: nothing to find it by");
        t.media.mid = "v1".into();
        t.media.extensions = vec![ext(2, TRANSPORT_WIDE_CC), ext(9, MID_URI)];
        let binding = MidBinding {
            ext_id: 9,
            mid: b"v1".to_vec(),
            payload_type: 96,
            rtx_payload_type: Some(97),
            rid: None,
        };
        assert_eq!(t.by_mid(), Some(binding.clone()));
        match t.publish_commands(3).remove(0) {
            Command::Publish {
                ssrc: None,
                by_mid: Some(b),
                rtx: None,
                nack: true,
                ..
            } => assert_eq!(b, binding),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extensions_are_renumbered_for_the_subscriber_with_its_own_mid() {
        const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
        const TOFFSET: &str = "urn:ietf:params:rtp-hdrext:toffset";
        // Firefox's numbering on the publisher, Chromium's on the subscriber.
        let mut publisher = track(&[], None, None);
        publisher.media.mid = "1".into();
        publisher.media.extensions = vec![
            ext(3, MID_URI),
            ext(4, ABS_SEND_TIME),
            ext(5, TOFFSET),
            ext(7, TRANSPORT_WIDE_CC),
        ];
        let mut subscriber = track(&[], None, None).media;
        subscriber.mid = "video-0".into();
        subscriber.extensions = vec![
            ext(2, ABS_SEND_TIME),
            ext(3, TRANSPORT_WIDE_CC),
            ext(4, MID_URI),
        ];
        let x = publisher.extension_rewrite(&subscriber).unwrap();
        assert_eq!(
            x.ids,
            [(4, 2)],
            "abs-send-time kept; toffset and transport-cc dropped"
        );
        assert_eq!(x.mid, Some((3, 4, b"video-0".to_vec())));
        subscriber.extensions.retain(|e| e.uri != MID_URI);
        assert_eq!(publisher.extension_rewrite(&subscriber).unwrap().mid, None);

        // Numbered alike (Chromium to Chromium), same MID: nothing to rewrite.
        subscriber.mid = "1".into();
        subscriber.extensions = publisher.media.extensions.clone();
        subscriber.extensions.push(ext(9, TOFFSET));
        assert_eq!(publisher.extension_rewrite(&subscriber), None);
        subscriber.mid = "2".into();
        assert!(
            publisher.extension_rewrite(&subscriber).is_some(),
            "another MID"
        );
        subscriber.mid = "1".into();
        subscriber.extensions.retain(|e| e.uri != TOFFSET);
        assert!(
            publisher.extension_rewrite(&subscriber).is_some(),
            "toffset must be dropped"
        );
    }

    #[test]
    fn publish_sends_transport_cc_feedback_when_the_extension_was_negotiated() {
        let transport_cc = |t: &PublishedTrack| match t.publish_commands(3).remove(0) {
            Command::Publish { transport_cc, .. } => transport_cc,
            other => panic!("{other:?}"),
        };
        let mut t = track(&["transport-cc"], None, None);
        assert_eq!(transport_cc(&t), None);
        t.media.extensions = vec![
            crate::wire::sdp::Extmap {
                id: 1,
                uri: "urn:ietf:params:rtp-hdrext:sdes:mid".into(),
            },
            crate::wire::sdp::Extmap {
                id: 3,
                uri: TRANSPORT_WIDE_CC.into(),
            },
        ];
        assert_eq!(transport_cc(&t), Some(3));
    }
}
