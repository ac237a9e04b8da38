//! The dependency descriptor RTP header extension (AV1 RTP specification, appendix A): how a
//! forwarder learns the spatial and temporal layer of AV1 and H.264 frames (and of VP8/VP9
//! frames when a sender adds it), whose payloads do not say it in a form a relay can read.
//!
//! Every packet carries three mandatory bytes: start and end of frame, a frame dependency
//! template id and a 16-bit frame number. The templates themselves (each with its spatial and
//! temporal id, decode target indications, frame differences and chains) come in a
//! `template_dependency_structure`, sent in the extended descriptor of keyframes (so it is
//! longer than 16 bytes and needs the RFC 8285 two-byte form). A forwarder keeps the latest
//! structure of each stream ([`Structure`]) and looks each packet's template up in it.
//! [`parse`] reads the mandatory fields and, when present, the structure's template layers; the
//! rest of the extended descriptor (DTIs, frame differences, chains, resolutions, custom
//! fields) is not needed to choose layers and is not read. Fixed-size, allocation-free, and
//! every malformed input is an error, never a panic.
//!
//! ```text
//! mandatory_descriptor_fields:                      extended (when longer than 3 bytes):
//!   start_of_frame                  f(1)              template_dependency_structure_present f(1)
//!   end_of_frame                    f(1)              active_decode_targets_present         f(1)
//!   frame_dependency_template_id    f(6)              custom_dtis / fdiffs / chains         f(3)
//!   frame_number                    f(16)             template_dependency_structure()  (if present)
//! template_dependency_structure: template_id_offset f(6), dt_cnt_minus_one f(5),
//!   template_layers(): next_layer_idc f(2) per template (0 same layer, 1 next temporal,
//!   2 next spatial, 3 no more templates), then DTIs, fdiffs, chains, resolutions.
//! ```

use super::WireError;

/// The extension's URI in SDP (`a=extmap`).
pub const URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// Template ids are 6 bits: at most this many templates.
pub const MAX_TEMPLATES: usize = 64;

/// The templates of a stream's latest template dependency structure: each one's spatial and
/// temporal id. Empty until a structure is seen (a receiver joining before a keyframe cannot
/// place packets yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure {
    /// `template_id_offset`: template ids start here (mod 64).
    offset: u8,
    /// Templates in the structure (0: none seen).
    count: u8,
    /// `(spatial_id << 4) | temporal_id` of each template, by index.
    layers: [u8; MAX_TEMPLATES],
    max_spatial: u8,
    max_temporal: u8,
}

impl Default for Structure {
    fn default() -> Self {
        Self {
            offset: 0,
            count: 0,
            layers: [0; MAX_TEMPLATES],
            max_spatial: 0,
            max_temporal: 0,
        }
    }
}

impl Structure {
    /// Whether a structure was seen.
    pub fn known(&self) -> bool {
        self.count > 0
    }

    /// The highest spatial and temporal ids the structure's templates use.
    pub fn max_layers(&self) -> (u8, u8) {
        (self.max_spatial, self.max_temporal)
    }

    /// Spatial and temporal id of template `id`, if the structure has it.
    pub fn layer(&self, id: u8) -> Option<(u8, u8)> {
        let index = usize::from((id & 0x3f).wrapping_add(64).wrapping_sub(self.offset) & 0x3f);
        (index < usize::from(self.count)).then(|| {
            let l = self.layers[index];
            (l >> 4, l & 0x0f)
        })
    }
}

/// What one packet's descriptor says of the frame it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The packet starts a frame.
    pub start: bool,
    /// The packet ends a frame.
    pub end: bool,
    pub frame_number: u16,
    pub template_id: u8,
    pub spatial: u8,
    pub temporal: u8,
    /// This packet carried a (new) template dependency structure: in practice, a keyframe.
    pub structure: bool,
}

/// Reads a dependency descriptor (the extension element's data). If it carries a template
/// dependency structure, `structure` becomes it (only when the whole of its template layers
/// parsed). The frame's layers come from `structure`: an error if it does not have the
/// packet's template (no structure seen yet, or a stale one).
pub fn parse(data: &[u8], structure: &mut Structure) -> Result<FrameInfo, WireError> {
    if data.len() < 3 {
        return Err(WireError::TooShort);
    }
    let mut info = FrameInfo {
        start: data[0] & 0x80 != 0,
        end: data[0] & 0x40 != 0,
        template_id: data[0] & 0x3f,
        frame_number: u16::from_be_bytes([data[1], data[2]]),
        spatial: 0,
        temporal: 0,
        structure: false,
    };
    if data.len() > 3 && data[3] & 0x80 != 0 {
        // template_dependency_structure_present_flag, then four more flag bits.
        let mut bits = Bits::new(data, 3 * 8 + 5);
        *structure = read_structure(&mut bits)?;
        info.structure = true;
    }
    let (spatial, temporal) = structure
        .layer(info.template_id)
        .ok_or(WireError::Malformed)?;
    info.spatial = spatial;
    info.temporal = temporal;
    Ok(info)
}

