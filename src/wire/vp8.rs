//! The VP8 RTP payload descriptor (RFC 7741 §4.2): what a forwarder needs to drop temporal
//! layers and keep the stream it forwards decodable. `Vp8Descriptor::parse` reads it from the
//! front of an RTP payload without allocating; `set_picture_id` and `set_tl0_pic_idx` rewrite
//! those fields in place (same width). Malformed descriptors are refused, never a panic.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |X|R|N|S|R| PID | (REQUIRED)
//!      +-+-+-+-+-+-+-+-+
//! X:   |I|L|T|K| RSV   | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PictureID   | (OPTIONAL, 7 or 15 bits)
//!      +-+-+-+-+-+-+-+-+
//! L:   |   TL0PICIDX   | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! T/K: |TID|Y| KEYIDX  | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! ```

use super::WireError;

/// A PictureID as sent: its value and whether it used the 15-bit (M=1) form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureId {
    pub value: u16,
    pub long: bool,
}

impl PictureId {
    /// Reads a PictureID (M bit, 7 or 15 bits) at `at`; the PictureID and where it ends.
    pub(crate) fn read(buf: &[u8], at: usize) -> Result<(Self, usize), WireError> {
        let first = *buf.get(at).ok_or(WireError::TooShort)?;
        if first & 0x80 == 0 {
            let id = Self {
                value: u16::from(first),
                long: false,
            };
            return Ok((id, at + 1));
        }
        let second = *buf.get(at + 1).ok_or(WireError::TooShort)?;
        let value = u16::from_be_bytes([first & 0x7f, second]);
        Ok((Self { value, long: true }, at + 2))
    }

    /// Writes `value` (reduced to this form's width) at `at`, where this PictureID was read.
    pub(crate) fn write(self, buf: &mut [u8], at: usize, value: u16) -> Result<(), WireError> {
        if self.long {
            let v = (value & 0x7fff) | 0x8000;
            buf.get_mut(at..at + 2)
                .ok_or(WireError::BufferTooSmall)?
                .copy_from_slice(&v.to_be_bytes());
        } else {
            *buf.get_mut(at).ok_or(WireError::BufferTooSmall)? = (value & 0x7f) as u8;
        }
        Ok(())
    }

    /// Its length on the wire.
    pub(crate) fn len(self) -> usize {
        if self.long {
            2
        } else {
            1
        }
    }

    /// The value space of this form: 2^7 or 2^15.
    pub fn modulus(self) -> u16 {
        if self.long {
            0x8000
        } else {
            0x80
        }
    }
}

/// The fields of a VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// N: the frame can be discarded without affecting any other frame.
    pub non_reference: bool,
    /// S: this packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index.
    pub partition_id: u8,
    pub picture_id: Option<PictureId>,
    pub tl0_pic_idx: Option<u8>,
    /// TID: the temporal layer (T set).
    pub tid: Option<u8>,
    /// Y: the frame depends only on the base layer (T set): a temporal switching point.
    pub layer_sync: bool,
    /// KEYIDX (K set).
    pub key_idx: Option<u8>,
    /// Descriptor length: where the VP8 payload starts.
    pub len: usize,
}

/// Where the PictureID starts when present.
const PICTURE_ID_AT: usize = 2;

