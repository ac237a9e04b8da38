//! Does an RTP payload start a keyframe? Per codec, from its RTP payload format: VP8 (RFC 7741),
//! VP9 (RFC 9628), H.264 (RFC 6184) and AV1 (the AOM RTP payload format). Used to start a
//! subscriber on another simulcast layer at a picture it can decode. Never panics.

/// A video codec whose keyframes the relay can find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
    Av1,
}

impl VideoCodec {
    /// From an `a=rtpmap` encoding name (any case); `None` for others.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ("VP8", Self::Vp8),
            ("VP9", Self::Vp9),
            ("H264", Self::H264),
            ("AV1", Self::Av1),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| c)
    }

    /// Whether `payload` (the RTP payload, after header, extensions and padding are removed)
    /// is the first packet of a keyframe.
    pub fn starts_keyframe(self, payload: &[u8]) -> bool {
        match self {
            Self::Vp8 => vp8(payload).unwrap_or(false),
            Self::Vp9 => vp9(payload).unwrap_or(false),
            Self::H264 => h264(payload).unwrap_or(false),
            Self::Av1 => payload.first().is_some_and(|b| b & 0x08 != 0),
        }
    }
}

/// RFC 7741 §4.2: start of partition 0 (S=1, PID=0), then the VP8 frame's P bit clear.
fn vp8(p: &[u8]) -> Option<bool> {
    let b0 = *p.first()?;
    if b0 & 0x10 == 0 || b0 & 0x0f != 0 {
        return Some(false);
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(1)?;
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: 15 bits when its M bit is set, else 7.
            at += if *p.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    Some(*p.get(at)? & 0x01 == 0)
}

/// RFC 9628 §4.2: B (start of frame) set, P (inter-picture predicted) clear, and for a layered
/// stream spatial layer 0.
fn vp9(p: &[u8]) -> Option<bool> {
    let b0 = *p.first()?;
    let (picture_id, inter, layers, begin) = (b0 & 0x80, b0 & 0x40, b0 & 0x20, b0 & 0x08);
    if inter != 0 || begin == 0 {
        return Some(false);
    }
    if layers == 0 {
        return Some(true);
    }
    let mut at = 1;
    if picture_id != 0 {
        at += if *p.get(1)? & 0x80 != 0 { 2 } else { 1 };
    }
    let spatial_id = (*p.get(at)? >> 1) & 0x07;
    Some(spatial_id == 0)
}

/// RFC 6184: an IDR slice (5) or a sequence parameter set (7), alone, in a STAP-A (24) or
/// starting a FU-A (28).
fn h264(p: &[u8]) -> Option<bool> {
    let key = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match *p.first()? & 0x1f {
        24 => {
            let mut at = 1;
            while at + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                if key(*p.get(at + 2)? & 0x1f) {
                    return Some(true);
                }
                at += 2 + size;
            }
            Some(false)
        }
        28 => {
            let fu = *p.get(1)?;
            Some(fu & 0x80 != 0 && key(fu & 0x1f))
        }
        t => Some(key(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes_are_the_start_of_partition_zero_with_p_clear() {
        // S=1, PID=0, no extension; VP8 header byte 0x10 (P=0: key) or 0x11 (P=1: inter).
        assert!(VideoCodec::Vp8.starts_keyframe(&[0x10, 0x10, 0x02, 0x00]));
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x10, 0x11, 0x02, 0x00]));
        // Not the start of a partition, or another partition.
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x00, 0x10]));
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x11, 0x10]));
        // X with a 15-bit PictureID, TL0PICIDX and TID (as Chromium sends): 5 descriptor bytes.
        let chromium = [0x90, 0xe0, 0x80 | 0x12, 0x34, 0x07, 0x40, 0x10, 0x02];
        assert!(VideoCodec::Vp8.starts_keyframe(&chromium));
        let mut inter = chromium;
        inter[6] = 0x11;
        assert!(!VideoCodec::Vp8.starts_keyframe(&inter));
        // 7-bit PictureID only.
        assert!(VideoCodec::Vp8.starts_keyframe(&[0x90, 0x80, 0x12, 0x10]));
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x90, 0x80, 0x12, 0x11]));
    }

    #[test]
    fn vp9_keyframes_begin_a_frame_without_inter_prediction_on_layer_zero() {
        assert!(VideoCodec::Vp9.starts_keyframe(&[0x08]));
        assert!(!VideoCodec::Vp9.starts_keyframe(&[0x48]), "P set");
        assert!(
            !VideoCodec::Vp9.starts_keyframe(&[0x04]),
            "not the beginning"
        );
        // I (15-bit picture id) and L: spatial id in bits 3..1 of the layer byte.
        assert!(VideoCodec::Vp9.starts_keyframe(&[0xa8, 0x81, 0x02, 0x00]));
        assert!(!VideoCodec::Vp9.starts_keyframe(&[0xa8, 0x81, 0x02, 0x02]));
    }

    #[test]
    fn h264_keyframes_carry_an_idr_or_sps_alone_aggregated_or_fragment_first() {
        assert!(VideoCodec::H264.starts_keyframe(&[0x65, 0x88]), "IDR");
        assert!(VideoCodec::H264.starts_keyframe(&[0x67, 0x42]), "SPS");
        assert!(
            !VideoCodec::H264.starts_keyframe(&[0x41, 0x9a]),
            "non-IDR slice"
        );
        // STAP-A with SPS and PPS.
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(VideoCodec::H264.starts_keyframe(&stap));
        let stap_sei = [0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x68, 0xce];
        assert!(!VideoCodec::H264.starts_keyframe(&stap_sei));
        // FU-A of an IDR: only the start fragment counts.
        assert!(VideoCodec::H264.starts_keyframe(&[0x7c, 0x85, 0x88]));
        assert!(!VideoCodec::H264.starts_keyframe(&[0x7c, 0x05, 0x88]));
        assert!(!VideoCodec::H264.starts_keyframe(&[0x7c, 0x81, 0x88]));
    }

    #[test]
    fn av1_keyframes_start_a_coded_video_sequence() {
        assert!(VideoCodec::Av1.starts_keyframe(&[0x18, 0x0a]));
        assert!(!VideoCodec::Av1.starts_keyframe(&[0x10, 0x0a]));
    }

    #[test]
    fn codecs_by_name_and_no_panic_on_any_short_payload() {
        assert_eq!(VideoCodec::from_name("vp8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_name("H264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_name("H265"), None);
        for codec in [
            VideoCodec::Vp8,
            VideoCodec::Vp9,
            VideoCodec::H264,
            VideoCodec::Av1,
        ] {
            assert!(!codec.starts_keyframe(&[]));
            for len in 0..8 {
                for fill in [0x00, 0x10, 0x78, 0x7c, 0xff] {
                    let _ = codec.starts_keyframe(&vec![fill; len]);
                }
            }
        }
    }
}
