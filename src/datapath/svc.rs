//! Layers inside one RTP stream, per subscription: VP8 temporal layers (L1T3) and VP9 spatial
//! and temporal layers (L3T3_KEY), chosen packet by packet from the payload descriptor
//! (`wire::vp8`, `wire::vp9`), and those of AV1 and H.264 from the dependency descriptor
//! header extension (`wire::dd`, with the stream's latest template structure: [`DdState`]),
//! and the renumbering that keeps what a subscriber receives
//! contiguous although packets and pictures are left out: a running sequence-number offset
//! with a fixed map back for its NACKs ([`SeqMap`]), and PictureID / TL0PICIDX rewriting
//! ([`PictureNumbering`]). Everything is fixed-size and allocation-free; nothing here reads a
//! clock or does I/O.
//!
//! Switching: down at the next frame (VP8) or picture (VP9) start; a temporal layer up only at
//! a base-layer frame (TID 0) or a switching point (VP8 Y, VP9 U); a spatial layer up only at a
//! layer frame that needs no earlier picture (P clear: the keyframe in L3T3_KEY). With the
//! dependency descriptor: down at a frame start, a temporal layer up at a TID 0 frame, spatial
//! layers up at a frame that brings a template structure (a keyframe). AV1 and H.264 have no
//! PictureID to renumber: only the sequence numbers close the gaps (receivers without the
//! descriptor follow them).

use crate::wire::dd;
use crate::wire::keyframe::VideoCodec;
use crate::wire::rtp;
use crate::wire::vp8::{PictureId, Vp8Descriptor};
use crate::wire::vp9::Vp9Descriptor;

/// No limit on a layer index.
pub const ALL_LAYERS: u8 = u8::MAX;

/// The highest spatial and temporal layer a subscriber gets of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerLimit {
    pub spatial: u8,
    pub temporal: u8,
}

impl Default for LayerLimit {
    fn default() -> Self {
        Self {
            spatial: ALL_LAYERS,
            temporal: ALL_LAYERS,
        }
    }
}

impl LayerLimit {
    /// No limit on either.
    pub fn is_unlimited(self) -> bool {
        self == Self::default()
    }
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it, with these descriptor fields rewritten in the copy.
    Forward(Rewrite),
    /// Leave it out: its layer is above the subscriber's.
    Drop,
}

/// Descriptor and header fields to write into a forwarded copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewrite {
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    /// Set the RTP marker: the last packet of the top forwarded spatial layer of a picture.
    pub marker: bool,
}

/// Where a subscription's numbering stands, handed to the layer that replaces it in a
/// simulcast switch so that PictureID and TL0PICIDX go on from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureState {
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
}

/// A stream's dependency descriptors: the publisher's extension id and the latest template
/// structure seen, in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdState {
    pub ext_id: u8,
    pub structure: dd::Structure,
}

impl DdState {
    pub fn new(ext_id: u8) -> Self {
        Self {
            ext_id,
            structure: dd::Structure::default(),
        }
    }

    /// The frame a plaintext RTP `packet` belongs to, taking in the structure it may carry;
    /// `None` without the extension, or if it does not parse or place the packet.
    pub fn read(&mut self, packet: &[u8]) -> Option<dd::FrameInfo> {
        let data = rtp::find_extension(packet, self.ext_id)?;
        dd::parse(data, &mut self.structure).ok()
    }
}

/// Per-subscription layer selection for VP8 / VP9, and for any codec whose publisher sends the
/// dependency descriptor (others: everything forwarded as is).
#[derive(Debug, Clone)]
pub struct LayerSelect {
    codec: Option<VideoCodec>,
    /// The ceiling or allocation: the layers wanted.
    pub target: LayerLimit,
    /// The layers forwarded now (they follow `target` at switching points).
    current: LayerLimit,
    pictures: PictureNumbering,
    /// The publisher's dependency descriptors, read where the payload has no descriptor of its
    /// own (not VP8 or VP9).
    dd: Option<DdState>,
}

impl LayerSelect {
    /// A subscription to a stream of `codec` limited to `target`.
    pub fn new(codec: Option<VideoCodec>, target: LayerLimit) -> Self {
        Self {
            codec,
            target,
            // Until the first switching point, the lowest layers: always decodable.
            current: LayerLimit {
                spatial: 0,
                temporal: 0,
            },
            pictures: PictureNumbering::default(),
            dd: None,
        }
    }

    /// Layers read from the dependency descriptor with extension id `ext_id` (publisher
    /// numbering), for codecs without a payload descriptor of their own.
    pub fn with_dependency_descriptor(mut self, ext_id: Option<u8>) -> Self {
        self.dd = ext_id.filter(|_| !self.by_payload()).map(DdState::new);
        self
    }

    fn by_payload(&self) -> bool {
        matches!(self.codec, Some(VideoCodec::Vp8 | VideoCodec::Vp9))
    }

    /// Whether packets need looking at: VP8 and VP9 (their PictureIDs run on across a simulcast
    /// switch even without a limit), and streams with the dependency descriptor.
    pub fn active(&self) -> bool {
        self.by_payload() || self.dd.is_some()
    }

