//! Upstream loss recovery: a publisher's packets that never reached the relay are asked for
//! again (generic NACK, RFC 4585 §6.2.1) and, when they come back on the publisher's RTX stream
//! (RFC 4588), put back into the primary stream before fan-out.
//!
//! Without this, a packet lost between publisher and relay is lost for every subscriber: their
//! NACKs find nothing in the relay's cache, and only a keyframe repairs the picture. With it,
//! the relay notices the gap itself, asks once per [`RETRY_AFTER`] up to [`MAX_NACKS`] times,
//! and the recovered packet goes out to every subscriber like any other (late, but before most
//! jitter buffers give up on it).
//!
//! Sans-IO: sequence numbers and `now` in, sequence numbers to NACK and deadlines out. Fixed
//! capacity, no allocation; a gap wider than [`CAPACITY`] is a discontinuity (publisher restart,
//! long outage), not something retransmission can repair, and is only counted.

use std::time::{Duration, Instant};

use crate::wire::rtp::{RtpHeaderMut, RtpPacket};

/// Missing packets tracked per published track.
pub const CAPACITY: usize = 64;
/// Time between NACKs for the same packet. The relay does not know the publisher's RTT; 50 ms
/// covers a continental round trip, and a retransmission later than ~3 × this is no use to a
/// subscriber's jitter buffer anyway.
pub const RETRY_AFTER: Duration = Duration::from_millis(50);
/// NACKs sent for one packet before it is given up.
pub const MAX_NACKS: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct Missing {
    /// Extended sequence number.
    seq: u64,
    nacks: u8,
    /// When to NACK it (again), or give it up once `nacks == MAX_NACKS`.
    next: Instant,
}

/// What one arriving packet was, for the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The newest packet so far (possibly after a gap, now tracked).
    Newest,
    /// A packet the tracker was waiting for.
    Recovered,
    /// An older packet nobody was waiting for (reordered before it was missed, or given up).
    Late,
}

/// The missing packets of one published track.
#[derive(Debug)]
pub struct LossTracker {
    missing: [Missing; CAPACITY],
    len: usize,
    /// Packets given up or never tracked (gap too wide, table full), not yet collected.
    lost: u64,
}

impl LossTracker {
    /// An empty tracker.
    pub fn new(now: Instant) -> Self {
        Self {
            missing: [Missing {
                seq: 0,
                nacks: 0,
                next: now,
            }; CAPACITY],
            len: 0,
            lost: 0,
        }
    }

    /// Packet `ext` (extended sequence number) arrived; `highest` is the highest seen before it.
    pub fn on_packet(&mut self, ext: u64, highest: Option<u64>, now: Instant) -> Arrival {
        let Some(highest) = highest else {
            return Arrival::Newest;
        };
        if ext > highest {
            let gap = ext - highest - 1;
            if gap > CAPACITY as u64 {
                self.lost += gap;
                return Arrival::Newest;
            }
            // A full table gives up its oldest entries, all in one move.
            let gap = gap as usize;
            let overflow = (self.len + gap).saturating_sub(CAPACITY);
            if overflow > 0 {
                self.missing.copy_within(overflow..self.len, 0);
                self.len -= overflow;
                self.lost += overflow as u64;
            }
            for (i, seq) in (highest + 1..ext).enumerate() {
                self.missing[self.len + i] = Missing {
                    seq,
                    nacks: 0,
                    next: now,
                };
            }
            self.len += gap;
            return Arrival::Newest;
        }
        match self.position(ext) {
            Some(i) => {
                self.remove(i);
                Arrival::Recovered
            }
            None => Arrival::Late,
        }
    }

    /// Whether the tracker is waiting for `ext`.
    pub fn is_missing(&self, ext: u64) -> bool {
        self.position(ext).is_some()
    }

