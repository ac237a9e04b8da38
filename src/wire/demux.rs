//! RFC 7983 demultiplexing of one received datagram by its first byte(s).
//!
//! `classify` owns nothing and looks at no more than the first two bytes: it decides which
//! parser a datagram goes to, not whether the datagram is valid. It must never panic, whatever
//! the length of the input (including empty).

/// What a datagram on the shared media port claims to be (RFC 7983 §7, RFC 5761 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// First byte 0..=3: a STUN message.
    Stun,
    /// First byte 20..=63: a DTLS record.
    Dtls,
    /// First byte 128..=191 and a second byte outside the RTCP packet-type range.
    Rtp,
    /// First byte 128..=191 and a second byte 192..=223 (RTCP packet types, RFC 5761 §4).
    Rtcp,
    /// Empty, a single RTP-range byte, ZRTP, TURN channel data or anything else: dropped.
    Other,
}

/// Classify a datagram. RTP and RTCP share first bytes; the second byte decides: RTCP packet
/// types 192..=223 occupy what would be RTP payload types 64..=95 after masking the marker bit.
pub fn classify(buf: &[u8]) -> PacketKind {
    match buf.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => match buf.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Other,
        },
        _ => PacketKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_other() {
        assert_eq!(classify(&[]), PacketKind::Other);
    }

    #[test]
    fn first_byte_ranges_follow_rfc7983() {
        for b in 0u8..=255 {
            let kind = classify(&[b, 0x60]);
            let want = match b {
                0..=3 => PacketKind::Stun,
                20..=63 => PacketKind::Dtls,
                128..=191 => PacketKind::Rtp,
                _ => PacketKind::Other,
            };
            assert_eq!(kind, want, "first byte {b}");
        }
    }

    #[test]
    fn rtcp_by_second_byte() {
        assert_eq!(classify(&[0x80, 191]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 192]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x81, 205]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 223]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 224]), PacketKind::Rtp);
        // Payload type 96 with the marker bit set is 0xe0: RTP, not RTCP.
        assert_eq!(classify(&[0x80, 0xe0]), PacketKind::Rtp);
        // Payload type 111 without marker.
        assert_eq!(classify(&[0x90, 111]), PacketKind::Rtp);
    }

    #[test]
    fn lone_rtp_range_byte_is_other() {
        assert_eq!(classify(&[0x80]), PacketKind::Other);
    }

    #[test]
    fn stun_and_dtls_need_one_byte() {
        assert_eq!(classify(&[0x01]), PacketKind::Stun);
        assert_eq!(classify(&[22]), PacketKind::Dtls);
        assert_eq!(classify(&[64, 0]), PacketKind::Other);
        assert_eq!(classify(&[16, 0]), PacketKind::Other);
    }
}