    /// [`Self::admit`] for a whole plaintext RTP packet (publisher numbering): its payload
    /// descriptor, or its dependency descriptor.
    pub fn admit_packet(&mut self, packet: &[u8]) -> Verdict {
        if let Some(state) = self.dd.as_mut() {
            return match state.read(packet) {
                Some(frame) => {
                    let max_spatial = state.structure.max_layers().0;
                    self.admit_dd(&frame, max_spatial)
                }
                // Not placed (no structure yet: a keyframe brings one): as is.
                None => Verdict::Forward(Rewrite::default()),
            };
        }
        let payload = rtp::RtpPacket::parse(packet)
            .map(|p| p.payload())
            .unwrap_or(&[]);
        self.admit(payload)
    }

    /// [`Self::replay`] for a whole plaintext RTP packet.
    pub fn replay_packet(&self, packet: &[u8]) -> Option<Rewrite> {
        if let Some(mut state) = self.dd {
            // A copy: a retransmission must not move the stream's structure.
            let Some(frame) = state.read(packet) else {
                return Some(Rewrite::default());
            };
            if frame.spatial > self.current.spatial || frame.temporal > self.current.temporal {
                return None;
            }
            let max_spatial = state.structure.max_layers().0;
            return Some(Rewrite {
                marker: max_spatial > 0 && frame.end && frame.spatial == self.current.spatial,
                ..Rewrite::default()
            });
        }
        self.replay(rtp::RtpPacket::parse(packet).ok()?.payload())
    }

    /// Continue PictureID / TL0PICIDX from the replaced layer's `last`.
    pub fn continue_from(&mut self, last: Option<PictureState>) {
        if let Some(last) = last {
            self.pictures.restart = Some(last);
        }
    }

    /// The PictureID and TL0PICIDX last forwarded (subscriber numbering).
    pub fn last_forwarded(&self) -> Option<PictureState> {
        self.pictures.last_out
    }

    /// The layers forwarded now.
    pub fn current(&self) -> LayerLimit {
        self.current
    }

    /// Decides for the RTP `payload` of the next packet in arrival order, moving the current
    /// layers along at switching points. A descriptor that does not parse is forwarded as is.
    pub fn admit(&mut self, payload: &[u8]) -> Verdict {
        match self.codec {
            Some(VideoCodec::Vp8) => match Vp8Descriptor::parse(payload) {
                Ok(d) => self.admit_vp8(&d),
                Err(_) => Verdict::Forward(Rewrite::default()),
            },
            Some(VideoCodec::Vp9) => match Vp9Descriptor::parse(payload) {
                Ok(d) => self.admit_vp9(&d),
                Err(_) => Verdict::Forward(Rewrite::default()),
            },
            _ => Verdict::Forward(Rewrite::default()),
        }
    }

    /// For a retransmission of `payload` (a packet forwarded before): the same rewrite the
    /// original got, or `None` if it was not forwarded or its picture is no longer known.
    pub fn replay(&self, payload: &[u8]) -> Option<Rewrite> {
        let (picture_id, tl0, layers) = match self.codec {
            Some(VideoCodec::Vp8) => {
                let d = Vp8Descriptor::parse(payload).ok()?;
                (d.picture_id, d.tl0_pic_idx, (0, d.tid.unwrap_or(0)))
            }
            Some(VideoCodec::Vp9) => {
                let d = Vp9Descriptor::parse(payload).ok()?;
                let l = d.layer.map_or((0, 0), |l| (l.sid, l.tid));
                (renumbered(&d), d.tl0_pic_idx, l)
            }
            _ => return Some(Rewrite::default()),
        };
        if layers.0 > self.current.spatial || layers.1 > self.current.temporal {
            return None;
        }
        let mut rewrite = Rewrite {
            tl0_pic_idx: tl0
                .map(|t| t.wrapping_sub(self.pictures.tl0_offset))
                .filter(|&o| Some(o) != tl0),
            ..Rewrite::default()
        };
        if let Some(p) = picture_id {
            rewrite.picture_id = Some(self.pictures.recall(p)?).filter(|&o| o != p.value);
        }
        Some(rewrite)
    }

    fn admit_vp8(&mut self, d: &Vp8Descriptor) -> Verdict {
        let tid = d.tid.unwrap_or(0);
        if d.starts_frame() {
            let (cur, want) = (self.current.temporal, self.target.temporal);
            if want < cur {
                self.current.temporal = want;
            } else if want > cur && d.tid.is_some() {
                if tid == 0 {
                    self.current.temporal = want;
                } else if d.layer_sync && tid <= want {
                    self.current.temporal = tid.max(cur);
                }
            } else if d.tid.is_none() {
                self.current.temporal = want; // no temporal layers: nothing to wait for
            }
        }
        if tid > self.current.temporal {
            if let Some(p) = d.picture_id {
                self.pictures.dropped(p);
            }
            return Verdict::Drop;
        }
        Verdict::Forward(self.pictures.forwarded(d.picture_id, d.tl0_pic_idx))
    }