    /// Whether anything is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The earliest time [`LossTracker::due`] has work, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.missing[..self.len].iter().map(|m| m.next).min()
    }

    /// Writes the (16-bit) sequence numbers to NACK now into `out` and returns how many;
    /// packets NACKed [`MAX_NACKS`] times whose last wait is over are given up.
    pub fn due(&mut self, now: Instant, out: &mut [u16; CAPACITY]) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.len {
            let m = &mut self.missing[i];
            if m.next > now {
                i += 1;
                continue;
            }
            if m.nacks >= MAX_NACKS {
                self.lost += 1;
                self.remove(i);
                continue;
            }
            m.nacks += 1;
            m.next = now + RETRY_AFTER;
            out[n] = m.seq as u16;
            n += 1;
            i += 1;
        }
        n
    }

    /// Packets given up since the last call.
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    fn position(&self, ext: u64) -> Option<usize> {
        self.missing[..self.len].iter().position(|m| m.seq == ext)
    }

    fn remove(&mut self, i: usize) {
        self.missing.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

/// How a publisher's RTX stream maps back onto its primary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherRtx {
    /// The RTX stream's SSRC (`a=ssrc-group:FID primary rtx`).
    pub ssrc: u32,
    /// The payload type of the primary stream (`a=fmtp:<rtx> apt=<this>`).
    pub apt: u8,
}

/// The original sequence number (OSN) an RTX packet carries, or `None` for a packet with no
/// room for one (a padding-only bandwidth probe, or malformed).
pub fn rtx_osn(packet: &[u8]) -> Option<u16> {
    osn_and_header_len(packet).map(|(osn, _)| osn)
}

fn osn_and_header_len(packet: &[u8]) -> Option<(u16, usize)> {
    let p = RtpPacket::parse(packet).ok()?;
    match p.payload() {
        [a, b, ..] => Some((u16::from_be_bytes([*a, *b]), p.header_len())),
        _ => None,
    }
}