/// `template_dependency_structure()` up to and including `template_layers()`.
fn read_structure(bits: &mut Bits<'_>) -> Result<Structure, WireError> {
    let mut s = Structure {
        offset: bits.read(6)? as u8,
        ..Structure::default()
    };
    let _dt_cnt_minus_one = bits.read(5)?;
    let (mut spatial, mut temporal) = (0u8, 0u8);
    loop {
        let index = usize::from(s.count);
        if index == MAX_TEMPLATES {
            return Err(WireError::Malformed);
        }
        s.layers[index] = (spatial << 4) | temporal;
        s.count += 1;
        s.max_spatial = s.max_spatial.max(spatial);
        s.max_temporal = s.max_temporal.max(temporal);
        match bits.read(2)? {
            0 => {}
            1 => temporal += 1,
            2 => {
                temporal = 0;
                spatial += 1;
            }
            _ => break,
        }
        // Ids are 3 (temporal) and 2 (spatial) bits in the codecs that use it.
        if temporal > 7 || spatial > 3 {
            return Err(WireError::Malformed);
        }
    }
    Ok(s)
}

/// A most-significant-bit-first reader.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], at: usize) -> Self {
        Self { data, at }
    }

    /// `f(n)`, n ≤ 32.
    fn read(&mut self, n: usize) -> Result<u32, WireError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8).ok_or(WireError::TooShort)?;
            let bit = (byte >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.at += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An MSB-first writer for building descriptors in tests.
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl Writer {
        fn put(&mut self, n: usize, value: u32) -> &mut Self {
            for i in (0..n).rev() {
                if self.bits % 8 == 0 {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
            self
        }
    }

    /// A descriptor: mandatory fields, then (if `layers` is given) the structure flags and a
    /// structure with `offset` whose templates follow `layers` (next_layer_idc values), then
    /// `tail` bytes standing for the DTIs, fdiffs, chains and resolutions.
    pub(crate) fn descriptor(
        start: bool,
        end: bool,
        template: u8,
        frame: u16,
        structure: Option<(u8, &[u32])>,
    ) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(1, start.into())
            .put(1, end.into())
            .put(6, template.into())
            .put(16, frame.into());
        if let Some((offset, idcs)) = structure {
            w.put(1, 1).put(1, 0).put(3, 0); // structure present, no active-DT mask, no custom
            w.put(6, offset.into()).put(5, 2); // three decode targets
            for &idc in idcs {
                w.put(2, idc);
            }
            for _ in 0..8 {
                w.put(16, 0xa5a5); // the rest of the structure, not read: 16 bytes of it
            }
        }
        w.bytes
    }

    /// L1T3 as libwebrtc describes it: templates T0 (key), T0, T1, T2, T2.
    pub(crate) const L1T3: [u32; 5] = [0, 1, 1, 0, 3];

    #[test]
    fn a_keyframe_brings_the_structure_and_later_packets_are_placed_by_template() {
        let mut s = Structure::default();
        assert!(!s.known());
        let key = descriptor(true, false, 0, 100, Some((0, &L1T3)));
        assert!(key.len() > 3);
        let f = parse(&key, &mut s).unwrap();
        assert!(f.structure && f.start && !f.end);
        assert_eq!((f.frame_number, f.spatial, f.temporal), (100, 0, 0));
        assert!(s.known());
        assert_eq!(s.max_layers(), (0, 2));
        let want = [(1, 0), (2, 1), (3, 2), (4, 2)];
        for (template, temporal) in want {
            let d = descriptor(false, true, template, 101, None);
            assert_eq!(d.len(), 3);
            let f = parse(&d, &mut s).unwrap();
            assert!(!f.structure && !f.start && f.end);
            assert_eq!(
                (f.spatial, f.temporal),
                (0, temporal),
                "template {template}"
            );
        }
        // No sixth template.
        assert_eq!(
            parse(&descriptor(true, true, 5, 102, None), &mut s),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn template_ids_count_from_the_offset_modulo_64() {
        let mut s = Structure::default();
        parse(&descriptor(true, true, 62, 7, Some((62, &L1T3))), &mut s).unwrap();
        // 62, 63, 0, 1, 2 are the five templates.
        let temporal = |id| s.layer(id).map(|l| l.1);
        assert_eq!(temporal(62), Some(0));
        assert_eq!(temporal(0), Some(1));
        assert_eq!(temporal(1), Some(2));
        assert_eq!(temporal(2), Some(2));
        assert_eq!(temporal(3), None);
        assert_eq!(temporal(61), None);
    }

    #[test]
    fn spatial_layers_start_again_at_temporal_zero() {
        // L2T2: S0T0, S0T1, S1T0, S1T1.
        let mut s = Structure::default();
        let f = parse(
            &descriptor(true, true, 0, 1, Some((0, &[1, 2, 1, 3]))),
            &mut s,
        )
        .unwrap();
        assert_eq!((f.spatial, f.temporal), (0, 0));
        assert_eq!(s.max_layers(), (1, 1));
        assert_eq!(s.layer(1), Some((0, 1)));
        assert_eq!(s.layer(2), Some((1, 0)));
        assert_eq!(s.layer(3), Some((1, 1)));
    }

    #[test]
    fn before_any_structure_a_packet_cannot_be_placed() {
        let mut s = Structure::default();
        assert_eq!(parse(&[0xc0, 0, 1], &mut s), Err(WireError::Malformed));
        assert_eq!(parse(&[0xc0, 0], &mut s), Err(WireError::TooShort));
        assert_eq!(parse(&[], &mut s), Err(WireError::TooShort));
    }

    #[test]
    fn a_truncated_or_endless_structure_is_refused_and_the_old_one_kept() {
        let mut s = Structure::default();
        parse(&descriptor(true, true, 0, 1, Some((0, &L1T3))), &mut s).unwrap();
        let before = s;
        // Cut inside template_layers.
        let mut cut = descriptor(true, true, 0, 2, Some((0, &L1T3)));
        cut.truncate(5);
        assert_eq!(parse(&cut, &mut s), Err(WireError::TooShort));
        assert_eq!(s, before);
        // 65 templates: more than ids can name.
        let mut many: Vec<u32> = vec![0; 64];
        many.push(3);
        assert_eq!(
            parse(&descriptor(true, true, 0, 3, Some((0, &many))), &mut s),
            Err(WireError::Malformed)
        );
        assert_eq!(s, before);
        // Temporal ids past 7.
        let deep: Vec<u32> = [1u32; 8].into_iter().chain([3]).collect();
        assert_eq!(
            parse(&descriptor(true, true, 0, 3, Some((0, &deep))), &mut s),
            Err(WireError::Malformed)
        );
        assert_eq!(s, before);
    }

    #[test]
    fn any_bytes_parse_or_fail_without_a_panic() {
        let mut s = Structure::default();
        let mut x: u32 = 0x1234_5678;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                let _ = parse(&bytes, &mut s);
            }
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Descriptors captured from Chromium's traffic (published as test data in LiveKit's
    /// `pkg/sfu/dependencydescriptor`, Apache-2.0): a keyframe's structure, then delta frames
    /// placed by it.
    #[test]
    fn a_captured_chromium_structure_places_the_frames_that_follow() {
        let key = unhex(
            "c1017280081485214eafffaaaa863cf0430c10c302afc0aaa0063c00430010c002a000a8000600004000\
             1d954926e082b04a0941b820ac1282503157f974000ca864330e222222eca8655304224230eca8775300\
             77004200ef008601df010d",
        );
        let mut s = Structure::default();
        let f = parse(&key, &mut s).unwrap();
        assert!(f.structure && f.start && f.end);
        assert_eq!(f.frame_number, 370);
        assert_eq!(
            (f.spatial, f.temporal),
            (0, 0),
            "the keyframe's first layer"
        );
        assert_eq!(s.max_layers(), (2, 2), "L3T3");
        let mut placed = Vec::new();
        for d in [
            "86017340fc",
            "46017340fc",
            "c3017540fc",
            "88017640fc",
            "c2017840fc",
        ] {
            let f = parse(&unhex(d), &mut s).unwrap();
            assert!(!f.structure);
            placed.push((f.frame_number, f.spatial, f.temporal));
        }
        // Pictures of three frames each (S0, S1, S2): 370–372 a T0 picture, 373–375 T2,
        // 376– T1, as L3T3 runs.
        assert_eq!(
            placed,
            [
                (371, 1, 0),
                (371, 1, 0),
                (373, 0, 2),
                (374, 1, 2),
                (376, 0, 1)
            ]
        );
    }

    proptest::proptest! {
        /// Any bytes, as a first descriptor and then as one placed by whatever structure it
        /// left: an error or layers inside the structure's, never a panic.
        #[test]
        fn parse_never_panics(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut s = Structure::default();
            for d in [&a, &b] {
                if let Ok(f) = parse(d, &mut s) {
                    let (spatial, temporal) = s.max_layers();
                    proptest::prop_assert!(f.spatial <= spatial && f.temporal <= temporal);
                }
            }
        }
    }
}