    fn admit_vp9(&mut self, d: &Vp9Descriptor) -> Verdict {
        let picture_id = renumbered(d);
        let Some(layer) = d.layer else {
            self.current = self.target;
            return Verdict::Forward(self.pictures.forwarded(picture_id, d.tl0_pic_idx));
        };
        let (tid, sid) = (layer.tid, layer.sid);
        if d.begin && sid == 0 {
            // A picture starts: temporal and spatial decisions for it.
            let (cur, want) = (self.current.temporal, self.target.temporal);
            if want < cur {
                self.current.temporal = want;
            } else if want > cur {
                if tid == 0 {
                    self.current.temporal = want;
                } else if layer.switching_up && tid <= want {
                    self.current.temporal = tid.max(cur);
                }
            }
            if self.target.spatial < self.current.spatial || !d.inter_picture {
                // Down at once; up to every wanted layer at a keyframe (in L3T3_KEY its upper
                // layers need only the keyframe's lower ones), so that the marker goes on the
                // right layer from the start. The scalability structure says how many come.
                let sent = d.spatial_layers.map_or(u8::MAX, |n| n - 1);
                self.current.spatial = self.target.spatial.min(sent);
            }
        }
        // Up a spatial layer where a layer frame needs no earlier picture.
        if d.begin
            && !d.inter_picture
            && sid == self.current.spatial.saturating_add(1)
            && sid <= self.target.spatial
        {
            self.current.spatial = sid;
        }
        if tid > self.current.temporal {
            if let Some(p) = picture_id {
                self.pictures.dropped(p);
            }
            return Verdict::Drop;
        }
        if sid > self.current.spatial {
            return Verdict::Drop; // the picture stays: its lower layers are forwarded
        }
        let mut rewrite = self.pictures.forwarded(picture_id, d.tl0_pic_idx);
        rewrite.marker = d.end && sid == self.current.spatial;
        Verdict::Forward(rewrite)
    }
}

impl LayerSelect {
    fn admit_dd(&mut self, f: &dd::FrameInfo, max_spatial: u8) -> Verdict {
        if f.start && f.spatial == 0 {
            // A frame (of every spatial layer) starts.
            let (cur, want) = (self.current.temporal, self.target.temporal);
            if want < cur || (want > cur && f.temporal == 0) {
                self.current.temporal = want;
            }
            if self.target.spatial < self.current.spatial || f.structure {
                // Down at once; up at a keyframe (it brings the structure).
                self.current.spatial = self.target.spatial.min(max_spatial);
            }
        }
        if f.temporal > self.current.temporal || f.spatial > self.current.spatial {
            return Verdict::Drop;
        }
        Verdict::Forward(Rewrite {
            // The top forwarded spatial layer ends the picture for the subscriber.
            marker: max_spatial > 0 && f.end && f.spatial == self.current.spatial,
            ..Rewrite::default()
        })
    }
}

/// The PictureID of a VP9 picture that is renumbered: not in flexible mode, where the
/// references are PictureID differences (P_DIFF) that renumbering would break, and where gaps
/// do not hinder the receiver, which follows the differences.
fn renumbered(d: &Vp9Descriptor) -> Option<PictureId> {
    d.picture_id.filter(|_| !d.flexible)
}

/// Writes `rewrite` into `packet`, a plaintext RTP packet of `codec` in the subscriber's
/// numbering (the descriptor's fields keep their width; a descriptor that does not parse is
/// left as it is).
pub fn apply(packet: &mut [u8], codec: Option<VideoCodec>, rewrite: Rewrite) {
    if rewrite == Rewrite::default() {
        return;
    }
    let Ok(h) = rtp::header_len(packet) else {
        return;
    };
    let payload = &mut packet[h..];
    match codec {
        Some(VideoCodec::Vp8) => {
            if let Ok(d) = Vp8Descriptor::parse(payload) {
                if let Some(p) = rewrite.picture_id.filter(|_| d.picture_id.is_some()) {
                    let _ = d.set_picture_id(payload, p);
                }
                if let Some(t) = rewrite.tl0_pic_idx.filter(|_| d.tl0_pic_idx.is_some()) {
                    let _ = d.set_tl0_pic_idx(payload, t);
                }
            }
        }
        Some(VideoCodec::Vp9) => {
            if let Ok(d) = Vp9Descriptor::parse(payload) {
                if let Some(p) = rewrite.picture_id.filter(|_| d.picture_id.is_some()) {
                    let _ = d.set_picture_id(payload, p);
                }
                if let Some(t) = rewrite.tl0_pic_idx.filter(|_| d.tl0_pic_idx.is_some()) {
                    let _ = d.set_tl0_pic_idx(payload, t);
                }
            }
        }
        _ => {}
    }
    if rewrite.marker {
        if let Ok(mut hdr) = rtp::RtpHeaderMut::new(packet) {
            hdr.set_marker(true);
        }
    }
}

/// The temporal layer (TID) of a plaintext RTP `packet` of `codec`, if its descriptor has one
/// (VP8, VP9), or else its dependency descriptor (`dd`, the stream's state, taking in the
/// structure the packet may carry).
pub fn temporal_layer(
    codec: Option<VideoCodec>,
    dd: Option<&mut DdState>,
    packet: &[u8],
) -> Option<u8> {
    let by_payload = codec.filter(|c| matches!(c, VideoCodec::Vp8 | VideoCodec::Vp9));
    let Some(codec) = by_payload else {
        return Some(dd?.read(packet)?.temporal);
    };
    let payload = rtp::RtpPacket::parse(packet).ok()?.payload();
    match codec {
        VideoCodec::Vp8 => Vp8Descriptor::parse(payload).ok()?.tid,
        _ => Some(Vp9Descriptor::parse(payload).ok()?.layer?.tid),
    }
}