impl Vp8Descriptor {
    /// Parses the descriptor at the front of an RTP payload. Refused: an empty payload, a
    /// descriptor cut short or with no VP8 payload after it, L set without T.
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let b0 = *payload.first().ok_or(WireError::TooShort)?;
        let mut d = Self {
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_id: b0 & 0x07,
            picture_id: None,
            tl0_pic_idx: None,
            tid: None,
            layer_sync: false,
            key_idx: None,
            len: 1,
        };
        let byte = |at: usize| payload.get(at).copied().ok_or(WireError::TooShort);
        if b0 & 0x80 != 0 {
            let x = byte(1)?;
            let mut at = PICTURE_ID_AT;
            if x & 0x80 != 0 {
                let (id, end) = PictureId::read(payload, at)?;
                d.picture_id = Some(id);
                at = end;
            }
            if x & 0x40 != 0 {
                // RFC 7741: L requires T (TL0PICIDX only means something with a TID).
                if x & 0x20 == 0 {
                    return Err(WireError::Malformed);
                }
                d.tl0_pic_idx = Some(byte(at)?);
                at += 1;
            }
            if x & 0x30 != 0 {
                let tk = byte(at)?;
                at += 1;
                if x & 0x20 != 0 {
                    d.tid = Some(tk >> 6);
                    d.layer_sync = tk & 0x20 != 0;
                }
                if x & 0x10 != 0 {
                    d.key_idx = Some(tk & 0x1f);
                }
            }
            d.len = at;
        }
        if payload.len() <= d.len {
            return Err(WireError::TooShort); // a descriptor with nothing to describe
        }
        Ok(d)
    }

    /// The first packet of a frame: start of partition 0.
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_id == 0
    }

    /// Writes `value` (reduced to the descriptor's own width) as the PictureID of the
    /// descriptor at the front of `payload`, which `self` was parsed from.
    pub fn set_picture_id(&self, payload: &mut [u8], value: u16) -> Result<(), WireError> {
        let id = self.picture_id.ok_or(WireError::InvalidInput)?;
        id.write(payload, PICTURE_ID_AT, value)
    }

    /// Writes `value` as the TL0PICIDX of the descriptor at the front of `payload`.
    pub fn set_tl0_pic_idx(&self, payload: &mut [u8], value: u8) -> Result<(), WireError> {
        if self.tl0_pic_idx.is_none() {
            return Err(WireError::InvalidInput);
        }
        let at = PICTURE_ID_AT + self.picture_id.map_or(0, PictureId::len);
        *payload.get_mut(at).ok_or(WireError::BufferTooSmall)? = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptors as RFC 7741 draws them (§4.2 fields, §4.6 examples), with the VP8 payload
    /// header after them.
    mod rfc7741 {
        use super::*;

        /// §4.6.1, key frame in a single packet: X=1 S=1 PID=0, I=1, PictureID=17.
        #[test]
        fn key_frame_with_picture_id() {
            let d = Vp8Descriptor::parse(&[0x90, 0x80, 0x11, 0x10, 0x02, 0x00]).unwrap();
            assert!(d.starts_frame());
            assert_eq!(
                d.picture_id,
                Some(PictureId {
                    value: 17,
                    long: false
                })
            );
            assert_eq!(
                (d.tid, d.tl0_pic_idx, d.key_idx, d.len),
                (None, None, None, 3)
            );
        }

        /// §4.6.2, no PictureID: X=0 S=1 PID=0, the descriptor is one octet.
        #[test]
        fn key_frame_without_picture_id() {
            let d = Vp8Descriptor::parse(&[0x10, 0x10, 0x02, 0x00]).unwrap();
            assert!(d.starts_frame() && !d.non_reference);
            assert_eq!((d.picture_id, d.len), (None, 1));
        }

        /// An inter frame with a 15-bit PictureID (M=1): 4711.
        #[test]
        fn inter_frame_with_long_picture_id() {
            let d = Vp8Descriptor::parse(&[0x90, 0x80, 0x92, 0x67, 0x11, 0x00]).unwrap();
            assert_eq!(
                d.picture_id,
                Some(PictureId {
                    value: 4711,
                    long: true
                })
            );
            assert_eq!(d.len, 4);
        }

        /// A packet starting the second partition, and a continuation (S clear).
        #[test]
        fn partitions_and_fragments() {
            let d = Vp8Descriptor::parse(&[0x91, 0x80, 0x11, 0xaa]).unwrap();
            assert!(d.start_of_partition && !d.starts_frame());
            assert_eq!(d.partition_id, 1);
            let d = Vp8Descriptor::parse(&[0x80, 0x80, 0x11, 0xaa]).unwrap();
            assert!(!d.start_of_partition && !d.starts_frame());
        }
    }

    /// What libwebrtc sends for L1T3: I (15 bits), L, T with Y, as a frame's first packet.
    fn l1t3(picture_id: u16, tl0: u8, tid: u8, sync: bool) -> [u8; 7] {
        let [hi, lo] = (picture_id | 0x8000).to_be_bytes();
        let tk = (tid << 6) | if sync { 0x20 } else { 0 };
        [0x90, 0xe0, hi, lo, tl0, tk, 0x11]
    }

    #[test]
    fn temporal_fields_are_read() {
        let d = Vp8Descriptor::parse(&l1t3(0x1234, 7, 2, true)).unwrap();
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 0x1234,
                long: true
            })
        );
        assert_eq!(
            (d.tl0_pic_idx, d.tid, d.layer_sync),
            (Some(7), Some(2), true)
        );
        assert_eq!((d.key_idx, d.len), (None, 6));
        // K alone: KEYIDX without a TID.
        let d = Vp8Descriptor::parse(&[0x90, 0x10, 0x25, 0x00]).unwrap();
        assert_eq!((d.tid, d.key_idx, d.len), (None, Some(5), 3));
        // T and K share the octet.
        let d = Vp8Descriptor::parse(&[0x90, 0x30, 0x45, 0x00]).unwrap();
        assert_eq!((d.tid, d.layer_sync, d.key_idx), (Some(1), false, Some(5)));
        // N: a discardable frame.
        assert!(Vp8Descriptor::parse(&[0x30, 0x00]).unwrap().non_reference);
    }

    #[test]
    fn picture_id_and_tl0_pic_idx_are_rewritten_in_place_at_their_width() {
        let mut p = l1t3(0x7ffe, 250, 0, false);
        let d = Vp8Descriptor::parse(&p).unwrap();
        d.set_picture_id(&mut p, 0x8003).unwrap(); // wraps at 15 bits
        d.set_tl0_pic_idx(&mut p, 3).unwrap();
        let again = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(again.picture_id.unwrap().value, 3);
        assert_eq!(again.tl0_pic_idx, Some(3));
        assert_eq!((again.tid, again.len), (Some(0), 6));
        let mut short = [0x90, 0xc0 | 0x20, 0x7f, 9, 0x40, 0x00];
        let d = Vp8Descriptor::parse(&short).unwrap();
        d.set_picture_id(&mut short, 0x80 + 5).unwrap();
        d.set_tl0_pic_idx(&mut short, 10).unwrap();
        assert_eq!(short, [0x90, 0xe0, 5, 10, 0x40, 0x00]);
        // Fields the descriptor does not carry cannot be written.
        let mut bare = [0x10, 0x00];
        let d = Vp8Descriptor::parse(&bare).unwrap();
        assert!(d.set_picture_id(&mut bare, 1).is_err());
        assert!(d.set_tl0_pic_idx(&mut bare, 1).is_err());
    }

    #[test]
    fn malformed_descriptors_are_refused_without_panic() {
        assert_eq!(Vp8Descriptor::parse(&[]), Err(WireError::TooShort));
        assert_eq!(
            Vp8Descriptor::parse(&[0x10]),
            Err(WireError::TooShort),
            "no payload"
        );
        // L without T.
        assert_eq!(
            Vp8Descriptor::parse(&[0x90, 0x40, 0x01, 0x00]),
            Err(WireError::Malformed)
        );
        // Every truncation of a full descriptor.
        let full = l1t3(0x1234, 7, 2, true);
        for n in 0..full.len() {
            assert!(Vp8Descriptor::parse(&full[..n]).is_err(), "{n} bytes");
        }
        // Any two- and three-byte input: no panic.
        for a in 0..=255u8 {
            for b in [0x00, 0x80, 0xc0, 0xe0, 0xf0, 0xff] {
                let _ = Vp8Descriptor::parse(&[a, b]);
                let _ = Vp8Descriptor::parse(&[a, b, 0xff]);
            }
        }
    }
}
