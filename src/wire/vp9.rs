//! The VP9 RTP payload descriptor (RFC 9628 §4.2): layer indices, picture numbering and the
//! scalability structure, read without allocating from the front of an RTP payload, so a
//! forwarder can drop spatial and temporal layers. `set_picture_id` and `set_tl0_pic_idx`
//! rewrite in place. Malformed descriptors are refused, never a panic.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |I|P|L|F|B|E|V|Z| (REQUIRED)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PICTURE ID  | (7 or 15 bits)
//!      +-+-+-+-+-+-+-+-+
//! L:   | TID |U| SID |D|
//!      +-+-+-+-+-+-+-+-+
//!      |   TL0PICIDX   | (L and not F: non-flexible mode)
//!      +-+-+-+-+-+-+-+-+
//! P,F: | P_DIFF      |N| (up to 3 times)
//!      +-+-+-+-+-+-+-+-+
//! V:   | SS            | (scalability structure)
//! ```

use super::vp8::PictureId;
use super::WireError;

/// The layer octet (L set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Layer {
    /// TID: temporal layer.
    pub tid: u8,
    /// U: a switching-up point: from here on, a higher temporal layer can be added.
    pub switching_up: bool,
    /// SID: spatial layer.
    pub sid: u8,
    /// D: this layer frame depends on the lower spatial layer of the same picture.
    pub inter_layer_dependent: bool,
}

/// The fields of a VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Descriptor {
    /// P: inter-picture predicted (not a keyframe / intra layer frame).
    pub inter_picture: bool,
    /// F: flexible mode (references as P_DIFFs) rather than non-flexible (TL0PICIDX).
    pub flexible: bool,
    /// B: this packet begins a layer frame.
    pub begin: bool,
    /// E: this packet ends a layer frame.
    pub end: bool,
    /// Z: not used for inter-layer prediction by the upper spatial layer.
    pub not_upper_reference: bool,
    pub picture_id: Option<PictureId>,
    pub layer: Option<Vp9Layer>,
    /// Non-flexible mode: TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// V: the spatial layers the scalability structure announces (N_S + 1).
    pub spatial_layers: Option<u8>,
    /// Descriptor length: where the VP9 payload starts.
    pub len: usize,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the front of an RTP payload. Refused: a descriptor cut short
    /// (also inside its scalability structure), more than three P_DIFFs, P_DIFFs of zero, or
    /// nothing after the descriptor.
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let byte = |at: usize| payload.get(at).copied().ok_or(WireError::TooShort);
        let b0 = byte(0)?;
        let mut d = Self {
            inter_picture: b0 & 0x40 != 0,
            flexible: b0 & 0x10 != 0,
            begin: b0 & 0x08 != 0,
            end: b0 & 0x04 != 0,
            not_upper_reference: b0 & 0x01 != 0,
            picture_id: None,
            layer: None,
            tl0_pic_idx: None,
            spatial_layers: None,
            len: 0,
        };
        let mut at = 1;
        if b0 & 0x80 != 0 {
            let (id, end) = PictureId::read(payload, at)?;
            d.picture_id = Some(id);
            at = end;
        }
        if b0 & 0x20 != 0 {
            let l = byte(at)?;
            at += 1;
            d.layer = Some(Vp9Layer {
                tid: l >> 5,
                switching_up: l & 0x10 != 0,
                sid: (l >> 1) & 0x07,
                inter_layer_dependent: l & 0x01 != 0,
            });
            if !d.flexible {
                d.tl0_pic_idx = Some(byte(at)?);
                at += 1;
            }
        }
        if d.flexible && d.inter_picture {
            // P_DIFFs: N set means another follows; at most three.
            for i in 0..=3 {
                if i == 3 {
                    return Err(WireError::Malformed);
                }
                let p = byte(at)?;
                at += 1;
                if p >> 1 == 0 {
                    return Err(WireError::Malformed);
                }
                if p & 0x01 == 0 {
                    break;
                }
            }
        }
        if b0 & 0x02 != 0 {
            let (layers, len) = scalability_structure(payload.get(at..).unwrap_or(&[]))?;
            d.spatial_layers = Some(layers);
            at += len;
        }
        d.len = at;
        if payload.len() <= at {
            return Err(WireError::TooShort);
        }
        Ok(d)
    }

    /// Starts a picture that needs no other: B set, P clear, and (if layered) spatial layer 0.
    pub fn starts_keyframe(&self) -> bool {
        self.begin && !self.inter_picture && self.layer.is_none_or(|l| l.sid == 0)
    }

    /// Writes `value` (reduced to the descriptor's own width) as the PictureID.
    pub fn set_picture_id(&self, payload: &mut [u8], value: u16) -> Result<(), WireError> {
        let id = self.picture_id.ok_or(WireError::InvalidInput)?;
        id.write(payload, 1, value)
    }

    /// Writes `value` as the TL0PICIDX (non-flexible mode).
    pub fn set_tl0_pic_idx(&self, payload: &mut [u8], value: u8) -> Result<(), WireError> {
        if self.tl0_pic_idx.is_none() {
            return Err(WireError::InvalidInput);
        }
        let at = 2 + self.picture_id.map_or(0, PictureId::len);
        *payload.get_mut(at).ok_or(WireError::BufferTooSmall)? = value;
        Ok(())
    }
}