/// PictureIDs (VP8, VP9) renumbered so that pictures left out leave no gap, and TL0PICIDX
/// continued across a simulcast switch.
#[derive(Debug, Clone, Default)]
pub struct PictureNumbering {
    /// Subtracted from the publisher's PictureID (mod the ID's width).
    offset: u16,
    /// Subtracted from the publisher's TL0PICIDX.
    tl0_offset: u8,
    /// The newest PictureID seen (forwarded or dropped), publisher numbering.
    newest_in: Option<u16>,
    last_out: Option<PictureState>,
    /// Continue from this on the first forwarded picture (after a simulcast switch).
    restart: Option<PictureState>,
    /// Recently forwarded pictures `(publisher id, subscriber id)`, for retransmissions.
    recent: [(u16, u16); RECENT],
    recent_at: usize,
}

/// Pictures remembered for retransmissions: a second of 30 fps.
const RECENT: usize = 32;

fn newer(a: u16, b: u16, modulus: u16) -> bool {
    let d = a.wrapping_sub(b) % modulus;
    d != 0 && d < modulus / 2
}

impl PictureNumbering {
    /// A packet of picture `id` was left out: a new picture shifts the numbering by one.
    fn dropped(&mut self, id: PictureId) {
        let m = id.modulus();
        if self.newest_in.is_none_or(|n| newer(id.value, n, m)) {
            self.newest_in = Some(id.value);
            self.offset = self.offset.wrapping_add(1) % m;
        }
    }

    /// A packet of picture `id` with `tl0` is forwarded: the values it goes out with.
    fn forwarded(&mut self, id: Option<PictureId>, tl0: Option<u8>) -> Rewrite {
        if let (Some(from), Some(id)) = (self.restart.take(), id) {
            let m = id.modulus();
            self.offset = id.value.wrapping_sub(from.picture_id.wrapping_add(1)) % m;
            if let Some(t) = tl0 {
                self.tl0_offset = t.wrapping_sub(from.tl0_pic_idx.wrapping_add(1));
            }
            self.newest_in = None;
        }
        let tl0_out = tl0.map(|t| t.wrapping_sub(self.tl0_offset));
        let Some(id) = id else {
            return Rewrite {
                tl0_pic_idx: tl0_out.filter(|&o| Some(o) != tl0),
                ..Rewrite::default()
            };
        };
        let m = id.modulus();
        let out = id.value.wrapping_sub(self.offset) % m;
        if self.newest_in.is_none_or(|n| newer(id.value, n, m)) {
            self.newest_in = Some(id.value);
            self.recent[self.recent_at] = (id.value, out);
            self.recent_at = (self.recent_at + 1) % RECENT;
            self.last_out = Some(PictureState {
                picture_id: out,
                tl0_pic_idx: tl0_out.unwrap_or(self.last_out.map_or(0, |l| l.tl0_pic_idx)),
            });
        }
        // Only what changes is written.
        Rewrite {
            picture_id: Some(out).filter(|&o| o != id.value),
            tl0_pic_idx: tl0_out.filter(|&o| Some(o) != tl0),
            marker: false,
        }
    }

    /// The subscriber's PictureID for a recently forwarded picture.
    fn recall(&self, id: PictureId) -> Option<u16> {
        if self.last_out.is_none() {
            return Some(id.value); // nothing forwarded or renumbered yet
        }
        self.recent
            .iter()
            .find(|(from, _)| *from == id.value)
            .map(|(_, to)| *to)
    }
}

/// A subscription's running sequence-number offset: packets left out inside the stream (a
/// dropped layer) shift it, a simulcast switch sets it anew. The change points are kept in a
/// fixed ring, newest first, so that sequence numbers the subscriber names in a NACK map back
/// to the publisher's exactly (and numbers of packets never sent map to none).
#[derive(Debug, Clone)]
pub struct SeqMap {
    /// `(from, offset, dropped)`: from publisher sequence number `from` on, `offset` is added;
    /// the `dropped` numbers just before `from` were left out (0 for a switch).
    points: [(u16, u16, u16); SEQ_POINTS],
    newest: usize,
    len: usize,
    /// The newest publisher sequence number seen, forwarded or dropped.
    highest: Option<u16>,
}

/// Change points kept: at 15 dropped runs a second (L1T3 at 30 fps), two seconds.
pub const SEQ_POINTS: usize = 32;

fn at_or_after(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) >= 0
}

impl SeqMap {
    /// A constant `offset` until something is dropped.
    pub fn new(offset: u16) -> Self {
        Self {
            points: [(0, offset, 0); SEQ_POINTS],
            newest: 0,
            len: 1,
            highest: None,
        }
    }

    fn point(&self, k: usize) -> (u16, u16, u16) {
        self.points[(self.newest + SEQ_POINTS - k) % SEQ_POINTS]
    }

    /// The subscriber's sequence number for publisher number `seq`; `None` if it was dropped.
    pub fn forward(&mut self, seq: u16) -> Option<u16> {
        if self.highest.is_none_or(|h| at_or_after(seq, h)) {
            self.highest = Some(seq);
        }
        self.lookup(seq)
    }

    /// [`Self::forward`] without noting `seq` as seen (retransmissions, probes).
    pub fn lookup(&self, seq: u16) -> Option<u16> {
        for k in 0..self.len {
            let (from, offset, dropped) = self.point(k);
            let before = from.wrapping_sub(seq);
            if before != 0 && before <= dropped && !at_or_after(seq, from) {
                return None;
            }
            if at_or_after(seq, from) || k + 1 == self.len {
                return Some(seq.wrapping_add(offset));
            }
        }
        None
    }

