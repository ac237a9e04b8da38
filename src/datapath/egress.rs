//! Egress numbering: every RTP packet a subscriber session is sent (media, audio, RTX, probes)
//! carries that session's own transport-wide sequence number and, if negotiated, a fresh
//! abs-send-time, in place of whatever the publisher's packet carried; each send is remembered
//! in a fixed history (sequence, size, send time) so that the subscriber's transport-cc feedback
//! can be matched to what was sent and fed to its bandwidth estimator (`crate::cc`).
//!
//! [`SubscriberCc`] is the rest of what a worker keeps per subscriber for congestion control:
//! its estimator (`crate::cc`), a probe being sent, and what it was sent over the last second.
//!
//! Fixed-size and allocation-free after creation; times are µs since the worker's epoch. It
//! never reads the clock itself.

use std::time::{Duration, Instant};

use crate::cc::probe::ProbePlan;
use crate::cc::{CcConfig, Estimator};
use crate::srtp::estimate_index;

/// Sends remembered per session: ~2.5 s of a 8 Mbit/s stream, far more than a feedback interval.
pub const HISTORY: usize = 2048;

/// The header extension ids (in the subscriber's numbering) a subscription stamps on egress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressExtensions {
    /// The transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01).
    pub transport_cc: Option<u8>,
    /// abs-send-time (6.18 fixed-point seconds, 24 bits).
    pub abs_send_time: Option<u8>,
}

impl EgressExtensions {
    /// Whether any stamp is written.
    pub fn any(&self) -> bool {
        self.transport_cc.is_some() || self.abs_send_time.is_some()
    }
}

/// What one packet is stamped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub transport_seq: u16,
    /// 24-bit abs-send-time value.
    pub abs_send_time: u32,
}

/// One remembered send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentPacket {
    /// Extended transport-wide sequence number.
    pub seq: u64,
    /// Bytes on the wire (SRTP packet).
    pub size: u16,
    /// When it was queued, µs since the worker's epoch.
    pub sent_us: i64,
    /// The probe cluster it belongs to (0: not a probe).
    pub probe: u16,
    /// A feedback has reported it (received or lost) already.
    pub reported: bool,
}

/// A subscriber session's transport-wide numbering and send history.
#[derive(Debug)]
pub struct SendHistory {
    /// The next extended sequence number to hand out.
    next: u64,
    entries: Box<[SentPacket]>,
}

impl Default for SendHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl SendHistory {
    /// An empty history; numbering starts at 1 (as libwebrtc's).
    pub fn new() -> Self {
        Self {
            next: 1,
            entries: vec![SentPacket::default(); HISTORY].into_boxed_slice(),
        }
    }

    /// The stamp for the next packet sent at `now_us` (not consumed until [`Self::record`]).
    pub fn stamp(&self, now_us: i64) -> Stamp {
        Stamp {
            transport_seq: self.next as u16,
            abs_send_time: abs_send_time(now_us),
        }
    }

    /// The packet stamped last was sent: `size` bytes at `sent_us`, in probe cluster `probe`.
    pub fn record(&mut self, size: usize, sent_us: i64, probe: u16) {
        let seq = self.next;
        self.entries[slot(seq)] = SentPacket {
            seq,
            size: size.min(usize::from(u16::MAX)) as u16,
            sent_us,
            probe,
            reported: false,
        };
        self.next += 1;
    }

    /// The send numbered `seq` (16 bits, as feedback names it), if still remembered.
    pub fn get(&self, seq: u16) -> Option<SentPacket> {
        let ext = estimate_index(Some(self.next - 1), seq)?;
        if ext >= self.next || self.next - ext > HISTORY as u64 {
            return None;
        }
        let e = self.entries[slot(ext)];
        (e.seq == ext).then_some(e)
    }

