//! Arrival times of a publisher's packets by transport-wide sequence number, kept until the
//! next transport-cc feedback reports them (see `wire::twcc`). The publisher's bandwidth
//! estimate, and so the quality it sends at, is built on these reports.
//!
//! Sans-IO and fixed-size: a window of [`WINDOW`] sequence numbers. A packet older than the
//! last report is dropped (it was reported lost; the sender copes); a jump past the window
//! reports what did not fit as lost.

use crate::srtp::estimate_index;
use crate::wire::twcc::{self, Written, MAX_STATUSES};
use crate::wire::WireError;

/// Sequence numbers remembered between two feedbacks (~1 s of video at 8 Mbit/s).
pub const WINDOW: usize = 1024;

/// One publisher session's unreported arrivals.
#[derive(Debug)]
pub struct TransportArrivals {
    /// The RTP header extension id of the transport-wide sequence number.
    pub ext_id: u8,
    /// Arrival (µs) by extended sequence number modulo `WINDOW`; `None` = not (yet) arrived.
    arrivals: Box<[Option<i64>; WINDOW]>,
    /// First extended sequence number not yet reported.
    next: u64,
    /// Highest extended sequence number seen, if any.
    highest: Option<u64>,
    fb_count: u8,
}

impl TransportArrivals {
    /// Nothing recorded yet, for extension id `ext_id`.
    pub fn new(ext_id: u8) -> Self {
        Self {
            ext_id,
            arrivals: Box::new([None; WINDOW]),
            next: 0,
            highest: None,
            fb_count: 0,
        }
    }

    /// Packet `seq` (16 bits, as on the wire) arrived at `at_us`. False if it came too late to
    /// be reported.
    pub fn record(&mut self, seq: u16, at_us: i64) -> bool {
        let Some(ext) = estimate_index(self.highest, seq) else {
            return false;
        };
        if self.highest.is_none() {
            self.next = ext;
        }
        if ext < self.next {
            return false;
        }
        if ext >= self.next + WINDOW as u64 {
            // Unreported packets that no longer fit are left as lost: move the window on.
            let new_next = ext + 1 - WINDOW as u64;
            for s in self.next..new_next.min(self.next + WINDOW as u64) {
                self.arrivals[slot(s)] = None;
            }
            self.next = new_next;
        }
        self.arrivals[slot(ext)] = Some(at_us);
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        true
    }

    /// Whether anything is waiting to be reported.
    pub fn pending(&self) -> bool {
        self.highest.is_some_and(|h| h >= self.next)
    }

    /// Writes one feedback (the oldest unreported packets, up to the newest seen) into `buf`.
    /// Call again while [`TransportArrivals::pending`] for the rest.
    pub fn write_feedback(
        &mut self,
        buf: &mut [u8],
        sender_ssrc: u32,
        media_ssrc: u32,
    ) -> Result<usize, WireError> {
        let Some(highest) = self.highest.filter(|&h| h >= self.next) else {
            return Err(WireError::InvalidInput);
        };
        let count = ((highest - self.next + 1) as usize).min(MAX_STATUSES);
        let mut statuses = [None; MAX_STATUSES];
        for (i, s) in statuses[..count].iter_mut().enumerate() {
            *s = self.arrivals[slot(self.next + i as u64)];
        }
        let Written { len, covered } = twcc::write_transport_feedback(
            buf,
            sender_ssrc,
            media_ssrc,
            self.next as u16,
            self.fb_count,
            &statuses[..count],
        )?;
        for s in self.next..self.next + covered as u64 {
            self.arrivals[slot(s)] = None;
        }
        self.next += covered as u64;
        self.fb_count = self.fb_count.wrapping_add(1);
        Ok(len)
    }
}

fn slot(ext: u64) -> usize {
    (ext % WINDOW as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use webrtc::util::Unmarshal;

    fn parse(buf: &[u8]) -> TransportLayerCc {
        TransportLayerCc::unmarshal(&mut bytes::Bytes::copy_from_slice(buf)).unwrap()
    }

    #[test]
    fn reports_each_packet_once_across_the_sequence_wrap() {
        let mut a = TransportArrivals::new(3);
        let mut buf = [0u8; 1500];
        assert!(!a.pending());
        for (i, seq) in [65_533u16, 65_534, 65_535, 1, 2].into_iter().enumerate() {
            assert!(a.record(seq, 1_000 + i as i64 * 500));
        }
        let n = a.write_feedback(&mut buf, 9, 8).unwrap();
        let fb = parse(&buf[..n]);
        assert_eq!(fb.base_sequence_number, 65_533);
        assert_eq!(fb.packet_status_count, 6, "65533..=2, with 0 lost");
        assert_eq!(fb.recv_deltas.len(), 5);
        assert!(!a.pending());
        assert!(!a.record(0, 9_000), "0 was reported lost already");
        assert!(a.record(3, 9_500));
        let n = a.write_feedback(&mut buf, 9, 8).unwrap();
        let fb = parse(&buf[..n]);
        assert_eq!((fb.base_sequence_number, fb.packet_status_count), (3, 1));
        assert_eq!(fb.fb_pkt_count, 1);
        assert_eq!(
            a.write_feedback(&mut buf, 9, 8),
            Err(WireError::InvalidInput)
        );
    }

    #[test]
    fn many_packets_take_several_feedbacks_and_a_jump_moves_the_window() {
        let mut a = TransportArrivals::new(3);
        let mut buf = [0u8; 1500];
        for seq in 0..1000u16 {
            a.record(seq, i64::from(seq) * 100);
        }
        let mut reported = 0;
        while a.pending() {
            let n = a.write_feedback(&mut buf, 1, 2).unwrap();
            reported += usize::from(parse(&buf[..n]).packet_status_count);
        }
        assert_eq!(reported, 1000);
        a.record(1000, 100_000);
        a.record(1000 + WINDOW as u16 + 10, 200_000);
        let n = a.write_feedback(&mut buf, 1, 2).unwrap();
        let fb = parse(&buf[..n]);
        assert_eq!(
            fb.base_sequence_number, 1011,
            "1000..1010 fell out of the window"
        );
        assert_eq!(fb.recv_deltas.len(), 0, "the first statuses are all lost");
        while a.pending() {
            a.write_feedback(&mut buf, 1, 2).unwrap();
        }
    }
}