    /// Publisher number `seq` is left out. In order, the numbers after it shift down by one;
    /// a late one (older than what was seen) leaves a gap the subscriber sees as loss, and
    /// returns false.
    pub fn drop(&mut self, seq: u16) -> bool {
        if self
            .highest
            .is_some_and(|h| !at_or_after(seq, h.wrapping_add(1)))
        {
            return false;
        }
        self.highest = Some(seq);
        let next = seq.wrapping_add(1);
        let (from, offset, dropped) = self.points[self.newest];
        if from == seq && self.len > 1 {
            // The previous packet was dropped too: one run.
            self.points[self.newest] = (next, offset.wrapping_sub(1), dropped + 1);
        } else {
            self.push((next, offset.wrapping_sub(1), 1));
        }
        true
    }

    /// From publisher number `seq` on, `offset` (a simulcast switch).
    pub fn restart(&mut self, seq: u16, offset: u16) {
        self.highest = Some(seq.wrapping_sub(1));
        self.push((seq, offset, 0));
    }

    fn push(&mut self, point: (u16, u16, u16)) {
        self.newest = (self.newest + 1) % SEQ_POINTS;
        self.points[self.newest] = point;
        self.len = (self.len + 1).min(SEQ_POINTS);
    }

    /// The publisher's number for subscriber number `seq` (a NACK), `None` if it names
    /// nothing this subscription sent.
    pub fn backward(&self, seq: u16) -> Option<u16> {
        // Point k covers publisher numbers [from_k, start of the next newer point's run).
        let mut end: Option<u16> = None;
        for k in 0..self.len {
            let (from, offset, dropped) = self.point(k);
            let p = seq.wrapping_sub(offset);
            let inside = (at_or_after(p, from) || k + 1 == self.len)
                && end.is_none_or(|e| !at_or_after(p, e));
            if inside {
                return Some(p);
            }
            end = Some(from.wrapping_sub(dropped));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_map_closes_gaps_and_maps_nacks_back() {
        let mut m = SeqMap::new(100);
        // 1..=3 forwarded, 4 and 5 dropped, 6 forwarded, 7 dropped, 8 forwarded.
        let mut out = Vec::new();
        for seq in 1..=8u16 {
            if matches!(seq, 4 | 5 | 7) {
                assert!(m.drop(seq));
            } else {
                out.push(m.forward(seq).unwrap());
            }
        }
        assert_eq!(out, vec![101, 102, 103, 104, 105]);
        assert_eq!(m.backward(103), Some(3));
        assert_eq!(m.backward(104), Some(6));
        assert_eq!(m.backward(105), Some(8));
        assert_eq!(m.backward(101), Some(1));
        // Dropped numbers were never sent: retransmissions and probes skip them.
        assert_eq!(m.lookup(4), None);
        assert_eq!(m.lookup(5), None);
        assert_eq!(m.lookup(7), None);
        assert_eq!(m.lookup(6), Some(104));
        // A late packet older than the drops keeps its own number.
        assert!(!m.drop(2));
        assert_eq!(m.lookup(2), Some(102));
    }

    #[test]
    fn the_sequence_map_wraps_and_restarts() {
        let mut m = SeqMap::new(0);
        assert_eq!(m.forward(65534), Some(65534));
        assert!(m.drop(65535));
        assert_eq!(m.forward(0), Some(65535));
        assert_eq!(m.forward(1), Some(0));
        assert_eq!(m.backward(65535), Some(0));
        assert_eq!(m.backward(65534), Some(65534));
        // A switch: from publisher 5000 on, subscriber numbers continue at 1.
        m.restart(5000, 1u16.wrapping_sub(5000));
        assert_eq!(m.forward(5000), Some(1));
        assert_eq!(m.backward(1), Some(5000));
        assert_eq!(m.backward(0), Some(1), "before the switch: the old mapping");
    }

    #[test]
    fn the_sequence_map_forgets_beyond_its_points_without_panicking() {
        let mut m = SeqMap::new(0);
        let mut sent = Vec::new();
        for seq in 0..(4 * SEQ_POINTS as u16) {
            if seq % 2 == 1 {
                m.drop(seq);
            } else {
                sent.push((seq, m.forward(seq).unwrap()));
            }
        }
        // The last points map exactly.
        for &(p, s) in sent.iter().rev().take(SEQ_POINTS - 1) {
            assert_eq!(m.backward(s), Some(p));
        }
        for seq in 0..=u16::MAX {
            let _ = m.backward(seq);
            let _ = m.lookup(seq);
        }
    }

    /// A VP8 L1T3 frame's first packet (libwebrtc's descriptor: I 15 bits, L, T/Y).
    fn vp8(picture_id: u16, tl0: u8, tid: u8, sync: bool) -> Vec<u8> {
        let [hi, lo] = (picture_id | 0x8000).to_be_bytes();
        vec![
            0x90,
            0xe0,
            hi,
            lo,
            tl0,
            (tid << 6) | u8::from(sync) << 5,
            0x00,
        ]
    }

    /// The L1T3 pattern 0 2 1 2 …, from PictureID `first`; `(picture id, tl0, tid, sync)`.
    fn l1t3(first: u16, frames: u16) -> Vec<(u16, u8, u8, bool)> {
        (0..frames)
            .map(|i| {
                let tid = [0, 2, 1, 2][usize::from(i % 4)];
                let tl0 = (i / 4) as u8;
                (
                    first.wrapping_add(i) & 0x7fff,
                    tl0,
                    tid,
                    tid != 0 && i % 4 == 1,
                )
            })
            .collect()
    }

    #[test]
    fn vp8_temporal_layers_are_dropped_and_picture_ids_stay_contiguous() {
        let mut s = LayerSelect::new(
            Some(VideoCodec::Vp8),
            LayerLimit {
                spatial: ALL_LAYERS,
                temporal: 1,
            },
        );
        let mut out = Vec::new();
        for (pid, tl0, tid, sync) in l1t3(0x7ffa, 16) {
            match s.admit(&vp8(pid, tl0, tid, sync)) {
                Verdict::Forward(r) => {
                    out.push((r.picture_id.unwrap_or(pid), r.tl0_pic_idx.unwrap_or(tl0)))
                }
                Verdict::Drop => assert_eq!(tid, 2, "only TID 2 left out"),
            }
        }
        assert_eq!(out.len(), 8);
        for w in out.windows(2) {
            assert_eq!(
                w[1].0,
                (w[0].0 + 1) & 0x7fff,
                "contiguous PictureIDs {out:?}"
            );
        }
        let tl0s: Vec<u8> = out.iter().map(|o| o.1).collect();
        assert_eq!(tl0s, vec![0, 0, 1, 1, 2, 2, 3, 3]);
        // A retransmission of the forwarded TID 1 frame gets its rewritten id; TID 2: none.
        let again = s.replay(&vp8(0x7ffa + 2, 0, 1, false)).unwrap();
        assert_eq!(again.picture_id, Some(out[1].0));
        assert_eq!(s.replay(&vp8(0x7ffa + 1, 0, 2, true)), None);
    }

    #[test]
    fn vp8_switches_up_at_tid_zero_or_a_sync_frame_and_down_at_once() {
        let mut s = LayerSelect::new(
            Some(VideoCodec::Vp8),
            LayerLimit {
                spatial: ALL_LAYERS,
                temporal: 0,
            },
        );
        let frames = l1t3(100, 12);
        let mut verdicts = Vec::new();
        for (i, &(pid, tl0, tid, sync)) in frames.iter().enumerate() {
            if i == 2 {
                s.target.temporal = 2; // up, mid-group: waits
            }
            if i == 9 {
                s.target.temporal = 0; // down: at once
            }
            let fwd = matches!(s.admit(&vp8(pid, tl0, tid, sync)), Verdict::Forward(_));
            verdicts.push(fwd);
        }
        // tids:    0 2 1 2 | 0 2 1 2 | 0 2 1 2
        let expect = [
            true, false, false, false, true, true, true, true, true, false, false, false,
        ];
        assert_eq!(verdicts, expect);
        // The Y frame (TID 2 right after TID 0) lets TID 2 in before the next TID 0.
        let mut s = LayerSelect::new(
            Some(VideoCodec::Vp8),
            LayerLimit {
                spatial: ALL_LAYERS,
                temporal: 2,
            },
        );
        assert_eq!(s.admit(&vp8(1, 0, 2, false)), Verdict::Drop);
        assert!(matches!(s.admit(&vp8(5, 1, 2, true)), Verdict::Forward(_)));
        assert_eq!(s.current().temporal, 2);
    }

    #[test]
    fn picture_numbering_continues_across_a_switch() {
        let mut s = LayerSelect::new(Some(VideoCodec::Vp8), LayerLimit::default());
        s.continue_from(Some(PictureState {
            picture_id: 41,
            tl0_pic_idx: 9,
        }));
        let Verdict::Forward(r) = s.admit(&vp8(3000, 200, 0, false)) else {
            panic!("a TID 0 frame is forwarded");
        };
        assert_eq!((r.picture_id, r.tl0_pic_idx), (Some(42), Some(10)));
        let Verdict::Forward(r) = s.admit(&vp8(3001, 200, 2, true)) else {
            panic!("all layers");
        };
        assert_eq!(r.picture_id, Some(43));
        assert_eq!(
            s.last_forwarded(),
            Some(PictureState {
                picture_id: 43,
                tl0_pic_idx: 10
            })
        );
    }

    /// A VP9 non-flexible L3T3_KEY packet: I (15 bits), L, TL0PICIDX; flags B, E, P.
    fn vp9(pid: u16, tid: u8, sid: u8, tl0: u8, flags: u8) -> Vec<u8> {
        let [hi, lo] = (pid | 0x8000).to_be_bytes();
        let u = if tid > 0 { 0x10 } else { 0 };
        vec![0xa0 | flags, hi, lo, (tid << 5) | u | (sid << 1), tl0, 0x00]
    }
    const B: u8 = 0x08;
    const E: u8 = 0x04;
    const P: u8 = 0x40;

    #[test]
    fn vp9_spatial_and_temporal_layers_are_dropped_with_the_marker_moved() {
        let mut s = LayerSelect::new(
            Some(VideoCodec::Vp9),
            LayerLimit {
                spatial: 1,
                temporal: 0,
            },
        );
        // Keyframe: three spatial layers, one packet each.
        let mut marked = Vec::new();
        for sid in 0..3 {
            match s.admit(&vp9(10, 0, sid, 0, B | E)) {
                Verdict::Forward(r) => marked.push((sid, r.marker)),
                Verdict::Drop => assert_eq!(sid, 2),
            }
        }
        assert_eq!(
            marked,
            vec![(0, false), (1, true)],
            "marker on the top forwarded layer"
        );
        // A TID 1 picture: all its layers dropped, and the next TID 0 picture's id follows on.
        for sid in 0..3 {
            assert_eq!(s.admit(&vp9(11, 1, sid, 0, B | E | P)), Verdict::Drop);
        }
        let Verdict::Forward(r) = s.admit(&vp9(12, 0, 0, 1, B | E | P)) else {
            panic!("TID 0");
        };
        assert_eq!(r.picture_id, Some(11));
        // Up to three spatial layers: not before a keyframe.
        s.target.spatial = 2;
        assert!(matches!(
            s.admit(&vp9(12, 0, 1, 1, B | E | P)),
            Verdict::Forward(_)
        ));
        assert_eq!(s.admit(&vp9(12, 0, 2, 1, B | E | P)), Verdict::Drop);
        s.admit(&vp9(13, 0, 0, 2, B | E));
        s.admit(&vp9(13, 0, 1, 2, B | E));
        let Verdict::Forward(r) = s.admit(&vp9(13, 0, 2, 2, B | E)) else {
            panic!("the keyframe's third layer");
        };
        assert!(r.marker);
        assert_eq!(s.current().spatial, 2);
        // Down a spatial layer: from the next picture, and the marker moves down with it.
        s.target.spatial = 0;
        let Verdict::Forward(r) = s.admit(&vp9(14, 0, 0, 3, B | E | P)) else {
            panic!("base layer");
        };
        assert!(r.marker);
        assert_eq!(s.admit(&vp9(14, 0, 1, 3, B | E | P)), Verdict::Drop);
    }

    #[test]
    fn vp9_temporal_layers_go_up_at_a_switching_point() {
        let mut s = LayerSelect::new(
            Some(VideoCodec::Vp9),
            LayerLimit {
                spatial: 0,
                temporal: 2,
            },
        );
        // Without U, a TID 1 picture waits; with U it is a switching point.
        let mut p = vp9(1, 1, 0, 0, B | E | P);
        p[3] &= !0x10;
        assert_eq!(s.admit(&p), Verdict::Drop);
        assert!(matches!(
            s.admit(&vp9(2, 1, 0, 0, B | E | P)),
            Verdict::Forward(_)
        ));
        assert_eq!(s.current().temporal, 1);
        assert!(matches!(
            s.admit(&vp9(4, 0, 0, 1, B | E | P)),
            Verdict::Forward(_)
        ));
        assert_eq!(s.current().temporal, 2);
    }

    #[test]
    fn vp9_flexible_mode_keeps_the_publishers_picture_ids() {
        let mut s = LayerSelect::new(
            Some(VideoCodec::Vp9),
            LayerLimit {
                spatial: 0,
                temporal: 0,
            },
        );
        // F, I (15 bits), L, B, E; P with one P_DIFF on inter pictures; no TL0PICIDX.
        let flex = |pid: u16, tid: u8, key: bool| {
            let [hi, lo] = (pid | 0x8000).to_be_bytes();
            let first = 0xa0 | 0x10 | B | E | if key { 0 } else { P };
            let mut p = vec![first, hi, lo, tid << 5];
            if !key {
                p.push(1 << 1); // P_DIFF 1
            }
            p.push(0x00);
            p
        };
        assert!(matches!(s.admit(&flex(7, 0, true)), Verdict::Forward(_)));
        assert_eq!(s.admit(&flex(8, 1, false)), Verdict::Drop);
        let Verdict::Forward(r) = s.admit(&flex(9, 0, false)) else {
            panic!("TID 0");
        };
        assert_eq!(
            r.picture_id, None,
            "9 stays 9: its P_DIFFs still point right"
        );
        assert_eq!(s.replay(&flex(9, 0, false)), Some(Rewrite::default()));
    }

    #[test]
    fn other_codecs_and_bad_descriptors_pass() {
        let mut s = LayerSelect::new(Some(VideoCodec::H264), LayerLimit::default());
        assert!(!s.active());
        assert_eq!(s.admit(&[0x65]), Verdict::Forward(Rewrite::default()));
        let mut s = LayerSelect::new(Some(VideoCodec::Vp8), LayerLimit::default());
        assert_eq!(s.admit(&[]), Verdict::Forward(Rewrite::default()));
        assert_eq!(s.admit(&[0x90, 0x40]), Verdict::Forward(Rewrite::default()));
    }

    /// An RTP packet (seq `seq`) whose dependency descriptor, extension id 7, is `dd`: in the
    /// two-byte form when it is longer than 16 bytes, as browsers send a keyframe's.
    fn with_dd(seq: u16, dd: &[u8]) -> Vec<u8> {
        let mut base = vec![0x80, 45, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0xaa, 0xbb];
        base[2..4].copy_from_slice(&seq.to_be_bytes());
        let mut out = vec![0; 200];
        let n = rtp::copy_translating_extensions_adding(&base, &mut out, |_, _| None, &[(7, dd)])
            .unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn av1_temporal_layers_are_read_from_the_dependency_descriptor() {
        use crate::wire::dd::tests::{descriptor, L1T3};
        let mut s = LayerSelect::new(
            Some(VideoCodec::Av1),
            LayerLimit {
                spatial: ALL_LAYERS,
                temporal: 0,
            },
        )
        .with_dependency_descriptor(Some(7));
        assert!(s.active());
        // Before a structure nothing can be placed: forwarded as is.
        let early = with_dd(1, &descriptor(true, true, 2, 1, None));
        assert_eq!(s.admit_packet(&early), Verdict::Forward(Rewrite::default()));
        // The keyframe (two-byte form) brings L1T3's templates: T0, T0, T1, T2, T2.
        let key = descriptor(true, true, 0, 10, Some((0, &L1T3)));
        let packet = with_dd(2, &key);
        assert_eq!(&packet[12..14], &rtp::TWO_BYTE_PROFILE.to_be_bytes());
        assert!(matches!(s.admit_packet(&packet), Verdict::Forward(_)));
        // Frames of the 4-frame cycle T0 T2 T1 T2, two packets each: only T0 passes.
        let cycle = [(1u8, 0u8), (3, 2), (2, 1), (4, 2)];
        let mut seq = 3;
        let mut passed = Vec::new();
        for (frame, &(template, tid)) in cycle.iter().cycle().take(8).enumerate() {
            for part in 0..2 {
                let d = descriptor(part == 0, part == 1, template, 11 + frame as u16, None);
                let v = s.admit_packet(&with_dd(seq, &d));
                seq += 1;
                if matches!(v, Verdict::Forward(_)) {
                    passed.push(tid);
                }
                assert_eq!(v == Verdict::Drop, tid > 0, "frame {frame} TID {tid}");
            }
        }
        assert_eq!(passed, [0, 0, 0, 0]);
        // Up to TID 2: not in the middle of a T2 frame, from the next T0 frame on.
        s.target.temporal = 2;
        let mid = descriptor(false, true, 3, 30, None);
        assert_eq!(s.admit_packet(&with_dd(seq, &mid)), Verdict::Drop);
        let t1 = descriptor(true, true, 2, 31, None);
        assert_eq!(
            s.admit_packet(&with_dd(seq + 1, &t1)),
            Verdict::Drop,
            "waits for TID 0"
        );
        let t0 = descriptor(true, true, 1, 32, None);
        assert!(matches!(
            s.admit_packet(&with_dd(seq + 2, &t0)),
            Verdict::Forward(_)
        ));
        let t2 = descriptor(true, true, 3, 33, None);
        assert!(matches!(
            s.admit_packet(&with_dd(seq + 3, &t2)),
            Verdict::Forward(_)
        ));
        assert_eq!(s.current().temporal, 2);
        // A retransmission of a dropped layer is refused once the limit is back down.
        s.target.temporal = 0;
        assert!(matches!(
            s.admit_packet(&with_dd(seq + 4, &t0)),
            Verdict::Forward(_)
        ));
        assert_eq!(s.replay_packet(&with_dd(seq + 3, &t2)), None);
        assert_eq!(
            s.replay_packet(&with_dd(seq + 4, &t0)),
            Some(Rewrite::default())
        );
    }

    #[test]
    fn dependency_descriptor_spatial_layers_move_the_marker_and_go_up_at_a_keyframe() {
        use crate::wire::dd::tests::descriptor;
        // L2T1: templates S0T0, S1T0.
        let l2t1: &[u32] = &[2, 3];
        let mut s = LayerSelect::new(
            Some(VideoCodec::H264),
            LayerLimit {
                spatial: 0,
                temporal: ALL_LAYERS,
            },
        )
        .with_dependency_descriptor(Some(7));
        let key = descriptor(true, true, 0, 1, Some((0, l2t1)));
        let Verdict::Forward(r) = s.admit_packet(&with_dd(1, &key)) else {
            panic!("S0 of the keyframe");
        };
        assert!(r.marker, "S0 is the top forwarded layer");
        assert_eq!(
            s.admit_packet(&with_dd(2, &descriptor(true, true, 1, 1, None))),
            Verdict::Drop
        );
        // Up: not at a delta frame, at the next keyframe.
        s.target.spatial = 1;
        let Verdict::Forward(r) = s.admit_packet(&with_dd(3, &descriptor(true, true, 0, 2, None)))
        else {
            panic!("S0");
        };
        assert!(r.marker);
        assert_eq!(
            s.admit_packet(&with_dd(4, &descriptor(true, true, 1, 2, None))),
            Verdict::Drop
        );
        let Verdict::Forward(r) =
            s.admit_packet(&with_dd(5, &descriptor(true, true, 0, 3, Some((0, l2t1)))))
        else {
            panic!("S0 of the next keyframe");
        };
        assert!(!r.marker, "S1 follows");
        let Verdict::Forward(r) = s.admit_packet(&with_dd(6, &descriptor(true, true, 1, 3, None)))
        else {
            panic!("S1 of the keyframe");
        };
        assert!(r.marker);
    }

    #[test]
    fn vp8_and_vp9_keep_their_payload_descriptors_beside_a_dependency_descriptor() {
        let s = LayerSelect::new(Some(VideoCodec::Vp8), LayerLimit::default())
            .with_dependency_descriptor(Some(7));
        assert!(s.dd.is_none());
        let s = LayerSelect::new(Some(VideoCodec::H264), LayerLimit::default());
        assert!(!s.active(), "H.264 without the descriptor: nothing to read");
    }
}