    /// The send numbered `seq`, marked reported, if remembered and not reported before: a
    /// receiver may report a number in more than one feedback, and the estimator takes each
    /// send once.
    pub fn take_report(&mut self, seq: u16) -> Option<SentPacket> {
        let ext = estimate_index(Some(self.next - 1), seq)?;
        if ext >= self.next || self.next - ext > HISTORY as u64 {
            return None;
        }
        let e = &mut self.entries[slot(ext)];
        if e.seq != ext || e.reported {
            return None;
        }
        e.reported = true;
        Some(*e)
    }

    /// Extended sequence numbers handed out so far (the next one).
    pub fn next_seq(&self) -> u64 {
        self.next
    }
}

/// A subscriber session's congestion control state in its worker.
#[derive(Debug)]
pub struct SubscriberCc {
    pub estimator: Estimator,
    /// A probe being sent: its plan, packets left, and when the next one is due.
    pub probe: Option<ProbeRun>,
    /// Bytes of audio and video sent since the last report.
    pub audio_octets: u64,
    pub video_octets: u64,
    /// Since when `audio_octets` counts, and the audio rate last measured.
    pub audio_since: Option<Instant>,
    pub audio_bps: u64,
    /// When the last report went to the slow path, and the decrease it carried.
    pub reported_at: Option<Instant>,
    pub decrease_reported: Option<i64>,
}

/// A probe cluster being sent, paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRun {
    pub plan: ProbePlan,
    pub sent: u16,
    pub next_at: Instant,
}

impl ProbeRun {
    /// The gap after a packet of `bytes` that keeps the probe at its target rate.
    pub fn gap(&self, bytes: usize) -> Duration {
        let target = self.plan.target_bps.max(1);
        Duration::from_nanos((bytes as u64 * 8 * 1_000_000_000) / target)
    }
}

impl SubscriberCc {
    pub fn new() -> Self {
        Self {
            estimator: Estimator::new(CcConfig::default()),
            probe: None,
            audio_octets: 0,
            video_octets: 0,
            audio_since: None,
            audio_bps: 0,
            reported_at: None,
            decrease_reported: None,
        }
    }
}

impl Default for SubscriberCc {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(ext: u64) -> usize {
    (ext % HISTORY as u64) as usize
}

/// abs-send-time of `us` µs: seconds in 6.18 fixed point, 24 bits (wraps every 64 s).
pub fn abs_send_time(us: i64) -> u32 {
    ((((us.max(0) as u64) << 18) / 1_000_000) & 0x00ff_ffff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_numbered_in_order_and_found_until_they_age_out() {
        let mut h = SendHistory::new();
        for i in 0..70_000i64 {
            let stamp = h.stamp(i * 10);
            assert_eq!(stamp.transport_seq, (i + 1) as u16);
            h.record(1000 + (i % 7) as usize, i * 10, 0);
        }
        // The last HISTORY sends are there, across the 16-bit wrap; older ones are not.
        let last = h.next_seq() - 1;
        let e = h.get(last as u16).unwrap();
        assert_eq!((e.seq, e.sent_us), (last, (last as i64 - 1) * 10));
        let oldest = last + 1 - HISTORY as u64;
        assert_eq!(h.get(oldest as u16).unwrap().seq, oldest);
        assert_eq!(h.get((oldest - 1) as u16), None);
        assert_eq!(h.get((last + 1) as u16), None, "not sent yet");
        // Each send is reported once.
        assert_eq!(h.take_report(last as u16).map(|e| e.seq), Some(last));
        assert_eq!(h.take_report(last as u16), None);
        assert_eq!(h.get(last as u16).map(|e| e.reported), Some(true));
    }

    #[test]
    fn abs_send_time_is_6_18_fixed_point_seconds() {
        assert_eq!(abs_send_time(0), 0);
        assert_eq!(abs_send_time(1_000_000), 1 << 18);
        assert_eq!(abs_send_time(500_000), 1 << 17);
        assert_eq!(abs_send_time(64_000_000), 0, "wraps at 64 s");
    }
}