/// Turns the plaintext RTX packet `buf[..len]` back into the original (RFC 4588 §4): SSRC and
/// payload type of the primary stream, the OSN as sequence number, the OSN bytes removed.
/// Marker, timestamp, extensions and padding stay. Returns the new length.
pub fn unwrap_rtx(buf: &mut [u8], len: usize, primary: u32, apt: u8) -> Option<usize> {
    let (osn, header) = osn_and_header_len(buf.get(..len)?)?;
    buf.copy_within(header + 2..len, header);
    let mut h = RtpHeaderMut::new(&mut buf[..len - 2]).ok()?;
    h.set_ssrc(primary);
    h.set_sequence_number(osn);
    h.set_payload_type(apt);
    Some(len - 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_gap_is_nacked_at_once_then_every_retry_interval_then_given_up() {
        let now = t0();
        let mut t = LossTracker::new(now);
        assert_eq!(t.on_packet(100, None, now), Arrival::Newest);
        assert_eq!(t.on_packet(103, Some(100), now), Arrival::Newest);
        let mut out = [0; CAPACITY];
        let n = t.due(now, &mut out);
        assert_eq!(&out[..n], &[101, 102]);
        assert_eq!(t.due(now, &mut out), 0, "not again before RETRY_AFTER");
        assert_eq!(t.next_due(), Some(now + RETRY_AFTER));
        let mut at = now;
        for _ in 1..MAX_NACKS {
            at += RETRY_AFTER;
            assert_eq!(t.due(at, &mut out), 2);
        }
        assert_eq!(t.take_lost(), 0);
        at += RETRY_AFTER;
        assert_eq!(t.due(at, &mut out), 0, "MAX_NACKS sent: given up");
        assert_eq!(t.take_lost(), 2);
        assert!(t.is_empty());
        assert_eq!(t.on_packet(101, Some(103), at), Arrival::Late);
    }

    #[test]
    fn an_arrival_stops_the_nacks_for_it() {
        let now = t0();
        let mut t = LossTracker::new(now);
        t.on_packet(65_535, None, now);
        t.on_packet(65_539, Some(65_535), now);
        assert!(t.is_missing(65_537));
        assert_eq!(t.on_packet(65_537, Some(65_539), now), Arrival::Recovered);
        assert!(!t.is_missing(65_537));
        let mut out = [0; CAPACITY];
        // 16-bit numbers on the wire, across the wrap.
        let n = t.due(now, &mut out);
        assert_eq!(&out[..n], &[0, 2]);
        assert_eq!(t.on_packet(65_536, Some(65_539), now), Arrival::Recovered);
        assert_eq!(t.on_packet(65_538, Some(65_539), now), Arrival::Recovered);
        assert!(t.is_empty());
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn a_gap_wider_than_the_table_is_counted_not_nacked() {
        let now = t0();
        let mut t = LossTracker::new(now);
        t.on_packet(10, Some(9), now);
        t.on_packet(10 + CAPACITY as u64 + 2, Some(10), now);
        assert!(t.is_empty());
        assert_eq!(t.take_lost(), CAPACITY as u64 + 1);
    }

    #[test]
    fn a_full_table_gives_up_its_oldest() {
        let now = t0();
        let mut t = LossTracker::new(now);
        let mut highest = 0;
        for _ in 0..CAPACITY / 2 + 1 {
            t.on_packet(highest + 3, Some(highest), now);
            highest += 3;
        }
        // (CAPACITY/2 + 1) gaps of 2: two too many.
        assert_eq!(t.take_lost(), 2);
        assert!(!t.is_missing(1) && !t.is_missing(2));
        assert!(t.is_missing(4) && t.is_missing(highest - 1));
        let mut out = [0; CAPACITY];
        assert_eq!(t.due(now, &mut out), CAPACITY);
        // A gap of exactly CAPACITY on a full table replaces every entry.
        t.on_packet(highest + CAPACITY as u64 + 1, Some(highest), now);
        assert_eq!(t.take_lost(), CAPACITY as u64);
        assert!(!t.is_missing(highest - 1));
        assert!(t.is_missing(highest + 1) && t.is_missing(highest + CAPACITY as u64));
    }

    fn rtx_packet(osn: u16, payload: &[u8], pad: u8) -> Vec<u8> {
        // V=2, P, X=1 (one-byte extension, 1 word), PT 97, seq 7, ts, SSRC 0x7777.
        let mut p = vec![0x90 | if pad > 0 { 0x20 } else { 0 }, 0x80 | 97, 0, 7];
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&0x7777u32.to_be_bytes());
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
        p.extend_from_slice(&osn.to_be_bytes());
        p.extend_from_slice(payload);
        if pad > 0 {
            p.extend(std::iter::repeat_n(0, usize::from(pad) - 1));
            p.push(pad);
        }
        p
    }

    #[test]
    fn unwrapping_restores_the_original_packet() {
        let mut buf = rtx_packet(4321, b"frame data", 4);
        let len = buf.len();
        let n = unwrap_rtx(&mut buf, len, 0xabcd, 96).unwrap();
        assert_eq!(n, len - 2);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.ssrc(), 0xabcd);
        assert_eq!(p.sequence_number(), 4321);
        assert_eq!(p.payload_type(), 96);
        assert!(p.marker(), "marker kept");
        assert_eq!(p.timestamp(), 1234);
        assert_eq!(p.payload(), b"frame data");
        assert_eq!(p.padding_len(), 4);
        assert_eq!(
            crate::wire::rtp::find_extension(&buf[..n], 1),
            Some(&[0xaa][..])
        );
    }

    #[test]
    fn padding_only_probes_and_garbage_have_no_osn() {
        let probe = rtx_packet(0, b"", 0);
        let probe = &probe[..probe.len() - 2]; // header only
        assert_eq!(rtx_osn(probe), None);
        let mut padded = rtx_packet(0, b"", 0);
        padded.truncate(padded.len() - 2);
        padded[0] |= 0x20;
        padded.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(rtx_osn(&padded), None, "padding is not payload");
        let mut buf = padded.clone();
        assert_eq!(unwrap_rtx(&mut buf, padded.len(), 1, 96), None);
        assert_eq!(buf, padded, "left as it was");
        let valid = rtx_packet(9, b"x", 0);
        for cut in 0..valid.len() {
            let mut b = valid[..cut].to_vec();
            let _ = unwrap_rtx(&mut b, cut, 1, 96);
        }
        assert_eq!(
            unwrap_rtx(&mut [0u8; 4], 10, 1, 96),
            None,
            "len past the buffer"
        );
    }
}