/// The scalability structure (RFC 9628 §4.2.1) at the front of `ss`: the number of spatial
/// layers and its length.
fn scalability_structure(ss: &[u8]) -> Result<(u8, usize), WireError> {
    let byte = |at: usize| ss.get(at).copied().ok_or(WireError::TooShort);
    let v = byte(0)?;
    let layers = (v >> 5) + 1;
    let mut at = 1;
    if v & 0x10 != 0 {
        at += 4 * usize::from(layers); // WIDTH and HEIGHT of each layer
    }
    if v & 0x08 != 0 {
        let groups = byte(at)?;
        at += 1;
        for _ in 0..groups {
            let g = byte(at)?;
            at += 1 + usize::from((g >> 2) & 0x03); // R P_DIFFs
        }
    }
    if ss.len() < at {
        return Err(WireError::TooShort);
    }
    Ok((layers, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-flexible L3T3_KEY descriptor as libwebrtc sends it: I (15 bits), L, TL0PICIDX.
    fn layered(first: u8, picture_id: u16, tid: u8, sid: u8, tl0: u8) -> Vec<u8> {
        let [hi, lo] = (picture_id | 0x8000).to_be_bytes();
        vec![first | 0xa0, hi, lo, (tid << 5) | (sid << 1), tl0, 0xaa]
    }

    #[test]
    fn non_flexible_layer_fields_are_read() {
        // B, E, not P: the keyframe's base layer.
        let d = Vp9Descriptor::parse(&layered(0x0c, 300, 0, 0, 9)).unwrap();
        assert!(d.begin && d.end && !d.inter_picture && !d.flexible);
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 300,
                long: true
            })
        );
        assert_eq!(
            d.layer,
            Some(Vp9Layer {
                tid: 0,
                switching_up: false,
                sid: 0,
                inter_layer_dependent: false
            })
        );
        assert_eq!((d.tl0_pic_idx, d.len), (Some(9), 5));
        assert!(d.starts_keyframe());
        // Spatial layer 2 of the same picture, depending on layer 1 (D), U set, TID 2.
        let mut p = layered(0x48, 301, 2, 2, 9);
        p[3] |= 0x10 | 0x01;
        let d = Vp9Descriptor::parse(&p).unwrap();
        let l = d.layer.unwrap();
        assert_eq!(
            (l.tid, l.sid, l.switching_up, l.inter_layer_dependent),
            (2, 2, true, true)
        );
        assert!(!d.starts_keyframe());
    }

    #[test]
    fn flexible_mode_reads_p_diffs_and_no_tl0_pic_idx() {
        // I (7 bits), P, L, F, B; layer octet; two P_DIFFs (N on the first).
        let p = [0xf8, 0x05, 0x20, (1 << 1) | 1, 2 << 1, 0xaa];
        let d = Vp9Descriptor::parse(&p).unwrap();
        assert!(d.flexible && d.inter_picture);
        assert_eq!((d.tl0_pic_idx, d.len), (None, 5));
        assert_eq!(d.layer.unwrap().tid, 1);
        // Four P_DIFFs, or a zero one: refused.
        let four = [0xd8, 0x05, 0x03, 0x03, 0x03, 0x02, 0xaa];
        assert_eq!(Vp9Descriptor::parse(&four), Err(WireError::Malformed));
        assert_eq!(
            Vp9Descriptor::parse(&[0xd8, 0x05, 0x00, 0xaa]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn the_scalability_structure_is_skipped_and_counted() {
        // Keyframe, V: N_S = 2 (three layers), Y (sizes), G with one group of one P_DIFF.
        let mut p = vec![0x8a | 0x20, 0x01, 0x00, 0x00]; // I, L, B, V; pid 1; layer; tl0
        p.push((2 << 5) | 0x10 | 0x08);
        for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
            p.extend_from_slice(&w.to_be_bytes());
            p.extend_from_slice(&h.to_be_bytes());
        }
        p.extend_from_slice(&[1, 0x10 | (1 << 2), 1]); // T 0, U, R 1; its P_DIFF
        p.push(0xaa);
        let d = Vp9Descriptor::parse(&p).unwrap();
        assert_eq!(d.spatial_layers, Some(3));
        assert_eq!(d.len, p.len() - 1);
        assert!(d.starts_keyframe());
        // Cut anywhere inside the structure: refused.
        for n in 0..p.len() {
            assert!(Vp9Descriptor::parse(&p[..n]).is_err(), "{n} bytes");
        }
    }

    #[test]
    fn picture_id_and_tl0_pic_idx_are_rewritten_in_place() {
        let mut p = layered(0x08, 0x7fff, 0, 0, 255);
        let d = Vp9Descriptor::parse(&p).unwrap();
        d.set_picture_id(&mut p, 0x8000 + 2).unwrap();
        d.set_tl0_pic_idx(&mut p, 0).unwrap();
        let again = Vp9Descriptor::parse(&p).unwrap();
        assert_eq!(again.picture_id.unwrap().value, 2);
        assert_eq!(again.tl0_pic_idx, Some(0));
        let mut short = [0x88, 0x7f, 0xaa];
        let d = Vp9Descriptor::parse(&short).unwrap();
        d.set_picture_id(&mut short, 0x81).unwrap();
        assert_eq!(short, [0x88, 0x01, 0xaa]);
        assert!(d.set_tl0_pic_idx(&mut short, 1).is_err());
    }

    #[test]
    fn malformed_descriptors_are_refused_without_panic() {
        assert_eq!(Vp9Descriptor::parse(&[]), Err(WireError::TooShort));
        assert_eq!(Vp9Descriptor::parse(&[0x08]), Err(WireError::TooShort));
        let full = layered(0x0c, 300, 0, 0, 9);
        for n in 0..full.len() {
            assert!(Vp9Descriptor::parse(&full[..n]).is_err(), "{n} bytes");
        }
        for a in 0..=255u8 {
            for b in [0x00, 0x80, 0xff, 0x03] {
                for c in [0x00, 0xff, 0x1f] {
                    let _ = Vp9Descriptor::parse(&[a, b, c]);
                    let _ = Vp9Descriptor::parse(&[a, b, c, 0xff, 0xff]);
                }
            }
        }
    }
}
